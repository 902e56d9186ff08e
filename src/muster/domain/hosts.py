"""Hosts: the machines muster runs plans on."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["PLATFORM_DEFAULT_SHELLS", "Host", "TransportKind"]


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
        return PLATFORM_DEFAULT_SHELLS.get(self.platform, ("sh",))

    def has_shell(self, shell: str) -> bool:
        return shell in self.effective_shells
