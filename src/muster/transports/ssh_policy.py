"""The host key policy, apart from the SSH transport so that choosing one (a CLI
option, a settings field) does not load asyncssh before any SSH host is contacted."""

from __future__ import annotations

import enum

__all__ = ["HostKeyPolicy"]


class HostKeyPolicy(enum.StrEnum):
    STRICT = "strict"
    ACCEPT_NEW = "accept-new"
