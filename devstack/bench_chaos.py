"""``make bench-chaos`` (``python -m devstack chaos``): many chaos trials, their violations, and what each fault cost.

Runs ``--trials`` trials of every fault (devstack.chaos_trials.FAULTS) plus
as many no-fault baselines, one at a time on one private devstack, the
model alternating between good (v2) and bad (v3) from trial to trial.  For
each fault it prints the trials run, the invariant violations (target 0,
by invariant, with the first piece of evidence) and the median rollout time
per model next to the baseline's: the time the fault added.  The same
table goes to the "Chaos" section of docs/benchmarks.md (``--no-write``
leaves it alone).

One at a time, not in parallel as in ``make test``: the time a fault adds is
only comparable with a baseline measured on the same, otherwise idle, devstack.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from devstack.benchdoc import DOCS, write_section
from devstack.chaos_trials import FAULTS, MODELS, TrialResult, private_devstack, run_trial


@dataclass(frozen=True)
class Failed:
    """A trial that could not run at all (its setup failed): counted, never silently dropped."""

    fault: str
    model: str
    seed: int
    error: str

    def summary(self) -> str:
        return f"{self.fault}/{self.model} seed {self.seed}: could not run: {self.error}"


Outcome = TrialResult | Failed


def plan(trials: int, seed: int, faults: list[str]) -> list[tuple[str, str, int]]:
    """``trials`` rounds over ``faults``; the model alternates by round and fault, so each fault sees both."""
    order = list(FAULTS)
    return [
        (name, "good" if (index + order.index(name)) % 2 == 0 else "bad", seed + 1000 * index + order.index(name))
        for index in range(trials)
        for name in faults
    ]


def run(
    trials: int, seed: int, faults: list[str], report: Callable[[Outcome], None], keep: bool = False
) -> list[Outcome]:
    outcomes: list[Outcome] = []
    with private_devstack(keep=keep) as env:
        if keep:
            print(f"bench-chaos: keeping the devstack's logs and the operators' in {env.state.root}", flush=True)
        for fault, model, trial_seed in plan(trials, seed, faults):
            outcome: Outcome
            try:
                outcome = run_trial(env, fault, model, trial_seed)
            except Exception as error:  # one broken trial must not hide the others' numbers
                outcome = Failed(fault, model, trial_seed, f"{type(error).__name__}: {error}")
            report(outcome)
            outcomes.append(outcome)
    return outcomes


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _spread(results: list[TrialResult], model: str) -> str:
    times = [r.seconds for r in results if r.fault == "none" and r.model == model and r.seconds is not None]
    return f"{min(times):.1f}-{max(times):.1f}" if times else "-"


def table(outcomes: list[Outcome]) -> str:
    """Markdown: per fault, trials, violations, median rollout seconds per model and what the fault added."""
    results = [o for o in outcomes if isinstance(o, TrialResult)]
    baseline = {
        model: _median([r.seconds for r in results if r.fault == "none" and r.model == model and r.seconds])
        for model in MODELS
    }
    lines = [
        "| fault | trials | violations (by invariant) | good v2: median s (added) | bad v3: median s (added) "
        "| fault missed the rollout | did not end / could not run |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for name, fault in FAULTS.items():
        mine = [o for o in outcomes if o.fault == name]
        if not mine:
            continue
        ran = [o for o in mine if isinstance(o, TrialResult)]
        cells = []
        for model in MODELS:
            median = _median([r.seconds for r in ran if r.model == model and r.seconds is not None])
            base = baseline[model]
            if median is None:
                cells.append("-")
            elif name == "none" or base is None:
                cells.append(f"{median:.1f}")
            else:
                cells.append(f"{median:.1f} ({median - base:+.1f})")
        kinds = Counter(v.invariant for r in ran for v in r.violations)
        violations = f"{sum(kinds.values())}" + (
            " (" + ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items())) + ")" if kinds else ""
        )
        unfinished = sum(1 for r in ran if r.seconds is None)
        missed = sum(1 for r in ran if not r.notes.get("landed"))
        lines.append(
            f"| {fault.description} | {len(mine)} | {violations} | {cells[0]} | {cells[1]} "
            f"| {missed} | {unfinished} / {len(mine) - len(ran)} |"
        )
    return "\n".join(lines)


def evidence(outcomes: list[Outcome]) -> list[str]:
    """The first violation of each (fault, invariant), and every trial that could not run."""
    seen: set[tuple[str, str]] = set()
    found = []
    for outcome in outcomes:
        if isinstance(outcome, Failed):
            found.append(f"- {outcome.summary()}")
            continue
        for violation in outcome.violations:
            key = (outcome.fault, violation.invariant)
            if key in seen:
                continue
            seen.add(key)
            found.append(f"- {outcome.fault}/{outcome.model} (seed {outcome.seed}): {violation}")
    return found


def markdown(outcomes: list[Outcome], trials: int, seed: int, seconds: float, load: float | None = None) -> str:
    ran = [o for o in outcomes if isinstance(o, TrialResult)]
    violations = sum(len(r.violations) for r in ran)
    load = os.getloadavg()[0] if load is None else load
    lines = [
        "## Chaos",
        "",
        f"Summary (computed by the run): {len(outcomes)} trials, {violations} invariant violations "
        f"in {sum(1 for r in ran if r.violations)} trials, "
        f"{sum(1 for r in ran if r.seconds is None)} rollouts that did not end, "
        f"{len(outcomes) - len(ran)} trials that could not run (target: 0 of each); "
        f"{sum(1 for r in ran if not r.notes.get('landed'))} trials whose fault missed the rollout (it ended first).",
        "",
        f"`make bench-chaos` (`python -m devstack chaos --trials {trials} --seed {seed}`; devstack.bench_chaos, and "
        "devstack.chaos for the invariants): each trial rolls a release from v1 to v2 (good, must end Succeeded) "
        "or v3 (bad, must end RolledBack) on a private devstack, stages smoke / canary 50% 4 s / full, analysis "
        "every 2 s, while the fault is injected, timed on the release's observed status changes. "
        f"{seconds / 60:.0f} min on {platform.processor() or platform.machine()}, {os.cpu_count()} cores "
        f"(shared; load average {load:.1f} at the end), Python {platform.python_version()}.",
        "",
        "Rollout seconds: from `spec.model.version` set to the verdict seen, median per model; in brackets what "
        f"the fault added to the no-fault baseline's median. The baselines ranged {_spread(ran, 'good')} s (good) "
        f"and {_spread(ran, 'bad')} s (bad) in this run: an added time inside that spread is noise of the shared "
        "machine, not the fault.",
        "",
        table(outcomes),
        "",
    ]
    found = evidence(outcomes)
    if found:
        lines += ["First evidence per fault and invariant:", "", *found, ""]
    return "\n".join(lines)


def main(
    trials: int = 3, seed: int = 20260101, faults: list[str] | None = None, write: bool = True, keep: bool = False
) -> int:
    """Run the benchmark, print each trial and the table; exit status 1 if any invariant broke."""
    chosen = list(faults or FAULTS)
    unknown = sorted(set(chosen) - set(FAULTS))
    if unknown:
        raise ValueError(f"--faults: unknown {unknown}; known: {', '.join(FAULTS)}")
    if trials < 1:
        raise ValueError(f"--trials must be at least 1, not {trials}")
    if "none" not in chosen:
        chosen.insert(0, "none")
    started = time.monotonic()
    outcomes = run(trials, seed, chosen, lambda o: print(o.summary(), flush=True), keep=keep)
    text = markdown(outcomes, trials, seed, time.monotonic() - started)
    print()
    print(text)
    if write:
        write_section(text)
        print(f"bench-chaos: wrote the Chaos section of {DOCS}")
    broken = any(isinstance(o, Failed) or o.violations or o.seconds is None for o in outcomes)
    return 1 if broken else 0
