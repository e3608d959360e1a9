# syntax=docker/dockerfile:1
# The Python NeuralForecast reference service (the side being migrated from),
# as the chart's profiles/python.yaml runs it. Build context: the repository
# root:
#   docker build -f deploy/docker/python.Dockerfile -t ghcr.io/neuro-divergent/neuralforecast-python:0.1.0 .
# python/requirements.lock is the service's runtime lock (torch with CUDA
# wheels: a large image), every file hash-checked; the package itself
# (python/pyproject.toml) is installed on top without dependencies, so the
# image runs exactly the locked versions and no test tools.
# Base image by digest, its tag beside it (docker-library/repo-info,
# repos/python/remote/3.11-slim-bookworm.md: Python 3.11.16 on Debian 12).
FROM python:3.11-slim-bookworm@sha256:0bee7276f83efd4a1ee05bbbf4281d95ed28e079220a9457f25a93e3f1e3c31b
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY python/requirements.lock /app/requirements.lock
RUN pip install --require-hashes -r /app/requirements.lock
# reference_service/openapi.yaml is a symlink to docs/openapi.yaml: the same
# layout under /src, so the wheel holds the document /openapi.json serves.
COPY python/pyproject.toml /src/python/pyproject.toml
COPY python/reference_service /src/python/reference_service
COPY docs/openapi.yaml /src/docs/openapi.yaml
RUN pip install --no-deps --no-build-isolation /src/python \
 && rm -rf /src
RUN groupadd --gid 65532 nonroot \
 && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin nonroot
# torch/matplotlib caches go under $HOME; the chart mounts a writable /tmp.
ENV HOME=/tmp MPLCONFIGDIR=/tmp/matplotlib
USER 65532:65532
EXPOSE 8000
CMD ["reference-service", "--model-path", "/models", "--host", "0.0.0.0", "--port", "8000"]
