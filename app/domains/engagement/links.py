"""The links of a message and their tracked form (pure: no I/O, no clock).

A message's links are the http(s) URLs of its stored text, then any more of its HTML, in the order
they first appear, each once. Only those its own text wrote (the template's, the sequence step's,
the person's) are tracked, never one a merge field brought in: a lead named
"https://evil.example/phish" must not get a link on the engine's domain that leads there. So a
message to a lead keeps its text as written, before its merge fields were filled in (its context's
`as_written`), and its trackable links are its links among the ones that text wrote: link `n` of a
message is always the same URL, so the redirect finds it again from the stored message, never from
the token or the request. A token names the message, the link's index and a digest of the URL it
was made for, signed (itsdangerous) so that none can be changed; the redirect answers only when
the stored URL is that one."""

from __future__ import annotations

import hashlib
import hmac
import html as html_lib
import re
from collections.abc import Callable

from itsdangerous import BadSignature, URLSafeSerializer

_URL = re.compile(r"https?://[^\s<>\"'`]+", re.IGNORECASE)
_TRAILING = ".,;:!?)]}'\""  # ends a sentence around a URL more often than the URL itself
_CLICK_SALT, _OPEN_SALT = "followup.engagement.click", "followup.engagement.open"
MAX_LINKS = 50  # a message with more is not tracked past them (its later links go out untouched)


def _clean(url: str) -> str:
    return url.rstrip(_TRAILING)


def links_of(text: str | None, html: str | None) -> list[str]:
    """The message's links, in order, each once (the text part first, then the HTML's others)."""
    found: list[str] = []
    for match in _URL.finditer(text or ""):
        _add(found, _clean(match.group(0)))
    for match in _URL.finditer(html or ""):
        _add(found, _clean(html_lib.unescape(match.group(0))))
    return found[:MAX_LINKS]


def trackable(text: str | None, html: str | None, as_written: str | None) -> list[str]:
    """The links of a message (its stored texts) that go through the redirect, in order: those its
    text `as_written` (before merge fields were filled in) wrote. A message that kept no such text
    (a file template's, an older message) has none."""
    wrote = set(links_of(as_written, None))
    return [url for url in links_of(text, html) if url in wrote]


def _add(found: list[str], url: str) -> None:
    if url not in found and "://" in url and len(url) > len("https://"):
        found.append(url)


def rewritten_text(text: str, links: list[str], tracked: Callable[[int], str]) -> str:
    """The text with each of the message's links replaced by its tracked URL."""

    def replace(match: re.Match) -> str:
        raw = match.group(0)
        url = _clean(raw)
        if url not in links:
            return raw
        return tracked(links.index(url)) + raw[len(url) :]

    return _URL.sub(replace, text)


def rewritten_html(html: str, links: list[str], tracked: Callable[[int], str]) -> str:
    """The HTML with each link's href replaced by its tracked URL; a link written as plain text
    (the message templates escape the body) becomes an anchor showing the original URL."""

    def replace(match: re.Match) -> str:
        raw = match.group(0)
        url = _clean(html_lib.unescape(raw))
        if url not in links:
            return raw
        shown = html_lib.escape(url, quote=False)
        kept = raw[len(shown) :] if raw.startswith(shown) else ""
        target = html_lib.escape(tracked(links.index(url)))
        before = match.string[max(0, match.start() - 6) : match.start()].lower()
        after = match.string[match.end() : match.end() + 4].lower()
        if before.endswith(('href="', "href='")):
            return target + kept
        if before.endswith(">") and after.startswith("</a>"):
            return raw  # an anchor's own text: its href carries the tracking
        return f'<a href="{target}">{shown}</a>{kept}'

    return _URL.sub(replace, html)


def _digest(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:16]  # the token is signed: it names, not protects


def click_token(secret: str, notification_id: int, link: int, url: str) -> str:
    """The token of link `link` of a message, made for `url` (that link's URL)."""
    return URLSafeSerializer(secret, salt=_CLICK_SALT).dumps([notification_id, link, _digest(url)])


def made_for(digest: str, url: str) -> bool:
    """Whether a click token's digest is the one of `url`."""
    return hmac.compare_digest(digest, _digest(url))


def open_token(secret: str, notification_id: int) -> str:
    return URLSafeSerializer(secret, salt=_OPEN_SALT).dumps(notification_id)


def read_click_token(secret: str, token: str) -> tuple[int, int, str] | None:
    """(notification id, link index, the URL's digest) of a click token we signed; None if it is
    not one (a token made before tokens named their URL is not: its link may have moved)."""
    try:
        value = URLSafeSerializer(secret, salt=_CLICK_SALT).loads(token)
    except BadSignature:
        return None
    if not (isinstance(value, list) and len(value) == 3 and all(_whole(v) for v in value[:2])):
        return None
    if not isinstance(value[2], str):
        return None
    return value[0], value[1], value[2]


def read_open_token(secret: str, token: str) -> int | None:
    try:
        value = URLSafeSerializer(secret, salt=_OPEN_SALT).loads(token)
    except BadSignature:
        return None
    return value if _whole(value) else None


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**31


# --- mail proxies ---------------------------------------------------------------------------------
# Who fetches a pixel without a person reading: Apple Mail Privacy Protection loads every image of
# every email through its proxy as the email arrives, with a bare "Mozilla/5.0" user agent; Gmail's
# image proxy says "GoogleImageProxy" (via ggpht.com), Yahoo's "YahooMailProxy". Gmail's proxy
# fetches when the person opens the email, but the fetch is cached and repeated at will, so it is
# marked as a machine's too: an open there is counted only where the clinic counts machine opens.
_MACHINE_AGENTS = ("googleimageproxy", "yahoomailproxy", "ggpht.com")


def is_machine_agent(user_agent: str | None) -> bool:
    agent = (user_agent or "").strip()
    return agent == "Mozilla/5.0" or not agent or any(name in agent.lower() for name in _MACHINE_AGENTS)
