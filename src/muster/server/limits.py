"""Field size limits, checked before anything is stored or queued: a 422 naming the field.

The request body as a whole is capped at the door (``input_guard.BodyLimit``,
``Settings.max_request_bytes``); these caps are per field and configurable
in :class:`~muster.config.Settings`: ``max_script_bytes`` (a script body,
1 MiB by default), ``max_command_bytes`` (an ad-hoc command, 64 KiB) and
``max_parameter_bytes`` (one parameter value or default, 64 KiB). Sizes are
UTF-8 bytes, as stored and sent to hosts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from muster.config import Settings
from muster.errors import ValidationError

__all__ = [
    "check_command",
    "check_parameter_values",
    "check_script",
    "check_size",
    "human_bytes",
]


def human_bytes(size: int) -> str:
    """``1048576`` -> ``1 MiB``; ``1500`` -> ``1500 bytes``."""
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} bytes"


def _utf8_size(text: str, limit: int) -> int:
    if len(text) * 4 <= limit:  # no character takes more than 4 bytes: surely within
        return len(text)
    return len(text.encode("utf-8", "surrogatepass"))


def check_size(text: str, limit: int, *, field: str, what: str) -> None:
    """ValidationError on ``field`` when ``text`` is over ``limit`` UTF-8 bytes."""
    size = _utf8_size(text, limit)
    if size > limit:
        raise ValidationError(
            f"{what} is {size} bytes; the limit is {limit} bytes ({human_bytes(limit)})",
            field=field,
        )


def check_script(
    settings: Settings,
    body: str,
    defaults: Iterable[tuple[str, object]] = (),
    *,
    field: str = "body",
    default_field: str = "parameters.{i}.default",
) -> None:
    """A script body, and its parameters' defaults (``(name, default)`` pairs; the
    field of the i-th is ``default_field.format(i=i)``)."""
    check_size(body, settings.max_script_bytes, field=field, what="the script body")
    for i, (name, default) in enumerate(defaults):
        if isinstance(default, str):
            check_size(
                default,
                settings.max_parameter_bytes,
                field=default_field.format(i=i),
                what=f"the default of parameter {name!r}",
            )


def check_command(settings: Settings, command: str, *, field: str = "command") -> None:
    check_size(command, settings.max_command_bytes, field=field, what="the command")


def check_parameter_values(
    settings: Settings, values: Mapping[str, object], *, prefix: str = "parameter_values."
) -> None:
    """Every text value; the field is ``prefix`` + the parameter's name."""
    for name, value in values.items():
        if isinstance(value, str):
            check_size(
                value,
                settings.max_parameter_bytes,
                field=f"{prefix}{name}",
                what=f"the value of parameter {name!r}",
            )
