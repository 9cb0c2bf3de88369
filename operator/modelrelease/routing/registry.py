"""The routers an operator offers, by the name ``spec.traffic.router`` uses: the one place a router is added."""

from __future__ import annotations

from modelrelease.kube.client import Kube
from modelrelease.routing.base import Router
from modelrelease.routing.gateway_api import GatewayApiRouter
from modelrelease.routing.istio import IstioRouter
from modelrelease.routing.replicas import ReplicasRouter


def build_routers(kube: Kube) -> dict[str, Router]:
    routers: list[Router] = [ReplicasRouter(kube), GatewayApiRouter(kube), IstioRouter(kube)]
    return {router.name: router for router in routers}
