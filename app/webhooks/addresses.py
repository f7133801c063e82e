"""Where a webhook may post: public unicast addresses only, unless settings allow private ones.

A subscriber picks the URL, so an unchecked one lets a clinic admin make the server POST to the
database, the metadata service or anything else on the internal network (SSRF). The URL is checked
when the subscription is made (literal addresses and names that resolve) and again at each delivery,
where the connection goes to the address that was checked: a name re-resolved by the HTTP client
could answer differently the second time (DNS rebinding).
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
from urllib.parse import urlsplit


class AddressRefused(Exception):
    """The URL's host is (or resolves to) an address webhooks may not reach."""


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


def _port(parts) -> int:
    return parts.port or (443 if parts.scheme == "https" else 80)


def resolve(url: str, *, allow_private: bool) -> str:
    """The address to connect to for `url`: its first resolved address, all of them checked.

    Raises AddressRefused for a refused address, OSError when the name does not resolve.
    """
    parts = urlsplit(url)
    infos = socket.getaddrinfo(parts.hostname, _port(parts), type=socket.SOCK_STREAM)
    addresses = [info[4][0] for info in infos]
    if not allow_private:
        refused = [a for a in addresses if is_refused(a)]
        if refused:
            raise AddressRefused(f"{parts.hostname} is a private or reserved address ({refused[0]})")
    return addresses[0]


def check_url(url: str, *, allow_private: bool) -> None:
    """At subscription time: refuse a URL whose host is or resolves to a refused address.

    A name that does not resolve now is let through; the check at delivery decides then.
    """
    try:
        resolve(url, allow_private=allow_private)
    except OSError:
        return


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, host, port, *, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, host, port, *, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # SNI and cert by name


def post(url: str, *, body: bytes, headers: dict, timeout: float, allow_private: bool) -> int:
    """POST to `url` at its checked address; the status code. No redirects are followed."""
    parts = urlsplit(url)
    address = resolve(url, allow_private=allow_private)
    connection_class = _PinnedHTTPS if parts.scheme == "https" else _PinnedHTTP
    connection = connection_class(parts.hostname, _port(parts), address=address, timeout=timeout)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("POST", path, body=body, headers=headers)
        return connection.getresponse().status
    finally:
        connection.close()
