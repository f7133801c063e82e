"""The console's Settings section (issue 77): the setup checklist and a page per setup step, each
over the same schemas, use cases and permission as the API's settings endpoints."""

from app.console.settings import connections  # noqa: F401 - its routes, on the same blueprint
from app.console.settings.pages import blp

__all__ = ["blp"]
