"""The two measurements the engine asks for mid-pass: the smoke test and an analysis check.

Neither raises for trouble in the world: a missing golden set, an
unreachable pod or Prometheus all become results the engine can judge, so
one broken release never crashes the operator or stalls the others.

What a smoke run means: wrong answers (or answers the server refused, such
as INVALID_ARGUMENT) are a verdict on the model and count against
``minAccuracy``; a golden set that is missing or unusable fails the
candidate (it cannot be judged as configured); but a run in which any golden
example got no answer at all (no ready pod, gRPC UNAVAILABLE or
DEADLINE_EXCEEDED, the run's deadline) is *inconclusive*: the engine runs it
again on a later pass and fails the candidate only after
``EngineSettings.smoke_attempts`` (3) such runs in a row.  An analysis
without data is inconclusive.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping

from modelrelease.analysis import AnalysisContext, PrometheusProvider, evaluate, promql_duration
from modelrelease.analysis.provider import MetricProvider
from modelrelease.api.spec import ModelReleaseSpec
from modelrelease.api.status import MetricResult
from modelrelease.engine.actions import RunAnalysis, RunSmoke
from modelrelease.engine.clock import parse_time
from modelrelease.engine.observations import AnalysisResult, SmokeResult
from modelrelease.kube.client import Kube
from modelrelease.observe import VersionPods
from modelrelease.policy import PrometheusAllowList
from modelrelease.serving import GoldenSet, GoldenSetError, run_smoke

SMOKE_TIMEOUT = 30.0


async def smoke_test(
    kube: Kube, namespace: str, spec: ModelReleaseSpec, request: RunSmoke, pods: VersionPods | None
) -> SmokeResult:
    """Predict the golden set on one ready candidate pod, never through a Service (no user sees the answers)."""
    version = request.version
    if pods is None or not pods.ready_addresses:
        return SmokeResult(version, 0.0, 0, inconclusive=f"no ready pod of v{version} to run the golden set on")
    data = await kube.read_config_map(namespace, request.golden_set)
    if data is None:
        return SmokeResult(version, 0.0, 0, error=f"golden set ConfigMap {namespace}/{request.golden_set} not found")
    try:
        golden = GoldenSet.from_configmap_data(data)
    except GoldenSetError as unusable:
        return SmokeResult(version, 0.0, 0, error=f"golden set ConfigMap {request.golden_set}: {unusable}")
    address = pods.ready_addresses[0]
    result = await run_smoke(address, spec.model.name, version, golden, timeout=SMOKE_TIMEOUT)
    if result.unanswered:
        why = f"{result.unanswered}/{result.total} golden examples got no answer from {address}: {result.first_error}"
        return SmokeResult(version, result.accuracy, result.total, inconclusive=why)
    refused = None
    if result.total and result.errors == result.total:
        refused = f"the server refused every golden example: {result.first_error}"
    return SmokeResult(version, result.accuracy, result.total, error=refused)


PROVIDERS_KEPT = 16
"""Prometheus clients kept (by address, least recently used evicted): releases may name their own servers."""


class Analyzer:
    """Runs analysis checks, one Prometheus client per address (connection pools are reused).

    At most ``PROVIDERS_KEPT`` clients are kept; the one used least recently
    is closed and dropped when another address is needed, so addresses that
    releases stopped naming do not pile up connection pools.

    A release's own address is used only when ``allowed`` lists it (the
    operator's ``--prometheus-address`` and ``--allowed-prometheus-address``):
    reconcile refuses such a release before it gets here, and this second
    check makes sure no query is ever sent to an address the operator's
    admins did not list.
    """

    def __init__(
        self,
        default_address: str | None,
        allowed: PrometheusAllowList | None = None,
        providers: Mapping[str, MetricProvider] | None = None,
    ) -> None:
        """``providers`` stands in for Prometheus at the addresses it names (``modelrelease simulate``'s series)."""
        self.default_address = default_address
        self.allowed = allowed if allowed is not None else PrometheusAllowList.of(default_address)
        self._given: dict[str, MetricProvider] = dict(providers or {})
        self._providers: OrderedDict[str, PrometheusProvider] = OrderedDict()

    def address_for(self, spec: ModelReleaseSpec) -> str | None:
        configured = spec.analysis.prometheus.address
        return str(configured) if configured else self.default_address

    async def check(
        self,
        namespace: str,
        release: str,
        spec: ModelReleaseSpec,
        request: RunAnalysis,
        on_result: Callable[[MetricResult], None] = lambda _: None,
    ) -> AnalysisResult:
        address = self.address_for(spec)
        metrics = spec.analysis.metrics
        if address is None:
            missing = (
                "no Prometheus address: set spec.analysis.prometheus.address or the operator's --prometheus-address"
            )
            results = [MetricResult(name=m.name, verdict="inconclusive", message=missing) for m in metrics]
        elif address != self.default_address and not self.allowed.allows(address):
            refused = f"query not sent: {address} is not an allowed Prometheus address (--allowed-prometheus-address)"
            results = [MetricResult(name=m.name, verdict="inconclusive", message=refused) for m in metrics]
        else:
            provider = self._given.get(address) or self._provider(address)
            context = AnalysisContext(
                model=spec.model.name,
                namespace=namespace,
                release=release,
                interval=promql_duration(request.interval),
                candidate_version=request.candidate_version,
                baseline_version=request.baseline_version,
                since=parse_time(request.since) if request.since else None,
                until=parse_time(request.at) if request.at else None,
                frozen_baseline=request.frozen_baseline,
            )
            results = await evaluate(metrics, context, provider, request.previous, spec.analysis.confidence)
        for result in results:
            on_result(result)
        return AnalysisResult(version=request.candidate_version, metrics=tuple(results))

    def _provider(self, address: str) -> PrometheusProvider:
        provider = self._providers.get(address)
        if provider is None:
            provider = self._providers[address] = PrometheusProvider(address)
            while len(self._providers) > PROVIDERS_KEPT:
                _, evicted = self._providers.popitem(last=False)
                evicted.close()
        self._providers.move_to_end(address)
        return provider

    def cached_addresses(self) -> list[str]:
        """The addresses whose clients are kept, least recently used first."""
        return list(self._providers)
