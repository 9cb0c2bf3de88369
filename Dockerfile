# syntax=docker/dockerfile:1
# The operator image: `modelrelease run` on Python 3.11, as a non-root user, without TensorFlow.
#
#   docker build -t ghcr.io/modelrelease/operator:0.1.0 .
#   docker push ghcr.io/modelrelease/operator:0.1.0
#
# The base is pinned by digest so a rebuild gets the same bytes; to move to a newer patch
# release, look the digest up (docker buildx imagetools inspect python:3.11-slim-bookworm)
# and change both FROM lines.  tests/unit/test_dockerfile.py checks what can be checked
# without a Docker engine.

FROM python:3.11-slim-bookworm@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91 AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY operator/ operator/
# tensorflow-serving-api declares TensorFlow as a dependency, but the operator only loads its
# protobuf stubs (modelrelease.serving): installed alone, --no-deps, it keeps ~600 MB of
# TensorFlow out of the image.  The operator's other dependencies come from pyproject.toml.
RUN python -m venv /opt/venv \
 && python -c 'import tomllib; deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]; print("\n".join(d for d in deps if not d.startswith("tensorflow-serving-api")))' > /tmp/requirements.txt \
 && /opt/venv/bin/pip install -c constraints.txt -r /tmp/requirements.txt \
 && /opt/venv/bin/pip install -c constraints.txt --no-deps tensorflow-serving-api \
 && /opt/venv/bin/pip install --no-deps . \
 && /opt/venv/bin/python -c 'import importlib.util; assert importlib.util.find_spec("tensorflow") is None' \
 && /opt/venv/bin/python -c 'import modelrelease.serving.stubs'

FROM python:3.11-slim-bookworm@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91
LABEL org.opencontainers.image.title="modelrelease-operator" \
      org.opencontainers.image.source="https://github.com/modelrelease/modelrelease-operator" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /opt/venv /opt/venv
# The chart runs it with a read-only root filesystem: no bytecode is written at run time.
ENV PATH=/opt/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# 65532: the "nonroot" user of distroless images; numeric, so runAsNonRoot can verify it.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["modelrelease", "run"]
