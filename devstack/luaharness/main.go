// luaharness runs one Argo CD resource-customization script (health.lua, discovery.lua or an
// action.lua) with gopher-lua, the interpreter Argo CD embeds, the way Argo CD does: the
// object as the global `obj`, only the base, table, string and math libraries open.
//
// Usage: luaharness SCRIPT < object.json > result.json
//
// The object is read as JSON and the script's return value is written as JSON; the YAML test
// files (health_test.yaml, action_test.yaml) are read by tests/integration/test_argocd_lua.py.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"

	lua "github.com/yuin/gopher-lua"
)

func toLua(l *lua.LState, value interface{}) lua.LValue {
	switch v := value.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case []interface{}:
		table := l.NewTable()
		for _, item := range v {
			table.Append(toLua(l, item))
		}
		return table
	case map[string]interface{}:
		table := l.NewTable()
		for key, item := range v {
			table.RawSetString(key, toLua(l, item))
		}
		return table
	}
	panic(fmt.Sprintf("unsupported JSON value %T", value))
}

func fromLua(value lua.LValue) interface{} {
	switch v := value.(type) {
	case *lua.LNilType:
		return nil
	case lua.LBool:
		return bool(v)
	case lua.LNumber:
		return float64(v)
	case lua.LString:
		return string(v)
	case *lua.LTable:
		// A table whose keys are exactly 1..n is an array (an empty table is an empty object).
		if n := v.MaxN(); n > 0 {
			count := 0
			v.ForEach(func(lua.LValue, lua.LValue) { count++ })
			if count == n {
				items := make([]interface{}, 0, n)
				for i := 1; i <= n; i++ {
					items = append(items, fromLua(v.RawGetInt(i)))
				}
				return items
			}
		}
		object := map[string]interface{}{}
		var keys []string
		v.ForEach(func(key, item lua.LValue) {
			keys = append(keys, key.String())
			object[key.String()] = fromLua(item)
		})
		sort.Strings(keys)
		return object
	}
	panic(fmt.Sprintf("unsupported Lua value %s", value.Type()))
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: luaharness SCRIPT < object.json")
		os.Exit(2)
	}
	input, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var object interface{}
	if err := json.Unmarshal(input, &object); err != nil {
		fmt.Fprintln(os.Stderr, "object:", err)
		os.Exit(1)
	}
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{{lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}, {lua.StringLibName, lua.OpenString}, {lua.MathLibName, lua.OpenMath}} {
		l.Push(l.NewFunction(lib.open))
		l.Push(lua.LString(lib.name))
		l.Call(1, 0)
	}
	l.SetGlobal("obj", toLua(l, object))
	if err := l.DoFile(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	out, err := json.Marshal(fromLua(l.Get(-1)))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(string(out))
}
