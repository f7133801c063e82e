"""The browser tests' fixtures (the console's pages, the family's booking page): the app served by a
real HTTP server on a free port, and Debian's Chromium driven by Playwright (launched by its path; a
browser is never downloaded). Each browser test saves a screenshot to tmp/artifacts/ when it fails.

A plugin of the root conftest (`pytest_plugins`), so the whole run shares one Chromium: two Playwright
sync sessions alive at once in one thread refuse to start, which a second conftest importing these
fixtures (a session fixture per conftest) once caused."""

from __future__ import annotations

import os
import re
import shutil
import threading
import weakref
from pathlib import Path

import pytest
from axe_playwright_python.base import AXE_FILE_PATH
from werkzeug.serving import make_server

from tests.requirements import need

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("FOLLOWUP_TEST_ARTIFACTS", ROOT / "tmp" / "artifacts"))


def chromium_path() -> str | None:
    """Debian's `chromium`, by its path: CHROMIUM_PATH, else where the PATH finds it. Only the PATH:
    a machine whose PATH has no Chromium (a newcomer's, as .ci/bare-path makes it) skips the
    browser tests, even where the package lies on the disk."""
    given = os.environ.get("CHROMIUM_PATH")
    if given:
        return given if Path(given).exists() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture
def live_server(app):
    """The app on 127.0.0.1 and a free port, served by werkzeug's threaded server; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="console-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def chromium():
    path = chromium_path()
    need("chromium", path is not None, "needs Chromium (Debian package `chromium`)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - a dev dependency
        need("chromium", False, "needs the `playwright` package (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def csp_violations() -> list[str]:
    """What the page's Content-Security-Policy blocked (Chromium's console errors saying so): any
    left at the end fails the test, so a script, style or connection the policy refuses is caught
    (a test that provokes one on purpose clears the list)."""
    return []


@pytest.fixture
def page(request, chromium, csp_violations):
    """A fresh browser context and page; a screenshot in tmp/artifacts/ if the test fails; the test
    fails too if the page's Content-Security-Policy blocked anything."""
    context = chromium.new_context()
    context.set_default_timeout(15_000)
    tab = context.new_page()
    tab.on("console", lambda message: _note_blocked(message, csp_violations))
    yield tab
    report = getattr(request.node, "report_call", None)
    if report is None or report.failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)
        tab.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    context.close()
    if csp_violations:
        pytest.fail("the page's Content-Security-Policy blocked: " + " | ".join(csp_violations))


def _note_blocked(message, violations: list[str]) -> None:
    if message.type == "error" and "Content Security Policy" in message.text:
        violations.append(message.text)


SERIOUS = ("serious", "critical")
# axe-core's run on the document as it stands, answering only its serious and critical violations,
# each said in a line.
_AXE_RUN = """async impacts => {
  const results = await axe.run(document, {resultTypes: ["violations"]});
  return results.violations.filter(v => impacts.includes(v.impact))
    .map(v => `${v.id}: ${v.help} (${v.nodes.length} nodes)`);
}"""
_CONTEXTS_WITH_AXE: weakref.WeakSet = weakref.WeakSet()


def serious_violations(page) -> list[str]:
    """axe-core's serious and critical violations on the page (the copy of axe-core the
    axe-playwright-python package carries). The script is handed to the browser once per context,
    as a script every later document of the context runs first, and only the violations' lines come
    back: the 570 KB script and axe's whole answer crossing Playwright's pipe at every look cost more
    of pytest's CPU than the look itself (a third of an every-page test's)."""
    if page.context not in _CONTEXTS_WITH_AXE:
        page.context.add_init_script(path=AXE_FILE_PATH)
        _CONTEXTS_WITH_AXE.add(page.context)
    if not page.evaluate("typeof window.axe === 'object'"):  # a document opened before that
        page.evaluate(AXE_FILE_PATH.read_text(encoding="utf-8"))
    return page.evaluate(_AXE_RUN, list(SERIOUS))
