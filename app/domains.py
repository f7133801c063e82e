"""Importing this module wires every domain: models into Base.metadata, handlers into registries."""

from app.audit import models as audit_models  # noqa: F401
from app.auth import models as auth_models  # noqa: F401
from app.ops import models as ops_models  # noqa: F401
from app.scheduling import models as scheduling_models  # noqa: F401
