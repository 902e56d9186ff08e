"""Typed parameters: declarations, coercion of submitted values, environment.

Values arrive as text (CLI ``key=value``) or JSON (HTTP) and are coerced to
their declared type before anything is queued, so a bad value fails the
request, never a host. Every problem found in one request is reported at
once (``ParameterError.problems``), each naming its parameter. A ``secret``
value is wrapped in :class:`Secret` the moment it is coerced and is never
echoed in an error message.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

from muster.domain.secret import Secret
from muster.errors import ParameterError

__all__ = [
    "ENV_PREFIX",
    "INT_MAX",
    "INT_MIN",
    "ParamValue",
    "ParameterSpec",
    "ParameterType",
    "coerce_value",
    "coerce_values",
    "env_name",
    "parameter_env",
    "value_text",
]

#: A coerced parameter value.
ParamValue: TypeAlias = int | float | bool | str | Secret

ENV_PREFIX: Final = "MUSTER_PARAM_"

_NAME_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MAX_NAME: Final = 64
_INT_RE: Final = re.compile(r"[+-]?[0-9]+")
#: Integer parameters are 64-bit signed, as shells, databases and most tools read them.
INT_MIN: Final = -(2**63)
INT_MAX: Final = 2**63 - 1
_FLOAT_RE: Final = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_TRUE: Final = frozenset({"true", "yes", "1", "on"})
_FALSE: Final = frozenset({"false", "no", "0", "off"})


class ParameterType(enum.StrEnum):
    STRING = "string"
    INTEGER = "integer"
    FLOAT = "float"
    BOOLEAN = "boolean"
    SECRET = "secret"
    CHOICE = "choice"


@dataclass(frozen=True, slots=True)
class ParameterSpec:
    """One declared parameter. The declaration validates itself on creation.

    ``default`` is stored already coerced to the type (``"5"`` for an integer
    becomes ``5``), so two declarations meaning the same thing compare and
    hash the same. Secrets take no default: it would be stored in clear.
    """

    name: str
    type: ParameterType = ParameterType.STRING
    required: bool = False
    default: int | float | bool | str | None = None
    description: str = ""
    choices: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        name = self.name
        if not isinstance(name, str) or not _NAME_RE.fullmatch(name) or len(name) > _MAX_NAME:
            raise ParameterError(
                f"invalid parameter name {name!r}: use letters, digits and '_', "
                f"not starting with a digit, at most {_MAX_NAME} characters",
                field=str(name),
            )
        try:
            ptype = ParameterType(self.type)
        except ValueError:
            allowed = ", ".join(t.value for t in ParameterType)
            raise ParameterError(
                f"parameter '{name}': unknown type {self.type!r} (one of {allowed})", field=name
            ) from None
        object.__setattr__(self, "type", ptype)
        if not isinstance(self.required, bool):
            raise ParameterError(f"parameter '{name}': required must be a boolean", field=name)
        if not isinstance(self.description, str):
            raise ParameterError(f"parameter '{name}': description must be text", field=name)
        choices = tuple(self.choices)
        object.__setattr__(self, "choices", choices)
        if ptype is ParameterType.CHOICE:
            if not choices:
                raise ParameterError(f"parameter '{name}': a choice needs choices", field=name)
            if not all(isinstance(c, str) for c in choices):
                raise ParameterError(f"parameter '{name}': choices must be text", field=name)
            if len(set(choices)) != len(choices):
                raise ParameterError(f"parameter '{name}': choices repeat", field=name)
        elif choices:
            raise ParameterError(
                f"parameter '{name}': only a choice parameter takes choices", field=name
            )
        if self.default is None:
            return
        if ptype is ParameterType.SECRET:
            raise ParameterError(
                f"parameter '{name}': a secret cannot have a default (it would be stored in clear)",
                field=name,
            )
        try:
            default = coerce_value(self, self.default)
        except ParameterError as exc:
            raise ParameterError(
                f"parameter '{name}': invalid default: {exc.problems.get(name, exc.message)}",
                field=name,
            ) from None
        assert not isinstance(default, Secret)
        object.__setattr__(self, "default", default)

    def to_dict(self) -> dict[str, Any]:
        """The canonical, JSON-ready form (also what a content hash covers)."""
        return {
            "name": self.name,
            "type": self.type.value,
            "required": self.required,
            "default": self.default,
            "description": self.description,
            "choices": list(self.choices),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ParameterSpec:
        unknown = set(data) - {"name", "type", "required", "default", "description", "choices"}
        if unknown:
            raise ParameterError(
                f"parameter declaration has unknown keys: {', '.join(sorted(unknown))}",
                field=str(data.get("name", "")) or None,
            )
        if "name" not in data:
            raise ParameterError("parameter declaration needs a name", field="name")
        return cls(
            name=data["name"],
            type=data.get("type", ParameterType.STRING),
            required=data.get("required", False),
            default=data.get("default"),
            description=data.get("description") or "",
            choices=tuple(data.get("choices") or ()),
        )


def _shown(raw: object) -> str:
    text = repr(raw)
    return text if len(text) <= 60 else text[:57] + "..."


def _problem(spec: ParameterSpec, text: str) -> ParameterError:
    return ParameterError(f"parameter '{spec.name}': {text}", field=spec.name)


def _check_text(spec: ParameterSpec, text: str) -> None:
    # A NUL can be carried by no shell word and no environment variable.
    if "\x00" in text:
        raise _problem(spec, "contains a NUL character, which no shell or environment can carry")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _problem(spec, "is not valid Unicode text (lone surrogate)") from None


def coerce_value(spec: ParameterSpec, raw: object) -> ParamValue:
    """Coerce one submitted value to ``spec``'s type or raise ParameterError naming it.

    Coercion is idempotent: an already coerced value comes back unchanged.
    """
    ptype = spec.type
    if ptype is ParameterType.SECRET:
        if isinstance(raw, Secret):
            _check_text(spec, raw.reveal())
            return raw
        if isinstance(raw, str):
            _check_text(spec, raw)
            return Secret(raw)
        # Never show a secret, not even a malformed one.
        raise _problem(spec, f"expected text, got {type(raw).__name__}")
    if isinstance(raw, Secret):
        raise _problem(spec, f"a secret value was given to a {ptype.value} parameter")
    if ptype is ParameterType.STRING:
        if not isinstance(raw, str):
            raise _problem(spec, f"expected text, got {type(raw).__name__}")
        _check_text(spec, raw)
        return raw
    if ptype is ParameterType.CHOICE:
        if not isinstance(raw, str) or raw not in spec.choices:
            allowed = ", ".join(spec.choices)
            raise _problem(spec, f"expected one of {allowed}; got {_shown(raw)}")
        return raw
    if ptype is ParameterType.BOOLEAN:
        return _coerce_bool(spec, raw)
    if ptype is ParameterType.INTEGER:
        return _coerce_int(spec, raw)
    return _coerce_float(spec, raw)


def _coerce_bool(spec: ParameterSpec, raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str):
        word = raw.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    raise _problem(spec, f"expected a boolean (true/false, yes/no, 1/0, on/off); got {_shown(raw)}")


def _coerce_int(spec: ParameterSpec, raw: object) -> int:
    if isinstance(raw, bool):
        raise _problem(spec, f"expected an integer; got a boolean {_shown(raw)}")
    value: int | None = None
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, float) and math.isfinite(raw) and raw.is_integer():
        value = int(raw)
    elif isinstance(raw, str) and _INT_RE.fullmatch(raw.strip()) and len(raw.strip()) <= 40:
        value = int(raw.strip())
    if value is None:
        raise _problem(spec, f"expected an integer; got {_shown(raw)}")
    if not INT_MIN <= value <= INT_MAX:
        raise _problem(spec, f"expected an integer from {INT_MIN} to {INT_MAX} (64 bits)")
    return value


def _coerce_float(spec: ParameterSpec, raw: object) -> float:
    if isinstance(raw, bool):
        raise _problem(spec, f"expected a number; got a boolean {_shown(raw)}")
    value: float | None = None
    if isinstance(raw, int | float):
        try:
            value = float(raw)
        except OverflowError:  # an int too large for a float
            value = math.inf
    elif isinstance(raw, str) and _FLOAT_RE.fullmatch(raw.strip()):
        value = float(raw.strip())
    if value is None:
        raise _problem(spec, f"expected a number; got {_shown(raw)}")
    if not math.isfinite(value):
        raise _problem(spec, f"expected a finite number; got {_shown(raw)}")
    return value


def coerce_values(
    specs: Iterable[ParameterSpec], raw: Mapping[str, object]
) -> dict[str, ParamValue]:
    """Coerce every submitted value, apply defaults, and check the whole set.

    Unknown names and missing required parameters are rejected. All problems
    are collected into one ParameterError whose ``field`` is the first bad
    name (declaration order, then unknown names in submitted order). A
    ``None`` value counts as not given. An optional parameter with neither a
    value nor a default is absent from the result.
    """
    specs = tuple(specs)
    declared = {s.name: s for s in specs}
    problems: dict[str, str] = {}
    values: dict[str, ParamValue] = {}
    for spec in specs:
        given = raw.get(spec.name)
        if given is None:
            if spec.default is not None:
                values[spec.name] = spec.default
            elif spec.required:
                problems[spec.name] = "required parameter is missing"
            continue
        try:
            values[spec.name] = coerce_value(spec, given)
        except ParameterError as exc:
            problems[spec.name] = exc.message.removeprefix(f"parameter '{spec.name}': ")
    for name in raw:
        if name not in declared:
            problems[str(name)] = "unknown parameter"
    if problems:
        missing = [n for n, p in problems.items() if p == "required parameter is missing"]
        detail = "; ".join(f"{n}: {p}" for n, p in problems.items())
        lead = f"missing required parameter(s): {', '.join(missing)}; " if missing else ""
        raise ParameterError(
            f"{lead}invalid parameters: {detail}",
            field=next(iter(problems)),
            problems=problems,
        )
    return values


def env_name(param_name: str) -> str:
    """The environment variable carrying a parameter: ``MUSTER_PARAM_<UPPER>``."""
    return ENV_PREFIX + param_name.upper()


def value_text(value: ParamValue) -> str:
    """The text form of a non-secret value: booleans ``true``/``false``,
    floats by ``repr`` (which round-trips), everything else by ``str``."""
    if isinstance(value, Secret):
        raise TypeError("a Secret has no text form outside a process environment")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def parameter_env(
    specs: Iterable[ParameterSpec], values: Mapping[str, ParamValue]
) -> dict[str, str | Secret]:
    """Every declared parameter as an environment variable.

    A parameter without a value is present and empty, matching what its
    placeholder renders to. Secrets stay wrapped.
    """
    env: dict[str, str | Secret] = {}
    for spec in specs:
        value = values.get(spec.name)
        if value is None:
            env[env_name(spec.name)] = Secret("") if spec.type is ParameterType.SECRET else ""
        elif isinstance(value, Secret):
            env[env_name(spec.name)] = value
        elif spec.type is ParameterType.SECRET:
            env[env_name(spec.name)] = Secret(value_text(value))
        else:
            env[env_name(spec.name)] = value_text(value)
    return env
