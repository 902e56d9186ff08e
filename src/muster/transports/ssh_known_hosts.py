"""A known_hosts file read once and re-read only when it changes.

asyncssh re-parses a known_hosts *path* on every connection, which costs
O(fleet) per host on a large fleet; handing it the parsed object instead makes
host-key lookups O(1) for plain entries (hashed entries are still scanned).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import asyncssh

from muster.domain.states import FailureReason
from muster.errors import TransportError

__all__ = ["KnownHostsFile", "known_hosts_pattern"]


def known_hosts_pattern(host: str, port: int) -> str:
    """How OpenSSH names ``host:port`` in known_hosts."""
    return host if port == 22 else f"[{host}]:{port}"


class KnownHostsFile:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        self._stamp: tuple[int, int] | None = None
        self._known = asyncssh.SSHKnownHosts()

    def current(self) -> asyncssh.SSHKnownHosts:
        """The parsed file as it is now (an empty set when it does not exist)."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            stamp = None
        except OSError as exc:
            raise TransportError(
                f"cannot read known_hosts {self.path}: {exc}", reason=FailureReason.TRANSPORT_ERROR
            ) from exc
        else:
            stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            known = asyncssh.SSHKnownHosts()
            if stamp is not None:
                with contextlib.suppress(FileNotFoundError):
                    known.load(self.path.read_text(encoding="utf-8", errors="replace"))
            self._known, self._stamp = known, stamp
        return self._known

    def is_known(self, host: str, port: int) -> bool:
        """Whether any key, CA or revocation entry names ``host:port``."""
        matched = self.current().match(host, "", port if port != 22 else None)
        return any(matched)

    def record(self, host: str, port: int, key: asyncssh.SSHKey) -> None:
        """Append ``key`` for ``host:port`` (accept-new's trust on first use)."""
        fields = key.export_public_key("openssh").decode("ascii").split()
        line = f"{known_hosts_pattern(host, port)} {fields[0]} {fields[1]}\n"
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, line.encode("ascii"))
        finally:
            os.close(fd)
