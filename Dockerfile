# syntax=docker/dockerfile:1
# One image recipe for every component, from the repository root:
#   docker build --build-arg SERVICE=catalog_service --build-arg SERVICE_NAME=catalog -t bazaar/catalog .
# SERVICE is the project directory (= its Python package), SERVICE_NAME its name in discovery:
# auth_service/auth, catalog_service/catalog, order_service/orders, profile_service/profiles,
# gateway/gateway. Dependencies come from requirements/runtime.lock, installed with
# --require-hashes (a changed or substituted file fails the build). The base is pinned by digest;
# docs/images.md says how both are refreshed.
ARG PYTHON_IMAGE=python:3.11.10-slim-bookworm@sha256:5148c0e4bbb64271bca1d3322360ebf4bfb7564507ae32dd639322e4952a6b16

# --- build: a virtualenv with the locked dependencies, the two local packages, static files ------
FROM ${PYTHON_IMAGE} AS build
ARG SERVICE
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
RUN test -n "${SERVICE}" || (echo "--build-arg SERVICE=<project directory> is required" >&2; exit 1)
RUN python -m venv /opt/venv
# The lock alone first: this layer is the same for all five images and rebuilt only on a bump.
COPY requirements/runtime.lock /tmp/runtime.lock
RUN /opt/venv/bin/pip install --require-hashes --only-binary=:all: --no-deps -r /tmp/runtime.lock
COPY common /src/common
COPY ${SERVICE} /src/${SERVICE}
# --no-deps: everything they need is in the lock (pip check below proves it).
RUN /opt/venv/bin/pip install --no-deps /src/common /src/${SERVICE} \
    && /opt/venv/bin/pip check \
    && /opt/venv/bin/pip uninstall --yes pip setuptools wheel
WORKDIR /src/${SERVICE}
RUN DEBUG=1 BAZAAR_VAR_DIR=/app/var /opt/venv/bin/python manage.py collectstatic --noinput

# --- runtime: no compiler, no pip, no sources beyond manage.py; uid 10001 ---------------------
FROM ${PYTHON_IMAGE} AS runtime
ARG SERVICE
ARG SERVICE_NAME
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="bazaar-${SERVICE_NAME}" \
      org.opencontainers.image.description="Bazaar ${SERVICE_NAME}: web (default command), Celery worker, beat and migrations" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11.10-slim-bookworm"
ENV PATH=/opt/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 BAZAAR_VAR_DIR=/app/var \
    BAZAAR_PACKAGE=${SERVICE} BAZAAR_SERVICE_NAME=${SERVICE_NAME} SERVICE_VERSION=${VERSION}
RUN useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin bazaar
COPY --from=build /opt/venv /opt/venv
COPY --from=build --chown=10001:10001 /app/var /app/var
COPY --from=build /src/${SERVICE}/manage.py /app/manage.py
WORKDIR /app
USER 10001
EXPOSE 8000 9100
# Web by default (the chart gives every role its own command):
#   worker: celery -A $BAZAAR_PACKAGE.config worker -Q <queue>    beat: celery -A $BAZAAR_PACKAGE.config beat
#   migrations: python manage.py migrate --noinput
CMD ["sh", "-c", "exec python -m bazaar_common.serve \"$BAZAAR_PACKAGE\" --service \"$BAZAAR_SERVICE_NAME\" --host 0.0.0.0 --port 8000"]
