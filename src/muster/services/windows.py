"""Maintenance windows as a service: define, delete, override (audited), forecast.

The faces (API, console, CLI) parse input into a
:class:`~muster.domain.windows.MaintenanceWindow` with :func:`window_from_fields`
(every error names its field) and call this. Overriding the windows of an
execution ("run now anyway") is its own permission (``windows.override``)
and always leaves an audit record; so does every change to the windows.

The forecast reads the enabled schedules (when the store keeps them) and
their future firings (:func:`muster.domain.schedules.firings_between`),
resolves their targets to today's hosts and groups, and places every host
run in the window it lands in, or says it will not fit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from muster.domain.schedules import firings_between
from muster.domain.windows import (
    ClosePolicy,
    Forecast,
    MaintenanceWindow,
    PlannedRun,
    WindowKind,
    WindowScope,
    forecast,
    open_periods,
    parse_days,
    parse_recurring,
    windows_for,
    zone,
)
from muster.errors import PermissionDeniedError, ValidationError
from muster.security.rbac import Permission
from muster.services.actor import Actor, AuditSink
from muster.services.submission import resolve_hosts
from muster.store.base import Store
from muster.store.schedule_records import ScheduleStore

__all__ = [
    "MAX_FORECAST_DAYS",
    "CalendarEntry",
    "WindowService",
    "window_from_fields",
]

MAX_FORECAST_DAYS: Final = 92


def _local_instant(text: str, tz_name: str, field_name: str) -> dt.datetime:
    """An ISO date-time; one without an offset is local to the window's zone."""
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise ValidationError(
            f"{field_name} must be an ISO date and time, e.g. 2030-12-24T22:00 (got {text!r})",
            field=field_name,
        ) from exc
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone(tz_name))
    return value.astimezone(dt.UTC)


def _choice(enum: Any, value: str, field_name: str) -> Any:
    try:
        return enum(value)
    except ValueError as exc:
        allowed = ", ".join(m.value for m in enum)
        raise ValidationError(
            f"{field_name} must be one of {allowed} (got {value!r})", field=field_name
        ) from exc


def window_from_fields(
    *,
    name: str = "",
    kind: str = "recurring",
    scope: str = "group",
    target: str = "",
    timezone: str = "UTC",
    spec: str | None = None,
    days: str | None = None,
    start_time: str | None = None,
    end_time: str | None = None,
    starts_at: str | None = None,
    ends_at: str | None = None,
    close_policy: str = "finish",
) -> MaintenanceWindow:
    """A window from what a person typed; a ValidationError names the first bad field.

    A recurring window is ``spec`` (``Sun 01:00-03:00``, a zone at its end
    optional) or ``days`` + ``start_time`` + ``end_time``; a one-off one is
    ``starts_at`` + ``ends_at`` (local to ``timezone`` unless they carry an
    offset).
    """
    the_kind = _choice(WindowKind, kind, "kind")
    the_scope = _choice(WindowScope, scope, "scope")
    policy = _choice(ClosePolicy, close_policy, "close_policy")
    zone(timezone)
    if the_kind is WindowKind.RECURRING:
        if spec:
            if days or start_time or end_time:
                raise ValidationError(
                    "give spec or days/start_time/end_time, not both", field="spec"
                )
            return parse_recurring(
                spec,
                name=name,
                scope=the_scope,
                target=target,
                timezone=timezone,
                close_policy=policy,
            )
        for field_name, value in (
            ("days", days),
            ("start_time", start_time),
            ("end_time", end_time),
        ):
            if not value:
                raise ValidationError(
                    f"{field_name} is required for a recurring window", field=field_name
                )
        parse_days(days or "")
        return parse_recurring(
            f"{days} {start_time}-{end_time}",
            name=name or f"{days} {start_time}-{end_time} {timezone}",
            scope=the_scope,
            target=target,
            timezone=timezone,
            close_policy=policy,
        )
    if spec or days or start_time or end_time:
        raise ValidationError(
            f"a {the_kind.value} window takes starts_at and ends_at", field="starts_at"
        )
    if not starts_at:
        raise ValidationError("starts_at is required", field="starts_at")
    if not ends_at:
        raise ValidationError("ends_at is required", field="ends_at")
    a = _local_instant(starts_at, timezone, "starts_at")
    b = _local_instant(ends_at, timezone, "ends_at")
    return MaintenanceWindow(
        name=name or f"{the_kind.value} {starts_at}-{ends_at}",
        kind=the_kind,
        scope=the_scope,
        target=target,
        timezone=timezone,
        starts_at=a,
        ends_at=b,
        close_policy=policy,
    )


@dataclass(frozen=True, slots=True)
class CalendarEntry:
    """One thing on the calendar: a window's open period, or a schedule's firing."""

    kind: str  # "window", "blackout" or "firing"
    title: str
    start: dt.datetime
    end: dt.datetime | None
    ref: str = ""


class WindowService:
    """Windows over a store; changes and overrides are audited through ``audit``."""

    def __init__(
        self, store: Store, audit: AuditSink | None = None, schedules: ScheduleStore | None = None
    ) -> None:
        self.store = store
        self.audit = audit
        self.schedules = schedules

    def _record(
        self, who: Actor | None, action: str, target: str, details: Mapping[str, Any]
    ) -> None:
        if self.audit is not None:
            self.audit.record_audit(
                actor=who.name if who is not None else "system",
                action=action,
                target=target,
                address=who.address if who is not None else None,
                details=details,
            )

    def windows(self) -> list[MaintenanceWindow]:
        return self.store.list_windows()

    def get(self, window_id: str) -> MaintenanceWindow:
        return self.store.get_window(window_id)

    def create(self, who: Actor | None, window: MaintenanceWindow) -> MaintenanceWindow:
        saved = self.store.create_window(window, created_by=who.name if who else None)
        self._record(who, "window.create", f"window:{saved.id}", _summary(saved))
        return saved

    def delete(self, who: Actor | None, window_id: str) -> None:
        window = self.store.get_window(window_id)
        self.store.delete_window(window_id)
        self._record(who, "window.delete", f"window:{window_id}", _summary(window))

    def override(self, who: Actor, execution_id: str, reason: str = "") -> int:
        """Let ``execution_id`` run outside its windows now; refused without
        ``windows.override`` (whatever the face checked). Audited."""
        if not who.can(Permission.WINDOWS_OVERRIDE) and not who.can(Permission.ADMIN):
            raise PermissionDeniedError("overriding a maintenance window needs windows.override")
        self.store.get_execution(execution_id)  # 404 before anything changes
        released = self.store.override_windows(execution_id, by=who.name)
        self._record(
            who,
            "window.override",
            f"execution:{execution_id}",
            {"reason": reason[:500], "released": released},
        )
        return released

    # -- forecast and calendar ------------------------------------------------

    def planned(self, start: dt.datetime, end: dt.datetime) -> list[PlannedRun]:
        """Every schedule firing between ``start`` and ``end`` on today's hosts."""
        if self.schedules is None:
            return []
        out: list[PlannedRun] = []
        for rec in self.schedules.list_schedules(enabled=True):
            schedule = rec.schedule
            try:
                hosts = resolve_hosts(self.store, list(schedule.selector))
            except ValidationError:
                hosts = []  # its firing will fail naming them; nothing lands in a window
            targets = tuple((h.name, tuple(h.groups)) for h in hosts)
            duration = dt.timedelta(seconds=schedule.target.timeout)
            for due in firings_between(schedule, start, end, runs=rec.runs):
                out.append(PlannedRun(schedule.name, due, targets, duration, source_id=schedule.id))
        return out

    def forecast(self, days: float, now: dt.datetime | None = None) -> Forecast:
        if not 0 < days <= MAX_FORECAST_DAYS:
            raise ValidationError(f"days must be between 1 and {MAX_FORECAST_DAYS}", field="days")
        start = now or self.store_now()
        end = start + dt.timedelta(days=days)
        return forecast(self.planned(start, end), self.store.list_windows(), start, end)

    def store_now(self) -> dt.datetime:
        clock = getattr(self.store, "clock", None)
        return clock() if callable(clock) else dt.datetime.now(dt.UTC)

    def calendar(
        self, start: dt.datetime, end: dt.datetime, planned: Iterable[PlannedRun] | None = None
    ) -> list[CalendarEntry]:
        """Each window's open periods (blackouts apart) and each firing in ``[start, end)``."""
        entries: list[CalendarEntry] = []
        for w in self.store.list_windows():
            for a, b in w.occurrences(start, end):
                entries.append(
                    CalendarEntry("blackout" if w.blackout else "window", _label(w), a, b, w.id)
                )
        for p in planned if planned is not None else self.planned(start, end):
            entries.append(CalendarEntry("firing", p.source, p.due_at, None, p.source_id))
        entries.sort(key=lambda e: (e.start, e.kind, e.title))
        return entries


def _label(w: MaintenanceWindow) -> str:
    where = "all hosts" if w.scope is WindowScope.ALL else f"{w.scope.value} {w.target}"
    return f"{w.name} ({where})"


def _summary(w: MaintenanceWindow) -> dict[str, Any]:
    return {
        "name": w.name,
        "kind": w.kind.value,
        "scope": w.scope.value,
        "target": w.target,
        "spec": w.spec(),
        "close_policy": w.close_policy.value,
    }


def host_windows(
    windows: Sequence[MaintenanceWindow],
    host: str,
    groups: Iterable[str],
    start: dt.datetime,
    end: dt.datetime,
) -> list[tuple[dt.datetime, dt.datetime | None]]:
    """A host's open periods between ``start`` and ``end`` (for a face that shows them)."""
    mine = windows_for(windows, host, groups)
    if not mine:
        return [(start, None)]
    return [(p.start, p.end) for p in open_periods(mine, start, end)]
