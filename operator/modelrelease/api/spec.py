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

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from modelrelease.api.cel import cel, literal, validations
from modelrelease.api.duration import Duration, DurationRule, Interval
from modelrelease.api.names import (
    HEADER_NAME_MAX,
    HEADER_NAME_PATTERN,
    BasePath,
    ClassLabel,
    DnsLabel,
    HoldAtName,
    HttpUrl,
    Image,
    ModelName,
    ObjectName,
)
from modelrelease.api.problems import problem
from modelrelease.api.templates import BUILTIN_TEMPLATES as BUILTIN_TEMPLATES
from modelrelease.api.templates import CLASS_TEMPLATES as CLASS_TEMPLATES
from modelrelease.api.templates import TEMPLATE_PLACEHOLDERS as TEMPLATE_PLACEHOLDERS
from modelrelease.api.templates import PromQL

INT64_MAX = 2**63 - 1


def _within_int64(value: int) -> int:
    if value > INT64_MAX:
        raise ValueError(f"is {value}: at most {INT64_MAX} (the API server's integers are 64-bit)")
    return value


# The API server refuses a larger integer by its type; the bound is checked
# here only, because a CRD ``maximum`` is stored as a float64, and 2**63 - 1
# rounds to 2**63, which the API server then reads as -2**63.
Int64 = Annotated[int, AfterValidator(_within_int64)]


class ApiModel(BaseModel):
    """Base for every API object: camelCase on the wire, unknown fields refused, JSON's types taken as they are.

    Strict, as the API server is: ``"3"`` is not an integer and ``"true"`` or
    ``1`` not a boolean (an integer still counts as a number).  Lax parsing
    would accept manifests that ``kubectl apply`` refuses.
    """

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", strict=True)


METADATA_MAX_ENTRIES = 8
METADATA_KEY_MAX = 63
METADATA_VALUE_MAX = 256
METADATA_KEY_PATTERN = r"^[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?$"
"""Lineage keys: letters, digits and ``-_./`` inside (``training-run``, ``registry.uri``, ``mlflow/run``)."""


def _check_metadata(metadata: dict[str, str]) -> dict[str, str]:
    """Sizes that keep status small: every decision in ``status.history`` carries the metadata."""
    for key in metadata:
        if len(key) > METADATA_KEY_MAX or not re.fullmatch(METADATA_KEY_PATTERN, key):
            raise problem(
                f"[{key[:40]!r}]",
                f"is not a metadata key: at most {METADATA_KEY_MAX} letters, digits, '-', '_', '.' or '/', "
                "starting and ending with a letter or digit",
            )
    return metadata


ModelMetadata = Annotated[
    dict[str, Annotated[str, Field(max_length=METADATA_VALUE_MAX)]], AfterValidator(_check_metadata)
]


class ModelSpec(ApiModel):
    """Which model, where its versions live, the version the user wants, and where that version came from."""

    name: ModelName = Field(description="TF Serving --model_name.")
    base_path: BasePath = Field(description="Directory holding one sub-directory per version (1/, 2/, ...).")
    version: Int64 = Field(ge=1, description="The version the user wants; changing it starts a rollout.")
    metadata: ModelMetadata = Field(
        default_factory=dict,
        max_length=METADATA_MAX_ENTRIES,
        description=(
            "Lineage of this version, free-form: training run, dataset snapshot, evaluation report, model registry "
            f"URI. Every decision in status.history carries it. At most {METADATA_MAX_ENTRIES} entries, keys of "
            f"{METADATA_KEY_MAX} and values of {METADATA_VALUE_MAX} characters, so status stays small."
        ),
        json_schema_extra=validations(
            cel(
                f"self.all(k, k.size() <= {METADATA_KEY_MAX} && k.matches({literal(METADATA_KEY_PATTERN)}))",
                f"metadata keys must be at most {METADATA_KEY_MAX} letters, digits, '-', '_', '.' or '/', "
                "starting and ending with a letter or digit",
            )
        ),
    )


# Flags the operator sets itself on every TF Serving container; a user copy
# would either be ignored or silently repoint the server, so it is refused.
MANAGED_FLAGS: tuple[str, ...] = (
    "model_name",
    "model_base_path",
    "model_config_file",
    "port",
    "rest_api_port",
    "monitoring_config_file",
)
# The flag ends at '=', at the end, or at a newline: Python's $ also matches
# before a final newline and RE2's does not, so the newline is spelled out.
MANAGED_FLAG_PATTERN = "^--?(" + "|".join(MANAGED_FLAGS) + r")([=\n]|$)"
_MANAGED_FLAGS_TEXT = ", ".join("--" + flag for flag in MANAGED_FLAGS)


def _check_args(args: list[str]) -> list[str]:
    for index, arg in enumerate(args):
        if re.search(MANAGED_FLAG_PATTERN, arg):
            raise problem(f"[{index}]", f"sets {arg.split('=')[0]}, which the operator manages ({_MANAGED_FLAGS_TEXT})")
    return args


ServingArgs = Annotated[list[Annotated[str, Field(max_length=1024)]], AfterValidator(_check_args)]


class ServingSpec(ApiModel):
    """How each version's TF Serving Deployment is built."""

    image: Image = Field(description="TF Serving image, e.g. tensorflow/serving:2.18.0.")
    replicas: int = Field(default=1, ge=1, le=10000, description="Capacity of the stable version.")
    resources: dict[str, Any] = Field(default_factory=dict, description="Container resources, passed through.")
    args: ServingArgs = Field(
        default_factory=list,
        max_length=64,
        description="Extra TF Serving flags appended to the operator's (not the ones it manages).",
        json_schema_extra=validations(
            cel(
                f"!self.exists(a, a.matches({literal(MANAGED_FLAG_PATTERN)}))",
                f"must not set the flags the operator manages: {_MANAGED_FLAGS_TEXT}",
            )
        ),
    )
    pod_template: dict[str, Any] = Field(
        default_factory=dict,
        description="Pod spec overrides merged into each version's pods: nodeSelector, tolerations, volumes...",
    )


class GatewayApiRouter(ApiModel):
    http_route: ObjectName = Field(description="Name of the HTTPRoute whose backend weights the operator manages.")


class IstioRouter(ApiModel):
    virtual_service: ObjectName = Field(description="Name of the VirtualService whose routes the operator manages.")


RouterName = Literal["replicas", "gatewayApi", "istio"]


class TrafficSpec(ApiModel):
    """How traffic reaches the versions; a router other than replicas needs its own block, and only it."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                'self.router != "gatewayApi" || has(self.gatewayApi)',
                "gatewayApi (with httpRoute) is required when router is gatewayApi",
                field_path=".gatewayApi",
                reason="FieldValueRequired",
            ),
            cel(
                'self.router != "istio" || has(self.istio)',
                "istio (with virtualService) is required when router is istio",
                field_path=".istio",
                reason="FieldValueRequired",
            ),
            cel(
                '!has(self.gatewayApi) || self.router == "gatewayApi"',
                "gatewayApi is only allowed when router is gatewayApi",
                field_path=".gatewayApi",
                reason="FieldValueForbidden",
            ),
            cel(
                '!has(self.istio) || self.router == "istio"',
                "istio is only allowed when router is istio",
                field_path=".istio",
                reason="FieldValueForbidden",
            ),
        )
    )

    router: RouterName = Field(default="replicas", description="How traffic is split between versions.")
    gateway_api: GatewayApiRouter | None = Field(default=None, description="Required when router is gatewayApi.")
    istio: IstioRouter | None = Field(default=None, description="Required when router is istio.")

    @model_validator(mode="after")
    def _router_block_matches_router(self) -> TrafficSpec:
        blocks = {"gatewayApi": self.gateway_api, "istio": self.istio}
        for router, block in blocks.items():
            if self.router == router and block is None:
                raise problem(router, f"is required when router is {router}")
            if self.router != router and block is not None:
                raise problem(router, f"is only allowed when router is {router} (router is {self.router})")
        return self


def _check_header_names(headers: dict[str, str]) -> dict[str, str]:
    for name in headers:
        if len(name) > HEADER_NAME_MAX or not re.fullmatch(HEADER_NAME_PATTERN, name):
            raise problem(f"[{name[:40]!r}]", "is not an HTTP header name: use an RFC 7230 token such as x-cohort")
    return headers


HeaderValues = Annotated[dict[str, Annotated[str, Field(max_length=1024)]], AfterValidator(_check_header_names)]


class HeaderMatch(ApiModel):
    """Requests whose headers all equal these values go to the candidate (an A/B cohort)."""

    headers: HeaderValues = Field(
        min_length=1,
        max_length=16,
        description="Header name to exact value.",
        json_schema_extra=validations(
            cel(
                f"self.all(k, k.size() <= {HEADER_NAME_MAX} && k.matches({literal(HEADER_NAME_PATTERN)}))",
                "header names must be HTTP header names (RFC 7230 tokens such as x-cohort)",
            )
        ),
    )


class GoldenSetRef(ApiModel):
    config_map: ObjectName = Field(description="ConfigMap holding the golden inputs and expected labels.")


class SmokeSpec(ApiModel):
    """Predict on a golden set before the candidate sees any user."""

    golden_set: GoldenSetRef | None = Field(
        default=None, description="Where the golden set lives; default ConfigMap <model name>-golden."
    )
    min_accuracy: float = Field(default=0.95, ge=0.0, le=1.0, description="Share of golden answers that must be right.")


STAGE_KINDS: tuple[str, ...] = ("smoke", "mirror", "weight")


class Stage(ApiModel):
    """One step of the rollout.

    A stage is a smoke test (``smoke``), a shadow (``mirror``: a copy of live
    traffic, responses discarded), or a traffic stage (``weight``, optionally
    restricted to a cohort by ``match``).
    """

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "(has(self.smoke) ? 1 : 0) + (has(self.mirror) ? 1 : 0) + (has(self.weight) ? 1 : 0) == 1",
                "a stage is exactly one kind: set exactly one of smoke, mirror or weight",
            ),
            cel(
                "!has(self.match) || has(self.weight)",
                "match is only allowed on a weight stage (an A/B cohort)",
                field_path=".match",
                reason="FieldValueForbidden",
            ),
        )
    )

    name: DnsLabel = Field(description="Unique within the release; used by holdAt and approve.")
    smoke: SmokeSpec | None = None
    mirror: int | None = Field(
        default=None, ge=1, le=100, description="Percent of live traffic copied to the candidate."
    )
    weight: int | None = Field(default=None, ge=0, le=100, description="Percent of live traffic sent to the candidate.")
    match: list[HeaderMatch] | None = Field(
        default=None, min_length=1, max_length=8, description="Only requests matching one of these go to the candidate."
    )
    duration: Duration | None = Field(default=None, description="Minimum time in the stage, e.g. 10m.")
    min_checks: int | None = Field(
        default=None,
        ge=0,
        le=1000,
        description="Passing analysis checks needed to leave the stage; default analysis.minChecks.",
    )
    approval: bool = Field(default=False, description="Wait for modelrelease.io/approve: <stage> before leaving.")

    @property
    def kind(self) -> str:
        """smoke, mirror or weight (validation guarantees exactly one is set)."""
        return next(kind for kind in STAGE_KINDS if getattr(self, kind) is not None)

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> Stage:
        kinds = [kind for kind in STAGE_KINDS if getattr(self, kind) is not None]
        if len(kinds) != 1:
            found = " and ".join(kinds) if kinds else "none of them"
            raise problem("", f"sets {found}: a stage is exactly one kind: set exactly one of smoke, mirror or weight")
        if self.match is not None and self.weight is None:
            raise problem("match", f"is only allowed on a weight stage (an A/B cohort); this is a {kinds[0]} stage")
        return self


def _check_stages(stages: list[Stage]) -> list[Stage]:
    """Rules across stages; paths are relative to ``stages``."""
    first_index: dict[str, int] = {}
    for index, stage in enumerate(stages):
        if stage.name in first_index:
            raise problem(
                f"[{index}].name",
                f"repeats {stage.name!r} (stages[{first_index[stage.name]}]): stage names must be unique",
            )
        first_index[stage.name] = index
    order = {kind: rank for rank, kind in enumerate(STAGE_KINDS)}
    for index in range(1, len(stages)):
        before, after = stages[index - 1], stages[index]
        if order[after.kind] < order[before.kind]:
            raise problem(
                f"[{index}]",
                f"is a {after.kind} stage after a {before.kind} stage: stages run smoke first, then mirror, then weight",
            )
    previous: tuple[int, int] | None = None
    for index, stage in enumerate(stages):
        if stage.weight is None:
            continue
        if previous is not None and stage.weight < previous[1]:
            raise problem(
                f"[{index}].weight",
                f"is {stage.weight}, below {previous[1]} in stages[{previous[0]}]: "
                "weights must not decrease from one weight stage to the next",
            )
        previous = (index, stage.weight)
    return stages


StageList = Annotated[list[Stage], AfterValidator(_check_stages)]


class RatioQuery(ApiModel):
    """A metric given as counts, so candidate and stable can be compared on equal terms."""

    success: PromQL = Field(description="PromQL for the count of good events.")
    total: PromQL = Field(description="PromQL for the count of all events.")


class CompareToBaseline(ApiModel):
    """Judge the candidate against the stable version, not only against a fixed threshold."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel("has(self.maxDrop) || has(self.maxIncrease)", "set maxDrop, maxIncrease or both")
        )
    )

    max_drop: float | None = Field(default=None, ge=0.0, description="Largest allowed fall below the stable value.")
    max_increase: float | None = Field(default=None, ge=0.0, description="Largest allowed rise above the stable value.")

    @model_validator(mode="after")
    def _sets_a_bound(self) -> CompareToBaseline:
        if self.max_drop is None and self.max_increase is None:
            raise problem("", "sets no bound: set maxDrop, maxIncrease or both")
        return self


_CLASS_TEMPLATES_CEL = "[" + ", ".join(literal(name) for name in CLASS_TEMPLATES) + "]"
_CLASS_TEMPLATES_TEXT = ", ".join(CLASS_TEMPLATES)


class MetricSpec(ApiModel):
    """One signal judged at every analysis interval: exactly one of template, query, ratio."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "(has(self.template) ? 1 : 0) + (has(self.query) ? 1 : 0) + (has(self.ratio) ? 1 : 0) == 1",
                "a metric is exactly one kind: set exactly one of template, query or ratio",
            ),
            cel(
                "has(self.min) || has(self.max) || has(self.compareToBaseline)",
                "set at least one of min, max or compareToBaseline: a metric without a threshold can never fail",
            ),
            cel(
                "!has(self.min) || !has(self.max) || self.min <= self.max",
                "min must not be greater than max",
                field_path=".min",
            ),
            cel(
                f"!has(self.template) || !(self.template in {_CLASS_TEMPLATES_CEL}) || has(self.positiveClass)",
                f"positiveClass (the class label counted as positive) is required by the {_CLASS_TEMPLATES_TEXT} "
                "templates",
                field_path=".positiveClass",
                reason="FieldValueRequired",
            ),
            cel(
                f"!has(self.positiveClass) || (has(self.template) && self.template in {_CLASS_TEMPLATES_CEL})",
                f"positiveClass is only allowed with the {_CLASS_TEMPLATES_TEXT} templates",
                field_path=".positiveClass",
                reason="FieldValueForbidden",
            ),
        )
    )

    name: DnsLabel = Field(description="Unique within the release; shown in status and events.")
    template: str | None = Field(
        default=None,
        description="One of the built-in templates.",
        json_schema_extra={"enum": list(BUILTIN_TEMPLATES)},
    )
    query: PromQL | None = Field(default=None, description="PromQL returning one number.")
    ratio: RatioQuery | None = None
    min: float | None = Field(default=None, description="Fail when the candidate's value is below this.")
    max: float | None = Field(default=None, description="Fail when the candidate's value is above this.")
    compare_to_baseline: CompareToBaseline | None = None
    min_requests: Annotated[int, Field(ge=0), AfterValidator(_within_int64)] | None = Field(
        default=None,
        description=(
            "Below this many requests (pooled over the stage for pooled metrics, else in the window) the metric is "
            "inconclusive, not failed. The sequential judge also waits for enough requests to expect 10 events of "
            "the rarer outcome at the bound (to fail, 10 bad outcomes shown are enough)."
        ),
    )
    positive_class: ClassLabel | None = Field(
        default=None, description="Class label treated as positive by the precision, recall and f1 templates."
    )

    @field_validator("template")
    @classmethod
    def _template_is_builtin(cls, template: str | None) -> str | None:
        if template is not None and template not in BUILTIN_TEMPLATES:
            raise ValueError(f"{template!r} is not a built-in template: use one of {', '.join(BUILTIN_TEMPLATES)}")
        return template

    @model_validator(mode="after")
    def _kind_and_threshold(self) -> MetricSpec:
        kinds = [
            kind
            for kind, value in (("template", self.template), ("query", self.query), ("ratio", self.ratio))
            if value is not None
        ]
        if len(kinds) != 1:
            found = " and ".join(kinds) if kinds else "none of them"
            raise problem(
                "", f"sets {found}: a metric is exactly one kind: set exactly one of template, query or ratio"
            )
        if self.min is None and self.max is None and self.compare_to_baseline is None:
            raise problem(
                "", "has no threshold: set at least one of min, max or compareToBaseline (otherwise it can never fail)"
            )
        if self.min is not None and self.max is not None and self.min > self.max:
            raise problem("min", f"is {self.min}, greater than max {self.max}: min must not be greater than max")
        counts_a_class = self.template in CLASS_TEMPLATES
        if counts_a_class and self.positive_class is None:
            raise problem(
                "positiveClass",
                f"is required by the {self.template} template: name the class label counted as positive",
            )
        if not counts_a_class and self.positive_class is not None:
            raise problem("positiveClass", f"is only allowed with the {_CLASS_TEMPLATES_TEXT} templates")
        return self


def default_metrics() -> list[MetricSpec]:
    return [
        MetricSpec(name="error-rate", template="tfserving-error-rate", max=0.01),
        MetricSpec(name="latency-p99", template="tfserving-latency-p99", max=0.25),
    ]


def _check_metric_names(metrics: list[MetricSpec]) -> list[MetricSpec]:
    first_index: dict[str, int] = {}
    for index, metric in enumerate(metrics):
        if metric.name in first_index:
            raise problem(
                f"[{index}].name",
                f"repeats {metric.name!r} (metrics[{first_index[metric.name]}]): metric names must be unique",
            )
        first_index[metric.name] = index
    return metrics


MetricList = Annotated[list[MetricSpec], AfterValidator(_check_metric_names)]


class PrometheusSpec(ApiModel):
    """Where the metrics are queried."""

    address: HttpUrl | None = Field(
        default=None,
        description="Base URL of the Prometheus API; unset: the operator's --prometheus-address.",
    )


class AnalysisSpec(ApiModel):
    """How often each stage is judged, from which Prometheus, on which metrics, and how many failures end it."""

    interval: Interval = Field(default="30s", description="Time between checks, at least 1s.")
    failure_limit: int = Field(
        default=2,
        ge=1,
        le=1000,
        description=(
            "Failed checks of threshold-judged metrics (plain query, f1, mae, mse) in a stage before rollback. "
            "A metric judged by the sequential test (every proportion, latency, prediction-drift, auc) rolls back "
            "on its first fail: that fail is already evidence at the level spec.analysis.confidence sets."
        ),
    )
    inconclusive_limit: int = Field(
        default=10, ge=1, le=1000, description="Inconclusive checks in a row before the release pauses."
    )
    min_checks: int = Field(
        default=3, ge=0, le=1000, description="Passing checks a traffic stage needs before it completes."
    )
    confidence: float = Field(
        default=0.99,
        gt=0.5,
        lt=1.0,
        description=(
            "Chance that the sequential judge never fails a candidate within its bounds over a whole stage, however "
            "many checks it runs; 1 - confidence (alpha) is split equally over the bounds judged sequentially."
        ),
    )
    prometheus: PrometheusSpec = Field(default_factory=PrometheusSpec)
    metrics: MetricList = Field(
        default_factory=default_metrics,
        description="Signals judged at every interval, for the candidate and for the stable version.",
        max_length=32,
        json_schema_extra=validations(
            cel(
                "self.all(s, self.exists_one(t, t.name == s.name))",
                "metric names must be unique",
            )
        ),
    )


class RollbackSpec(ApiModel):
    """What happens when a stage fails, and how long the previous version stays warm after a promotion."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "!has(self.bakeTime) || !has(self.automatic) || self.automatic",
                "bakeTime needs automatic: true (a failed bake rolls back at once to the warm previous version)",
                field_path=".bakeTime",
                reason="FieldValueForbidden",
            )
        )
    )

    automatic: bool = Field(default=True, description="Roll back on failure; when false the release stops in Failed.")
    bake_time: Duration | None = Field(
        default=None,
        description=(
            "After a promotion, judge the new stable version this long (absolute bounds, and the previous version's "
            "counts pooled over the last judged stage) while the previous version stays warm at full capacity with "
            "no user traffic; a failed check moves all traffic back to it in one pass."
        ),
    )
    scale_down_delay: Duration | None = Field(
        default=None,
        description="Keep the previous version warm this long after a promotion (the bake time if that is longer).",
    )

    @model_validator(mode="after")
    def _bake_rolls_back(self) -> RollbackSpec:
        if self.bake_time is not None and not self.automatic:
            raise problem("bakeTime", "needs automatic: true (a failed bake rolls back at once to the warm version)")
        return self


WebhookTimeout = Annotated[str, DurationRule(minimum="100ms")]


class WebhookSpec(ApiModel):
    """One lifecycle webhook: an HTTP POST with a JSON body, retried with back-off."""

    url: HttpUrl = Field(description="Where the POST goes; the operator's --allowed-webhook-address must list it.")
    timeout: WebhookTimeout = Field(default="10s", description="Deadline of one attempt.")
    retries: int = Field(default=2, ge=0, le=10, description="Attempts after the first, with exponential back-off.")


class WebhooksSpec(ApiModel):
    """Lifecycle webhooks, in the spirit of Flagger's; a hanging one never blocks a rollback."""

    pre_rollout: WebhookSpec | None = Field(
        default=None, description="Before the candidate gets any traffic (once its pods are ready); failure rolls back."
    )
    confirm_promotion: WebhookSpec | None = Field(
        default=None, description="Before full (weight 100) or promotion: waits, as an approval does, until a 2xx."
    )
    post_rollout: WebhookSpec | None = Field(
        default=None, description="After a promotion (its bake passed) or a rollback; informational."
    )
    on_rollback: WebhookSpec | None = Field(default=None, description="On every automatic rollback: a page.")


NotificationEvent = Literal["RolloutStarted", "StageChanged", "AwaitingApproval", "Promoted", "RolledBack", "Failed"]
NotificationFormat = Literal["generic", "slack"]


class NotificationSpec(ApiModel):
    """A receiver told of the rollout's changes (``modelrelease.notify``); informational, never waited for."""

    url: HttpUrl = Field(description="Where the POST goes; the operator's --allowed-webhook-address must list it.")
    format: NotificationFormat = Field(
        default="generic",
        description="generic: a JSON object with release, namespace, event, stages, versions, reason and time; "
        "slack: a Slack incoming-webhook message.",
    )
    events: list[NotificationEvent] = Field(
        default_factory=list, max_length=6, description="The events sent; empty: all of them."
    )
    timeout: WebhookTimeout = Field(default="5s", description="Deadline of one attempt.")
    retries: int = Field(default=3, ge=0, le=10, description="Attempts after the first, with exponential back-off.")


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


_STAGE_RANK_CEL = "has(s.smoke) ? 0 : (has(s.mirror) ? 1 : 2)"
_ROUTERS_THAT_CAN = "use traffic.router gatewayApi or istio"
_REPLICAS_CANNOT_MIRROR = (
    f"is not possible with traffic.router replicas (the default), which cannot copy requests: {_ROUTERS_THAT_CAN}"
)
_REPLICAS_CANNOT_MATCH = (
    f"is not possible with traffic.router replicas (the default), which cannot look at headers: {_ROUTERS_THAT_CAN}"
)


class ModelReleaseSpec(ApiModel):
    """What to roll out, how to serve it, the stages it walks and the evidence that judges it."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                'self.holdAt == "" || self.stages.exists(s, s.name == self.holdAt)',
                "holdAt must be empty or the name of one of the stages",
                field_path=".holdAt",
                reason="FieldValueInvalid",
            ),
            cel(
                'self.traffic.router != "replicas" || self.stages.all(s, !has(s.mirror))',
                f"a mirror (shadow) stage {_REPLICAS_CANNOT_MIRROR}",
                field_path=".stages",
                reason="FieldValueForbidden",
            ),
            cel(
                'self.traffic.router != "replicas" || self.stages.all(s, !has(s.match))',
                f"a stage with match (an A/B cohort) {_REPLICAS_CANNOT_MATCH}",
                field_path=".stages",
                reason="FieldValueForbidden",
            ),
        )
    )

    model: ModelSpec
    serving: ServingSpec
    traffic: TrafficSpec = Field(default_factory=TrafficSpec)
    stages: StageList = Field(
        default_factory=default_stages,
        min_length=1,
        max_length=32,
        description="Run in order: smoke stages, then mirror stages, then weight stages.",
        json_schema_extra=validations(
            cel(
                "self.all(s, self.exists_one(t, t.name == s.name))",
                "stage names must be unique",
            ),
            cel(
                f"self.map(s, {_STAGE_RANK_CEL}).isSorted()",
                "stages run smoke first, then mirror, then weight stages",
            ),
            cel(
                "self.filter(s, has(s.weight)).map(s, s.weight).isSorted()",
                "weights must not decrease from one weight stage to the next",
            ),
        ),
    )
    analysis: AnalysisSpec = Field(default_factory=AnalysisSpec)
    rollback: RollbackSpec = Field(default_factory=RollbackSpec)
    webhooks: WebhooksSpec = Field(default_factory=WebhooksSpec)
    notifications: list[NotificationSpec] = Field(
        default_factory=list,
        max_length=8,
        description="Receivers posted to on stage changes, approval waits, promotions and rollbacks.",
    )
    hold_at: HoldAtName = Field(
        default="", description="Advance up to this stage, then wait until it changes (a Git gate)."
    )
    paused: bool = Field(default=False, description="Freeze progress; rollback on failure still happens.")
    revision_history_limit: int = Field(
        default=2, ge=0, le=100, description="Old versions kept scaled to zero for a fast re-rollout."
    )

    @model_validator(mode="after")
    def _hold_at_names_a_stage(self) -> ModelReleaseSpec:
        names = [stage.name for stage in self.stages]
        if self.hold_at and self.hold_at not in names:
            raise problem("holdAt", f"is {self.hold_at!r}, which is not a stage: use '' or one of {', '.join(names)}")
        return self

    @model_validator(mode="after")
    def _router_can_do_every_stage(self) -> ModelReleaseSpec:
        """A router refuses at admission what it cannot do: the replicas router neither mirrors nor matches."""
        if self.traffic.router != "replicas":
            return self
        for index, stage in enumerate(self.stages):
            if stage.mirror is not None:
                raise problem(f"stages[{index}].mirror", _REPLICAS_CANNOT_MIRROR)
            if stage.match is not None:
                raise problem(f"stages[{index}].match", _REPLICAS_CANNOT_MATCH)
        return self
