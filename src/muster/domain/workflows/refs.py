"""``{{...}}`` references to parameters and to the results of earlier steps.

Forms (seed 001, plus what many-host steps need):

* ``{{params.NAME}}`` - a workflow parameter;
* ``{{step_ID.stdout}}``, ``.stderr``, ``.exit_code``, ``.state`` - the result
  of step ``ID`` **on the same host** as the step being rendered; when step
  ``ID`` ran on exactly one host, that host's result serves every host;
* ``{{step_ID.json.KEY}}`` (``KEY`` may be a dotted path) - from the
  ``@@{json}`` events that host printed, merged in order (later keys win);
* ``{{step_ID.hosts.HOST.stdout}}`` (or ``.json.KEY`` ...) - a named host's result;
* the legacy ``variables.`` prefix is accepted (``{{variables.step_X.stdout}}``).

``stdout``/``stderr`` lose their trailing newlines, as a shell's ``$(...)``
does, so ``{{step_X.stdout}}`` of ``echo hi`` is ``hi``.

Only resolution lives here; how a value is placed in a shell body (always
one literal word, never code) is :mod:`.render`'s job.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from muster.domain.workflows.model import WorkflowError
from muster.domain.workflows.results import HostOutcome, StepResult

__all__ = [
    "REF_RE",
    "Field",
    "Reference",
    "UnresolvedReference",
    "find_references",
    "parse_reference",
    "resolve",
]

REF_RE: Final = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_STEP_RE: Final = re.compile(r"step_([A-Za-z][A-Za-z0-9_]{0,63})\.(.+)")
_PARAM_RE: Final = re.compile(r"params\.([A-Za-z_][A-Za-z0-9_]*)")
_KEY_RE: Final = re.compile(r"[^.\s]+(?:\.[^.\s]+)*")


class Field(enum.StrEnum):
    STDOUT = "stdout"
    STDERR = "stderr"
    EXIT_CODE = "exit_code"
    STATE = "state"
    JSON = "json"


@dataclass(frozen=True, slots=True)
class Reference:
    """One parsed reference: a parameter (``param``) or a step result."""

    text: str
    param: str | None = None
    step: str | None = None
    field: Field | None = None
    key: tuple[str, ...] = ()
    host: str | None = None


class UnresolvedReference(WorkflowError):
    """A reference has no value for this host (the step did not run there)."""


def parse_reference(text: str, *, step: str | None = None, where: str = "text") -> Reference:
    """Parse the inside of ``{{...}}``; a WorkflowError names ``step`` and ``where``."""
    body = text.strip()
    if body.startswith("variables."):
        body = body[len("variables.") :]
    m = _PARAM_RE.fullmatch(body)
    if m:
        return Reference(text=text, param=m.group(1))
    m = _STEP_RE.fullmatch(body)
    if m is None:
        raise WorkflowError(
            f"{{{{{text}}}}} is not a reference (use params.NAME or step_ID.stdout, "
            ".stderr, .exit_code, .state, .json.KEY, .hosts.HOST.FIELD)",
            step=step,
            field=where,
        )
    sid, rest = m.group(1), m.group(2)
    host: str | None = None
    if rest.startswith("hosts."):
        rest = rest[len("hosts.") :]
        host, rest = _split_host(rest, text, step, where)
    if rest.startswith("json.") or rest == "json":
        key = rest[len("json.") :] if rest != "json" else ""
        if not key or not _KEY_RE.fullmatch(key):
            raise WorkflowError(f"{{{{{text}}}}}: json needs a KEY", step=step, field=where)
        return Reference(
            text=text, step=sid, field=Field.JSON, key=tuple(key.split(".")), host=host
        )
    try:
        fld = Field(rest)
    except ValueError:
        raise WorkflowError(
            f"{{{{{text}}}}}: unknown field {rest!r} (stdout, stderr, exit_code, state, json.KEY)",
            step=step,
            field=where,
        ) from None
    return Reference(text=text, step=sid, field=fld, host=host)


def _split_host(rest: str, text: str, step: str | None, where: str) -> tuple[str, str]:
    """``web1.example.com.stdout`` -> (``web1.example.com``, ``stdout``): host names
    hold dots, so the field is found from the end."""
    for fld in (Field.STDOUT, Field.STDERR, Field.EXIT_CODE, Field.STATE):
        suffix = "." + fld.value
        if rest.endswith(suffix) and len(rest) > len(suffix):
            return rest[: -len(suffix)], fld.value
    cut = rest.find(".json.")
    if cut > 0:
        return rest[:cut], rest[cut + 1 :]
    raise WorkflowError(
        f"{{{{{text}}}}}: hosts.HOST must be followed by a field", step=step, field=where
    )


def find_references(
    text: str, *, step: str | None = None, where: str = "text"
) -> Iterator[tuple[re.Match[str], Reference]]:
    """Every ``{{...}}`` in ``text`` with its parsed reference, in order."""
    for m in REF_RE.finditer(text):
        yield m, parse_reference(m.group(1), step=step, where=where)


def _host_outcome(ref: Reference, result: StepResult, host: str | None) -> HostOutcome:
    wanted = ref.host or host
    if wanted is not None and wanted in result.hosts:
        return result.hosts[wanted]
    if ref.host is None and len(result.hosts) == 1:
        return next(iter(result.hosts.values()))
    on = f" on host {wanted}" if wanted else ""
    raise UnresolvedReference(
        f"{{{{{ref.text}}}}}: step {ref.step} has no result{on}", step=ref.step
    )


def resolve(
    ref: Reference,
    *,
    params: Mapping[str, Any],
    results: Mapping[str, StepResult],
    host: str | None = None,
) -> Any:
    """The value ``ref`` stands for when rendered for ``host`` (``None``: not a host step).

    Parameters come back typed (a secret stays a :class:`~muster.domain.secret.Secret`);
    ``exit_code`` is an int (or None), json values keep their JSON type, a missing
    json key is None, text fields are text.
    """
    if ref.param is not None:
        if ref.param not in params:
            return None
        return params[ref.param]
    assert ref.step is not None and ref.field is not None
    result = results.get(ref.step)
    if result is None:
        raise UnresolvedReference(f"{{{{{ref.text}}}}}: step {ref.step} has not run", step=ref.step)
    outcome = _host_outcome(ref, result, host)
    if ref.field is Field.STDOUT:
        return outcome.stdout.rstrip("\n")
    if ref.field is Field.STDERR:
        return outcome.stderr.rstrip("\n")
    if ref.field is Field.EXIT_CODE:
        return outcome.exit_code
    if ref.field is Field.STATE:
        return outcome.state
    value: Any = outcome.json
    for part in ref.key:
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif (
            isinstance(value, list)
            and part.lstrip("-").isdigit()
            and -len(value) <= int(part) < len(value)
        ):
            value = value[int(part)]
        else:
            return None
    return value
