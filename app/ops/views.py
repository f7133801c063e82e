"""Liveness and readiness probes."""

from flask import current_app
from flask.views import MethodView

from app.api import make_blueprint
from app.auth.permissions import public
from app.db import get_db
from app.ops import service

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
        checks = service.readiness(db=get_db(), redis=current_app.extensions["followup.redis"])
        ready = all(v == "ok" for v in checks.values())
        return {"status": "ok" if ready else "unavailable", "checks": checks}, 200 if ready else 503
