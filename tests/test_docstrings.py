"""Docstrings under app/ name only files and folders the repository has: a module, class or
function docstring that points a reader at `app/.../x.py`, `app/.../folder` (or a page of docs/, a
module of workers/ or tests/) is read as the map to the code, so a renamed or removed file leaves
it lying until someone follows it."""

from __future__ import annotations

import ast
import re

from tests.workers import PROJECT_ROOT

# A path of app/ (or workers/, tests/, docs/) up to the first character a path does not have:
# `app/platform/db/uow.py` whole, and `app/domains/leads` of `app/domains/leads/service.create_lead`
# or of `app/domains/leads.` at a sentence's end.
_PATH = re.compile(r"(?<![\w/.<-])((?:app|workers|tests|docs)/[\w/-]*\w(?:\.py|\.md)?)")


def _docstrings(tree: ast.Module):
    for node in [tree, *ast.walk(tree)]:
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            text = ast.get_docstring(node, clean=False)
            if text:
                yield getattr(node, "lineno", 1), text


def _named(path: str) -> bool:
    """A .py or .md file that exists; a folder, or a module written without its .py (then its attribute)."""
    target = PROJECT_ROOT / path
    if path.endswith((".py", ".md")):
        return target.is_file()
    return target.is_dir() or target.with_name(target.name + ".py").is_file()


def test_every_path_a_docstring_under_app_names_exists():
    modules = [*sorted((PROJECT_ROOT / "app").rglob("*.py")), PROJECT_ROOT / "beat_schedule.py"]
    assert len(modules) > 100  # the walk found the package
    missing = []
    for module in modules:
        tree = ast.parse(module.read_text(), filename=str(module))
        for line, text in _docstrings(tree):
            for path in _PATH.findall(text):
                if not _named(path):
                    missing.append(f"{module.relative_to(PROJECT_ROOT)}:{line}: {path}")
    assert not missing, "docstrings naming files or folders that do not exist:\n" + "\n".join(missing)
