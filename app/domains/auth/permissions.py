"""The check that enforces what each view declared (app/platform/access.py) before each request: it
authenticates through app/domains/auth/service.py (roles, permissions and `Actor` are plain data in
app/platform/roles.py)."""

from __future__ import annotations

from flask import current_app, g, request

from app.domains.auth import onboarding, service
from app.platform import clock, phi_policy
from app.platform.access import PUBLIC_ENDPOINT_PREFIXES, declared_access
from app.platform.app_db import get_db
from app.platform.errors import Forbidden
from app.platform.roles import PLATFORM


def enforce_declared_access():
    """before_request: authenticate and authorize by what the view declared; undeclared is refused."""
    # A worker thread serves request after request: nobody reads PHI until this one authenticates.
    phi_policy.bind(None)
    endpoint = request.endpoint
    if endpoint is None or request.method == "OPTIONS":
        return None  # 404/405 and CORS preflight are answered by Flask itself
    if endpoint.startswith(PUBLIC_ENDPOINT_PREFIXES):
        return None
    view = current_app.view_functions[endpoint]
    permission, public_reason = declared_access(view, request.method)
    if public_reason:
        return None
    if permission is None:
        # Fail closed: a view that forgot to declare its permission is never reachable.
        raise Forbidden(f"endpoint {endpoint} declares no permission")
    if permission == PLATFORM:
        onboarding.authenticate_platform(settings=get_db().settings, headers=request.headers)
        return None
    actor = service.authenticate_request(db=get_db(), headers=request.headers, now=clock.now())
    g.actor = actor
    phi_policy.bind(actor)  # what this request dumps, it dumps for this reader (PhiSchema)
    if not actor.can(permission):
        raise Forbidden(f"this action needs the permission {permission}")
    return None
