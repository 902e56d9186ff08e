"""Console forms to domain objects, with problems keyed by the form's field names.

The script form goes through the API's own request model (:class:`ScriptIn`)
and the domain's declarations, so the console accepts exactly what the API
accepts. Execute-form values go to ``submit_script`` as text, where the
domain's ``coerce_values`` applies the same rules as for a JSON request.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError as PydanticError

from muster.domain.params import ParameterSpec, ParameterType
from muster.domain.render import placeholder_problems
from muster.domain.scripts import ScriptVersion
from muster.errors import ValidationError
from muster.server.schemas.scripts import ScriptIn

__all__ = [
    "ParamRow",
    "ScriptForm",
    "execute_values",
    "form_int",
    "host_refs",
    "script_form",
    "script_form_from_version",
]

_ROW = re.compile(r"p(\d+)_(name|type|required|default|description|choices)$")


@dataclass(slots=True)
class ParamRow:
    name: str = ""
    type: str = "string"
    required: bool = False
    default: str = ""
    description: str = ""
    choices: str = ""


@dataclass(slots=True)
class ScriptForm:
    """What the edit form shows (entered values are kept when a save is refused)."""

    name: str = ""
    shell: str = "bash"
    body: str = ""
    description: str = ""
    tags: str = ""
    timeout: str = "300"
    requires_approval: bool = False
    idempotent: bool = False
    params: list[ParamRow] = field(default_factory=list)


def _one(data: Mapping[str, Sequence[str]], key: str, default: str = "") -> str:
    values = data.get(key)
    return values[-1] if values else default


def _checked(data: Mapping[str, Sequence[str]], key: str) -> bool:
    return _one(data, key).lower() in ("on", "true", "1", "yes")


def script_form(data: Mapping[str, Sequence[str]]) -> ScriptForm:
    rows: dict[int, ParamRow] = {}
    for key in data:
        m = _ROW.fullmatch(key)
        if m:
            rows.setdefault(int(m.group(1)), ParamRow())
    for i, row in rows.items():
        row.name = _one(data, f"p{i}_name").strip()
        row.type = _one(data, f"p{i}_type", "string")
        row.required = _checked(data, f"p{i}_required")
        row.default = _one(data, f"p{i}_default")
        row.description = _one(data, f"p{i}_description")
        row.choices = _one(data, f"p{i}_choices")
    return ScriptForm(
        name=_one(data, "name").strip(),
        shell=_one(data, "shell", "bash"),
        body=_one(data, "body").replace("\r\n", "\n"),
        description=_one(data, "description"),
        tags=_one(data, "tags"),
        timeout=_one(data, "timeout", "300").strip(),
        requires_approval=_checked(data, "requires_approval"),
        idempotent=_checked(data, "idempotent"),
        params=[rows[i] for i in sorted(rows) if rows[i].name or rows[i].default],
    )


def script_form_from_version(
    name: str, v: Any, description: str, tags: Sequence[str]
) -> ScriptForm:
    """The edit form filled from a stored version (a ``VersionRecord``)."""
    return ScriptForm(
        name=name,
        shell=v.shell.value,
        body=v.body,
        description=description,
        tags=", ".join(tags),
        timeout=f"{v.timeout:g}",
        requires_approval=v.requires_approval,
        idempotent=v.idempotent,
        params=[
            ParamRow(
                p.name,
                p.type.value,
                p.required,
                ""
                if p.default is None
                else str(p.default).lower()
                if isinstance(p.default, bool)
                else str(p.default),
                p.description,
                ", ".join(p.choices),
            )
            for p in v.parameters
        ],
    )


_API_FIELD = {"name": "name", "shell": "shell", "body": "body", "timeout": "timeout"}


def _api_problems(exc: PydanticError) -> dict[str, str]:
    problems: dict[str, str] = {}
    for err in exc.errors():
        loc = [str(x) for x in err.get("loc", ())]
        if loc and loc[0] == "parameters" and len(loc) >= 3:
            key = f"p{loc[1]}_{loc[2]}"
        else:
            key = _API_FIELD.get(loc[0] if loc else "", loc[0] if loc else "form")
        problems.setdefault(key, str(err.get("msg", "invalid")))
    return problems


def to_version(form: ScriptForm) -> tuple[ScriptVersion, list[str]]:
    """The content to save and its tags, or ``ValidationError`` keyed by form field."""
    tags = [t.strip() for t in form.tags.split(",") if t.strip()]
    raw: dict[str, Any] = {
        "name": form.name,
        "shell": form.shell,
        "body": form.body,
        "timeout": form.timeout or "300",
        "requires_approval": form.requires_approval,
        "idempotent": form.idempotent,
        "description": form.description,
        "tags": tags,
        "parameters": [
            {
                "name": p.name,
                "type": p.type,
                "required": p.required,
                "default": p.default if p.default != "" else None,
                "description": p.description,
                "choices": [c.strip() for c in p.choices.split(",") if c.strip()],
            }
            for p in form.params
        ],
    }
    try:
        body = ScriptIn(**raw)
    except PydanticError as exc:
        found = _api_problems(exc)
        raise ValidationError(
            "the script was not saved", field=next(iter(found)), problems=found
        ) from exc
    problems: dict[str, str] = {}
    try:
        version = body.to_version()
    except ValidationError as exc:
        for key, message in exc.problems.items():
            index = key.removeprefix("parameters.")
            problems[f"p{index}_{_param_field(message)}"] = message
    else:
        for pname, problem in placeholder_problems(version).items():
            problems["body"] = f"${{{pname}}}: {problem}"
        if not problems:
            return version, tags
    raise ValidationError("the script was not saved", field=next(iter(problems)), problems=problems)


def _param_field(message: str) -> str:
    text = message.lower()
    for word in ("default", "choice", "type"):
        if word in text:
            return "choices" if word == "choice" else word
    return "name"


def execute_values(
    specs: Sequence[ParameterSpec], data: Mapping[str, Sequence[str]]
) -> dict[str, object]:
    """Raw parameter values from the execute form (``param.<name>`` fields).

    An empty field counts as not given; a boolean is its checkbox's state.
    """
    raw: dict[str, object] = {}
    for spec in specs:
        key = f"param.{spec.name}"
        if spec.type is ParameterType.BOOLEAN:
            raw[spec.name] = "true" if _checked(data, key) else "false"
            continue
        value = _one(data, key)
        if value != "":
            raw[spec.name] = value
    return raw


def form_int(text: str, *, field: str, low: int, high: int) -> int:
    """A whole number typed in a form field, within [low, high]; else ValidationError
    naming the field (never a ValueError from ``int("abc")``)."""
    value = text.strip()
    if not (value.isascii() and value.isdigit() and len(value) <= len(str(high))):
        number = None
    else:
        number = int(value)
    if number is None or not low <= number <= high:
        problem = f"must be a whole number from {low} to {high}; got {text[:40]!r}"
        raise ValidationError(f"{field} {problem}", field=field, problems={field: problem})
    return number


def host_refs(text: str) -> list[str]:
    """Host names, groups, globs or ``label=value`` separated by commas or spaces."""
    return [ref for ref in re.split(r"[,\s]+", text) if ref]
