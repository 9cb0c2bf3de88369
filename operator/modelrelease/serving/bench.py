"""Benchmark: the cost of loading the TF Serving stubs the light way versus the ordinary way.

Why a benchmark and not a test: import time and memory depend on the machine
and its load; what a test can check (TensorFlow's package is never imported)
is in tests/unit/test_serving_stubs.py, and the numbers live here.

Each case runs in a fresh interpreter, ``--runs`` times; the median import
time and the resident set size after the import are printed.  The ordinary
case needs TensorFlow installed (the dev venv) and is skipped otherwise.

Usage: ``python -m modelrelease.serving.bench [--runs 3]``
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys

_MEASURE = """
import json, resource, time
started = time.perf_counter()
{statement}
elapsed = time.perf_counter() - started
rss_kib = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmRSS:"))
print(json.dumps({{"seconds": elapsed, "rss_mib": rss_kib / 1024,
                   "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                   "tensorflow": "tensorflow" in sys.modules}}))
"""

CASES: dict[str, str] = {
    "python + grpc + protobuf only": "import sys, grpc, google.protobuf.message",
    "light: modelrelease.serving.stubs": "import sys; import modelrelease.serving.stubs",
    "light: modelrelease.serving (client, golden, tensors)": "import sys; import modelrelease.serving",
    "ordinary: tensorflow_serving.apis": (
        "import sys\n"
        "from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc, "
        "predict_pb2, prediction_service_pb2_grpc"
    ),
}


def measure(statement: str, runs: int) -> dict[str, float | bool]:
    samples = []
    for _ in range(runs):
        completed = subprocess.run(
            [sys.executable, "-c", _MEASURE.format(statement=statement)],
            capture_output=True,
            text=True,
            check=True,
            env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"},
        )
        samples.append(json.loads(completed.stdout.strip().splitlines()[-1]))
    return {
        "seconds": statistics.median(s["seconds"] for s in samples),
        "rss_mib": statistics.median(s["rss_mib"] for s in samples),
        "peak_mib": max(s["peak_mib"] for s in samples),
        "tensorflow": any(s["tensorflow"] for s in samples),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    has_tensorflow = importlib.util.find_spec("tensorflow") is not None
    print(f"{'case':56} {'import s':>9} {'RSS MiB':>8} {'peak MiB':>9}  tensorflow imported")
    for name, statement in CASES.items():
        if name.startswith("ordinary") and not has_tensorflow:
            print(f"{name:56} skipped: TensorFlow is not installed")
            continue
        result = measure(statement, args.runs)
        print(
            f"{name:56} {result['seconds']:9.3f} {result['rss_mib']:8.1f} {result['peak_mib']:9.1f}  {result['tensorflow']}"
        )


if __name__ == "__main__":
    main()
