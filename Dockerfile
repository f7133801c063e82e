# The image of every process (web, workers, beat, Flower, the release step), in two stages:
#   builder: the locked dependencies (requirements.lock, each file checked against its hash) into a
#            virtualenv, then the project itself;
#   runtime: that virtualenv and the code on a slim base, run as an unprivileged user.
# Secrets (SECRET_KEY, PHI_ENCRYPTION_KEY, ...) come from the environment at run time: the image
# holds none, and .dockerignore keeps a developer's var/ (keys, databases) out of the build context.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
COPY requirements.lock /tmp/requirements.lock
RUN /opt/venv/bin/pip install --require-hashes --no-deps -r /tmp/requirements.lock
WORKDIR /srv
COPY pyproject.toml beat_schedule.py ./
COPY app ./app
COPY workers ./workers
# Editable, so app/platform/migrate.py finds alembic.ini and migrations/ beside app/ (/srv, the same path in
# the runtime stage). Built with the venv's locked setuptools: nothing unpinned is fetched.
RUN /opt/venv/bin/pip install --no-deps --no-build-isolation -e .

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    FOLLOWUP_VAR_DIR=/var/lib/followup/var \
    PROMETHEUS_MULTIPROC_DIR=/var/lib/followup/metrics \
    FOLLOWUP_LIVENESS_FILE=/tmp/followup-alive
# A fixed numeric id, so orchestrators can check runAsNonRoot; the directories it writes to are its
# own (a named volume mounted on one starts with this ownership).
RUN groupadd --system --gid 10001 followup \
    && useradd --system --uid 10001 --gid 10001 --home-dir /srv --no-create-home --shell /usr/sbin/nologin followup \
    && mkdir -p /var/lib/followup/var /var/lib/followup/metrics /var/lib/followup/beat \
    && chown -R 10001:10001 /var/lib/followup
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /srv /srv
WORKDIR /srv
COPY alembic.ini ./
COPY migrations ./migrations
USER 10001:10001
EXPOSE 8000
# The web process's liveness probe; the compose file gives each worker process its own check.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=5)"]
CMD ["gunicorn", "-c", "python:app.platform.telemetry.gunicorn_config", "app:create_app()", "--bind", "0.0.0.0:8000", "--workers", "2", "--worker-class", "gthread", "--threads", "4", "--graceful-timeout", "20"]
