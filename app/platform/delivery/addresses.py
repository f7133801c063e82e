"""The one guard for every URL someone else picked that the engine reaches (a webhook's receiver, a
provider's calendar feed, an image a clinic sends): public unicast addresses only, unless settings
allow private ones (a test's or a local setup's servers on the loopback).

A user picks the URL, so an unchecked one lets a clinic admin make the server reach the database,
the metadata service or anything else on the internal network (SSRF). The name is resolved once,
every address it gives is checked, and the connection goes to the address that was checked: a name
re-resolved by an HTTP client could answer differently the second time (DNS rebinding). A redirect
is followed here, never by a client library: each hop is checked and pinned the same way, at most
MAX_REDIRECTS of them. Link-local, multicast and unspecified addresses and the clouds' metadata
services are refused even where private addresses are allowed: nothing a clinic runs lives there.

Whatever goes wrong (a refused address, no DNS answer, a refused connection, the deadline, a bad
status, too many redirects, too large), `fetch` raises Unreachable, whose text is the same for every
reason: a user who sees which one it was could map the internal network through it. Why it failed
is in `detail`, for the logs (no URL in it: a feed's address is a secret).

An exchange has one deadline for the whole of it (name lookups, connects, TLS, requests, answers,
every hop): a socket timeout alone bounds each read, so a server trickling a byte now and then would
hold a worker for as long as it likes. The lookup runs in a thread given up at the deadline, and a
timer shuts the socket down at the deadline, which ends any read or write blocked on it.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import threading
import time
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

MAX_REDIRECTS = 3
# What a user is told whatever the reason (see the module's docstring): one text, never the cause.
UNREACHABLE = "could not be reached: it must be a public http(s) address that answers in time"


class AddressRefused(Exception):
    """The URL's host is (or resolves to) an address the engine may not reach."""


class Unreachable(Exception):
    """The URL could not be fetched, for whichever reason: its text is always UNREACHABLE; `detail`
    says why, for the logs."""

    def __init__(self, detail: str):
        super().__init__(UNREACHABLE)
        self.detail = detail


class DeadlineExceeded(TimeoutError):
    """The exchange did not end within its deadline; it was cut."""


_NAT64 = ipaddress.ip_network(
    "64:ff9b::/96"
)  # RFC 6052's well-known prefix: the IPv4 address is the last 32 bits


# The clouds' instance metadata services outside link-local: AWS's IPv6 one, Alibaba's, Oracle's.
_METADATA = frozenset(ipaddress.ip_address(a) for a in ("fd00:ec2::254", "100.100.100.200", "192.0.0.192"))


def _routed(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The address a connection to `address` reaches: an IPv4 one written inside IPv6 is that IPv4 one."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    embedded = _embedded_ipv4(ip) if isinstance(ip, ipaddress.IPv6Address) else None
    return embedded if embedded is not None else ip


def is_refused(address: str) -> bool:
    """Private, loopback, link-local, unspecified, reserved (all: not global) or multicast, also when
    it is written inside an IPv6 address that reaches it (mapped, NAT64, 6to4, IPv4-compatible)."""
    ip = _routed(address)
    return ip.is_multicast or not ip.is_global


def is_never_reached(address: str) -> bool:
    """Refused even where private addresses are allowed: link-local (the metadata service's
    169.254.169.254), multicast, unspecified, and the clouds' other metadata addresses."""
    ip = _routed(address)
    return ip.is_link_local or ip.is_multicast or ip.is_unspecified or ip in _METADATA


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one routes to: ::ffff:a.b.c.d, 64:ff9b::a.b.c.d (a NAT64 gateway
    forwards it), 2002:aabb:ccdd::/48 (a 6to4 relay does) and the deprecated ::a.b.c.d
    (IPv4-compatible; :: and ::1 themselves are not). Python calls the last three global."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    if int(ip) >> 32 == 0 and int(ip) > 1:
        return ipaddress.IPv4Address(int(ip))
    return None


MAX_HOSTNAME = 253  # RFC 1035: a name's text form; each label 1..63 characters


def url_problem(url: str) -> str | None:
    """Why `url` cannot be a webhook's address (None when it can): an http(s) URL whose host is an
    IP address or a DNS name and whose port is 1..65535. urlsplit alone accepts a port it cannot
    read back, `a..b` (which the resolver then refuses with a UnicodeError) and raises on `[::1`."""
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        return "a URL has no spaces or control characters"
    try:
        parts = urlsplit(url)
        port = parts.port  # a ValueError when it is not a number in 0..65535
    except ValueError as exc:
        return f"not a URL: {exc}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "give an http(s) URL with a host"
    if port == 0:
        return "the port must be between 1 and 65535"
    if not (parts.path + parts.query).isascii():  # the request line is ASCII: http.client refuses it
        return "percent-encode the path and query (they must be ASCII)"
    return _host_problem(parts.hostname)


def _host_problem(host: str) -> str | None:
    if ":" in host:  # only an IPv6 address has colons in its host
        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            return f"{host!r} is not an IPv6 address"
        return None
    try:
        name = host.rstrip(".").encode("idna").decode("ascii")  # what the resolver will look up
    except UnicodeError:
        return f"{host!r} is not a host name (an empty or overlong label)"
    labels = name.split(".")
    if len(name) > MAX_HOSTNAME or not all(0 < len(label) <= 63 for label in labels):
        return f"{host!r} is not a host name (an empty or overlong label)"
    return None


def _port(parts) -> int:
    return parts.port or (443 if parts.scheme == "https" else 80)


def _getaddrinfo(host: str, port: int, timeout: float) -> list:
    """socket.getaddrinfo within `timeout` seconds: the system resolver has no timeout of its own
    a caller can set, so it runs in a daemon thread that is left to finish alone when it is late."""
    outcome: list = []
    done = threading.Event()

    def lookup():
        try:
            outcome.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except BaseException as exc:  # handed to the caller below
            outcome.append(exc)
        finally:
            done.set()

    threading.Thread(target=lookup, name=f"resolve {host}", daemon=True).start()
    if not done.wait(max(timeout, 0.0)):
        raise DeadlineExceeded(f"no answer from DNS for {host} within {timeout:.1f} s")
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]


def resolve(url: str, *, allow_private: bool, timeout: float) -> str:
    """The address to connect to for `url`: its first resolved address, all of them checked.

    Raises AddressRefused for a refused address, OSError when the name does not resolve (or
    DeadlineExceeded, an OSError, when it does not within `timeout` seconds).
    """
    parts = urlsplit(url)
    infos = _getaddrinfo(parts.hostname, _port(parts), timeout)
    addresses = [info[4][0] for info in infos]
    refused = [a for a in addresses if is_never_reached(a) or (not allow_private and is_refused(a))]
    if refused:
        raise AddressRefused(f"{parts.hostname} is a private or reserved address ({refused[0]})")
    return addresses[0]


def check_url(url: str, *, allow_private: bool, timeout: float) -> None:
    """At subscription time: refuse a URL whose host is or resolves to a refused address.

    A name that does not resolve now (or not within `timeout`) is let through; the check at
    delivery decides then.
    """
    try:
        resolve(url, allow_private=allow_private, timeout=timeout)
    except OSError:
        return


class _Pinned:
    """An HTTP(S) connection to the checked address (never a second lookup), within a deadline:
    each socket operation waits at most the time left, and `cut` ends one blocked mid-way."""

    def __init__(self, host, port, *, address: str, ends: float):
        super().__init__(host, port, timeout=_left(ends))
        self._address, self._ends = address, ends

    def _open(self) -> socket.socket:
        sock = socket.create_connection((self._address, self.port), _left(self._ends))
        sock.settimeout(_left(self._ends))
        return sock

    def cut(self) -> None:
        sock = self.sock
        if sock is not None:
            # At the file descriptor (also under TLS): a blocked recv or send returns at once.
            with suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _PinnedHTTP(_Pinned, http.client.HTTPConnection):
    def connect(self):
        self.sock = self._open()
        _left(self._ends)  # a cut that came before the socket was ours


class _PinnedHTTPS(_Pinned, http.client.HTTPSConnection):
    def connect(self):
        # The handshake runs once the TLS socket is `self.sock`, so `cut` reaches it too.
        self.sock = self._context.wrap_socket(
            self._open(), server_hostname=self.host, do_handshake_on_connect=False
        )  # SNI and certificate by name
        _left(self._ends)  # a cut that came before the socket was ours
        self.sock.do_handshake()


def _left(ends: float) -> float:
    """Seconds left before `ends` (a time.monotonic()); DeadlineExceeded when none are."""
    left = ends - time.monotonic()
    if left <= 0:
        raise DeadlineExceeded("the deadline passed")
    return left


@contextmanager
def _cut_at(ends: float, connection: _Pinned):
    """Shut the connection's socket down at `ends`; what then fails is a DeadlineExceeded."""
    expired = threading.Event()

    def cut():
        expired.set()
        connection.cut()

    timer = threading.Timer(max(ends - time.monotonic(), 0.0), cut)
    timer.daemon = True
    timer.start()
    try:
        yield
    except (OSError, http.client.HTTPException) as exc:
        if expired.is_set():
            raise DeadlineExceeded("no complete answer within the deadline") from exc
        raise
    finally:
        timer.cancel()


@dataclass(frozen=True)
class Answer:
    """What a server answered: its status, headers and (a 2xx's, when asked for) body."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes


class _TooLarge(Exception):
    pass


def _exchange(url: str, *, request: dict, ends: float, allow_private: bool, max_bytes: int) -> Answer:
    """One request (`request`: method, body, headers) to `url` at its checked address, before
    `ends`; a 2xx's body read up to `max_bytes` (0: not read)."""
    problem = url_problem(url)
    if problem is not None:
        raise AddressRefused(problem)
    parts = urlsplit(url)
    address = resolve(url, allow_private=allow_private, timeout=_left(ends))
    connection_class = _PinnedHTTPS if parts.scheme == "https" else _PinnedHTTP
    connection = connection_class(parts.hostname, _port(parts), address=address, ends=ends)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        with _cut_at(ends, connection):
            connection.request(request["method"], path, body=request.get("body"), headers=request["headers"])
            response = connection.getresponse()
            body = b""
            if max_bytes and 200 <= response.status < 300:
                body = response.read(max_bytes + 1)
                if len(body) > max_bytes:
                    raise _TooLarge(f"larger than {max_bytes} bytes")
            return Answer(response.status, response.headers, body)
    finally:
        connection.close()


def post(url: str, *, body: bytes, headers: dict, deadline: float, allow_private: bool) -> int:
    """POST to `url` at its checked address; the status code. No redirects are followed (a webhook
    is delivered to the URL its subscriber gave).

    The whole exchange (lookup, connect, TLS, request, status and headers) ends within `deadline`
    seconds, or raises DeadlineExceeded (an OSError). The answer's body is not read. AddressRefused
    for a refused address; OSError or HTTPException for the rest.
    """
    ends = time.monotonic() + deadline
    request = {"method": "POST", "body": body, "headers": headers}
    return _exchange(url, request=request, ends=ends, allow_private=allow_private, max_bytes=0).status


_REDIRECTS = (301, 302, 303, 307, 308)
_CREDENTIALS = ("authorization", "cookie", "proxy-authorization")


def fetch(
    url: str,
    *,
    method: str = "GET",
    headers: dict | None = None,
    deadline: float,
    allow_private: bool,
    max_bytes: int = 0,
) -> Answer:
    """GET (or HEAD) `url` through the guard: each hop's address checked and pinned, at most
    MAX_REDIRECTS redirects, all within `deadline` seconds; a 2xx's body up to `max_bytes` (0: not
    read). Unreachable, with the one neutral text, for anything else."""
    if method not in ("GET", "HEAD"):
        raise ValueError("fetch reads: GET or HEAD (a webhook's POST is `post`)")
    ends = time.monotonic() + deadline
    request = {"method": method, "headers": dict(headers or {})}
    try:
        for _hop in range(MAX_REDIRECTS + 1):
            answer = _exchange(
                url, request=request, ends=ends, allow_private=allow_private, max_bytes=max_bytes
            )
            location = answer.headers.get("Location")
            if answer.status not in _REDIRECTS or not location:
                break
            following = urljoin(url, location)
            if _origin(following) != _origin(url):  # credentials stay with the host they were for
                request["headers"] = {
                    k: v for k, v in request["headers"].items() if k.lower() not in _CREDENTIALS
                }
            url = following
        else:
            raise Unreachable(f"more than {MAX_REDIRECTS} redirects")
    except (AddressRefused, OSError, http.client.HTTPException, _TooLarge, ValueError) as error:
        raise Unreachable(f"{type(error).__name__}: {error}") from None
    if not 200 <= answer.status < 300:
        raise Unreachable(f"answered HTTP {answer.status}")
    return answer


def _origin(url: str) -> tuple[str, str | None, int]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname, _port(parts)
