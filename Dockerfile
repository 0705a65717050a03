# syntax=docker/dockerfile:1
# One image for the four services: the command selects the service, e.g.
#   docker run ghcr.io/haven-platform/haven:0.1.0 python -m services.registration
#   docker run ghcr.io/haven-platform/haven:0.1.0 haven migrate registration
# Inside the container every service listens on 0.0.0.0:8000 (ENV below).
#
# The Python base is pinned by version (the project's Python, requires-python in pyproject.toml);
# a digest pin is left to an update bot (docs/deploy.md, "The image").
ARG PYTHON_IMAGE=python:3.11.14-slim-trixie

# uv, the same version as the Makefile's UV_VERSION (tests/deploy checks).
FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

# --- build: the virtualenv from uv.lock (wheels only; no compiler needed) ---------------------
FROM ${PYTHON_IMAGE} AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# Dependencies first: this layer is rebuilt only when the lock changes. The product's own
# dependencies only: no dependency group (dev, bench, local) is installed.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-default-groups --no-install-project
COPY README.md ./
COPY shared ./shared
COPY services ./services
COPY haven ./haven
# The project itself as a regular (non-editable) package: the runtime needs only /app/.venv.
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-default-groups --no-editable

# --- runtime: the base image, the virtualenv, a non-root user ---------------------------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="haven" \
      org.opencontainers.image.description="Haven services: registration, distribution, referral, notifications" \
      org.opencontainers.image.source="https://github.com/haven-platform/haven" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 haven \
 && useradd --system --uid 10001 --gid haven --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin haven
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HAVEN_REGISTRATION_HTTP_HOST=0.0.0.0 \
    HAVEN_REGISTRATION_HTTP_PORT=8000 \
    HAVEN_DISTRIBUTION_HTTP_HOST=0.0.0.0 \
    HAVEN_DISTRIBUTION_HTTP_PORT=8000 \
    HAVEN_REFERRAL_HTTP_HOST=0.0.0.0 \
    HAVEN_REFERRAL_HTTP_PORT=8000 \
    HAVEN_NOTIFICATIONS_HTTP_HOST=0.0.0.0 \
    HAVEN_NOTIFICATIONS_HTTP_PORT=8000 \
    HAVEN_NOTIFICATIONS_FILE_CHANNEL_PATH=/tmp/haven/notifications.jsonl
WORKDIR /app
USER 10001:10001
EXPOSE 8000
# Liveness of whichever service runs (all listen on 8000); Kubernetes uses its own probes.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["haven", "--help"]
