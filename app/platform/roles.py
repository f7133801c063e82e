"""Who may do what: roles, permissions and the caller (`Actor`), and what a caller may hand out
(grants). Plain data, no Flask: services take an `Actor` and can be used (and tested) without an
app or a request."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from app.platform.errors import Forbidden


class Permission(StrEnum):
    READ = "lead:read"
    CREATE = "lead:create"
    UPDATE = "lead:update"
    ASSIGN = "lead:assign"
    CONVERT = "lead:convert"
    CONFIGURE = "lead:configure"
    ANALYTICS = "lead:analytics"
    # Protected health information in what is read: patient, insurance, address, notes
    # (app/platform/phi_policy.py names the fields).
    READ_PHI = "lead:phi"
    # Erasing a person's data on request (app/domains/privacy): the clinic admin's alone.
    ERASE = "lead:erase"


class Role(StrEnum):
    FRONT_DESK = "front_desk"
    TREATMENT_COORDINATOR = "treatment_coordinator"
    CLINIC_ADMIN = "clinic_admin"
    DOCTOR = "doctor"


ANY = "any"  # any authenticated user or API key
# The platform operator (FOLLOWUP_PLATFORM_TOKEN): outside every clinic, so no role or API key has it.
PLATFORM = "platform"

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    # The front desk books and routes leads: contact details, never the patient's health details.
    Role.FRONT_DESK: frozenset({Permission.READ, Permission.CREATE}),
    Role.TREATMENT_COORDINATOR: frozenset(
        {
            Permission.READ,
            Permission.CREATE,
            Permission.UPDATE,
            Permission.ASSIGN,
            Permission.CONVERT,
            Permission.READ_PHI,
        }
    ),
    # Everything, which includes creating leads: the product's access table names only front_desk
    # and treatment_coordinator for "create", but the admin who configures the clinic must be able
    # to enter a lead when the front desk is away (docs/guides/api.md, "Roles").
    Role.CLINIC_ADMIN: frozenset(Permission),
    # The access table: a doctor views analytics, not leads (no lead is linked to a treating
    # doctor to scope a read to, and a lead's notes are health concerns: PHI).
    # READ_PHI: a doctor works with patients; it shows only where a doctor may read at all.
    Role.DOCTOR: frozenset({Permission.ANALYTICS, Permission.READ_PHI}),
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


# --- grants: what a credential may hand out ---------------------------------------------------
# What a credential may hand out: the one rule every way of making or widening a credential goes
# through (API keys, users, role changes, invitations; the API and the console alike).
#
# A credential can only give what it holds: a key's permissions, or a role's, must all be among the
# caller's own. Users and roles are managed by a user, never by an API key: a key is an integration's
# credential, and a person's account (with a password, an invitation mail, a role) is not something
# an integration should mint. Plain data, no Flask, no database: a pure decision over an `Actor`.
#
# The platform operator (the `followup clinics create` command, `POST /api/platform/clinics`) acts
# outside every clinic and has no `Actor`: the callers of those paths do not ask these functions.

GRANT_USER, GRANT_KEY = "user", "api_key"  # what is being made or widened


def grant_refusal(actor: Actor, *, grantee: str, permissions: Iterable[str] = (), role: str | None = None):
    """Why the actor may not make or widen a `grantee` (GRANT_USER or GRANT_KEY) with these
    permissions or this role, or None when it may: the one decision behind every grant."""
    if grantee == GRANT_USER and actor.kind != "user":
        return "managing users and roles needs a signed-in user, not an API key"
    asked = set(permissions) | (set(ROLE_PERMISSIONS[Role(role)]) if role is not None else set())
    missing = sorted(asked - set(actor.permissions))
    if not missing:
        return None
    what = f"the role {role}" if role is not None else "permissions"
    return f"you cannot grant {what} beyond what you hold; not held: {', '.join(missing)}"


def check_grant(actor: Actor, *, grantee: str, permissions: Iterable[str] = (), role: str | None = None):
    """Forbidden (403) naming what is not held, unless `grant_refusal` finds nothing."""
    refusal = grant_refusal(actor, grantee=grantee, permissions=permissions, role=role)
    if refusal:
        raise Forbidden(refusal)


def grantable_roles(actor: Actor) -> list[str]:
    """The roles the actor may give a user, in the Role enum's order (what a form offers)."""
    return [r.value for r in Role if grant_refusal(actor, grantee=GRANT_USER, role=r.value) is None]
