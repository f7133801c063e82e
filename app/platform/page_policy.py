"""The Content-Security-Policy of the pages people open: the console's and the family's booking page.

Scripts, styles and everything else only from our own origin, none inline (no <script> in a
template, no onclick=, no style=: each lives in a static file), so an injected tag or attribute in
server HTML (which the console's scripts swap in with innerHTML) runs nothing. `connect_to` adds
origins the page's scripts may talk to (the console's event stream, when it is served on its own
origin); `frame_ancestors` the sites that may frame the page (the booking page's clinic websites).
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit


def content_security_policy(*, frame_ancestors: Sequence[str] = (), connect_to: Sequence[str] = ()) -> str:
    framers = " ".join(frame_ancestors) or "'none'"
    connect = " ".join(("'self'", *connect_to))
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src {connect}; object-src 'none'; base-uri 'none'; form-action 'self'; "
        f"frame-ancestors {framers}"
    )


def origin_of(url: str) -> list[str]:
    """[scheme://host[:port]] of an absolute URL; [] for a path on our own origin."""
    parts = urlsplit(url)
    return [f"{parts.scheme}://{parts.netloc}"] if parts.scheme and parts.netloc else []
