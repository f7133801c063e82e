"""How a view declares who may call it (`requires`, `public`, `platform_only`), and who is calling
(`current_actor`). Each declaration wraps the view: the wrapper runs the app's access check before
the view's body, so it must be the outermost decorator (above flask-smorest's `@blp.arguments`,
which parses the body in its own wrapper: a caller without the permission gets 401/403, never a
422). The check itself knows the auth domain, which this layer may not import: `create_app` gives
it to the app (`install_check`; app/__init__.py `check_access`, over
app/domains/auth/permissions.py). A view without a declaration, or with one below another
decorator, stops the app at start (`refuse_undeclared`)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, current_app, g

from app.platform.roles import PLATFORM, Actor

_CHECK = "followup.access_check"

# The console's pages authenticate by its session cookie, each with a declared permission checked
# by the console itself (app/console/auth.py), not by a bearer token.
PUBLIC_ENDPOINT_PREFIXES = ("api-docs.", "swagger_ui_static", "static", "console.")


@dataclass(frozen=True)
class Declared:
    """What a view declared: the permission it needs (PLATFORM for the operator's token), or why it
    needs no user credentials."""

    permission: str | None = None
    public_reason: str | None = None


def install_check(app: Flask, check: Callable[[Declared], None]) -> None:
    """Give the app the check every declared view runs first: it raises (401/403, 429) to refuse."""
    app.extensions[_CHECK] = check


def _guard(func, declared: Declared):
    @functools.wraps(func)
    def checked(*args, **kwargs):
        current_app.extensions[_CHECK](declared)
        return func(*args, **kwargs)

    checked.access_declared = declared
    return checked


# Every guard shares this code object: what tells the guard itself from a decorator above it,
# which copies its attributes (functools.wraps) but not its code.
_GUARD_CODE = _guard(lambda: None, Declared()).__code__


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
    """Declare the permission a view method needs, checked before anything below this decorator."""

    def decorate(func):
        checked = _guard(func, Declared(permission=str(permission)))
        _doc(
            checked,
            security=True,
            extra_responses={
                "401": {"description": "Missing, invalid or expired credentials"},
                "403": {"description": f"The caller lacks `{permission}`"},
            },
        )
        checked.__doc__ = (func.__doc__ or "").rstrip() + f"\n\nPermission: `{permission}`."
        return checked

    return decorate


def platform_only(func):
    """Declare a view method of the platform operator (Authorization: Bearer $FOLLOWUP_PLATFORM_TOKEN);
    a clinic's users and API keys are refused."""
    checked = _guard(func, Declared(permission=PLATFORM))
    _doc(
        checked,
        security=False,
        extra_responses={
            "401": {"description": "No credentials"},
            "403": {"description": "Not the platform operator's token (or none is configured)"},
        },
    )
    checked._apidoc["manual_doc"]["security"] = [{"bearerAuth": []}]
    checked.__doc__ = (func.__doc__ or "").rstrip() + "\n\nThe platform operator's token only."
    return checked


def public(reason: str):
    """Declare a view method that needs no user credentials (and why: e.g. it checks a signature)."""

    def decorate(func):
        checked = _guard(func, Declared(public_reason=reason))
        checked.__doc__ = (func.__doc__ or "").rstrip() + f"\n\nNo user credentials: {reason}."
        return checked

    return decorate


def _method_target(view_function, method: str):
    view_class = getattr(view_function, "view_class", None)
    if view_class is None:
        return view_function
    if method.upper() == "HEAD" and not hasattr(view_class, "head"):
        method = "GET"  # as MethodView answers HEAD
    return getattr(view_class, method.lower(), None)


def guarded(view_function, method: str) -> bool:
    """Whether the view that answers `method` runs an access check first (its outermost decorator)."""
    target = _method_target(view_function, method)
    return getattr(target, "__code__", None) is _GUARD_CODE


def declared_access(view_function, method: str) -> tuple[str | None, str | None]:
    """(permission, public_reason) declared on the method of a view that answers `method`; nothing
    when the declaration is not its outermost decorator (then it would be checked too late)."""
    if not guarded(view_function, method):
        return None, None
    declared = _method_target(view_function, method).access_declared
    return declared.permission, declared.public_reason


def undeclared_views(app: Flask) -> list[str]:
    """`METHOD endpoint` of every view (outside PUBLIC_ENDPOINT_PREFIXES) not guarded by a declaration."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith(PUBLIC_ENDPOINT_PREFIXES):
            continue
        view = app.view_functions[rule.endpoint]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            if not guarded(view, method):
                found.append(f"{method} {rule.endpoint}")
    return found


def refuse_undeclared(app: Flask) -> None:
    """Fail closed at start: no request reaches a view that checks nobody (nothing else would)."""
    missing = undeclared_views(app)
    if missing:
        raise RuntimeError(
            "views without an access declaration as their outermost decorator (@requires, @public, "
            "@platform_only): " + ", ".join(missing)
        )


def current_actor() -> Actor:
    return g.actor
