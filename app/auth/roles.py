"""Who may do what: roles, permissions and the caller (`Actor`). Plain data, no Flask: services
take an `Actor` and can be used (and tested) without an app or a request."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Permission(StrEnum):
    READ = "lead:read"
    CREATE = "lead:create"
    UPDATE = "lead:update"
    ASSIGN = "lead:assign"
    CONVERT = "lead:convert"
    CONFIGURE = "lead:configure"
    ANALYTICS = "lead:analytics"
    # Protected health information in what is read: patient, insurance, address, notes
    # (app/auth/phi_policy.py names the fields).
    READ_PHI = "lead:phi"
    # Erasing a person's data on request (app/privacy): the clinic admin's alone.
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
