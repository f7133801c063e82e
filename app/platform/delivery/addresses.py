"""Where the engine may reach a URL someone else picked (a webhook's receiver, a provider's media
link): public unicast addresses only, unless settings allow private ones.

A subscriber picks the URL, so an unchecked one lets a clinic admin make the server POST to the
database, the metadata service or anything else on the internal network (SSRF). The URL is checked
when the subscription is made (literal addresses and names that resolve) and again at each delivery,
where the connection goes to the address that was checked: a name re-resolved by the HTTP client
could answer differently the second time (DNS rebinding).

A delivery has one deadline for the whole exchange (name lookup, connect, TLS, request, answer):
a socket timeout alone bounds each read, so a receiver trickling a byte now and then would hold
a worker for as long as it likes. The lookup runs in a thread given up at the deadline, and a
timer shuts the socket down at the deadline, which ends any read or write blocked on it.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import threading
import time
from contextlib import contextmanager, suppress
from urllib.parse import urlsplit


class AddressRefused(Exception):
    """The URL's host is (or resolves to) an address webhooks may not reach."""


class DeadlineExceeded(TimeoutError):
    """The exchange did not end within its deadline; it was cut."""


_NAT64 = ipaddress.ip_network(
    "64:ff9b::/96"
)  # RFC 6052's well-known prefix: the IPv4 address is the last 32 bits


def is_refused(address: str) -> bool:
    """Private, loopback, link-local, unspecified, reserved (all: not global) or multicast, also when
    it is written inside an IPv6 address that reaches it (mapped, NAT64, 6to4, IPv4-compatible)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    embedded = _embedded_ipv4(ip) if isinstance(ip, ipaddress.IPv6Address) else None
    if embedded is not None:
        ip = embedded
    return ip.is_multicast or not ip.is_global


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
    if not allow_private:
        refused = [a for a in addresses if is_refused(a)]
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
def _cut_at(ends: float, connection: _Pinned, deadline: float):
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
            raise DeadlineExceeded(f"no complete answer within {deadline:.1f} s") from exc
        raise
    finally:
        timer.cancel()


def post(url: str, *, body: bytes, headers: dict, deadline: float, allow_private: bool) -> int:
    """POST to `url` at its checked address; the status code. No redirects are followed.

    The whole exchange (lookup, connect, TLS, request, status and headers) ends within `deadline`
    seconds, or raises DeadlineExceeded (an OSError). The answer's body is not read.
    """
    ends = time.monotonic() + deadline
    parts = urlsplit(url)
    address = resolve(url, allow_private=allow_private, timeout=deadline)
    connection_class = _PinnedHTTPS if parts.scheme == "https" else _PinnedHTTP
    connection = connection_class(parts.hostname, _port(parts), address=address, ends=ends)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        with _cut_at(ends, connection, deadline):
            connection.request("POST", path, body=body, headers=headers)
            return connection.getresponse().status
    finally:
        connection.close()
