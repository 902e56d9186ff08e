"""Real hosts in network namespaces, with knobs to make them fail.

Each :class:`NetnsHost` is a namespace ``muster-<pid>-<n>`` joined to the
host by a veth pair (``10.77.<n>.1`` outside, ``10.77.<n>.2`` inside) with a
real sshd on port 22 inside. Failure knobs, as measured on this kernel:

- ``stop_sshd()``: connections are refused at once.
- ``link_down()``: the namespace's end goes down; the host side keeps its
  route (``linkdown``), so nothing leaks to the default route. A new connect
  fails with EHOSTUNREACH after ARP gives up (~3 s); an open connection goes
  silent (only keepalives notice).
- ``blackhole()``: a permanent neighbour entry with a MAC nobody owns, so
  every packet is dropped silently: connects time out, open connections go
  silent. (``ip route add blackhole`` is *not* silent here: local senders get
  EINVAL at once; that is ``blackhole_route()``.)
- ``slow(delay_ms)``: a delaying TCP proxy in front of sshd (no ``tc netem``
  and no iptables on this kernel); returns the proxy's address.

Names carry the creating pid, so :func:`cleanup_stale` can remove what a
crashed run left behind without touching a live run's namespaces.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import subprocess
from pathlib import Path

from tests.fleet.delay_proxy import DelayProxy
from tests.fleet.sshd import SshdServer

__all__ = ["NetnsHost", "cleanup_stale", "netns_available"]

_PREFIX = "muster-"
_BOGUS_MAC = "02:00:5e:00:de:ad"
_counter = itertools.count()
#: Subnets this process has handed out and not yet released.
_reserved: set[int] = set()


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", *args], check=check, capture_output=True, text=True, stdin=subprocess.DEVNULL
    )


def netns_available() -> str | None:
    """None when namespaces with veth pairs can be made here, else why not."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    if not Path("/usr/sbin/sshd").exists():
        return "OpenSSH sshd is not installed"
    name = f"{_PREFIX}{os.getpid()}-probe"
    try:
        made = _ip("netns", "add", name, check=False)
        if made.returncode != 0:
            return f"ip netns add failed: {made.stderr.strip()}"
        veth = _ip("link", "add", f"mq{os.getpid()}a", "type", "veth", "peer", "name",
                   f"mq{os.getpid()}b", check=False)  # fmt: skip
        if veth.returncode != 0:
            return f"cannot create a veth pair: {veth.stderr.strip()}"
        _ip("link", "del", f"mq{os.getpid()}a", check=False)
        return None
    finally:
        _ip("netns", "del", name, check=False)


def cleanup_stale() -> list[str]:
    """Delete namespaces (and their routes) left by muster runs that died."""
    removed = []
    listing = _ip("netns", "list", check=False).stdout
    for line in listing.splitlines():
        name = line.split()[0] if line.split() else ""
        m = re.fullmatch(rf"{_PREFIX}(\d+)-\w+", name)
        if m and not Path(f"/proc/{m.group(1)}").exists():
            _kill_netns_pids(name)
            _ip("netns", "del", name, check=False)
            removed.append(name)
    # Blackhole routes outlive their veth; drop those of subnets nobody uses.
    used = _used_subnets()
    for line in _ip("-4", "route", "show", "type", "blackhole", check=False).stdout.splitlines():
        m = re.search(r"10\.77\.(\d+)\.\d+", line)
        if m and int(m.group(1)) not in used:
            _ip("route", "del", *line.split(), check=False)
    return removed


def _kill_netns_pids(name: str) -> None:
    for pid in _ip("netns", "pids", name, check=False).stdout.split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), 9)


def _used_subnets() -> set[int]:
    text = _ip("-4", "-o", "addr", "show", check=False).stdout
    return {int(n) for n in re.findall(r"inet 10\.77\.(\d+)\.", text)}


def _free_subnet() -> int:
    used = _used_subnets() | _reserved
    for n in range(1, 255):
        if n not in used:
            _reserved.add(n)
            return n
    raise RuntimeError("no free 10.77.<n>.0/24 subnet left for a test namespace")


class NetnsHost:
    """One namespace host; use as a context manager or call ``destroy()``."""

    def __init__(self, *, client_key: Path | None = None) -> None:
        self.subnet = _free_subnet()
        tag = f"{os.getpid()}-{next(_counter)}"
        self.name = f"{_PREFIX}{tag}"
        self.host_if = f"mh{tag.replace('-', 'n')}"[:15]
        self.peer_if = f"mp{tag.replace('-', 'n')}"[:15]
        self.host_addr = f"10.77.{self.subnet}.1"
        self.addr = f"10.77.{self.subnet}.2"
        self.port = 22
        self._client_key = client_key
        self.sshd: SshdServer | None = None
        self._proxies: list[DelayProxy] = []
        self._blackholed = False
        self._routed = False
        self._created = False

    def create(self) -> NetnsHost:
        try:
            _ip("netns", "add", self.name)
            self._created = True
            _ip("link", "add", self.host_if, "type", "veth", "peer", "name", self.peer_if)
            _ip("link", "set", self.peer_if, "netns", self.name)
            _ip("addr", "add", f"{self.host_addr}/24", "dev", self.host_if)
            _ip("link", "set", self.host_if, "up")
            self._in("ip", "addr", "add", f"{self.addr}/24", "dev", self.peer_if)
            self._in("ip", "link", "set", self.peer_if, "up")
            self._in("ip", "link", "set", "lo", "up")
        except Exception:
            self.destroy()
            raise
        return self

    def _in(self, *argv: str) -> None:
        subprocess.run(
            ["ip", "netns", "exec", self.name, *argv],
            check=True,
            capture_output=True,
            stdin=subprocess.DEVNULL,
        )

    # -- sshd --------------------------------------------------------------

    def start_sshd(self) -> SshdServer:
        if self.sshd is None:
            self.sshd = SshdServer(
                [(self.addr, self.port)], netns=self.name, client_key=self._client_key
            )
        self.sshd.start()
        return self.sshd

    def stop_sshd(self) -> None:
        """Refuse new connections (and end live sessions)."""
        if self.sshd is not None:
            self.sshd.stop()

    # -- failure knobs -----------------------------------------------------

    def link_down(self) -> None:
        self._in("ip", "link", "set", self.peer_if, "down")

    def link_up(self) -> None:
        self._in("ip", "link", "set", self.peer_if, "up")

    def blackhole(self) -> None:
        """Drop every packet to the host silently (connects time out)."""
        _ip("neigh", "replace", self.addr, "lladdr", _BOGUS_MAC, "dev", self.host_if,
            "nud", "permanent")  # fmt: skip
        self._blackholed = True

    def unblackhole(self) -> None:
        if self._blackholed:
            _ip("neigh", "del", self.addr, "dev", self.host_if, check=False)
            self._blackholed = False

    def blackhole_route(self) -> None:
        """A kernel blackhole route: local connects fail with EINVAL at once."""
        _ip("route", "add", "blackhole", f"{self.addr}/32")
        self._routed = True

    def slow(self, delay_ms: float) -> tuple[str, int]:
        """Start a delaying proxy to this host's sshd; return its address."""
        proxy = DelayProxy((self.addr, self.port), delay_ms).start()
        self._proxies.append(proxy)
        return proxy.address

    # -- teardown ----------------------------------------------------------

    def destroy(self) -> None:
        for proxy in self._proxies:
            proxy.stop()
        self._proxies.clear()
        if self.sshd is not None:
            self.sshd.cleanup()
        if self._routed:
            _ip("route", "del", "blackhole", f"{self.addr}/32", check=False)
            self._routed = False
        self.unblackhole()
        if self._created:
            _kill_netns_pids(self.name)
            _ip("netns", "del", self.name, check=False)
            self._created = False
        # Deleting the namespace destroys the peer and with it the pair;
        # this covers a failure between creating the pair and moving it.
        _ip("link", "del", self.host_if, check=False)
        _reserved.discard(self.subnet)

    def __enter__(self) -> NetnsHost:
        return self.create()

    def __exit__(self, *exc: object) -> None:
        self.destroy()
