"""The check that every view's access declaration (app/platform/access.py) runs before the view's
body: it authenticates through app/domains/auth/service.py (roles, permissions and `Actor` are plain
data in app/platform/roles.py) and refuses with 401/403. `create_app` hands it to the platform
(app/__init__.py `check_access`)."""

from __future__ import annotations

from flask import g, request

from app.domains.auth import onboarding, service
from app.platform import clock, phi_policy
from app.platform.access import Declared
from app.platform.app_db import get_db
from app.platform.errors import Forbidden
from app.platform.roles import PLATFORM


def check_declared(declared: Declared) -> None:
    """Authenticate and authorize the request by what its view declared; bind the caller to `g`."""
    # A worker thread serves request after request: nobody reads PHI until this one authenticates.
    phi_policy.bind(None)
    if declared.public_reason:
        return
    if declared.permission is None:
        raise Forbidden(f"endpoint {request.endpoint} declares no permission")  # fail closed
    if declared.permission == PLATFORM:
        onboarding.authenticate_platform(settings=get_db().settings, headers=request.headers)
        return
    actor = service.authenticate_request(db=get_db(), headers=request.headers, now=clock.now())
    g.actor = actor
    phi_policy.bind(actor)  # what this request dumps, it dumps for this reader (PhiSchema)
    if not actor.can(declared.permission):
        raise Forbidden(f"this action needs the permission {declared.permission}")
