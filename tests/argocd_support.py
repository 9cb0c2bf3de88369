"""The argocd-cm entries that install the health check and actions, built from resource_customizations/.

examples/argocd/argocd-cm.yaml must hold exactly these (tests/integration/test_argocd_lua.py);
``python tests/argocd_support.py`` prints the file after a change to the Lua.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
CUSTOMIZATION = REPO / "resource_customizations" / "modelrelease.io" / "ModelRelease"
KEY = "modelrelease.io_ModelRelease"
HEADER = """\
# Adds the ModelRelease health check and the approve / promote / abort / retry actions to Argo CD.
# Merge into the argocd-cm ConfigMap of your Argo CD (kubectl -n argocd patch configmap argocd-cm
# --patch-file examples/argocd/argocd-cm.yaml); Argo CD picks it up without a restart.
# Generated from resource_customizations/modelrelease.io/ModelRelease/ (python tests/argocd_support.py).
"""


class _Literal(yaml.SafeDumper):
    pass


_Literal.add_representer(
    str,
    lambda dumper, value: dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None),
)


def expected_config_map() -> dict[str, Any]:
    actions = CUSTOMIZATION / "actions"
    definitions = [
        {"name": path.name, "action.lua": (path / "action.lua").read_text()}
        for path in sorted(actions.iterdir())
        if (path / "action.lua").exists()
    ]
    action_config = {"discovery.lua": (actions / "discovery.lua").read_text(), "definitions": definitions}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "argocd-cm", "namespace": "argocd"},
        "data": {
            f"resource.customizations.health.{KEY}": (CUSTOMIZATION / "health.lua").read_text(),
            f"resource.customizations.actions.{KEY}": yaml.dump(
                action_config, Dumper=_Literal, sort_keys=False, width=1000
            ),
        },
    }


def render() -> str:
    return HEADER + yaml.dump(expected_config_map(), Dumper=_Literal, sort_keys=False, width=1000)


if __name__ == "__main__":
    print(render(), end="")
