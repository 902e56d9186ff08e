"""Hosts grouped by identical result, so a run on thousands of hosts reads at a glance.

One rule for every face: the console's grouped results and the CLI's
``--output grouped`` (pdsh's ``dshbak -c``) both call :func:`group_results`.
Two host results are "the same" when they share the state, the exit code,
the failure reason and what they printed: the console compares a digest of
the stored tails (the end of stdout and the first stderr line); the CLI saw
every byte, so it passes a ``fingerprint`` (a hash of both whole streams)
that replaces the tails in the comparison. Unfinished hosts group by state alone, and so do
hosts that were stopped before their result meant anything (cancelled,
skipped, rejected: whatever a killed host had printed so far is no
answer to "which hosts differ?").
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from muster.domain.states import TERMINAL_STATES, FailureReason, HostRunState

__all__ = ["ResultGroup", "RunDigest", "group_key", "group_results", "result_label"]

_SAMPLE_HOSTS = 5


@dataclass(frozen=True, slots=True)
class RunDigest:
    """What decides whether two host results are "the same"."""

    state: HostRunState
    exit_code: int | None
    reason: str | None
    message: str | None
    #: The end of the stored stdout (a few hundred characters).
    stdout_end: str
    #: The start of the stored stderr (a few hundred characters).
    stderr_start: str
    host_name: str
    #: A hash of the whole output, when the caller saw all of it; compared
    #: instead of ``stdout_end`` and ``stderr_start``.
    fingerprint: str | None = None


@dataclass(slots=True)
class ResultGroup:
    key: str
    state: HostRunState
    exit_code: int | None
    label: str
    count: int = 0
    hosts: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {
            "key": self.key,
            "state": self.state.value,
            "exit_code": self.exit_code,
            "label": self.label,
            "count": self.count,
            "hosts": self.hosts[:_SAMPLE_HOSTS],
        }


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:80]
    return ""


#: Ended without a result of their own: grouped by state and reason only.
_STOPPED = frozenset({HostRunState.CANCELLED, HostRunState.SKIPPED, HostRunState.REJECTED})


def _message(d: RunDigest) -> str:
    """The run's message, unless it only repeats the exit code (``exit code 1``)."""
    text = _first_line(d.message or "")
    return "" if d.exit_code is not None and text == f"exit code {d.exit_code}" else text


def result_label(d: RunDigest, count: int = 1) -> str:
    """A short description of a group of ``count`` results like ``d``:
    ``"exit 1, 'disk full'"``, ``"same output, exit 0"``."""
    state = d.state
    if state not in TERMINAL_STATES:
        return state.value.replace("_", " ")
    if state in _STOPPED:
        said = _message(d)
        return said if state.value in said else ", ".join(x for x in (state.value, said) if x)
    if state is HostRunState.SUCCEEDED:
        printed = d.stdout_end or d.stderr_start
        if not printed:
            return "no output, exit 0"
        return "same output, exit 0" if count > 1 else "exit 0"
    err = _first_line(d.stderr_start)
    parts: list[str] = []
    if d.exit_code is not None:
        parts.append(f"exit {d.exit_code}")
    else:
        parts.append(state.value.replace("_", " "))
    if (
        d.reason
        and d.reason != state.value
        and not (d.exit_code is not None and d.reason == FailureReason.COMMAND_FAILED.value)
    ):
        parts.append(d.reason.replace("_", " "))
    detail = err or _message(d)
    if detail:
        parts.append(f"'{detail}'")
    return ", ".join(parts)


def group_key(d: RunDigest) -> str:
    if d.state not in TERMINAL_STATES:
        return d.state.value
    if d.state in _STOPPED:
        return f"{d.state.value}-{hashlib.sha256(_message(d).encode()).hexdigest()[:8]}"
    h = hashlib.sha256()
    for part in (d.state.value, str(d.exit_code), d.reason or ""):
        h.update(part.encode("utf-8", "replace") + b"\0")
    if d.fingerprint is not None:
        h.update(b"fingerprint\0" + d.fingerprint.encode("ascii", "replace"))
    else:
        h.update(d.stdout_end.encode("utf-8", "replace") + b"\0")
        h.update(_first_line(d.stderr_start).encode("utf-8", "replace"))
    if not d.stderr_start:
        h.update(_first_line(d.message or "").encode("utf-8", "replace"))
    return h.hexdigest()[:16]


def group_results(digests: Iterable[RunDigest]) -> list[ResultGroup]:
    """Groups largest first, each with every member's host name in the order given."""
    groups: dict[str, ResultGroup] = {}
    first: dict[str, RunDigest] = {}
    for d in digests:
        key = group_key(d)
        group = groups.get(key)
        if group is None:
            group = groups[key] = ResultGroup(key, d.state, d.exit_code, "")
            first[key] = d
        group.count += 1
        group.hosts.append(d.host_name)
    for key, group in groups.items():
        # "same output" only where there is more than one host to be the same
        group.label = result_label(first[key], group.count)
    return sorted(groups.values(), key=lambda g: (-g.count, g.label))
