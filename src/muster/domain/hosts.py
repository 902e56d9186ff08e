"""Hosts: the machines muster runs plans on."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from muster.domain.scripts import Shell

__all__ = [
    "PLATFORM_DEFAULT_SHELLS",
    "Host",
    "TransportKind",
    "is_windows_platform",
    "skip_reason",
]


class TransportKind(enum.StrEnum):
    LOCAL = "local"
    SSH = "ssh"
    AGENT = "agent"


#: Shells a host is assumed to have when it advertises none.
PLATFORM_DEFAULT_SHELLS: Mapping[str, tuple[str, ...]] = {
    "linux": ("bash", "sh"),
    "darwin": ("bash", "sh", "zsh"),
    "freebsd": ("sh",),
    "windows": ("powershell", "cmd"),
}


def is_windows_platform(platform: str) -> bool:
    """The one "is Windows" rule: ``windows``, ``Windows``, ``win32``... all count."""
    return platform.lower().startswith("win")


@dataclass(frozen=True, slots=True)
class Host:
    name: str
    address: str | None = None
    port: int = 22
    user: str | None = None
    transport: TransportKind = TransportKind.SSH
    platform: str = "linux"
    #: Advertised shells; empty means the platform's defaults.
    shells: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    groups: tuple[str, ...] = ()
    vars: Mapping[str, str] = field(default_factory=dict)
    key_file: str | None = None
    credential_ref: str | None = None
    id: str | None = None

    @property
    def hostname(self) -> str:
        """Where to connect: the address, or the name when none is given."""
        return self.address or self.name

    @property
    def effective_shells(self) -> tuple[str, ...]:
        if self.shells:
            return self.shells
        return PLATFORM_DEFAULT_SHELLS.get(self.platform.lower(), ("sh",))

    @property
    def is_windows(self) -> bool:
        return is_windows_platform(self.platform)

    def has_shell(self, shell: str) -> bool:
        return shell in self.effective_shells


def skip_reason(host: Host, shell: str) -> str | None:
    """Why ``host`` is skipped (never dispatched) for work in ``shell``; None if it can run it.

    The one rule every face applies before dispatch: the host must advertise
    the shell (or have it among its platform's defaults), and a Windows shell
    runs only on a Windows host and a POSIX one only elsewhere.
    """
    if not host.has_shell(shell):
        shells = ", ".join(host.effective_shells) or "none"
        return f"{shell} is not among this host's shells ({shells})"
    if Shell(shell).is_windows != host.is_windows:
        return f"shell {shell} cannot run on platform {host.platform}"
    return None
