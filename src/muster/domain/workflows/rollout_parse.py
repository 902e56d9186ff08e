"""Read and write a workflow's ``rollout:``, ``verifications:`` and ``windows:`` keys,
and check that they name real steps.

Kept apart from :mod:`.parse` (which reads steps) so each stays one job. Every
problem is a :class:`~.model.WorkflowError` whose field names the key
(``rollout.waves[2]``, ``verifications.pkgs.commands``, ``windows.web``).

Accepted shapes (seed 004's ``set_progressive_execution`` reads as written)::

    rollout:
      waves: [[web01], [web02, web03], [db_servers], 10, "50%", "100%"]   # or groups:
      verification_tasks: [verify_web]
      auto_rollback: true
      soak: 5m
      failure_threshold: 1          # or "10%"
      threshold_scope: wave         # or rollout
      wave_duration: 20m
      rollback_retry: {tries: 4, delay: 5s, backoff: 2}
    verifications:
      pkgs: {before_tasks: [...], after_tasks: [...], commands: {...}, comparisons: {...}}
    windows:
      web_servers: "Sunday 01:00-03:00"
      db_servers: ["Sun 03:00-05:00", "2026-01-04T01:00Z/2026-01-04T02:00Z"]
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Final

from muster.domain.durations import parse_duration
from muster.domain.rollout_spec import RetrySpec, RolloutSpec, Threshold, ThresholdScope, WaveSpec
from muster.domain.verification import Verification, parse_verification, verification_to_dict
from muster.domain.windows import MaintenanceWindow, WindowKind, WindowScope, parse_recurring
from muster.domain.workflows.model import Workflow, WorkflowError
from muster.domain.workflows.refs import find_references
from muster.errors import ValidationError

__all__ = [
    "check_rollout_references",
    "parse_rollout",
    "parse_verifications",
    "parse_windows",
    "rollout_to_dict",
    "window_objects",
]

_ROLLOUT_KEYS: Final = frozenset(
    {
        "waves",
        "groups",
        "verification_tasks",
        "auto_rollback",
        "soak",
        "failure_threshold",
        "threshold_scope",
        "wave_duration",
        "rollback_retry",
    }
)
_MAX_WAVES: Final = 1000


def _err(message: str, field: str) -> WorkflowError:
    return WorkflowError(f"{field}: {message}", field=field)


def _seconds(value: Any, field: str, *, zero: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _err("must be a duration (seconds or e.g. 5m)", field)
    if isinstance(value, str):
        try:
            seconds = parse_duration(value, field=field)
        except ValidationError as exc:
            raise _err(exc.message, field) from None
    else:
        seconds = float(value)
    if seconds != seconds or seconds < 0 or (seconds == 0 and not zero) or seconds > 366 * 86400:
        raise _err("must be a positive duration of at most a year", field)
    return seconds


def _percent(text: str, field: str) -> float:
    try:
        value = float(text.strip()[:-1])
    except ValueError:
        raise _err(f"{text!r} is not a percent like '10%'", field) from None
    return value


def _names(value: Any, field: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not all(
        isinstance(v, str) and v.strip() for v in value
    ):
        raise _err("must be a step id or a list of them", field)
    return tuple(dict.fromkeys(v.strip() for v in value))


def _wave(value: Any, field: str) -> WaveSpec:
    if isinstance(value, bool):
        raise _err("a wave is a list of selectors, a host count or a percent", field)
    if isinstance(value, int):
        if value < 1:
            raise _err("a host count must be at least 1", field)
        return WaveSpec(count=value)
    if isinstance(value, str) and value.strip().endswith("%"):
        pct = _percent(value, field)
        if not 0 < pct <= 100:
            raise _err("a percent must be above 0 and at most 100", field)
        return WaveSpec(percent=pct)
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list | tuple) and value and all(isinstance(v, str) for v in value):
        selectors = tuple(v.strip() for v in value)
        if not all(selectors):
            raise _err("a selector cannot be empty", field)
        from muster.domain.selectors import split_pattern

        for selector in selectors:
            try:
                split_pattern(selector)
            except ValidationError as exc:
                raise _err(exc.message, field) from None
        return WaveSpec(selectors=selectors)
    raise _err("a wave is a list of selectors, a host count or a percent like '10%'", field)


def _threshold(value: Any) -> Threshold:
    field = "rollout.failure_threshold"
    if isinstance(value, bool):
        raise _err("must be a count or a percent", field)
    if isinstance(value, int):
        if value < 0:
            raise _err("a count cannot be negative", field)
        return Threshold(count=value)
    if isinstance(value, str) and value.strip().endswith("%"):
        pct = _percent(value, field)
        if not 0 <= pct < 100:
            raise _err("a percent must be from 0 up to (not including) 100", field)
        return Threshold(count=None, percent=pct)
    raise _err("must be a count (e.g. 2) or a percent (e.g. '10%')", field)


def _retry(value: Any) -> RetrySpec:
    field = "rollout.rollback_retry"
    if isinstance(value, int) and not isinstance(value, bool):
        value = {"tries": value}
    if not isinstance(value, Mapping):
        raise _err("must be a number of tries or a mapping (tries, delay, backoff)", field)
    unknown = sorted(str(k) for k in set(value) - {"tries", "delay", "backoff"})
    if unknown:
        raise _err(f"unknown key(s) {', '.join(unknown)}", f"{field}.{unknown[0]}")
    default = RetrySpec()
    tries = value.get("tries", default.tries)
    if isinstance(tries, bool) or not isinstance(tries, int) or not 1 <= tries <= 100:
        raise _err("tries must be a whole number from 1 to 100", f"{field}.tries")
    delay = _seconds(value.get("delay", default.delay), f"{field}.delay", zero=True)
    backoff = value.get("backoff", default.backoff)
    if isinstance(backoff, bool) or not isinstance(backoff, int | float) or not 1 <= backoff <= 10:
        raise _err("backoff must be a number from 1 to 10", f"{field}.backoff")
    return RetrySpec(tries=tries, delay=delay, backoff=float(backoff))


def parse_rollout(value: Any) -> RolloutSpec | None:
    """The ``rollout:`` key (None when absent)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise _err("must be a mapping with waves", "rollout")
    unknown = sorted(str(k) for k in set(value) - _ROLLOUT_KEYS)
    if unknown:
        raise _err(f"unknown key(s) {', '.join(unknown)}", f"rollout.{unknown[0]}")
    if "waves" in value and "groups" in value:
        raise _err("give waves or groups (its other name), not both", "rollout.groups")
    key = "waves" if "waves" in value else "groups"
    raw = value.get(key)
    if not isinstance(raw, list | tuple) or not raw:
        raise _err("must be a non-empty list of waves", f"rollout.{key}")
    if len(raw) > _MAX_WAVES:
        raise _err(f"at most {_MAX_WAVES} waves", f"rollout.{key}")
    waves = tuple(_wave(w, f"rollout.{key}[{i}]") for i, w in enumerate(raw))
    _check_cumulative(waves, key)
    auto = value.get("auto_rollback", False)
    if not isinstance(auto, bool):
        raise _err("must be true or false", "rollout.auto_rollback")
    scope_raw = value.get("threshold_scope", "wave")
    try:
        scope = ThresholdScope(scope_raw)
    except ValueError:
        raise _err("must be 'wave' or 'rollout'", "rollout.threshold_scope") from None
    duration = value.get("wave_duration")
    return RolloutSpec(
        waves=waves,
        verification_tasks=_names(
            value.get("verification_tasks", ()), "rollout.verification_tasks"
        ),
        auto_rollback=auto,
        soak=_seconds(value.get("soak", 0), "rollout.soak", zero=True),
        failure_threshold=_threshold(value.get("failure_threshold", 0)),
        threshold_scope=scope,
        wave_duration=None
        if duration is None
        else _seconds(duration, "rollout.wave_duration", zero=True),
        rollback_retry=_retry(value.get("rollback_retry", {})),
    )


def _check_cumulative(waves: tuple[WaveSpec, ...], key: str) -> None:
    """Counts and percents are cumulative: each must exceed the last of its kind."""
    last_count, last_pct = 0, 0.0
    for i, wave in enumerate(waves):
        field = f"rollout.{key}[{i}]"
        if wave.count is not None:
            if wave.count <= last_count:
                raise _err(
                    f"host counts are cumulative: {wave.count} must exceed {last_count}", field
                )
            last_count = wave.count
        if wave.percent is not None:
            if wave.percent <= last_pct:
                raise _err(
                    f"percents are cumulative: {wave.percent:g}% must exceed {last_pct:g}%", field
                )
            last_pct = wave.percent


def parse_verifications(value: Any) -> tuple[Verification, ...]:
    """The ``verifications:`` key: a mapping name -> spec, or a list of specs with a name."""
    if value is None:
        return ()
    items: list[tuple[str, Any]]
    if isinstance(value, Mapping):
        items = [(str(k), v) for k, v in value.items()]
    elif isinstance(value, list):
        items = []
        for i, spec in enumerate(value):
            if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str):
                raise _err("each verification is a mapping with a name", f"verifications[{i}]")
            items.append((spec["name"], {k: v for k, v in spec.items() if k != "name"}))
    else:
        raise _err("must be a mapping of name to verification", "verifications")
    out: list[Verification] = []
    seen: set[str] = set()
    for name, spec in items:
        if name in seen:
            raise _err("a verification is named twice", f"verifications.{name}")
        seen.add(name)
        try:
            out.append(parse_verification(name, spec))
        except ValidationError as exc:
            raise WorkflowError(exc.message, field=exc.field or f"verifications.{name}") from None
    return tuple(out)


def window_objects(selector: str, text: str) -> list[MaintenanceWindow]:
    """The windows one ``windows:`` entry means (each covers whatever ``selector`` picks)."""
    out: list[MaintenanceWindow] = []
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        name = f"{selector}: {part}"
        if "/" in part and "T" in part:
            a, _, b = part.partition("/")
            try:
                starts, ends = (
                    dt.datetime.fromisoformat(a.strip()),
                    dt.datetime.fromisoformat(b.strip()),
                )
            except ValueError:
                raise ValidationError(
                    f"{part!r} is not an ISO period (START/END)", field="spec"
                ) from None
            out.append(
                MaintenanceWindow(
                    name=name,
                    kind=WindowKind.EXTRA,
                    scope=WindowScope.ALL,
                    starts_at=starts,
                    ends_at=ends,
                )
            )
        else:
            out.append(parse_recurring(part, name=name, scope=WindowScope.ALL))
    if not out:
        raise ValidationError("names no window", field="spec")
    return out


def parse_windows(value: Any) -> dict[str, str]:
    """The ``windows:`` key: selector -> spec text (or a list of them, kept as ``a; b``)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _err("must be a mapping of selector to window spec", "windows")
    out: dict[str, str] = {}
    for key, raw in value.items():
        field = f"windows.{key}"
        if not isinstance(key, str) or not key.strip():
            raise _err("a selector must be text", "windows")
        if isinstance(raw, list | tuple) and all(isinstance(r, str) for r in raw):
            raw = "; ".join(raw)
        if not isinstance(raw, str):
            raise _err("must be a window spec like 'Sun 01:00-03:00' or a list of them", field)
        try:
            window_objects(key, raw)
        except ValidationError as exc:
            raise _err(exc.message, field) from None
        out[key.strip()] = raw.strip()
    return out


def check_rollout_references(workflow: Workflow) -> None:
    """Every step a rollout or a verification names exists (and can be captured), and
    rollback commands read nothing but parameters (they run alone, after the fact)."""
    steps = {s.id: s for s in workflow.steps}
    declared = {p.name for p in workflow.parameters}
    for step in workflow.steps:
        if step.rollback is None:
            continue
        for _, ref in find_references(step.rollback, step=step.id, where="rollback"):
            if ref.step is not None or ref.param not in declared:
                raise WorkflowError(
                    f"a rollback command may read declared parameters only ({{{{{ref.text}}}}})",
                    step=step.id,
                    field="rollback",
                )
    if workflow.rollout is not None:
        for sid in workflow.rollout.verification_tasks:
            if sid not in steps:
                raise _err(f"names unknown step {sid!r}", "rollout.verification_tasks")
            if not steps[sid].type.runs_on_hosts:
                raise _err(f"step {sid!r} does not run on hosts", "rollout.verification_tasks")
    for v in workflow.verifications:
        for key in ("before_tasks", "after_tasks"):
            names = getattr(v, key)
            if not names:
                raise _err("must name at least one step", f"verifications.{v.name}.{key}")
            for sid in names:
                if sid not in steps:
                    raise _err(f"names unknown step {sid!r}", f"verifications.{v.name}.{key}")
                if not steps[sid].type.runs_on_hosts:
                    raise _err(
                        f"step {sid!r} does not run on hosts", f"verifications.{v.name}.{key}"
                    )


def rollout_to_dict(spec: RolloutSpec) -> dict[str, Any]:
    """The canonical form :func:`parse_rollout` reads back unchanged."""
    out: dict[str, Any] = {"waves": [w.text() for w in spec.waves]}
    if spec.verification_tasks:
        out["verification_tasks"] = list(spec.verification_tasks)
    if spec.auto_rollback:
        out["auto_rollback"] = True
    if spec.soak:
        out["soak"] = spec.soak
    if spec.failure_threshold != Threshold():
        out["failure_threshold"] = spec.failure_threshold.text()
    if spec.threshold_scope is not ThresholdScope.WAVE:
        out["threshold_scope"] = spec.threshold_scope.value
    if spec.wave_duration is not None:
        out["wave_duration"] = spec.wave_duration
    if spec.rollback_retry != RetrySpec():
        r = spec.rollback_retry
        out["rollback_retry"] = {"tries": r.tries, "delay": r.delay, "backoff": r.backoff}
    return out


def verifications_to_dict(verifications: tuple[Verification, ...]) -> dict[str, Any]:
    return {v.name: verification_to_dict(v) for v in verifications}
