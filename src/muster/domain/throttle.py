"""How fast one execution may fan out: ``forks``, ``per_group`` and ``delay``.

The same three limits hold whichever face runs the execution: the in-process
dispatcher keeps them with counters, the server's queue keeps them in the
claim, so two workers on one database never run more hosts of an execution
at once than its ``forks``. Seed 004 calls them ``max_parallel_servers``,
``max_parallel_per_group`` and ``delay_between_servers``.

Per-group limits count every group a host belongs to: a host may start only
while each of its groups has fewer than ``per_group`` hosts running. Hosts in
no group are bounded by ``forks`` alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from muster.errors import ValidationError

__all__ = ["MAX_FORKS", "SEED_004_NAMES", "Throttle", "group_key", "groups_of_key", "pick_within"]

#: Large enough for any fleet, small enough to stay an ordinary integer everywhere.
MAX_FORKS: Final = 100_000
_MAX_DELAY: Final = 24 * 3600.0
_SEP: Final = "\n"

#: Seed 004's request names and the names muster uses for them.
SEED_004_NAMES: Final[Mapping[str, str]] = {
    "max_parallel_servers": "forks",
    "max_parallel_per_group": "per_group",
    "delay_between_servers": "delay",
}


@dataclass(frozen=True, slots=True)
class Throttle:
    """Limits of one execution; ``forks=None`` means "as many as workers can take"."""

    forks: int | None = None
    per_group: int | None = None
    delay: float = 0.0

    def __post_init__(self) -> None:
        for name in ("forks", "per_group"):
            value = getattr(self, name)
            if value is not None and not 1 <= value <= MAX_FORKS:
                raise ValidationError(
                    f"{name} must be between 1 and {MAX_FORKS} (got {value})", field=name
                )
        if not 0 <= self.delay <= _MAX_DELAY:
            raise ValidationError(
                f"delay must be between 0 and {_MAX_DELAY:g} seconds (got {self.delay:g})",
                field="delay",
            )

    @property
    def limited(self) -> bool:
        """Whether any limit applies (an unlimited execution takes the fast claim path)."""
        return self.forks is not None or self.per_group is not None or self.delay > 0


def group_key(groups: Iterable[str]) -> str:
    """A host's groups as one stored string (sorted, de-duplicated)."""
    return _SEP.join(sorted(set(groups)))


def groups_of_key(key: str | None) -> tuple[str, ...]:
    return tuple(key.split(_SEP)) if key else ()


def pick_within(
    throttle: Throttle,
    running: Sequence[str | None],
    candidates: Sequence[tuple[str, str | None]],
) -> list[str]:
    """Which candidates may start now, in order, given the group keys already running.

    ``candidates`` are ``(id, group_key)`` in claim order; the result keeps
    that order and never lets ``forks`` or any group's ``per_group`` be
    exceeded. With a ``delay`` at most one may start per call: the caller
    spaces the calls.
    """
    free = len(candidates) if throttle.forks is None else throttle.forks - len(running)
    if throttle.delay > 0:
        free = min(free, 1)
    busy: dict[str, int] = {}
    if throttle.per_group is not None:
        for key in running:
            for g in groups_of_key(key):
                busy[g] = busy.get(g, 0) + 1
    picked: list[str] = []
    for run_id, key in candidates:
        if len(picked) >= free:
            break
        groups = groups_of_key(key)
        if throttle.per_group is not None:
            if any(busy.get(g, 0) >= throttle.per_group for g in groups):
                continue
            for g in groups:
                busy[g] = busy.get(g, 0) + 1
        picked.append(run_id)
    return picked
