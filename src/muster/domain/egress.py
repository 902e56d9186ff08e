"""Which addresses the server may send its own requests to (webhooks), as pure rules.

A webhook is a request the server makes on an admin's behalf; aimed at the
server's own network it becomes a probe of it (the cloud metadata service at
169.254.169.254, a database on 127.0.0.1, the office LAN). So only public
addresses are allowed by default: loopback, link-local, private (RFC 1918,
shared 100.64/10), unique-local, site-local, multicast, unspecified, reserved,
documentation and benchmarking ranges are refused, and IPv4 addresses carried
inside IPv6 (IPv4-mapped ``::ffff:a.b.c.d``, IPv4-compatible, NAT64
``64:ff9b::/96``, 6to4 ``2002::/16``, Teredo) are judged by the IPv4 address
they carry. An allow-list (``MUSTER_WEBHOOK_ALLOW``: CIDRs and host names,
separated by commas or spaces) admits what it names.

Resolving names and connecting are the server's business
(:mod:`muster.services.webhook_delivery`); this module only judges an address.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Final

__all__ = ["EgressPolicy", "IPAddress", "non_public_reason"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")
_LABEL: Final = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_HOST_NAME: Final = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*\.?$")


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries, when it is one of the forms that do."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if int(ip) >> 32 == 0 and int(ip) > 1:  # IPv4-compatible ::a.b.c.d (deprecated)
        return ipaddress.IPv4Address(int(ip))
    return None


def non_public_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public unicast address (``None``: it is one)."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_v4(ip)
        if inner is not None:
            reason = non_public_reason(inner)
            return f"{reason} (inside {ip})" if reason else None
        if ip.is_site_local:
            return "a site-local address"
    checks = (
        (ip.is_unspecified, "the unspecified address"),
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (ip.is_private, "a private address"),
        (ip.is_reserved, "a reserved address"),
    )
    for hit, reason in checks:
        if hit:
            return reason
    if not ip.is_global:
        return "not a public address"
    return None


@dataclass(frozen=True, slots=True)
class EgressPolicy:
    """Public addresses, plus the networks and host names the allow-list names."""

    networks: tuple[_Network, ...] = ()
    hosts: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def parse(cls, text: str) -> EgressPolicy:
        """From ``MUSTER_WEBHOOK_ALLOW``; ``ValueError`` naming the entry that is neither
        a CIDR nor a host name."""
        networks: list[_Network] = []
        hosts: set[str] = set()
        for entry in re.split(r"[,\s]+", text.strip()):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            name = entry.lower()
            if any(c in entry for c in "/:") or name.replace(".", "").isdigit():
                raise ValueError(f"{entry!r} is not a valid network (CIDR) or host name")
            if not _HOST_NAME.match(name):
                raise ValueError(f"{entry!r} is not a valid network (CIDR) or host name")
            hosts.add(name.rstrip("."))
        return cls(tuple(networks), frozenset(hosts))

    def refusal(self, host: str, ip: IPAddress) -> str | None:
        """Why a request to ``host`` (the URL's name) at ``ip`` is refused; ``None``: allowed."""
        if host.lower().rstrip(".") in self.hosts:
            return None
        candidates: list[IPAddress] = [ip]
        if isinstance(ip, ipaddress.IPv6Address):
            inner = _embedded_v4(ip)
            if inner is not None:
                candidates.append(inner)
        for net in self.networks:
            if any(c.version == net.version and c in net for c in candidates):
                return None
        reason = non_public_reason(ip)
        if reason is None:
            return None
        where = f"{ip} is" if host.strip("[]") == str(ip) else f"{host} resolves to {ip},"
        return f"{where} {reason}; name it in MUSTER_WEBHOOK_ALLOW to allow it"
