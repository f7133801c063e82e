"""docs/architecture/code.md's walk of `POST /api/leads` is the code's: each hop exists, and each is
reached from the hops before it the way a newcomer would follow it, by an import, a line of the
handler map (app/handlers.py), or a Celery task named where it is sent. Nothing hidden."""

from __future__ import annotations

import ast
import importlib
import re
from functools import cache
from pathlib import Path

import pytest

from tests.test_architecture import _Imports

ROOT = Path(__file__).resolve().parent.parent
CODE_MD = ROOT / "docs" / "architecture" / "code.md"
# A step of the walk: "12. `path/to/module.py` `symbol`" (a function, or Class.method).
HOP = re.compile(r"^\d+\. `((?:app|workers)/[\w/]+\.py)` `([\w.]+)`", re.MULTILINE)


def walk_text() -> str:
    text = CODE_MD.read_text()
    return text[text.index("## Following one lead") : text.index("## How code is written here")]


def hops(text: str) -> list[tuple[str, str]]:
    return HOP.findall(text)


def _module(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".").removesuffix(".__init__")


@cache
def _tree(path: str) -> ast.Module:
    return ast.parse((ROOT / path).read_text())


def defines(path: str, symbol: str) -> bool:
    """Whether the module at `path` defines `symbol` (a top-level function or class, or Class.method)."""
    body = _tree(path).body
    for part in symbol.split("."):
        found = [
            node
            for node in body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.name == part
        ]
        if not found:
            return False
        body = found[0].body
    return True


@cache
def imports_of(path: str) -> frozenset[str]:
    """The app modules `path` imports, and those its imported packages import in turn (`from
    app.platform.db import UnitOfWork` reaches app/platform/db/uow.py through the package)."""
    visitor = _Imports(_module(path), path.endswith("__init__.py"))
    visitor.visit(_tree(path))
    found = set(visitor.found)
    for name in list(found):
        package = ROOT / name.replace(".", "/") / "__init__.py"
        if package.exists():
            inner = _Imports(name, True)
            inner.visit(ast.parse(package.read_text()))
            found |= set(inner.found)
    return frozenset(found)


def _handler_map_functions() -> list:
    handlers = importlib.import_module("app.handlers")
    found = [consumer for consumers in handlers.EVENT_HANDLERS.values() for consumer in consumers]
    found += [kind.handler for kind in handlers.JOB_KINDS]
    found += list(handlers.STEP_EXECUTORS.values())
    return found


def in_the_handler_map(path: str, symbol: str) -> bool:
    function = getattr(importlib.import_module(_module(path)), symbol, None)
    return function is not None and any(function is listed for listed in _handler_map_functions())


def _task_name(path: str, symbol: str) -> str | None:
    """The name a Celery task is registered by (`@shared_task(name=...)`), if `symbol` is one."""
    for node in _tree(path).body:
        if isinstance(node, ast.FunctionDef) and node.name == symbol:
            for decorator in node.decorator_list:
                if isinstance(decorator, ast.Call):
                    for keyword in decorator.keywords:
                        if keyword.arg == "name" and isinstance(keyword.value, ast.Constant):
                            return keyword.value.value
    return None


def sent_by_name(path: str, symbol: str, earlier: list[str]) -> bool:
    name = _task_name(path, symbol)
    return name is not None and any(f'"{name}"' in (ROOT / before).read_text() for before in earlier)


def how_reached(path: str, symbol: str, earlier: list[str]) -> str | None:
    """How a reader gets from the hops before to this one, or None (a hop nothing shows)."""
    module = _module(path)
    if earlier and path == earlier[-1]:
        return "the same module as the hop before"
    if any(module in imports_of(before) for before in earlier):
        return "an import"
    if in_the_handler_map(path, symbol):
        return "the handler map"
    if sent_by_name(path, symbol, earlier):
        return "a Celery task named where it is sent"
    return None


def test_the_walk_names_every_hop_from_the_view_to_the_call_task():
    walk = hops(walk_text())
    assert walk[0] == ("app/domains/intake/views.py", "CreateLead.post")
    assert walk[-1] == ("app/domains/tasks/creation.py", "create_system_task")
    assert "hidden" not in walk_text().lower()


def test_every_hop_exists_and_is_reached_by_an_import_the_handler_map_or_a_named_task():
    walk = hops(walk_text())
    missing = [f"{path} {symbol}" for path, symbol in walk if not defines(path, symbol)]
    assert missing == [], f"code.md names what the code no longer has: {missing}"
    unreached = [
        f"{path} {symbol}"
        for index, (path, symbol) in enumerate(walk)
        if index and how_reached(path, symbol, [before for before, _ in walk[:index]]) is None
    ]
    assert unreached == [], f"hops nothing before them leads to: {unreached}"


@pytest.mark.parametrize(
    ("path", "symbol", "earlier", "expected"),
    [
        ("app/domains/intake/service.py", "capture_lead", ["app/domains/intake/views.py"], "an import"),
        (
            "app/domains/automation/processing.py",
            "process_event",
            ["app/platform/events/consumers.py"],
            "the handler map",
        ),
        ("workers/scheduling.py", "run_job", ["app/platform/scheduling/dispatch.py"], "a Celery task named"),
        # No import, map line or name leads from the view to the task writer: the check refuses it.
        ("app/domains/tasks/creation.py", "create_system_task", ["app/domains/intake/views.py"], None),
    ],
)
def test_the_check_tells_each_way_and_refuses_a_jump(path, symbol, earlier, expected):
    found = how_reached(path, symbol, earlier)
    assert (found is None) if expected is None else (found or "").startswith(expected)
