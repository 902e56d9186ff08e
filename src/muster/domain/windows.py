"""Maintenance windows: when a host may start a run, as pure arithmetic on time.

A window belongs to a host, a group, or the whole fleet. It is either
**recurring** (``Sun 01:00-03:00`` in an IANA time zone, on one or more
weekdays; an end at or before the start crosses midnight), an **extra**
one-off period, or a one-off **blackout**. The rules, in one place:

- A host with no recurring or extra window covering it (directly or through
  one of its groups) is always open: windows restrict only the hosts they
  name. Blackouts still apply to it.
- Otherwise a host is open at an instant when some recurring or extra window
  covering it contains that instant.
- A blackout covering the host closes it, whatever else is open.

Wall-clock times are resolved in the window's zone with :mod:`zoneinfo`, so
``01:00-03:00`` means local time on every day, across both DST changes. A
local time that does not exist (the spring-forward gap) resolves to the
first instant after the gap, so a window opens as soon as the wall clock
passes its start. A local time that occurs twice (fall-back) resolves to its
first occurrence for a start and its last for an end: the window holds every
instant whose wall clock is in range, in one piece.

When an open period ends, the window (or blackout) that ends it says what
happens to hosts still running: ``finish`` lets them finish, ``stop`` stops
them and records them ``cancelled``. Unstarted hosts wait for the next
opening, with a reason that names it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from muster.errors import ValidationError

__all__ = [
    "DAY_NAMES",
    "OUTSIDE_WINDOW",
    "ClosePolicy",
    "Forecast",
    "ForecastEntry",
    "ForecastStatus",
    "GateDecision",
    "MaintenanceWindow",
    "OpenPeriod",
    "PlannedRun",
    "WindowGate",
    "WindowKind",
    "WindowScope",
    "WindowStatus",
    "applies_to",
    "closes_at",
    "describe_opening",
    "forecast",
    "is_open",
    "next_open",
    "open_periods",
    "parse_days",
    "parse_recurring",
    "stop_message",
    "window_status",
    "windows_for",
    "zone",
]

#: Monday first, as :meth:`datetime.date.weekday` counts.
DAY_NAMES: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
#: The reason a run waits, before the opening is named.
OUTSIDE_WINDOW: Final = "outside maintenance window"
#: How far ahead an opening is looked for.
HORIZON: Final = dt.timedelta(days=366)
_DAY = dt.timedelta(days=1)
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_SPEC = re.compile(r"^\s*(\S+)\s+(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})(?:\s+(\S+))?\s*$")
_MAX_NAME: Final = 200


class WindowKind(StrEnum):
    RECURRING = "recurring"
    EXTRA = "extra"
    BLACKOUT = "blackout"


class WindowScope(StrEnum):
    HOST = "host"
    GROUP = "group"
    ALL = "all"


class ClosePolicy(StrEnum):
    """What happens to hosts still running when an open period ends."""

    FINISH = "finish"
    STOP = "stop"


def zone(name: str, *, field_name: str = "timezone") -> ZoneInfo:
    """The IANA zone ``name``; a ValidationError naming the field if unknown."""
    if not name or len(name) > 64 or name.startswith(("/", ".")) or ".." in name:
        raise ValidationError(f"unknown time zone {name!r}", field=field_name)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(f"unknown time zone {name!r}", field=field_name) from exc


def _parse_time(text: str, field_name: str) -> dt.time:
    m = _TIME.match(text.strip())
    if not m:
        raise ValidationError(f"{field_name} must be HH:MM (got {text!r})", field=field_name)
    return dt.time(int(m.group(1)), int(m.group(2)))


def parse_days(text: str) -> frozenset[int]:
    """``Sun``, ``Sat,Sun``, ``Mon-Fri``, ``*`` (every day) -> weekday numbers (Mon=0)."""
    lowered = [d.lower() for d in DAY_NAMES]
    text = text.strip()
    if text in ("*", "daily"):
        return frozenset(range(7))
    days: set[int] = set()
    for part in text.split(","):
        lo, sep, hi = part.strip().partition("-")
        try:
            a = lowered.index(lo.strip().lower()[:3]) if len(lo.strip()) >= 3 else -1
            b = lowered.index(hi.strip().lower()[:3]) if sep and len(hi.strip()) >= 3 else a
        except ValueError:
            a = b = -1
        if a < 0 or b < 0:
            raise ValidationError(
                f"days must be day names like Sun, Sat,Sun or Mon-Fri (got {text!r})",
                field="days",
            )
        i = a
        while True:
            days.add(i)
            if i == b:
                break
            i = (i + 1) % 7
    return frozenset(days)


@dataclass(frozen=True, slots=True)
class OpenPeriod:
    """One interval ``[start, end)`` in UTC; ``end`` None means unbounded (no window
    restricts the host before a blackout or the horizon)."""

    start: dt.datetime
    end: dt.datetime | None
    #: The window open at ``start`` (None when the host has no window at all).
    window: MaintenanceWindow | None = None
    #: What ends the period (a window's end or a blackout's start), for its close policy.
    ended_by: MaintenanceWindow | None = None

    def contains(self, at: dt.datetime) -> bool:
        return self.start <= at and (self.end is None or at < self.end)

    @property
    def close_policy(self) -> ClosePolicy:
        return self.ended_by.close_policy if self.ended_by is not None else ClosePolicy.FINISH


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    """A recurring window, an extra one-off window, or a one-off blackout.

    Recurring windows use ``days``, ``start_time``, ``end_time`` (local to
    ``timezone``); one-off ones use ``starts_at`` and ``ends_at`` (aware).
    Constructing one validates it; every error names its field.
    """

    name: str
    kind: WindowKind = WindowKind.RECURRING
    scope: WindowScope = WindowScope.GROUP
    target: str = ""
    timezone: str = "UTC"
    days: frozenset[int] = frozenset()
    start_time: dt.time | None = None
    end_time: dt.time | None = None
    starts_at: dt.datetime | None = None
    ends_at: dt.datetime | None = None
    close_policy: ClosePolicy = ClosePolicy.FINISH
    id: str = ""
    _tz: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.name.strip() or len(self.name) > _MAX_NAME:
            raise ValidationError(f"name must be 1 to {_MAX_NAME} characters", field="name")
        object.__setattr__(self, "kind", WindowKind(self.kind))
        object.__setattr__(self, "scope", WindowScope(self.scope))
        object.__setattr__(self, "close_policy", ClosePolicy(self.close_policy))
        object.__setattr__(self, "_tz", zone(self.timezone))
        if self.scope is WindowScope.ALL:
            object.__setattr__(self, "target", "*")
        elif not self.target.strip():
            raise ValidationError(f"target must name the {self.scope.value}", field="target")
        if self.kind is WindowKind.RECURRING:
            if not self.days or not all(0 <= d <= 6 for d in self.days):
                raise ValidationError("days must name at least one weekday", field="days")
            object.__setattr__(self, "days", frozenset(self.days))
            if self.start_time is None:
                raise ValidationError("start_time is required", field="start_time")
            if self.end_time is None:
                raise ValidationError("end_time is required", field="end_time")
            if self.end_time == self.start_time:
                raise ValidationError(
                    "end_time equals start_time: a window must last some time "
                    "(an end before the start crosses midnight)",
                    field="end_time",
                )
            if self.starts_at is not None or self.ends_at is not None:
                raise ValidationError(
                    "a recurring window takes days and times, not starts_at/ends_at",
                    field="starts_at",
                )
        else:
            if self.starts_at is None or self.starts_at.tzinfo is None:
                raise ValidationError("starts_at must be a date and time", field="starts_at")
            if self.ends_at is None or self.ends_at.tzinfo is None:
                raise ValidationError("ends_at must be a date and time", field="ends_at")
            if self.ends_at <= self.starts_at:
                raise ValidationError("ends_at must be after starts_at", field="ends_at")

    @property
    def tz(self) -> ZoneInfo:
        return self._tz

    @property
    def blackout(self) -> bool:
        return self.kind is WindowKind.BLACKOUT

    def spec(self) -> str:
        """How a person writes it: ``Sun 01:00-03:00 Europe/Berlin`` or the one-off period."""
        if self.kind is WindowKind.RECURRING:
            assert self.start_time is not None and self.end_time is not None
            days = ",".join(DAY_NAMES[d] for d in sorted(self.days))
            if len(self.days) == 7:
                days = "daily"
            return f"{days} {self.start_time:%H:%M}-{self.end_time:%H:%M} {self.timezone}"
        assert self.starts_at is not None and self.ends_at is not None
        a = self.starts_at.astimezone(self._tz)
        b = self.ends_at.astimezone(self._tz)
        return f"{a:%Y-%m-%d %H:%M}-{b:%Y-%m-%d %H:%M} {self.timezone}"

    def occurrences(
        self, start: dt.datetime, end: dt.datetime
    ) -> Iterator[tuple[dt.datetime, dt.datetime]]:
        """Each ``[open, close)`` of this window (UTC) that overlaps ``[start, end)``, in order."""
        if self.kind is not WindowKind.RECURRING:
            assert self.starts_at is not None and self.ends_at is not None
            a, b = self.starts_at.astimezone(dt.UTC), self.ends_at.astimezone(dt.UTC)
            if a < end and b > start:
                yield a, b
            return
        assert self.start_time is not None and self.end_time is not None
        crosses = self.end_time <= self.start_time
        # An occurrence lasts under a day (plus a DST hour): begin a day early.
        day = start.astimezone(self._tz).date() - _DAY
        last = end.astimezone(self._tz).date()
        while day <= last:
            if day.weekday() in self.days:
                a = _resolve(day, self.start_time, self._tz, first=True)
                b = _resolve(day + _DAY if crosses else day, self.end_time, self._tz, first=False)
                if a < b and a < end and b > start:
                    yield a, b
            day += _DAY


def _resolve(day: dt.date, t: dt.time, tz: ZoneInfo, *, first: bool) -> dt.datetime:
    """The UTC instant of wall-clock ``day t`` in ``tz`` (see the module doc for gaps and folds)."""
    naive = dt.datetime.combine(day, t)
    early = naive.replace(tzinfo=tz, fold=0).astimezone(dt.UTC)
    late = naive.replace(tzinfo=tz, fold=1).astimezone(dt.UTC)
    if early.astimezone(tz).replace(tzinfo=None) == naive:
        # It exists: once (early == late) or twice (fall-back: pick by ``first``).
        return early if first else late
    # In a gap, ``late`` lies before the jump and ``early`` after it: find the jump.
    lo, hi = late, early
    while hi - lo > dt.timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        if mid.astimezone(tz).utcoffset() == hi.astimezone(tz).utcoffset():
            hi = mid
        else:
            lo = mid
    return hi.replace(microsecond=0)


def parse_recurring(
    spec: str,
    *,
    name: str = "",
    scope: WindowScope = WindowScope.GROUP,
    target: str = "",
    timezone: str | None = None,
    close_policy: ClosePolicy = ClosePolicy.FINISH,
) -> MaintenanceWindow:
    """``"Sun 01:00-03:00 Europe/Berlin"`` (zone optional when ``timezone`` is given)."""
    m = _SPEC.match(spec)
    if not m:
        raise ValidationError(
            f"a window is DAYS HH:MM-HH:MM [ZONE], e.g. 'Sun 01:00-03:00 Europe/Berlin' "
            f"(got {spec!r})",
            field="spec",
        )
    days, a, b, tz = m.groups()
    return MaintenanceWindow(
        name=name or spec.strip(),
        kind=WindowKind.RECURRING,
        scope=scope,
        target=target,
        timezone=tz or timezone or "UTC",
        days=parse_days(days),
        start_time=_parse_time(a, "start_time"),
        end_time=_parse_time(b, "end_time"),
        close_policy=close_policy,
    )


def applies_to(window: MaintenanceWindow, host: str, groups: Iterable[str]) -> bool:
    """Whether ``window`` covers the host named ``host`` in ``groups``."""
    if window.scope is WindowScope.ALL:
        return True
    if window.scope is WindowScope.HOST:
        return window.target == host
    return window.target in set(groups)


def windows_for(
    windows: Iterable[MaintenanceWindow], host: str, groups: Iterable[str]
) -> list[MaintenanceWindow]:
    gs = set(groups)
    return [w for w in windows if applies_to(w, host, gs)]


def _utc(at: dt.datetime) -> dt.datetime:
    if at.tzinfo is None:
        raise ValueError("window arithmetic needs aware datetimes")
    return at.astimezone(dt.UTC)


_Piece = tuple[
    dt.datetime, dt.datetime | None, "MaintenanceWindow | None", "MaintenanceWindow | None"
]


def open_periods(
    windows: Sequence[MaintenanceWindow], start: dt.datetime, end: dt.datetime
) -> list[OpenPeriod]:
    """The host's open periods overlapping ``[start, end)``, merged, blackouts cut out.

    ``windows`` are the ones covering one host (:func:`windows_for`). A period
    may reach beyond ``end`` (its true end, when known, is kept, so a caller
    can say when it closes); an unbounded end is None.
    """
    start, end = _utc(start), _utc(end)
    allow = [w for w in windows if not w.blackout]
    # Look a little past the ends so merged periods keep their true bounds.
    lo, hi = start - 2 * _DAY, end + 2 * _DAY
    # (start, end, the window open at the start, the window whose end ends it)
    pieces: list[_Piece] = []
    if allow:
        occ = sorted(
            ((a, b, w) for w in allow for a, b in w.occurrences(lo, hi)),
            key=lambda o: (o[0], o[1]),
        )
        for oa, ob, ow in occ:
            last_end = pieces[-1][1] if pieces else None
            if last_end is not None and oa <= last_end:
                if ob > last_end:
                    pieces[-1] = (pieces[-1][0], ob, pieces[-1][2], ow)
                continue
            pieces.append((oa, ob, ow, ow))
    else:
        pieces.append((lo, None, None, None))
    blackouts = sorted(
        ((a, b, w) for w in windows if w.blackout for a, b in w.occurrences(lo, hi)),
        key=lambda o: o[0],
    )
    for ba, bb, bw in blackouts:
        cut: list[_Piece] = []
        for pa, pb, pw, ender in pieces:
            if bb <= pa or (pb is not None and ba >= pb):
                cut.append((pa, pb, pw, ender))
                continue
            if ba > pa:
                cut.append((pa, ba, pw, bw))
            if pb is None or bb < pb:
                cut.append((bb, pb, pw, ender))
        pieces = cut
    out: list[OpenPeriod] = []
    for pa, pb, pw, ender in pieces:
        if (pb is not None and pb <= start) or pa >= end:
            continue
        out.append(OpenPeriod(max(pa, start) if pa == lo else pa, pb, pw, ender))
    return out


def is_open(windows: Sequence[MaintenanceWindow], at: dt.datetime) -> bool:
    """Whether a host covered by ``windows`` may start a run at ``at``."""
    at = _utc(at)
    return any(p.contains(at) for p in open_periods(windows, at, at + dt.timedelta(seconds=1)))


def next_open(
    windows: Sequence[MaintenanceWindow], at: dt.datetime, *, horizon: dt.timedelta = HORIZON
) -> dt.datetime | None:
    """``at`` if open then, else the next instant it opens within ``horizon`` (None if none)."""
    at = _utc(at)
    for p in open_periods(windows, at, at + horizon):
        if p.contains(at):
            return at
        if p.start > at:
            return p.start
    return None


def closes_at(
    windows: Sequence[MaintenanceWindow], at: dt.datetime, *, horizon: dt.timedelta = HORIZON
) -> dt.datetime | None:
    """When the period open at ``at`` ends (None if it is closed, or open without an
    end within ``horizon``)."""
    at = _utc(at)
    for p in open_periods(windows, at, at + horizon):
        if p.contains(at):
            return p.end
    return None


def stop_message(window: str | None, closes_at: dt.datetime) -> str:
    """The message of a run stopped because its window closed (``stop`` policy)."""
    name = f"maintenance window {window!r}" if window else "the maintenance window"
    return f"{name} closed at {closes_at:%Y-%m-%d %H:%M} UTC; stopped by the window's close policy"


def describe_opening(at: dt.datetime, tz: ZoneInfo, now: dt.datetime) -> str:
    """``Sun 01:00 CET``, with the date when it is a week or more away."""
    local = at.astimezone(tz)
    if at - now >= dt.timedelta(days=6):
        return f"{local:%a %Y-%m-%d %H:%M %Z}"
    return f"{local:%a %H:%M %Z}"


@dataclass(frozen=True, slots=True)
class WindowStatus:
    """Whether a host may start now, and what the waiting or the closing will be."""

    open: bool
    #: The period open now, or the next one (None: none within the horizon).
    period: OpenPeriod | None
    reason: str | None = None

    @property
    def next_opens_at(self) -> dt.datetime | None:
        return None if self.open or self.period is None else self.period.start

    @property
    def closes_at(self) -> dt.datetime | None:
        return self.period.end if self.open and self.period is not None else None

    @property
    def close_policy(self) -> ClosePolicy:
        return self.period.close_policy if self.period is not None else ClosePolicy.FINISH


def window_status(
    windows: Sequence[MaintenanceWindow],
    at: dt.datetime,
    *,
    horizon: dt.timedelta = HORIZON,
) -> WindowStatus:
    """The gate's answer for one host at ``at``: open (and until when), or the
    reason it waits, naming the next opening in the zone of its window."""
    at = _utc(at)
    if not windows:
        return WindowStatus(True, OpenPeriod(at, None))
    for p in open_periods(windows, at, at + horizon):
        if p.contains(at):
            return WindowStatus(True, p)
        if p.start > at:
            # Name it in its window's zone (after a blackout with no window: the blackout's).
            tz = p.window.tz if p.window is not None else windows[0].tz
            when = describe_opening(p.start, tz, at)
            return WindowStatus(False, p, f"{OUTSIDE_WINDOW}; next opens {when}")
    days = horizon.days
    return WindowStatus(False, None, f"{OUTSIDE_WINDOW}; no window opens in the next {days} days")


class ForecastStatus(StrEnum):
    RUNS = "runs"
    DEFERRED = "deferred"
    WILL_NOT_FIT = "will_not_fit"


@dataclass(frozen=True, slots=True)
class PlannedRun:
    """Something due to run: a schedule's firing on its hosts."""

    source: str
    due_at: dt.datetime
    #: ``(host name, its groups)`` per target host.
    hosts: tuple[tuple[str, tuple[str, ...]], ...]
    #: How long a host run may take (its timeout), to see whether it fits.
    duration: dt.timedelta = dt.timedelta(0)
    source_id: str = ""


@dataclass(frozen=True, slots=True)
class ForecastEntry:
    source: str
    source_id: str
    due_at: dt.datetime
    host: str
    status: ForecastStatus
    starts_at: dt.datetime | None
    window: str | None
    window_closes_at: dt.datetime | None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Forecast:
    start: dt.datetime
    end: dt.datetime
    entries: tuple[ForecastEntry, ...]

    @property
    def will_not_fit(self) -> tuple[ForecastEntry, ...]:
        return tuple(e for e in self.entries if e.status is ForecastStatus.WILL_NOT_FIT)


def forecast(
    planned: Iterable[PlannedRun],
    windows: Sequence[MaintenanceWindow],
    start: dt.datetime,
    end: dt.datetime,
    *,
    groups_of: Callable[[str], Iterable[str]] | None = None,
) -> Forecast:
    """Where each planned host run lands between ``start`` and ``end``.

    A host run due inside an open period ``runs`` then; one due outside is
    ``deferred`` to the next opening; one whose opening is past ``end``, or
    whose duration is longer than any period it could start in, ``will not
    fit`` (with the reason). ``groups_of`` overrides the groups carried by
    each :class:`PlannedRun` (e.g. the inventory today).
    """
    start, end = _utc(start), _utc(end)
    out: list[ForecastEntry] = []
    cache: dict[tuple[str, tuple[str, ...]], list[OpenPeriod]] = {}
    for run in sorted(planned, key=lambda r: (_utc(r.due_at), r.source)):
        due = _utc(run.due_at)
        if not start <= due < end:
            continue
        for host, carried in run.hosts:
            groups = tuple(sorted(groups_of(host) if groups_of else carried))
            key = (host, groups)
            if key not in cache:
                mine = windows_for(windows, host, groups)
                cache[key] = open_periods(mine, start, end) if mine else [OpenPeriod(start, None)]
            out.append(_place(run, host, due, end, cache[key]))
    return Forecast(start, end, tuple(out))


def _place(
    run: PlannedRun, host: str, due: dt.datetime, end: dt.datetime, periods: list[OpenPeriod]
) -> ForecastEntry:
    def entry(
        status: ForecastStatus,
        p: OpenPeriod | None,
        at: dt.datetime | None,
        reason: str | None = None,
    ) -> ForecastEntry:
        name = p.window.name if p is not None and p.window is not None else None
        return ForecastEntry(
            run.source,
            run.source_id,
            due,
            host,
            status,
            at,
            name,
            p.end if p is not None else None,
            reason,
        )

    too_long = False
    for p in periods:
        if p.end is not None and p.end <= due:
            continue
        at = max(due, p.start)
        if at >= end:
            break
        if p.end is not None and p.close_policy is ClosePolicy.STOP and at + run.duration > p.end:
            # Stopped at the close: starting here would only be cancelled.
            too_long = True
            continue
        status = ForecastStatus.RUNS if at == due else ForecastStatus.DEFERRED
        return entry(status, p, at)
    if too_long:
        return entry(
            ForecastStatus.WILL_NOT_FIT,
            None,
            None,
            f"no open period is long enough for {run.duration} before the forecast ends",
        )
    return entry(
        ForecastStatus.WILL_NOT_FIT,
        None,
        None,
        "no maintenance window opens before the forecast ends",
    )


#: Looked at first: almost every opening is within a week (a full year only if not).
_NEAR: Final = dt.timedelta(days=8)
#: When nothing opens within the horizon, a waiting run is looked at again this much later.
RECHECK: Final = dt.timedelta(days=1)


@dataclass(frozen=True, slots=True)
class GateDecision:
    """What the claim does with one run: start it (until ``closes_at``) or defer it."""

    open: bool
    #: Deferred: when to look again (the next opening); open: None.
    available_at: dt.datetime | None = None
    reason: str | None = None
    #: Open under a window: when that period closes (None: no window bounds it).
    closes_at: dt.datetime | None = None
    stop_at_close: bool = False
    window: str | None = None


class WindowGate:
    """The claim's question for many runs at one instant, answered once per set of windows.

    Hosts covered by the same windows share one answer, so a claim of a
    thousand runs in a few groups costs a few window computations.
    """

    def __init__(self, windows: Sequence[MaintenanceWindow], now: dt.datetime) -> None:
        self.windows = list(windows)
        self.now = _utc(now)
        self._cache: dict[tuple[int, ...], GateDecision] = {}
        # Which windows cover a host, by scope: a lookup per group, not a scan per run.
        self._all: list[int] = []
        self._by_host: dict[str, list[int]] = {}
        self._by_group: dict[str, list[int]] = {}
        for i, w in enumerate(self.windows):
            if w.scope is WindowScope.ALL:
                self._all.append(i)
            elif w.scope is WindowScope.HOST:
                self._by_host.setdefault(w.target, []).append(i)
            else:
                self._by_group.setdefault(w.target, []).append(i)

    def __bool__(self) -> bool:
        return bool(self.windows)

    def decide(self, host: str, groups: Iterable[str]) -> GateDecision:
        found_ids = set(self._all)
        found_ids.update(self._by_host.get(host, ()))
        for g in groups:
            found_ids.update(self._by_group.get(g, ()))
        key = tuple(sorted(found_ids))
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = self._decide([self.windows[i] for i in key])
        return found

    def _decide(self, mine: list[MaintenanceWindow]) -> GateDecision:
        if not mine:
            return GateDecision(True)
        status = window_status(mine, self.now, horizon=_NEAR)
        if status.period is None or (status.open and status.closes_at is None):
            status = window_status(mine, self.now)
        if status.open:
            p = status.period
            bounded = any(not w.blackout for w in mine) or (p is not None and p.end is not None)
            return GateDecision(
                True,
                closes_at=status.closes_at if bounded else None,
                stop_at_close=status.close_policy is ClosePolicy.STOP,
                window=p.window.name if p is not None and p.window is not None else None,
            )
        at = status.next_opens_at or self.now + RECHECK
        return GateDecision(False, available_at=at, reason=status.reason)
