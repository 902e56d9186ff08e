"""A Plan: what one host must do, as data (seed 000's deploy-plan shape).

Every transport executes plans. ``to_dict()`` yields exactly the wire shape
``{"files": [{path, content, mode}], "commands": [{argv, timeout,
ignore_errors, description}]}``; the environment travels beside the plan,
never inside it, because it may hold secrets.

Execution rule shared by all transports: commands run in order; when a
command without ``ignore_errors`` fails, the remaining commands without
``ignore_errors`` are skipped, but those with ``ignore_errors`` (cleanup) still
run. The plan's exit code is that of the first failing command without
``ignore_errors``, else 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from muster.domain.secret import Secret

__all__ = ["Plan", "PlanCommand", "PlanFile"]


@dataclass(frozen=True, slots=True)
class PlanFile:
    path: str
    content: str
    mode: int = 0o700

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "content": self.content, "mode": self.mode}


@dataclass(frozen=True, slots=True)
class PlanCommand:
    argv: tuple[str, ...]
    timeout: float = 300
    ignore_errors: bool = False
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "argv": list(self.argv),
            "timeout": self.timeout,
            "ignore_errors": self.ignore_errors,
            "description": self.description,
        }


@dataclass(frozen=True, slots=True)
class Plan:
    files: tuple[PlanFile, ...] = ()
    commands: tuple[PlanCommand, ...] = ()
    #: Variables for every command; ``Secret`` values are revealed only into
    #: the process environment (or the stdin of the remote driver).
    env: Mapping[str, str | Secret] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": [f.to_dict() for f in self.files],
            "commands": [c.to_dict() for c in self.commands],
        }

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], env: Mapping[str, str | Secret] | None = None
    ) -> Plan:
        """Read back :meth:`to_dict` (the environment travels beside it)."""
        return cls(
            files=tuple(
                PlanFile(str(f["path"]), str(f["content"]), int(f.get("mode", 0o700)))
                for f in data.get("files", ())
            ),
            commands=tuple(
                PlanCommand(
                    tuple(str(a) for a in c["argv"]),
                    float(c.get("timeout", 300)),
                    bool(c.get("ignore_errors", False)),
                    str(c.get("description", "")),
                )
                for c in data.get("commands", ())
            ),
            env=dict(env or {}),
        )

    @property
    def secrets(self) -> tuple[str, ...]:
        """Revealed secret values, for output masking."""
        return tuple(v.reveal() for v in self.env.values() if isinstance(v, Secret) and v)

    @property
    def total_timeout(self) -> float:
        return sum(c.timeout for c in self.commands)

    @staticmethod
    def command(cmd: str, *, timeout: float = 300, shell: str = "/bin/sh") -> Plan:
        """An ad-hoc command line, run by ``shell -c``."""
        return Plan(commands=(PlanCommand((shell, "-c", cmd), timeout, False, "command"),))
