"""The typer application: ``run`` (the operator) and the commands people use on releases.

``get``, ``status``, ``watch``: read releases; ``approve``, ``promote``,
``abort``, ``retry``, ``pause``, ``resume``: write request annotations;
``lint`` and ``simulate``: work offline on manifests; ``version`` and
``completion``.  The same commands run as ``kubectl modelrelease ...``.

Why the heavy imports are inside the commands: ``modelrelease --help`` and
the kubectl plugin should answer at once, without loading kopf and the
clients.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(
    name="modelrelease",
    help="Stage TensorFlow Serving model rollouts on Kubernetes, judged from Prometheus.",
    no_args_is_help=True,
    add_completion=False,  # the ``completion`` command prints the script instead (no hidden flags)
    # Plain click help: rich's table cuts long flag names short on an 80-column terminal.
    rich_markup_mode=None,
)


class LogFormatChoice(StrEnum):
    text = "text"
    json = "json"


@app.callback()
def _root() -> None:
    """modelrelease: stage TensorFlow Serving model rollouts on Kubernetes."""


@app.command()
def run(
    namespace: Annotated[
        list[str] | None,
        typer.Option(
            "--namespace",
            "-n",
            help="Namespace to watch, or a glob (watched cluster-wide, then filtered); repeat for several; !glob excludes. Default: every namespace.",
        ),
    ] = None,
    metrics_port: Annotated[int, typer.Option(help="Port of /metrics and /healthz.")] = 8080,
    metrics_host: Annotated[
        str | None, typer.Option(help="Address /metrics listens on; default $POD_IP, else 127.0.0.1.")
    ] = None,
    log_format: Annotated[LogFormatChoice, typer.Option(help="text or json (one object per line).")] = (
        LogFormatChoice.text
    ),
    prometheus_address: Annotated[
        str | None,
        typer.Option(help="Prometheus for releases that do not set spec.analysis.prometheus.address."),
    ] = None,
    kubeconfig: Annotated[
        Path | None, typer.Option(help="Kubeconfig file; default: in-cluster config, else $KUBECONFIG or ~/.kube.")
    ] = None,
    lease_namespace: Annotated[
        str | None, typer.Option(help="Namespace of the leader Lease; default $POD_NAMESPACE, else default.")
    ] = None,
    lease_name: Annotated[str, typer.Option(help="Name of the leader Lease.")] = "modelrelease-operator",
    identity: Annotated[
        str | None, typer.Option(help="This replica's name in the Lease; default $POD_NAME, else host-pid.")
    ] = None,
    load_timeout: Annotated[
        str, typer.Option(help="How long a candidate's model may take to become AVAILABLE before it is rolled back.")
    ] = "10m",
    lease_duration: Annotated[
        float, typer.Option(min=2.0, help="Seconds without renewal before another replica may take over.")
    ] = 15.0,
    allowed_prometheus_address: Annotated[
        list[str] | None,
        typer.Option(
            help="A Prometheus a release may name in spec.analysis.prometheus.address (exact URL; repeat for "
            "several). --prometheus-address is always allowed; default: nothing else.",
        ),
    ] = None,
    allowed_webhook_address: Annotated[
        list[str] | None,
        typer.Option(
            help="A lifecycle webhook URL a release may name in spec.webhooks (exact URL; repeat for several). "
            "Default: none.",
        ),
    ] = None,
    notify_webhook: Annotated[
        list[str] | None,
        typer.Option(
            help="Post every release's stage changes, approval waits, promotions and rollbacks here: URL (a generic "
            "JSON body) or slack=URL (Slack's incoming-webhook JSON); repeat for several. Default: none.",
        ),
    ] = None,
    allowed_image: Annotated[
        list[str] | None,
        typer.Option(
            help="Glob a release's images must match, e.g. 'tensorflow/serving:*' (repeat for several). "
            "Default: any image.",
        ),
    ] = None,
    allowed_service_account: Annotated[
        list[str] | None,
        typer.Option(
            help="ServiceAccount a release's pods may run as besides the namespace's 'default' (the one pods "
            "get when they name none); repeat for several.",
        ),
    ] = None,
    allow_privileged_pods: Annotated[
        bool,
        typer.Option(
            "--allow-privileged-pods",
            help="Let releases set privileged pod fields (hostNetwork/PID/IPC, hostPath, privileged, added "
            "capabilities...). Default: refused.",
        ),
    ] = False,
) -> None:
    """Run the operator until SIGINT or SIGTERM."""
    import os

    from modelrelease import logs
    from modelrelease.api.duration import parse_duration
    from modelrelease.depth import allow_deepest_objects
    from modelrelease.notify import parse_target
    from modelrelease.runner import RunConfig, default_identity
    from modelrelease.runner import run as run_operator

    for target in notify_webhook or ():
        try:
            parse_target(target)
        except ValueError as error:
            raise typer.BadParameter(str(error), param_hint="--notify-webhook") from error
    logs.configure(log_format.value)
    allow_deepest_objects()
    settings = RunConfig(
        namespaces=tuple(namespace or ()),
        metrics_port=metrics_port,
        metrics_host=metrics_host or os.environ.get("POD_IP") or "127.0.0.1",
        prometheus_address=prometheus_address,
        kubeconfig=kubeconfig,
        lease_namespace=lease_namespace or os.environ.get("POD_NAMESPACE") or "default",
        lease_name=lease_name,
        identity=identity or default_identity(),
        lease_duration=lease_duration,
        load_timeout=parse_duration(load_timeout),
        allowed_prometheus_addresses=tuple(allowed_prometheus_address or ()),
        allowed_webhook_addresses=tuple(allowed_webhook_address or ()),
        notify_webhooks=tuple(notify_webhook or ()),
        allowed_images=tuple(allowed_image or ()),
        allowed_service_accounts=tuple(allowed_service_account or ()),
        allow_privileged_pods=allow_privileged_pods,
    )
    asyncio.run(run_operator(settings))


# --- Commands on releases -------------------------------------------------------------------------------------

Kubeconfig = Annotated[
    Path | None, typer.Option("--kubeconfig", help="Kubeconfig file; default $KUBECONFIG or ~/.kube.")
]
Context = Annotated[str | None, typer.Option("--context", help="Kubeconfig context; default: the current one.")]
Namespace = Annotated[
    str | None, typer.Option("--namespace", "-n", help="Namespace; default: the context's, else default.")
]


def _complete_release(ctx: typer.Context, incomplete: str) -> list[str]:
    """Release names for shell completion, from the cluster the command line points at (silent on any error)."""
    try:
        from modelrelease.cli.cluster import Cluster

        params = ctx.params
        cluster = Cluster(params.get("kubeconfig"), params.get("context"))
        namespace = params.get("namespace") or cluster.default_namespace
        names = [r["metadata"]["name"] for r in cluster.list_releases(namespace)]
    except Exception:  # completion must never print a traceback into the user's shell
        return []
    return [name for name in names if name.startswith(incomplete)]


ReleaseName = Annotated[str, typer.Argument(help="The ModelRelease.", autocompletion=_complete_release)]


class Output(StrEnum):
    table = "table"
    json = "json"
    yaml = "yaml"


OutputOption = Annotated[Output, typer.Option("--output", "-o", help="table (default), json or yaml.")]


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _connect(kubeconfig: Path | None, context: str | None) -> Any:
    from modelrelease.cli.cluster import CliError, Cluster

    try:
        return Cluster(kubeconfig, context)
    except CliError as error:
        raise _fail(str(error)) from error


def _now() -> datetime:
    return datetime.now(UTC)


def _emit_data(data: Any, output: Output) -> None:
    from modelrelease.cli.render import OutputFormat, dump

    sys.stdout.write(dump(data, OutputFormat(output.value)))


@app.command()
def get(
    all_namespaces: Annotated[
        bool, typer.Option("--all-namespaces", "-A", help="Releases of every namespace.")
    ] = False,
    namespace: Namespace = None,
    output: OutputOption = Output.table,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
) -> None:
    """List releases: phase, stable and candidate versions, stage, weight desired/actual, age."""
    from modelrelease.cli.cluster import CliError
    from modelrelease.cli.render import Table, print_blocks
    from modelrelease.cli.view import release_row

    cluster = _connect(kubeconfig, context)
    where = None if all_namespaces else (namespace or cluster.default_namespace)
    try:
        releases = cluster.list_releases(where)
    except CliError as error:
        raise _fail(str(error)) from error
    now = _now()
    rows = [
        release_row(r, now)
        for r in sorted(releases, key=lambda r: (r["metadata"].get("namespace", ""), r["metadata"]["name"]))
    ]
    if output != Output.table:
        _emit_data({"items": rows}, output)
        return
    if not rows:
        typer.echo(f"No modelreleases found{'' if where is None else f' in namespace {where}'}.", err=True)
        return
    columns = ["name", "phase", "stable", "candidate", "stage", "weight", "age"]
    if where is None:
        columns.insert(0, "namespace")
    table = Table(
        "", [c.upper() for c in columns], [["" if r[c] is None else str(r[c]) for c in columns] for r in rows]
    )
    print_blocks([table])


@app.command()
def status(
    name: ReleaseName,
    namespace: Namespace = None,
    output: OutputOption = Output.table,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
) -> None:
    """Everything about one rollout: versions and pods, the stage, weights, metrics, history and events."""
    from modelrelease.cli.cluster import CliError
    from modelrelease.cli.render import print_blocks, status_blocks, wants_rich
    from modelrelease.cli.view import status_data

    cluster = _connect(kubeconfig, context)
    try:
        snapshot = cluster.snapshot(namespace or cluster.default_namespace, name)
    except CliError as error:
        raise _fail(str(error)) from error
    data = status_data(snapshot, _now())
    if output != Output.table:
        _emit_data(data.as_dict(), output)
        return
    print_blocks(status_blocks(data, fancy=wants_rich()))


@app.command()
def watch(
    name: ReleaseName,
    namespace: Namespace = None,
    timeout: Annotated[
        str | None, typer.Option(help="Give up after this long (e.g. 30m) with exit code 2; default: wait.")
    ] = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
) -> None:
    """The status screen, live, until the rollout ends: exit 0 Succeeded, 1 RolledBack or Failed, 2 timed out."""
    from modelrelease.api.duration import parse_duration
    from modelrelease.cli.cluster import CliError
    from modelrelease.cli.watching import watch as watch_release

    seconds = None
    if timeout is not None:
        try:
            seconds = parse_duration(timeout).total_seconds()
        except ValueError as error:
            raise _fail(f"--timeout: {error}", 2) from error
    cluster = _connect(kubeconfig, context)
    try:
        code = watch_release(cluster, namespace or cluster.default_namespace, name, sys.stdout, seconds)
    except CliError as error:
        raise _fail(str(error)) from error
    except KeyboardInterrupt:
        code = 130
    raise typer.Exit(code)


def _request(
    kind: str, name: str, namespace: str | None, kubeconfig: Path | None, context: str | None, stage: str | None = None
) -> None:
    from modelrelease.api.annotations import REQUEST_KINDS, request_annotation
    from modelrelease.cli.cluster import CliError
    from modelrelease.cli.control import annotation_value, refusal

    request = next(k for k in REQUEST_KINDS if k == kind)
    cluster = _connect(kubeconfig, context)
    where = namespace or cluster.default_namespace
    try:
        release = cluster.get_release(where, name)
        why_not = refusal(request, release, stage)
        if why_not is not None:
            raise _fail(f"{kind} refused for {where}/{name}: {why_not}")
        key = request_annotation(request)
        value = annotation_value(request, release, stage, _now())
        cluster.annotate(where, name, key, value)
    except CliError as error:
        raise _fail(str(error)) from error
    typer.echo(f"{kind} requested for {where}/{name} ({key}={value}); the operator acts on its next pass")


@app.command()
def approve(
    name: ReleaseName,
    stage: Annotated[str | None, typer.Argument(help="The stage to approve; default: the current one.")] = None,
    namespace: Namespace = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
) -> None:
    """Let the current stage's approval gate go on (modelrelease.io/approve: <stage>)."""
    _request("approve", name, namespace, kubeconfig, context, stage)


@app.command()
def promote(
    name: ReleaseName, namespace: Namespace = None, kubeconfig: Kubeconfig = None, context: Context = None
) -> None:
    """Promote the candidate now, skipping the remaining stages (modelrelease.io/promote)."""
    _request("promote", name, namespace, kubeconfig, context)


@app.command()
def abort(
    name: ReleaseName, namespace: Namespace = None, kubeconfig: Kubeconfig = None, context: Context = None
) -> None:
    """Roll the candidate back now (modelrelease.io/abort)."""
    _request("abort", name, namespace, kubeconfig, context)


@app.command()
def retry(
    name: ReleaseName, namespace: Namespace = None, kubeconfig: Kubeconfig = None, context: Context = None
) -> None:
    """Try a rolled-back (or failed) version again from its first stage (modelrelease.io/retry)."""
    _request("retry", name, namespace, kubeconfig, context)


@app.command()
def pause(
    name: ReleaseName, namespace: Namespace = None, kubeconfig: Kubeconfig = None, context: Context = None
) -> None:
    """Freeze the rollout without editing spec (modelrelease.io/pause); a failure still rolls back."""
    _request("pause", name, namespace, kubeconfig, context)


@app.command()
def resume(
    name: ReleaseName, namespace: Namespace = None, kubeconfig: Kubeconfig = None, context: Context = None
) -> None:
    """Lift a pause request (modelrelease.io/resume); spec.paused, if set, stays in force."""
    _request("resume", name, namespace, kubeconfig, context)


# --- Offline commands -----------------------------------------------------------------------------------------


@app.command()
def lint(
    files: Annotated[list[Path], typer.Argument(help="Manifest files (YAML, several documents each); - reads stdin.")],
    output: OutputOption = Output.table,
) -> None:
    """Validate ModelRelease manifests offline, as the API server would; exit 1 on any problem."""
    from modelrelease.cli.lint import LintResult, lint_text

    results: list[LintResult] = []
    for path in files:
        name = str(path)
        if name == "-":
            results.append(lint_text(sys.stdin.read(), "<stdin>"))
            continue
        try:
            text = path.read_text()
        except OSError as error:
            results.append(LintResult(name, problems=[f"{name}: cannot read: {error.strerror or error}"]))
            continue
        results.append(lint_text(text, name))
    problems = [line for result in results for line in result.problems]
    if output != Output.table:
        _emit_data([{"file": r.source, "releases": r.releases, "problems": r.problems} for r in results], output)
    else:
        for line in problems:
            typer.echo(line)
        releases = sum(r.releases for r in results)
        summary = f"{releases} ModelRelease(s) in {len(results)} file(s): {len(problems) or 'no'} problem(s)"
        typer.echo(summary, err=True)
    if problems:
        raise typer.Exit(1)


@app.command()
def version(output: OutputOption = Output.table) -> None:
    """The CLI's version and the API it speaks."""
    from modelrelease import GROUP, KIND, VERSION, __version__

    data = {"version": __version__, "api": f"{GROUP}/{VERSION}", "kind": KIND}
    if output != Output.table:
        _emit_data(data, output)
        return
    typer.echo(f"modelrelease {__version__} ({KIND} {GROUP}/{VERSION})")


class Shell(StrEnum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"


@app.command()
def completion(shell: Annotated[Shell, typer.Argument(help="bash, zsh or fish.")]) -> None:
    """Print the shell completion script: e.g. `source <(modelrelease completion bash)`."""
    # Typer's own script (its completion protocol differs from plain click's); it calls back into
    # ``modelrelease`` with _MODELRELEASE_COMPLETE set, which typer answers before running any command.
    from typer._completion_shared import get_completion_script

    from modelrelease.cli import COMPLETE_VAR

    typer.echo(get_completion_script(prog_name="modelrelease", complete_var=COMPLETE_VAR, shell=shell.value))


@app.command()
def simulate(
    file: Annotated[Path, typer.Argument(help="The ModelRelease manifest; spec.model.version is the candidate.")],
    metrics: Annotated[
        Path | None, typer.Option("--metrics", help="CSV series: seconds,role,metric,numerator,denominator,value.")
    ] = None,
    synthetic: Annotated[bool, typer.Option("--synthetic", help="Draw the series instead of reading one.")] = False,
    candidate_rate: Annotated[
        list[str] | None,
        typer.Option(help="With --synthetic: METRIC=RATE for the candidate (a ratio's success rate, else the value)."),
    ] = None,
    stable_rate: Annotated[
        list[str] | None, typer.Option(help="With --synthetic: METRIC=RATE for the stable version.")
    ] = None,
    requests_per_second: Annotated[
        float, typer.Option(help="With --synthetic: requests per second per version.")
    ] = 5.0,
    duration: Annotated[str, typer.Option(help="With --synthetic: how long the series runs.")] = "1h",
    seed: Annotated[int, typer.Option(help="With --synthetic: random seed.")] = 1,
    stable: Annotated[int | None, typer.Option(help="The stable version; default: the candidate's minus one.")] = None,
    ready_after: Annotated[str, typer.Option(help="How long the candidate's pods take to be ready.")] = "5s",
    smoke_accuracy: Annotated[float, typer.Option(help="Accuracy the smoke test scores.")] = 1.0,
    approve: Annotated[bool, typer.Option("--approve", help="Approve approval stages as soon as they wait.")] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show every check (default: only failed ones).")
    ] = False,
    output: OutputOption = Output.table,
) -> None:
    """Replay a rollout with the real engine and judges on a metric series: when each stage starts, passes, pauses
    or rolls back, and why.  Exit 0 promoted, 1 rolled back, 2 undecided."""
    import yaml

    from modelrelease.api import InvalidRelease, parse_release
    from modelrelease.api.duration import parse_duration
    from modelrelease.cli.simulate import SeriesError, load_series, synthetic_series, write_story
    from modelrelease.cli.simulate import simulate as run_simulation

    if (metrics is None) == (not synthetic):
        raise _fail("give --metrics CSV or --synthetic (one of them)", 2)
    try:
        release = parse_release(yaml.safe_load(file.read_text()))
    except (OSError, yaml.YAMLError) as error:
        raise _fail(f"{file}: {error}") from error
    except InvalidRelease as invalid:
        raise _fail(f"{file}: " + "; ".join(invalid.problems)) from invalid
    spec = release.spec
    try:
        if metrics is not None:
            series = load_series(metrics)
        else:
            seconds = int(parse_duration(duration).total_seconds())
            series = synthetic_series(
                spec.analysis.metrics,
                _rates(candidate_rate),
                _rates(stable_rate),
                seconds,
                requests_per_second,
                seed,
            )
        result = run_simulation(
            spec,
            series,
            stable if stable is not None else max(1, spec.model.version - 1),
            ready_after=parse_duration(ready_after).total_seconds(),
            smoke_accuracy=smoke_accuracy,
            approve=approve,
            name=str(release.metadata.get("name", "release")),
        )
    except (OSError, SeriesError, ValueError) as error:
        raise _fail(str(error)) from error
    if output != Output.table:
        _emit_data(
            {
                "outcome": str(result.status.phase),
                "endedAfterSeconds": result.ended_at,
                "decisions": [{"outcome": o, "stage": s} for o, s in result.decisions],
                "happenings": [
                    {"seconds": h.seconds, "kind": h.kind, "reason": h.reason, "message": h.message}
                    for h in result.happenings
                ],
            },
            output,
        )
    else:
        write_story(result, sys.stdout, verbose)
    raise typer.Exit(result.exit_code)


def _rates(pairs: list[str] | None) -> dict[str, float]:
    rates: dict[str, float] = {}
    for pair in pairs or []:
        name, _, rate = pair.partition("=")
        try:
            rates[name] = float(rate)
        except ValueError as error:
            raise _fail(f"{pair!r}: expected METRIC=RATE", 2) from error
    return rates
