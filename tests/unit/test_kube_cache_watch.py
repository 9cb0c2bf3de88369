"""The watch cache against a stand-in API server (aiohttp): list, watch, deletions, and a relist after 410 Gone."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web
from kubernetes_asyncio import client

from modelrelease.kube.cache import KINDS, ObjectCache
from modelrelease.kube.manifests import LABEL_RELEASE

DEPLOYMENTS = tuple(kind for kind in KINDS if kind.name == "Deployment")


def _deployment(name: str, rv: int) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "a", "resourceVersion": str(rv), "labels": {LABEL_RELEASE: "digits"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {}}, "template": {}},
    }


class StandIn:
    """Answers LIST then a scripted series of WATCH streams; records what was asked."""

    def __init__(self) -> None:
        self.lists = [
            {"metadata": {"resourceVersion": "10"}, "items": [_deployment("d1", 9)]},
            {"metadata": {"resourceVersion": "20"}, "items": [_deployment("d3", 19)]},
        ]
        self.watches: list[list[dict[str, Any]]] = [
            [
                {"type": "ADDED", "object": _deployment("d2", 11)},
                {"type": "DELETED", "object": _deployment("d1", 12)},
            ],
            [{"type": "ERROR", "object": {"kind": "Status", "code": 410, "message": "too old resource version"}}],
        ]
        self.asked: list[tuple[str, str | None, str | None]] = []
        self.hold = asyncio.Event()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        watching = request.query.get("watch") in ("true", "True", "1")
        self.asked.append(
            ("WATCH" if watching else "LIST", request.query.get("resourceVersion"), request.query.get("labelSelector"))
        )
        if not watching:
            return web.json_response(self.lists.pop(0))
        response = web.StreamResponse()
        await response.prepare(request)
        if not self.watches:
            await self.hold.wait()  # the last watch stays open until the test ends
            return response
        for event in self.watches.pop(0):
            await response.write(json.dumps(event).encode() + b"\n")
        return response


def test_the_cache_lists_watches_and_starts_over_when_its_version_expired() -> None:
    async def scenario() -> tuple[list[str], list[tuple[str, str | None, str | None]], list[str]]:
        stand_in = StandIn()
        app = web.Application()
        app.router.add_get("/apis/apps/v1/namespaces/a/deployments", stand_in.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        configuration = client.Configuration(host=f"http://127.0.0.1:{port}")
        api = client.ApiClient(configuration)
        cache = ObjectCache(api, namespaces=("a",), kinds=DEPLOYMENTS)
        seen: list[str] = []
        cache.on_change(lambda event, kind, raw: seen.append(f"{event} {raw['metadata']['name']}"))
        cache.start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while [d.metadata.name for d in cache.select("Deployment", "a", {LABEL_RELEASE: "digits"})] != ["d3"]:
            assert loop.time() < deadline, f"cache never settled on d3: {seen}"
            await asyncio.sleep(0.02)
        # The cache holds d3 as soon as the relist answers; the watch resumed from it follows a moment later.
        while len(stand_in.asked) < 5:
            assert loop.time() < deadline, f"no watch after the relist: {stand_in.asked}"
            await asyncio.sleep(0.02)
        names = [d.metadata.name for d in cache.select("Deployment", "a", {LABEL_RELEASE: "digits"})]
        assert cache.ready("Deployment", "a")
        stand_in.hold.set()
        await cache.close()
        await api.close()
        await runner.cleanup()
        return names, stand_in.asked, seen

    names, asked, seen = asyncio.run(scenario())
    assert names == ["d3"]
    assert [(verb, rv) for verb, rv, _ in asked[:5]] == [
        ("LIST", None),
        ("WATCH", "10"),
        ("WATCH", "12"),  # resumed where the first watch ended
        ("LIST", None),  # 410 Gone: listed again
        ("WATCH", "20"),
    ]
    assert all(selector == LABEL_RELEASE for _, _, selector in asked)
    assert seen[:3] == ["LISTED d1", "ADDED d2", "DELETED d1"]
    assert "DELETED d2" in seen  # gone by the relist: dropped and told


def test_routes_are_cached_as_json_and_a_route_kind_without_its_crd_is_read_from_the_api() -> None:
    """HTTPRoutes come back as the dicts CustomObjectsApi returns; no istio CRD means VirtualServices are not served."""
    routes = tuple(kind for kind in KINDS if kind.name in ("HTTPRoute", "VirtualService"))
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "r", "namespace": "a", "resourceVersion": "5", "labels": {LABEL_RELEASE: "digits"}},
        "spec": {"rules": [{"backendRefs": [{"name": "digits-stable", "weight": 100}]}]},
    }
    hold = asyncio.Event()

    async def http_routes(request: web.Request) -> web.StreamResponse:
        if request.query.get("watch") not in ("true", "True", "1"):
            return web.json_response({"metadata": {"resourceVersion": "5"}, "items": [route]})
        response = web.StreamResponse()
        await response.prepare(request)
        await hold.wait()
        return response

    async def no_crd(request: web.Request) -> web.Response:
        return web.json_response({"kind": "Status", "code": 404, "message": "the server could not find it"}, status=404)

    async def scenario() -> tuple[Any, bool, bool, bool]:
        app = web.Application()
        app.router.add_get("/apis/gateway.networking.k8s.io/v1/namespaces/a/httproutes", http_routes)
        app.router.add_get("/apis/networking.istio.io/v1/namespaces/a/virtualservices", no_crd)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        api = client.ApiClient(client.Configuration(host=f"http://127.0.0.1:{port}"))
        cache = ObjectCache(api, namespaces=("a",), kinds=routes)
        cache.start()
        ready = await cache.wait_ready(20)
        got = cache.get("HTTPRoute", "a", "r")
        got["spec"]["rules"].clear()  # a reader's edit must not reach the cache's copy
        again = cache.get("HTTPRoute", "a", "r")
        result = (again, ready, cache.forbidden("VirtualService"), cache.ready("VirtualService", "a"))
        hold.set()
        await cache.close()
        await api.close()
        await runner.cleanup()
        return result

    again, ready, virtual_services_refused, virtual_services_ready = asyncio.run(scenario())
    assert ready
    assert again["spec"]["rules"][0]["backendRefs"][0] == {"name": "digits-stable", "weight": 100}
    assert virtual_services_refused and not virtual_services_ready
