"""The domains: one package each under app/domains/, standing on app/platform/.

The folders are the list. Importing this package imports every `models` module under app/platform/
and app/domains/, so Base.metadata holds every table (as the web app, the workers, the migrations
and the tests need); it installs no handler: create_app builds the process's Wiring from the
one handler map (app/bootstrap.py, from app/handlers.py). `blueprints()` finds each `views`
module's API blueprints the same way, so a new domain is a new folder (and its lines in the
handler map, if it reacts to anything).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from types import ModuleType

import app.platform


def _modules_named(name: str) -> Iterator[ModuleType]:
    """Every module called `name` under app/platform/ and app/domains/, in the folders' order."""
    for package in (app.platform, importlib.import_module(__name__)):
        for found in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if found.name.rpartition(".")[2] == name:
                yield importlib.import_module(found.name)


def blueprints() -> list:
    """The API's blueprints: each module-level flask-smorest Blueprint of a `views` module."""
    from flask_smorest import Blueprint

    found = {}  # by identity: a views module may name another's blueprint
    for views in _modules_named("views"):
        for value in vars(views).values():
            if isinstance(value, Blueprint):
                found.setdefault(id(value), value)
    return list(found.values())


# Every `models` module, imported: importing one registers its tables on Base.metadata.
MODELS = tuple(_modules_named("models"))
