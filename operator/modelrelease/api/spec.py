"""The ModelRelease spec: what the user asks for.

These pydantic models are the single source of truth for the API: the CRD in
``crds/`` is generated from them (``make crds``), and the operator parses every
object it reads through them, so the API server and the operator agree on
what a valid release is.

Field names are snake_case in Python and camelCase on the wire (the
Kubernetes convention); models forbid unknown fields so a typo is an error,
not a silently ignored setting.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from modelrelease.api.duration import Duration


class ApiModel(BaseModel):
    """Base for every API object: camelCase on the wire, unknown fields refused."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class ModelSpec(ApiModel):
    """Which model, where its versions live, and the version the user wants."""

    name: str = Field(description="TF Serving --model_name.")
    base_path: str = Field(description="Directory holding one sub-directory per version (1/, 2/, ...).")
    version: int = Field(ge=1, description="The version the user wants; changing it starts a rollout.")


class ServingSpec(ApiModel):
    """How each version's TF Serving Deployment is built."""

    image: str = Field(description="TF Serving image, e.g. tensorflow/serving:2.18.0.")
    replicas: int = Field(default=1, ge=1, description="Capacity of the stable version.")
    resources: dict[str, Any] = Field(default_factory=dict, description="Container resources, passed through.")
    args: list[str] = Field(default_factory=list, description="Extra TF Serving flags appended to the operator's.")
    pod_template: dict[str, Any] = Field(
        default_factory=dict,
        description="Pod spec overrides merged into each version's pods: nodeSelector, tolerations, volumes...",
    )


class GatewayApiRouter(ApiModel):
    http_route: str = Field(description="Name of the HTTPRoute whose backend weights the operator manages.")


class IstioRouter(ApiModel):
    virtual_service: str = Field(description="Name of the VirtualService whose routes the operator manages.")


RouterName = Literal["replicas", "gatewayApi", "istio"]


class TrafficSpec(ApiModel):
    router: RouterName = Field(default="replicas", description="How traffic is split between versions.")
    gateway_api: GatewayApiRouter | None = Field(default=None, description="Required when router is gatewayApi.")
    istio: IstioRouter | None = Field(default=None, description="Required when router is istio.")


class HeaderMatch(ApiModel):
    """Requests whose headers all equal these values go to the candidate (an A/B cohort)."""

    headers: dict[str, str] = Field(description="Header name to exact value.")


class GoldenSetRef(ApiModel):
    config_map: str = Field(description="ConfigMap holding the golden inputs and expected labels.")


class SmokeSpec(ApiModel):
    """Predict on a golden set before the candidate sees any user."""

    golden_set: GoldenSetRef | None = Field(
        default=None, description="Where the golden set lives; default ConfigMap <model name>-golden."
    )
    min_accuracy: float = Field(default=0.95, ge=0.0, le=1.0, description="Share of golden answers that must be right.")


class Stage(ApiModel):
    """One step of the rollout.

    A stage is a smoke test (``smoke``), a shadow (``mirror``: a copy of live
    traffic, responses discarded), or a traffic stage (``weight``, optionally
    restricted to a cohort by ``match``).
    """

    name: str = Field(description="Unique within the release; used by holdAt and approve.")
    smoke: SmokeSpec | None = None
    mirror: int | None = Field(
        default=None, ge=0, le=100, description="Percent of live traffic copied to the candidate."
    )
    weight: int | None = Field(default=None, ge=0, le=100, description="Percent of live traffic sent to the candidate.")
    match: list[HeaderMatch] | None = Field(
        default=None, description="Only requests matching one of these go to the candidate."
    )
    duration: Duration | None = Field(default=None, description="Minimum time in the stage, e.g. 10m.")
    min_checks: int | None = Field(
        default=None, ge=0, description="Passing analysis checks needed to leave the stage; default analysis.minChecks."
    )
    approval: bool = Field(default=False, description="Wait for modelrelease.io/approve: <stage> before leaving.")


class RatioQuery(ApiModel):
    """A metric given as counts, so candidate and stable can be compared on equal terms."""

    success: str = Field(description="PromQL for the count of good events.")
    total: str = Field(description="PromQL for the count of all events.")


class CompareToBaseline(ApiModel):
    """Judge the candidate against the stable version, not only against a fixed threshold."""

    max_drop: float | None = Field(default=None, ge=0.0, description="Largest allowed fall below the stable value.")
    max_increase: float | None = Field(default=None, ge=0.0, description="Largest allowed rise above the stable value.")


BUILTIN_TEMPLATES: tuple[str, ...] = (
    "tfserving-error-rate",
    "tfserving-latency-p99",
    "accuracy",
    "precision",
    "recall",
    "f1",
    "mae",
    "feedback-positive-rate",
)

TEMPLATE_PLACEHOLDERS: tuple[str, ...] = ("model", "version", "namespace", "release", "interval")


class MetricSpec(ApiModel):
    """One signal judged at every analysis interval: exactly one of template, query, ratio."""

    name: str
    template: str | None = Field(default=None, description="One of the built-in templates.")
    query: str | None = Field(default=None, description="PromQL returning one number.")
    ratio: RatioQuery | None = None
    min: float | None = Field(default=None, description="Fail when the candidate's value is below this.")
    max: float | None = Field(default=None, description="Fail when the candidate's value is above this.")
    compare_to_baseline: CompareToBaseline | None = None
    min_requests: int | None = Field(
        default=None,
        ge=0,
        description="Below this many requests in the interval the check is inconclusive, not failed.",
    )
    positive_class: str | None = Field(
        default=None, description="Class label treated as positive by the precision, recall and f1 templates."
    )


def default_metrics() -> list[MetricSpec]:
    return [
        MetricSpec(name="error-rate", template="tfserving-error-rate", max=0.01),
        MetricSpec(name="latency-p99", template="tfserving-latency-p99", max=0.25),
    ]


class PrometheusSpec(ApiModel):
    address: str = Field(default="http://prometheus.monitoring:9090", description="Base URL of the Prometheus API.")


class AnalysisSpec(ApiModel):
    interval: Duration = Field(default="30s", description="Time between checks, at least 1s.")
    failure_limit: int = Field(default=2, ge=1, description="Failed checks in a stage before rollback.")
    inconclusive_limit: int = Field(
        default=10, ge=1, description="Inconclusive checks in a row before the release pauses."
    )
    min_checks: int = Field(default=3, ge=0, description="Passing checks a traffic stage needs before it completes.")
    prometheus: PrometheusSpec = Field(default_factory=PrometheusSpec)
    metrics: list[MetricSpec] = Field(default_factory=default_metrics)


class RollbackSpec(ApiModel):
    automatic: bool = Field(default=True, description="Roll back on failure; when false the release stops in Failed.")


def default_stages() -> list[Stage]:
    """smoke, canary 10, canary 50, full: the smallest rollout worth trusting.

    The smoke stage reads its golden set from the ConfigMap
    ``<model name>-golden`` unless the stage names another.
    """
    return [
        Stage(name="smoke", smoke=SmokeSpec()),
        Stage(name="canary-10", weight=10, duration="5m"),
        Stage(name="canary-50", weight=50, duration="5m"),
        Stage(name="full", weight=100),
    ]


class ModelReleaseSpec(ApiModel):
    model: ModelSpec
    serving: ServingSpec
    traffic: TrafficSpec = Field(default_factory=TrafficSpec)
    stages: list[Stage] = Field(default_factory=default_stages)
    analysis: AnalysisSpec = Field(default_factory=AnalysisSpec)
    rollback: RollbackSpec = Field(default_factory=RollbackSpec)
    hold_at: str = Field(default="", description="Advance up to this stage, then wait until it changes (a Git gate).")
    paused: bool = Field(default=False, description="Freeze progress; rollback on failure still happens.")
    revision_history_limit: int = Field(
        default=2, ge=0, description="Old versions kept scaled to zero for a fast re-rollout."
    )
