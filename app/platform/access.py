"""How a view declares who may call it (`requires`, `public`, `platform_only`) and who is calling
(`current_actor`): tags on the view function and flask.g, no domain knowledge. The check that
enforces the tags before each request is app/domains/auth/permissions.py's
`enforce_declared_access`, installed as a before_request hook by `create_app` (app/__init__.py)."""

from __future__ import annotations

from flask import g

from app.platform.roles import PLATFORM, Actor


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
    func.__doc__ = (func.__doc__ or "").rstrip() + "\n\nThe platform operator's token only."
    return func


def public(reason: str):
    """Declare a view method that needs no user credentials (and why: e.g. it checks a signature)."""

    def decorate(func):
        func._public = reason
        func.__doc__ = (func.__doc__ or "").rstrip() + f"\n\nNo user credentials: {reason}."
        return func

    return decorate


def declared_access(view_function, method: str) -> tuple[str | None, str | None]:
    """(permission, public_reason) declared on the method of a view that answers `method`."""
    view_class = getattr(view_function, "view_class", None)
    target = getattr(view_class, method.lower(), None) if view_class else view_function
    if target is None:
        return None, None
    return getattr(target, "_permission", None), getattr(target, "_public", None)


# The console's pages authenticate by its session cookie, each with a declared permission checked
# by the console itself (app/console/auth.py), not by a bearer token.
PUBLIC_ENDPOINT_PREFIXES = ("api-docs.", "swagger_ui_static", "static", "console.")


def current_actor() -> Actor:
    return g.actor
