"""The documentation site's diagrams are drawn from the site itself: the built site, served on
127.0.0.1 and opened in Debian's Chromium with every request off this host refused, draws its Mermaid
diagram as an SVG and asks no CDN for anything."""

from __future__ import annotations

import functools
import http.server
import threading
from urllib.parse import urlsplit

import pytest

from tests.test_docs import build_site
from tests.test_docs import openapi_path as openapi_path  # the fixture


@pytest.fixture
def served_site(tmp_path, openapi_path):
    site = build_site(tmp_path, openapi_path)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def test_the_architecture_diagram_is_drawn_without_a_cdn(page, served_site):
    elsewhere = []

    def only_this_host(route):
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_this_host)
    page.goto(f"{served_site}/architecture/", wait_until="domcontentloaded", timeout=120_000)
    # The theme draws each diagram into a closed shadow root on a `div.mermaid` that replaces the
    # page's `pre.mermaid` source: drawn, the source is gone and the drawing takes room.
    drawn = "() => !document.querySelector('pre.mermaid') && document.querySelector('div.mermaid')"
    page.wait_for_function(drawn, timeout=120_000)
    assert page.locator("div.mermaid").first.bounding_box()["height"] > 100
    assert elsewhere == []
