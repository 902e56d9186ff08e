"""Schedules: cron in a named time zone, and what to do with each tick, as pure functions.

A :class:`Schedule` binds a 5-field cron expression in an IANA time zone to a
target (a script pinned to a version or "latest at fire time", a command, a
built-in job, later a workflow) on a selector, with parameter values and
throttling. Every decision is a pure function of (schedule, state, now), so
it is tested with :class:`~muster.testing.FakeClock` and the scheduler
service only carries it out.

**Cron** is croniter's, never hand-rolled. Wall-clock rules around daylight
saving follow Vixie cron:

- spring forward: a local time that does not exist (02:30 on the day
  Europe/Berlin jumps 02:00 -> 03:00) fires once, at the first instant after
  the gap (03:00 local);
- fall back: a local time that happens twice (02:30 on the day Berlin goes
  03:00 -> 02:00) fires once, at its first occurrence, when the hour field is
  fixed (``30 2 * * *``); an hour field that starts with ``*`` (``0 * * * *``,
  ``*/15 * * * *``) describes an interval, and an interval keeps running
  through the repeated hour (every real hour fires once).

**Ticks and misfires.** :class:`ScheduleState` keeps a *cursor*: every tick
at or before it has been decided. :func:`decide` takes the ticks after the
cursor that are due by ``now`` and gives each one outcome:

- a tick later than the schedule's ``max_lateness`` is ``missed`` (never run);
- a tick at most :data:`MISFIRE_THRESHOLD` late is on time and fires;
- later ticks misfired (the scheduler was down or behind), and the misfire
  policy decides: ``skip`` records them ``missed``; ``run_once`` fires the
  newest and records the older ones ``skipped``; ``catch_up`` fires the
  newest ``catch_up_limit`` (oldest of them first) and skips the rest.

``max_runs`` and ``end_at`` end a schedule: ticks past either are not taken,
and :attr:`Decision.finished` says the schedule has nothing left to do.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter

from muster.domain.throttle import Throttle
from muster.errors import ValidationError

__all__ = [
    "LATEST",
    "MAX_RECORDED_TICKS",
    "MISFIRE_THRESHOLD",
    "Cron",
    "Decision",
    "FiringStatus",
    "MisfirePolicy",
    "Schedule",
    "ScheduleState",
    "ScheduleTarget",
    "TargetKind",
    "Tick",
    "cron_firings",
    "decide",
    "firings_between",
    "next_firing",
    "parse_cron",
    "validate_end",
]

#: A tick fired at most this late is on time (Quartz's misfire threshold has the same role).
MISFIRE_THRESHOLD: Final = dt.timedelta(seconds=60)
#: One decision records at most this many ticks; older ones after a long downtime are
#: summarised in the reason of the oldest recorded one, never enumerated forever.
MAX_RECORDED_TICKS: Final = 1000
#: ``ScheduleTarget.version`` for "the script's latest version at fire time".
LATEST: Final = None

_ALIASES: Final = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)
#: croniter's hashed (``H``) and random (``R``) fields are not cron and not repeatable.
_NON_CRON: Final = re.compile(r"(?<![A-Za-z])[HR](?![A-Za-z])")
#: How far ahead a cron must fire at least once (Feb 29 fires every 4 years).
_HORIZON_YEARS: Final = 8


class TargetKind(enum.StrEnum):
    SCRIPT = "script"
    COMMAND = "command"
    JOB = "job"
    WORKFLOW = "workflow"


class MisfirePolicy(enum.StrEnum):
    """What to do with ticks that came due while no scheduler could fire them."""

    SKIP = "skip"
    RUN_ONCE = "run_once"
    CATCH_UP = "catch_up"


class FiringStatus(enum.StrEnum):
    """The outcome recorded for one tick."""

    #: An execution was started for it.
    FIRED = "fired"
    #: Not run: later than the maximum lateness, or misfired under the ``skip`` policy.
    MISSED = "missed"
    #: Not run: folded into a later run by ``run_once`` / ``catch_up``.
    SKIPPED = "skipped"
    #: The submission was refused (script gone, selector matches nothing, ...): the reason says.
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Cron:
    """A validated 5-field cron expression and the IANA time zone it is read in."""

    expression: str
    timezone: str = "UTC"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def interval_hours(self) -> bool:
        """The hour field is ``*`` or ``*/n``: the repeated hour of a fall-back runs too."""
        expr = self.expression.strip()
        if expr.startswith("@"):
            return expr == "@hourly"
        return expr.split()[1].startswith("*")


def parse_cron(expression: str, timezone: str = "UTC") -> Cron:
    """A :class:`Cron`, or a :class:`ValidationError` naming ``cron_expression`` or
    ``timezone``. An expression that never fires (``0 0 30 2 *``) is refused too."""
    if not isinstance(timezone, str) or not timezone.strip():
        raise ValidationError("timezone: an IANA time zone name is required", field="timezone")
    try:
        zone = ZoneInfo(timezone.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            f"timezone: unknown time zone {timezone!r} (use an IANA name such as Europe/Berlin)",
            field="timezone",
        ) from None
    expr = " ".join(str(expression).split())
    fields = expr.split(" ")
    alias = len(fields) == 1 and expr.lower() in _ALIASES
    if alias:
        expr = expr.lower()
    elif len(fields) != 5:
        raise ValidationError(
            f"cron_expression: {expression!r} must have 5 fields "
            "(minute hour day-of-month month day-of-week)",
            field="cron_expression",
        )
    if _NON_CRON.search(expr) or not croniter.is_valid(expr):
        raise ValidationError(
            f"cron_expression: {expression!r} is not a valid cron expression",
            field="cron_expression",
        )
    cron = Cron(expr, timezone.strip())
    start = dt.datetime(2000, 1, 1, tzinfo=zone)
    try:
        first = croniter(expr, start).get_next(dt.datetime)
    except (CroniterBadDateError, ValueError, KeyError):
        first = None
    if first is None or first.year - start.year > _HORIZON_YEARS:
        raise ValidationError(
            f"cron_expression: {expression!r} never fires", field="cron_expression"
        )
    return cron


def _iter_after(cron: Cron, after: dt.datetime) -> Iterator[dt.datetime]:
    """Due times strictly after ``after``, in UTC, ascending, each once, with the
    fall-back rule of the module docstring applied."""
    zone = cron.zone
    interval = cron.interval_hours
    it = croniter(cron.expression, after.astimezone(zone))
    last: dt.datetime | None = None
    while True:
        try:
            local = it.get_next(dt.datetime)
        except CroniterBadDateError:
            return
        utc = local.astimezone(dt.UTC)
        if utc <= after or (last is not None and utc <= last):
            continue
        # fold=1: the second occurrence of a repeated local time (zoneinfo sets it).
        if not interval and utc.astimezone(zone).fold == 1:
            continue
        last = utc
        yield utc


def next_firing(cron: Cron, after: dt.datetime) -> dt.datetime | None:
    """The first due time strictly after ``after`` (UTC), or None if it never fires."""
    return next(_iter_after(cron, after), None)


def cron_firings(
    cron: Cron, start: dt.datetime, end: dt.datetime, *, limit: int | None = None
) -> list[dt.datetime]:
    """Due times ``start <= t < end`` of the bare cron (UTC, ascending)."""
    out: list[dt.datetime] = []
    for due in _iter_after(cron, start - dt.timedelta(microseconds=1)):
        if due >= end or (limit is not None and len(out) >= limit):
            break
        out.append(due)
    return out


@dataclass(frozen=True, slots=True)
class ScheduleTarget:
    """What a schedule starts.

    ``script`` is a script id or name; ``version`` pins a version number, or is
    :data:`LATEST` (None): the script's latest version at fire time, pinned then
    and recorded on the firing. ``command``/``shell``/``timeout`` for a command;
    ``job_type`` and ``job_fields`` for a built-in job; ``workflow`` is reserved.
    """

    kind: TargetKind
    script: str | None = None
    version: int | None = LATEST
    command: str | None = None
    shell: str = "sh"
    timeout: float = 300.0
    job_type: str | None = None
    job_fields: Mapping[str, object] = field(default_factory=dict)
    workflow: str | None = None

    def __post_init__(self) -> None:
        need = {
            TargetKind.SCRIPT: ("script", self.script),
            TargetKind.COMMAND: ("command", self.command),
            TargetKind.JOB: ("job_type", self.job_type),
            TargetKind.WORKFLOW: ("workflow", self.workflow),
        }[self.kind]
        if not need[1]:
            raise ValidationError(
                f"{need[0]}: a {self.kind.value} schedule needs it", field=need[0]
            )
        if self.version is not None and self.version < 1:
            raise ValidationError("version: must be 1 or more (or latest)", field="version")

    @property
    def label(self) -> str:
        if self.kind is TargetKind.SCRIPT:
            pin = "latest" if self.version is None else f"v{self.version}"
            return f"script {self.script} ({pin})"
        if self.kind is TargetKind.COMMAND:
            return f"command {(self.command or '')[:80]}"
        if self.kind is TargetKind.JOB:
            return f"job {self.job_type}"
        return f"workflow {self.workflow}"


@dataclass(frozen=True, slots=True)
class Schedule:
    """A schedule as the domain sees it (ids and timestamps are the store's)."""

    name: str
    cron: Cron
    target: ScheduleTarget
    #: Host ids, names or selectors (as ``muster exec`` takes them).
    selector: Sequence[str]
    parameters: Mapping[str, object] = field(default_factory=dict)
    throttle: Throttle = field(default_factory=Throttle)
    enabled: bool = True
    max_runs: int | None = None
    end_at: dt.datetime | None = None
    misfire_policy: MisfirePolicy = MisfirePolicy.RUN_ONCE
    #: How many misfired ticks ``catch_up`` runs at most.
    catch_up_limit: int = 1
    #: A tick later than this is recorded as missed, never run (None: no limit).
    max_lateness: dt.timedelta | None = None
    id: str = ""
    created_by: str | None = None

    def __post_init__(self) -> None:
        if not self.name or len(self.name) > 200:
            raise ValidationError("name: 1 to 200 characters", field="name")
        if not self.selector:
            raise ValidationError("host_ids: a schedule needs targets", field="host_ids")
        if self.max_runs is not None and self.max_runs < 1:
            raise ValidationError("max_runs: must be 1 or more", field="max_runs")
        if not 1 <= self.catch_up_limit <= MAX_RECORDED_TICKS:
            raise ValidationError(
                f"catch_up_limit: between 1 and {MAX_RECORDED_TICKS}", field="catch_up_limit"
            )
        if self.max_lateness is not None and self.max_lateness <= dt.timedelta(0):
            raise ValidationError("max_lateness: must be positive", field="max_lateness")
        if self.end_at is not None and self.end_at.tzinfo is None:
            raise ValidationError("end_at: needs a time zone (or Z)", field="end_at")


def validate_end(end_at: dt.datetime | None, now: dt.datetime) -> None:
    """Refuse an end date that has already passed (creating or editing a schedule)."""
    if end_at is not None and end_at <= now:
        raise ValidationError(f"end_at: {end_at.isoformat()} is in the past", field="end_at")


@dataclass(frozen=True, slots=True)
class ScheduleState:
    """What a schedule has done: every tick at or before ``cursor`` is decided."""

    cursor: dt.datetime
    #: Ticks fired so far (counted against ``max_runs``).
    runs: int = 0


@dataclass(frozen=True, slots=True)
class Tick:
    """One tick's outcome; ``FIRED`` here means "fire it now"."""

    due_at: dt.datetime
    status: FiringStatus
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    ticks: tuple[Tick, ...]
    #: The new cursor (unchanged when nothing was due).
    cursor: dt.datetime
    #: The next tick after the cursor that may still fire (None: none).
    next_run: dt.datetime | None
    #: max_runs reached or end date passed: nothing will fire again.
    finished: bool

    @property
    def to_fire(self) -> list[dt.datetime]:
        return [t.due_at for t in self.ticks if t.status is FiringStatus.FIRED]


def _bounded_end(schedule: Schedule, end: dt.datetime) -> dt.datetime:
    """``end`` cut at the schedule's end date (a tick exactly at ``end_at`` still runs)."""
    if schedule.end_at is not None:
        return min(end, schedule.end_at + dt.timedelta(microseconds=1))
    return end


def firings_between(
    schedule: Schedule, start: dt.datetime, end: dt.datetime, *, runs: int = 0
) -> list[dt.datetime]:
    """When ``schedule`` will fire in ``start <= t < end`` (UTC, ascending): the forecast.

    A paused schedule fires nothing; its end date and what is left of ``max_runs``
    (``runs`` already fired) cut the list. Misfires are not foreseen.
    """
    if not schedule.enabled:
        return []
    left = None if schedule.max_runs is None else max(0, schedule.max_runs - runs)
    if left == 0:
        return []
    return cron_firings(schedule.cron, start, _bounded_end(schedule, end), limit=left)


def decide(schedule: Schedule, state: ScheduleState, now: dt.datetime) -> Decision:
    """The outcome of every tick after ``state.cursor`` due by ``now`` (see module doc)."""
    left = None if schedule.max_runs is None else schedule.max_runs - state.runs
    horizon = _bounded_end(schedule, now + dt.timedelta(microseconds=1))
    due: list[dt.datetime] = []
    dropped = 0
    for tick in _iter_after(schedule.cron, state.cursor):
        if tick >= horizon:
            break
        due.append(tick)
        if len(due) > MAX_RECORDED_TICKS:
            due.pop(0)
            dropped += 1
    if not schedule.enabled or (left is not None and left <= 0):
        due = []
    ticks = _judge(schedule, due, now, left, dropped)
    cursor = due[-1] if due else state.cursor
    fired = sum(1 for t in ticks if t.status is FiringStatus.FIRED)
    runs_left = None if left is None else left - fired
    nxt = None
    if runs_left is None or runs_left > 0:
        candidate = next_firing(schedule.cron, max(cursor, now))
        if candidate is not None and (schedule.end_at is None or candidate <= schedule.end_at):
            nxt = candidate
    finished = nxt is None
    return Decision(tuple(ticks), cursor, nxt, finished)


def _judge(
    schedule: Schedule,
    due: list[dt.datetime],
    now: dt.datetime,
    left: int | None,
    dropped: int,
) -> list[Tick]:
    outcome: dict[dt.datetime, Tick] = {}
    misfired: list[dt.datetime] = []
    for tick in due:
        late = now - tick
        if schedule.max_lateness is not None and late > schedule.max_lateness:
            outcome[tick] = Tick(
                tick, FiringStatus.MISSED, f"later than the maximum lateness ({late} late)"
            )
        elif late <= MISFIRE_THRESHOLD:
            outcome[tick] = Tick(tick, FiringStatus.FIRED)
        else:
            misfired.append(tick)
    policy = schedule.misfire_policy
    keep = {MisfirePolicy.SKIP: 0, MisfirePolicy.RUN_ONCE: 1}.get(policy, schedule.catch_up_limit)
    run = set(misfired[len(misfired) - keep :]) if keep else set()
    for tick in misfired:
        if tick in run:
            outcome[tick] = Tick(tick, FiringStatus.FIRED, f"misfired; run late ({policy.value})")
        elif policy is MisfirePolicy.SKIP:
            outcome[tick] = Tick(tick, FiringStatus.MISSED, "misfired; skipped by policy")
        else:
            outcome[tick] = Tick(
                tick, FiringStatus.SKIPPED, f"misfired; folded into a later run ({policy.value})"
            )
    ticks = [outcome[t] for t in due]
    if left is not None:
        # max_runs: only the first ``left`` fires run; the rest were never owed.
        fire_idx = [i for i, t in enumerate(ticks) if t.status is FiringStatus.FIRED]
        for i in fire_idx[max(left, 0) :]:
            ticks[i] = Tick(ticks[i].due_at, FiringStatus.SKIPPED, "max_runs reached")
    if dropped and ticks:
        first = ticks[0]
        note = f"{dropped} earlier tick(s) not recorded"
        ticks[0] = Tick(
            first.due_at, first.status, f"{first.reason}; {note}" if first.reason else note
        )
    return ticks
