"""Every error a view can answer is in its operation's responses in the OpenAPI document.

Read from the code, not from requests: for each operation, the service functions its view calls
(`module.function(...)`, the module imported by the view) and, within each one's module, the
functions they call by name, transitively; every `raise` there of a domain error class
(app/platform/errors.py, whose `status` is the HTTP answer), or of a module function annotated to
return one (`def _taken(...) -> Conflict`), is an answer the operation can give.

What it covers: the domain errors raised in the view, in the service functions it calls and in their
own modules' helpers. What it does not follow: calls into a third module (another context's
`get_lead`'s 404, for one), errors built without a class at the raise (`raise error`), and
exceptions other than domain errors (their shared answers: app/platform/api/__init__.py).
"""

from __future__ import annotations

import ast
import functools
import inspect
import textwrap
import types

import pytest

from app.devtools import openapi
from app.platform.api import openapi_path
from app.platform.errors import DomainError

METHODS = ("get", "put", "post", "delete", "patch")
# Raised on a path the operation never takes, each with why (the check reads no conditions). An
# entry the code no longer raises fails the test too, so the list cannot outlive its reason.
NEVER_ANSWERED = {
    "GET /api/clinic: 404": "the caller's own clinic: clinics are never deleted",
    "PUT /api/clinic: 404": "the caller's own clinic: clinics are never deleted",
    "GET /api/clinic/webhook-secret: 404": "the caller's own clinic: clinics are never deleted",
    "POST /api/capture/web-form: 409": "possible_duplicates only with reject_duplicates, never a web form's",
}


@pytest.fixture(scope="module")
def operations() -> list[tuple[str, str, object, dict]]:
    """(method, path, view function, documented responses) of every operation."""
    app = openapi.code_only_app()
    with app.app_context():
        spec = app.extensions["flask-smorest"]["apis"][""]["ext_obj"].spec.to_dict()
    found = []
    for rule in app.url_map.iter_rules():
        view = app.view_functions.get(rule.endpoint)
        view_class = getattr(view, "view_class", None)
        path = openapi_path(rule.rule)
        for method, operation in spec["paths"].get(path, {}).items():
            handler = getattr(view_class, method, None) if view_class else view
            if method in METHODS and handler is not None and method.upper() in (rule.methods or ()):
                found.append((method, path, inspect.unwrap(handler), operation["responses"]))
    return found


def _source_tree(func) -> ast.AST | None:
    try:
        return ast.parse(textwrap.dedent(inspect.getsource(func)))
    except (OSError, TypeError, SyntaxError):
        return None


def _error_class(value) -> type[DomainError] | None:
    if isinstance(value, type) and issubclass(value, DomainError):
        return value
    return None


def _returned_error(func) -> type[DomainError] | None:
    """The domain error class a helper such as `def _taken(...) -> Conflict` returns."""
    if not isinstance(func, types.FunctionType):
        return None
    annotation = func.__annotations__.get("return")
    if isinstance(annotation, str):
        annotation = func.__globals__.get(annotation)
    return _error_class(annotation)


def _called(node: ast.Call, namespace: dict, own_module: str):
    """The function a call names: `module.function(...)` (a module the caller imported) or
    `function(...)` of the caller's own module."""
    target = node.func
    if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name):
        module = namespace.get(target.value.id)
        if isinstance(module, types.ModuleType) and module.__name__.startswith("app."):
            return getattr(module, target.attr, None)
    if isinstance(target, ast.Name):
        func = namespace.get(target.id)
        if isinstance(func, types.FunctionType) and func.__module__ == own_module:
            return func
    return None


@functools.cache
def _scan(func) -> tuple[frozenset[type[DomainError]], tuple]:
    """The domain errors `func` raises itself, and the functions it calls: (callee, by module)."""
    tree = _source_tree(func)
    if tree is None:
        return frozenset(), ()
    namespace = func.__globals__
    raised: set[type[DomainError]] = set()
    calls = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and node.exc is not None:
            named = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(named, ast.Name):
                value = namespace.get(named.id)
                raised.update(filter(None, [_error_class(value), _returned_error(value)]))
        if isinstance(node, ast.Call):
            callee = _called(node, namespace, func.__module__)
            if isinstance(callee, types.FunctionType):
                calls.append((callee, isinstance(node.func, ast.Attribute)))
    return frozenset(raised), tuple(calls)


def errors_of(view) -> set[type[DomainError]]:
    """The domain errors the view raises, with those of the service functions it calls by module
    and of the functions each of those calls in its own module, transitively."""
    found: set[type[DomainError]] = set()
    seen = set()
    todo = [(view, True)]
    while todo:
        func, is_view = todo.pop()
        if func in seen:
            continue
        seen.add(func)
        raised, calls = _scan(func)
        found |= raised
        for callee, by_module in calls:
            if callee.__module__ == func.__module__ or (is_view and by_module):
                todo.append((callee, False))
    return found


def test_every_error_a_view_can_raise_is_documented(operations):
    missing, raised = [], set()
    for method, path, view, responses in operations:
        documented = {str(status) for status in responses}
        for error in sorted(errors_of(view), key=lambda e: e.__name__):
            answer = f"{method.upper()} {path}: {error.status}"
            raised.add(answer)
            if str(error.status) not in documented and answer not in NEVER_ANSWERED:
                missing.append(f"{answer} ({error.__name__})")
    assert not missing, "undocumented error answers:\n" + "\n".join(sorted(set(missing)))
    assert set(NEVER_ANSWERED) <= raised, f"no longer raised: {set(NEVER_ANSWERED) - raised}"
