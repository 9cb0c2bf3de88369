"""What can be checked of the operator image without a Docker engine: pinned base, non-root user, entrypoint.

The chart and the devstack pod runner both depend on the image's contract
(its entrypoint is ``modelrelease run``, its user a numeric non-root uid), so
those are checked against each other too.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

from devstack.podrunner.images import OPERATOR_ENTRYPOINT

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = (REPO / "Dockerfile").read_text()


def instructions(name: str) -> list[str]:
    """Arguments of every instruction ``name`` (continuation lines joined)."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE)
    return [line.split(None, 1)[1] for line in joined.splitlines() if line.split(None, 1)[:1] == [name]]


def test_every_base_image_is_pinned_by_digest() -> None:
    bases = [from_.split()[0] for from_ in instructions("FROM")]
    assert bases
    for base in bases:
        assert re.fullmatch(r"[\w./-]+:[\w.-]+@sha256:[0-9a-f]{64}", base), f"{base} is not pinned by digest"


def test_the_base_python_is_one_the_package_supports() -> None:
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    minimum = tuple(int(part) for part in requires.removeprefix(">=").split("."))
    for from_ in instructions("FROM"):
        version = re.match(r"python:(\d+)\.(\d+)", from_)
        assert version and (int(version[1]), int(version[2])) >= minimum, from_


def test_the_image_runs_as_a_numeric_non_root_user_the_chart_expects() -> None:
    user = instructions("USER")[-1].strip()
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0, f"USER {user}: runAsNonRoot needs a numeric, non-zero uid"
    values = yaml.safe_load((REPO / "charts" / "modelrelease" / "values.yaml").read_text())
    assert values["podSecurityContext"]["runAsUser"] == int(uid)
    assert values["podSecurityContext"]["runAsGroup"] == int(gid or uid)


def test_the_entrypoint_is_modelrelease_run_as_the_pod_runner_stands_in_for_it() -> None:
    entrypoint = json.loads(instructions("ENTRYPOINT")[-1])
    assert entrypoint == ["modelrelease", *OPERATOR_ENTRYPOINT] == ["modelrelease", "run"]
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["modelrelease"] == "modelrelease.cli:main"


def test_tensorflow_serving_api_is_installed_without_its_dependencies() -> None:
    runs = " ".join(instructions("RUN"))
    assert re.search(r"pip install [^&]*--no-deps tensorflow-serving-api", runs)
    assert 'find_spec("tensorflow") is None' in runs, "the build does not check that TensorFlow stayed out"


def test_the_build_installs_every_other_dependency_of_the_package() -> None:
    snippet = re.search(r"python -c '(import tomllib;[^']*)'", DOCKERFILE)
    assert snippet, "the requirements step is gone"
    listed = subprocess.run(
        [sys.executable, "-c", snippet[1]], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert listed == [d for d in declared if not d.startswith("tensorflow-serving-api")]
    assert "kopf" in " ".join(listed)


def test_no_bytecode_is_written_on_the_read_only_root_filesystem() -> None:
    assert "PYTHONDONTWRITEBYTECODE=1" in " ".join(instructions("ENV"))
