"""The `requires` / `public` declarations on views and the check that enforces them before each
request (roles, permissions and `Actor` are plain data in app/auth/roles.py)."""

from __future__ import annotations

from flask import current_app, g, request

from app import clock
from app.app_db import get_db
from app.auth import onboarding, phi_policy, service
from app.auth.roles import ANY, PLATFORM, ROLE_PERMISSIONS, Actor, Permission, Role
from app.errors import Forbidden

__all__ = [
    "ANY",
    "ROLE_PERMISSIONS",
    "Actor",
    "Permission",
    "Role",
    "current_actor",
    "platform_only",
    "public",
    "requires",
]


def _doc(func, security: bool, extra_responses: dict) -> None:
    """Add security and error responses to flask-smorest's per-function docs."""
    apidoc = getattr(func, "_apidoc", {})
    manual = apidoc.setdefault("manual_doc", {})
    if security:
        manual["security"] = [{"bearerAuth": []}, {"apiKeyAuth": []}]
    responses = manual.setdefault("responses", {})
    responses.update(extra_responses)
    func._apidoc = apidoc


def requires(permission: str):
    """Declare the permission a view method needs; the app-wide check enforces it before parsing."""

    def decorate(func):
        func._permission = str(permission)
        _doc(
            func,
            security=True,
            extra_responses={
                "401": {"description": "Missing, invalid or expired credentials"},
                "403": {"description": f"The caller lacks `{permission}`"},
            },
        )
        func.__doc__ = (func.__doc__ or "").rstrip() + f"\n\nPermission: `{permission}`."
        return func

    return decorate


def platform_only(func):
    """Declare a view method of the platform operator (Authorization: Bearer $FOLLOWUP_PLATFORM_TOKEN);
    a clinic's users and API keys are refused."""
    func._permission = PLATFORM
    _doc(
        func,
        security=False,
        extra_responses={
            "401": {"description": "No credentials"},
            "403": {"description": "Not the platform operator's token (or none is configured)"},
        },
    )
    func._apidoc["manual_doc"]["security"] = [{"bearerAuth": []}]
    return func


def public(reason: str):
    """Declare a view method that needs no user credentials (and why: e.g. it checks a signature)."""

    def decorate(func):
        func._public = reason
        return func

    return decorate


def declared_access(view_function, method: str) -> tuple[str | None, str | None]:
    """(permission, public_reason) declared on the method of a view that answers `method`."""
    view_class = getattr(view_function, "view_class", None)
    target = getattr(view_class, method.lower(), None) if view_class else view_function
    if target is None:
        return None, None
    return getattr(target, "_permission", None), getattr(target, "_public", None)


PUBLIC_ENDPOINT_PREFIXES = ("api-docs.", "swagger_ui_static", "static")


def current_actor() -> Actor:
    return g.actor


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
