"""The pod runner's watch when the API server dies mid-stream: an ApiError its loop recovers from, never a dead task.

Found by the chaos trial that restarts kube-apiserver: the connection reset
surfaced from ``readline`` as an aiohttp error, which the pod watch loop
(catching only ApiError) did not expect, so its task ended and no pod was
started or reported again until the pod runner restarted.
"""

from __future__ import annotations

import asyncio
import json

from aiohttp import web
from kubernetes_asyncio import client

from devstack.podrunner.kube import ApiError, Kube


async def _one_event_then_reset(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    await response.prepare(request)
    await response.write(json.dumps({"type": "ADDED", "object": {"metadata": {"name": "p"}}}).encode() + b"\n")
    assert request.transport is not None
    request.transport.abort()  # what a SIGKILLed API server leaves: the stream cut mid-response
    return response


async def _watch_across_a_reset() -> tuple[list[str], BaseException | None]:
    app = web.Application()
    app.router.add_get("/api/v1/pods", _one_event_then_reset)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    configuration = client.Configuration(host=f"http://127.0.0.1:{port}")
    kube = Kube(client.ApiClient(configuration))
    seen: list[str] = []
    error: BaseException | None = None
    try:
        async for event in kube.watch("/api/v1/pods"):
            seen.append(event["object"]["metadata"]["name"])
    except BaseException as raised:
        error = raised
    finally:
        await kube.close()
        await runner.cleanup()
    return seen, error


def test_a_watch_cut_by_a_dying_api_server_ends_in_an_api_error_after_the_events_it_delivered() -> None:
    seen, error = asyncio.run(_watch_across_a_reset())
    assert seen == ["p"]
    assert isinstance(error, ApiError), repr(error)
    assert error.status == 0 and "/api/v1/pods" in str(error)
