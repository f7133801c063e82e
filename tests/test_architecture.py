"""The shape of app/, checked from the source (no app, no database): the layers are the folders,
no import climbs them, there is no import cycle, services read no `current_app`, a domain reaches
another only through the face that one declares, and the coupling between domains only goes down.

The layers, lowest first, are read from the tree and nowhere declared:
- `app/platform/`: what every domain stands on and that knows no domain (database and unit of
  work, event outbox, job ledger, delivery, API plumbing, configuration, telemetry, audit, roles).
  It imports only itself.
- `app/domains/<domain>/`: one package per domain. A domain imports the platform and the domains it
  builds on; the domains' imports of each other form no cycle, so they are ordered by the imports
  themselves (`domain_order()`), with no list to keep.
- The entry points, everything else under app/: the web app (`app/__init__.py`), the console's pages,
  the CLI, the dev tools, the wiring (`app/domains/__init__.py`, `app/handlers.py`). They may import
  anything; nothing below imports them.

The import graph is built with `ast` from app/**/*.py. It counts every `import` and `from ... import`
of an `app` module: at module level and inside functions alike. An import inside a function is
still a dependency of the code that runs it; deferring it only hides a cycle from Python, not from
the reader, so it must obey the same order. Not counted: imports under `if TYPE_CHECKING:` (they
never run and only name types), and the implicit import of a module's parent packages.

There is no exception list.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app"
PLATFORM, DOMAINS, ENTRY = "platform", "domains", "entry points"
RANK = {PLATFORM: 0, DOMAINS: 1, ENTRY: 2}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(APP.rglob("*.py"))}


def _resolve(name: str) -> str | None:
    """The app module an import names: the module itself, else the nearest package above it."""
    known = modules()
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


class _Imports(ast.NodeVisitor):
    """Every app module one module imports, with the line of the first import of each."""

    def __init__(self, module: str, is_package: bool):
        self.package = module if is_package else module.rpartition(".")[0]
        self.found: dict[str, int] = {}

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
        if name == "TYPE_CHECKING":  # type-only imports never run
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name == "app" or alias.name.startswith("app."):
                self._add(_resolve(alias.name), node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            parts = self.package.split(".")[: len(self.package.split(".")) - node.level + 1]
            base = ".".join([*parts, base] if base else parts)
        if not (base == "app" or base.startswith("app.")):
            return
        for alias in node.names:
            # `from app.x import y`: y is a module when there is one, else a name in app.x.
            self._add(_resolve(f"{base}.{alias.name}"), node.lineno)

    def _add(self, target: str | None, line: int) -> None:
        if target is not None:
            self.found.setdefault(target, line)


@cache
def import_graph() -> dict[str, dict[str, int]]:
    """module -> {imported module: line}, for every module under app/."""
    graph = {}
    for module, path in modules().items():
        visitor = _Imports(module, path.name == "__init__.py")
        visitor.visit(ast.parse(path.read_text(), filename=str(path)))
        visitor.found.pop(module, None)
        graph[module] = visitor.found
    return graph


def _cycles(graph: dict[str, dict[str, int]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, targets = work[-1]
            for target in targets:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph[target]))))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(component)
    return found


def layer_of(module: str) -> str:
    """The layer a module's folder puts it in."""
    parts = module.split(".")
    if parts[1:2] == ["platform"]:
        return PLATFORM
    if parts[1:2] == ["domains"] and len(parts) > 2:
        return DOMAINS
    return ENTRY


def domain_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if layer_of(module) == DOMAINS else None


def _is_view(module: str) -> bool:
    return module.rsplit(".", 1)[-1].endswith("views")


def _climbs(importer: str, imported: str) -> bool:
    return RANK[layer_of(importer)] < RANK[layer_of(imported)]


def domain_graph(graph: dict[str, dict[str, int]]) -> dict[str, set[str]]:
    """domain -> the other domains it imports."""
    edges: dict[str, set[str]] = {}
    for importer, targets in graph.items():
        mine = domain_of(importer)
        if mine is None:
            continue
        edges.setdefault(mine, set())
        for imported in targets:
            theirs = domain_of(imported)
            if theirs is not None and theirs != mine:
                edges[mine].add(theirs)
    return edges


def domain_order(graph: dict[str, dict[str, int]]) -> list[str]:
    """The domains, each after every domain it imports (raises CycleError on a cycle)."""
    return list(TopologicalSorter(domain_graph(graph)).static_order())


def _where(importer: str, imported: str) -> str:
    path = modules()[importer].relative_to(ROOT)
    return f"{path}:{import_graph()[importer][imported]} {importer} -> {imported}"


def test_every_module_sits_in_platform_domains_or_an_entry_point():
    loose = sorted(
        module for module in modules() if layer_of(module) == ENTRY and module.split(".")[1:2] == ["domains"]
    )
    assert loose == ["app.domains"], f"a module of app/domains/ belongs in a domain's folder: {loose}"
    assert {layer_of(module) for module in modules()} == {PLATFORM, DOMAINS, ENTRY}


def test_no_import_cycle():
    cycles = [sorted(cycle) for cycle in _cycles(import_graph())]
    assert not cycles, f"import cycles (module-level and in-function imports): {cycles}"


def test_no_import_climbs_the_layers():
    graph = import_graph()
    climbing = sorted(
        _where(importer, imported)
        for importer, targets in graph.items()
        for imported in targets
        if _climbs(importer, imported)
    )
    assert not climbing, "imports from a lower layer to a higher one:\n" + "\n".join(climbing)


def test_the_domains_build_on_each_other_without_a_cycle():
    try:
        order = domain_order(import_graph())
    except CycleError as cycle:
        pytest.fail(f"domains importing each other in a cycle: {cycle.args[1]}")
    assert set(order) == {
        path.name for path in (APP / "domains").iterdir() if (path / "__init__.py").exists()
    }


# --- each domain's face, and the coupling budget (issue 61 item 5) ---------------------------------------


def face_of(domain: str) -> tuple[str, ...]:
    """The modules of `domain` other domains may import: the `FACE` its package's __init__.py declares
    (paths below the package, "inbound.messages" for app/domains/<domain>/inbound/messages.py); read
    from the source, not by importing it."""
    init = APP / "domains" / domain / "__init__.py"
    for node in ast.parse(init.read_text()).body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["FACE"]:
            return tuple(ast.literal_eval(node.value))
    return ()


def _past_the_face(importer: str, imported: str) -> bool:
    """A domain's module importing another domain's module its face does not offer. The package
    itself (its __init__, the face) may be named; entry points (the composition root, the console)
    build on every domain's inside and are not held to faces."""
    mine, theirs = domain_of(importer), domain_of(imported)
    if mine is None or theirs is None or mine == theirs:
        return False
    below = imported.removeprefix(f"app.domains.{theirs}").lstrip(".")
    return bool(below) and below not in face_of(theirs)


def _domains() -> list[str]:
    return sorted(path.name for path in (APP / "domains").iterdir() if (path / "__init__.py").exists())


def test_every_domain_declares_its_face_and_the_face_names_modules_that_exist():
    for domain in _domains():
        face = face_of(domain)
        assert face, f"app/domains/{domain}/__init__.py declares no FACE: what may other domains import?"
        missing = [name for name in face if f"app.domains.{domain}.{name}" not in modules()]
        assert not missing, f"{domain}'s FACE names modules that do not exist: {missing}"


def test_no_domain_reaches_past_another_domains_face():
    graph = import_graph()
    offenders = sorted(
        _where(importer, imported)
        for importer, targets in graph.items()
        for imported in targets
        if _past_the_face(importer, imported)
    )
    assert not offenders, (
        "import what the other domain's FACE offers, or add to its face what it means to offer:\n"
        + "\n".join(offenders)
    )


# The coupling between domains, counted from the imports: it may only go down. A change that lowers it
# lowers these; one that would raise it finds another way (an event, a face that offers more).
# Issue 74's cadence and follow-up pass added 30 imports and one pair (sequences -> analytics: the
# follow-up figures use analytics' one definition of an automated message and a reply); 19 type-only
# imports moved under TYPE_CHECKING paid for most of them: imports are where they were before it.
DOMAIN_PAIRS = 130  # (importing domain, imported domain) pairs
CROSS_DOMAIN_IMPORTS = 515  # (module, other domain's module) imports


def coupling(graph: dict[str, dict[str, int]]) -> tuple[int, int]:
    """(domain pairs, cross-domain module imports) of `graph`."""
    pairs = sum(len(theirs) for theirs in domain_graph(graph).values())
    imports = sum(
        1
        for importer, targets in graph.items()
        for imported in targets
        if domain_of(importer) and domain_of(imported) and domain_of(importer) != domain_of(imported)
    )
    return pairs, imports


def test_coupling_between_domains_only_goes_down():
    pairs, imports = coupling(import_graph())
    assert pairs <= DOMAIN_PAIRS and imports <= CROSS_DOMAIN_IMPORTS, (
        f"coupling rose: {pairs} domain pairs (budget {DOMAIN_PAIRS}), {imports} cross-domain imports "
        f"(budget {CROSS_DOMAIN_IMPORTS})"
    )
    assert (pairs, imports) == (DOMAIN_PAIRS, CROSS_DOMAIN_IMPORTS), (
        f"coupling went down to {pairs} pairs and {imports} imports: lower the budget to that"
    )


def test_the_face_rule_sees_an_import_past_a_face():
    assert _past_the_face("app.domains.tasks.service", "app.domains.leads.queries")
    assert not _past_the_face("app.domains.tasks.service", "app.domains.leads.models")
    assert not _past_the_face("app.domains.tasks.service", "app.domains.tasks.queries")
    assert not _past_the_face("app.handlers", "app.domains.leads.queries")
    graph = {
        "app.domains.tasks.service": {"app.domains.leads.models": 1, "app.domains.leads.service": 2},
        "app.domains.tasks.models": {"app.domains.leads.models": 1},
        "app.domains.leads.models": {},
    }
    assert coupling(graph) == (1, 3)


def test_the_graph_sees_imports_inside_functions_and_skips_type_only_ones():
    # app/__init__.py imports the permission check inside check_access; the test must count that.
    assert "app.domains.auth.permissions" in import_graph()["app"]
    source = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from app.domains.leads import models\n"
    visitor = _Imports("app.example", is_package=False)
    visitor.visit(ast.parse(source))
    assert visitor.found == {}


def test_the_rules_see_a_climbing_import_and_a_domain_cycle():
    assert _climbs("app.platform.scheduling.views", "app.domains.auth.permissions")
    assert _climbs("app.domains.leads.service", "app.handlers")
    assert not _climbs("app.domains.automation.service", "app.platform.db.uow")
    assert not _climbs("app.handlers", "app.domains.leads.service")
    acyclic = {"app.domains.tasks.service": {"app.domains.leads.models": 1}, "app.domains.leads.models": {}}
    assert domain_order(acyclic) == ["leads", "tasks"]
    looped = {**acyclic, "app.domains.leads.models": {"app.domains.tasks.service": 1}}
    with pytest.raises(CycleError):
        domain_order(looped)


# --- the fast write path stays in app/platform/db/ and queries.py (issue 15 items 1 and 2) ------------------

# Domains whose dialect-specific SQL already lives in their queries.py; the lead adds the others.
DIALECT_FREE_DOMAINS = (
    "intake",
    "assignment",
    "pipeline",
    "activities",
    "events",
    "leads",
    "scheduling",
    "analytics",
    "tasks",
)


def _source_texts() -> dict[str, str]:
    return {str(path.relative_to(ROOT)): path.read_text() for path in sorted(APP.rglob("*.py"))}


def _speed_home(name: str) -> bool:
    """app/platform/db/ and a domain's queries modules (queries.py, *_queries.py): the only homes of the
    fast-path machinery."""
    return name.startswith("app/platform/db/") or re.search(r"/(\w+_)?queries\.py$", name) is not None


def test_the_fast_write_path_is_used_only_from_app_db_and_queries_modules():
    machinery = re.compile(r"\b(Frozen|RowBatch|BatchedUnit|allocate_ids)\b")
    offenders = [
        name for name, text in _source_texts().items() if machinery.search(text) and not _speed_home(name)
    ]
    assert offenders == [], f"speed machinery outside app/platform/db/ and queries.py: {offenders}"


def test_the_domains_so_far_have_no_dialect_branch_outside_queries_modules():
    offenders = [
        name
        for name, text in _source_texts().items()
        if "dialect" in text and not _speed_home(name) and name.split("/")[2] in DIALECT_FREE_DOMAINS
    ]
    assert offenders == [], f"dialect-specific code outside queries.py: {offenders}"


def test_no_batch_form_twin_of_a_fact_builder_comes_back():
    twins = (
        "start_stage_history",
        "add_first_owner",
        "add_to_batch",
        "add_processing_job",
        "add_due_now",
        "insert_tasks",
    )
    found = [
        (name, twin)
        for name, text in _source_texts().items()
        for twin in twins
        if re.search(rf"\b{twin}\b", text)
    ]
    assert found == [], f"a batch twin of a fact's builder: {found}"


def test_intake_asks_no_question_about_its_session():
    text = (APP / "domains" / "intake" / "service.py").read_text()
    assert "in_autocommit" not in text and "postgresql" not in text and "dialect" not in text


# --- one explicit unit of work (issue 32 items 1 and 4) ---------------------------------------------


def _outside_db(name: str) -> bool:
    return not name.startswith("app/platform/db/")


def test_no_state_bag_on_the_session_outside_app_db():
    # What a use case keeps for its transaction is handed to it (arguments, a job's Memo: app/platform/
    # scheduling/memo.py, return values), never left in a bag on the session (or on the unit).
    offenders = [
        name
        for name, text in _source_texts().items()
        if _outside_db(name) and re.search(r"\bsession\.info\b", text)
    ]
    assert offenders == [], f"session.info outside app/platform/db/: {offenders}"


def test_app_db_writes_is_imported_from_app_db_only():
    pattern = re.compile(
        r"^\s*(from app\.db import [^\n]*\bwrites\b|from app\.db\.writes\b|import app\.db\.writes\b)", re.M
    )
    offenders = [name for name, text in _source_texts().items() if _outside_db(name) and pattern.search(text)]
    assert offenders == [], f"app.platform.db.writes imported outside app/platform/db/: {offenders}"


def test_app_db_imports_no_flask():
    pattern = re.compile(r"^\s*(from flask\b|import flask\b)", re.M)
    offenders = [
        name for name, text in _source_texts().items() if not _outside_db(name) and pattern.search(text)
    ]
    assert offenders == [], f"flask imported under app/platform/db/: {offenders}"


def test_no_event_listener_outside_the_unit_of_work():
    # Work a unit does at its commit is its own `commit()`, not a listener hooked on every Session;
    # an engine's setup (a SQLite connection's, the idle ping) is its dialect's (app/platform/db/engine.py).
    pattern = re.compile(r"listens_for|event\.listen\(")
    offenders = [
        name for name, text in _source_texts().items() if name not in _LISTENER_HOMES and pattern.search(text)
    ]
    assert offenders == [], f"SQLAlchemy event listeners outside app/platform/db/uow.py: {offenders}"


_LISTENER_HOMES = ("app/platform/db/uow.py",)


# --- views are handed their unit, actor and now; signatures stay narrow (issue 43 item 6) --------


def _calls_in(tree: ast.AST) -> set[str]:
    return {ast.unparse(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}


def test_no_view_fetches_its_own_unit_actor_or_now():
    # `inject` (app/platform/api/injection.py) opens the view's unit of work and reads the actor and `now`
    # once, at the edge; a view names what it needs as keyword arguments.
    fetchers = {"unit_of_work", "get_db().unit_of_work", "current_actor", "clock.now"}
    offenders = [
        (str(path.relative_to(ROOT)), sorted(_calls_in(ast.parse(path.read_text())) & fetchers))
        for path in sorted(APP.rglob("views.py"))
    ]
    offenders = [(name, calls) for name, calls in offenders if calls]
    assert offenders == [], f"views that open their unit or read the actor or clock themselves: {offenders}"


MAX_PARAMETERS = 6


def _parameter_count(function: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Every parameter but self and cls; *args and **kwargs count one each."""
    arguments = function.args
    named = [a.arg for a in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs)]
    return (
        len([name for name in named if name not in ("self", "cls")])
        + (arguments.vararg is not None)
        + (arguments.kwarg is not None)
    )


def test_no_function_takes_more_than_six_parameters():
    # Values that travel together are one command or value object, defined beside its service.
    offenders = [
        f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({_parameter_count(node)})"
        for path in sorted(APP.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and _parameter_count(node) > MAX_PARAMETERS
    ]
    assert offenders == [], f"functions over {MAX_PARAMETERS} parameters: {offenders}"
