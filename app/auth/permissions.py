"""Roles, permissions, the `requires` / `public` declarations and the check that enforces them."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from flask import current_app, g, request


class Permission(StrEnum):
    READ = "lead:read"
    CREATE = "lead:create"
    UPDATE = "lead:update"
    ASSIGN = "lead:assign"
    CONVERT = "lead:convert"
    CONFIGURE = "lead:configure"
    ANALYTICS = "lead:analytics"


class Role(StrEnum):
    FRONT_DESK = "front_desk"
    TREATMENT_COORDINATOR = "treatment_coordinator"
    CLINIC_ADMIN = "clinic_admin"
    DOCTOR = "doctor"


ANY = "any"  # any authenticated user or API key

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.FRONT_DESK: frozenset({Permission.READ, Permission.CREATE}),
    Role.TREATMENT_COORDINATOR: frozenset(
        {Permission.READ, Permission.CREATE, Permission.UPDATE, Permission.ASSIGN, Permission.CONVERT}
    ),
    Role.CLINIC_ADMIN: frozenset(Permission),
    Role.DOCTOR: frozenset({Permission.READ, Permission.ANALYTICS}),
}


@dataclass(frozen=True)
class Actor:
    """Who is calling: a user or an API key, always of exactly one clinic."""

    clinic_id: int
    permissions: frozenset[str]
    user_id: int | None = None
    role: str | None = None
    api_key_id: int | None = None
    email: str | None = None
    # An API key's own requests-per-minute limit (None: a user, limited by the settings' value).
    rate_limit_per_minute: int | None = None
    extra: dict = field(default_factory=dict, compare=False)

    @classmethod
    def engine(cls, clinic_id: int, ref: str) -> Actor:
        """The engine acting on its own (e.g. "automation"): no user, no key, no permissions."""
        return cls(clinic_id=clinic_id, permissions=frozenset(), extra={"ref": ref})

    @property
    def kind(self) -> str:
        if self.user_id is not None:
            return "user"
        return "api_key" if self.api_key_id is not None else "engine"

    @property
    def ref(self) -> str:
        if self.user_id is not None:
            return f"user:{self.user_id}"
        if self.api_key_id is not None:
            return f"api_key:{self.api_key_id}"
        return self.extra.get("ref", "system")

    def can(self, permission: str) -> bool:
        return permission == ANY or permission in self.permissions


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
    from app import clock
    from app.auth import service  # late: service imports flask-bound helpers
    from app.errors import Forbidden

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
    actor = service.authenticate_request(headers=request.headers, now=clock.now())
    g.actor = actor
    if not actor.can(permission):
        raise Forbidden(f"this action needs the permission {permission}")
    return None
