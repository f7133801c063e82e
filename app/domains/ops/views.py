"""Liveness and readiness probes, and the Prometheus scrape."""

from flask import Response, current_app, request
from flask.views import MethodView

from app.domains.ops import metrics, service
from app.platform.access import public
from app.platform.api import make_blueprint
from app.platform.api.injection import inject
from app.platform.app_db import get_db

blp = make_blueprint("ops", "Health probes")
blp.url_prefix = None


@blp.route("/healthz")
class Health(MethodView):
    @public("liveness probe")
    @blp.response(200)
    def get(self):
        """The process is up."""
        return {"status": "ok"}


@blp.route("/readyz")
class Ready(MethodView):
    @public("readiness probe")
    @blp.response(200)
    @blp.alt_response(503, description="A dependency is unreachable; `checks` says which")
    def get(self):
        """The database and the broker are reachable (503 naming the one that is not)."""
        dispatcher = current_app.extensions["followup.dispatcher"]
        checks = service.readiness(
            db=get_db(),
            redis=current_app.extensions["followup.redis"],
            broker_check=None if get_db().settings.broker_is_redis else dispatcher.check_broker,
        )
        ready = all(v == "ok" for v in checks.values())
        return {"status": "ok" if ready else "unavailable", "checks": checks}, 200 if ready else 503


@blp.route("/metrics")
class Metrics(MethodView):
    @public("metrics token: checks Authorization: Bearer $METRICS_TOKEN itself")
    @blp.alt_response(200, description="Prometheus text exposition format 0.0.4", content_type="text/plain")
    @blp.alt_response(401, description="Missing or wrong bearer token")
    @blp.alt_response(404, description="METRICS_TOKEN is not configured")
    @inject
    def get(self, *, uow, now, settings):
        """Prometheus text: request latency, job outcomes and lateness, jobs by status, notifications,
        orphan leads, queues, due-job lag (text 0.0.4 unless Accept asks for OpenMetrics)."""
        metrics.check_token(
            configured=settings.metrics_token,
            authorization=request.headers.get("Authorization"),
        )
        body, content_type = metrics.exposition(
            session=uow,
            redis=current_app.extensions["followup.redis"],
            now=now,
            accept=request.headers.get("Accept"),
        )
        return Response(body, mimetype=None, content_type=content_type)
