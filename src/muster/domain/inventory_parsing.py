"""Pieces every inventory parser shares: errors naming ``source:line``, name checks,
the cap on listed entries, host entries with ports and ranges, INI values."""

from __future__ import annotations

import ast
import re
import warnings
from collections.abc import Callable
from typing import Final

from muster.domain.ansible_names import expand_host_pattern, host_pattern_size, split_host_port
from muster.domain.inventory import InventoryLimits, VarValue
from muster.errors import InventoryError

__all__ = [
    "Entries",
    "adding",
    "check_name",
    "host_entry",
    "ini_value",
    "parse_error",
]

#: Names hold no whitespace or control characters (Ansible would take a quoted
#: ``"a b"``; such a name cannot be written in a pattern or a shell line).
_BAD_NAME_RE: Final = re.compile(r"[\s\x00-\x1f\x7f]")


def parse_error(source: str, line: int | None, problem: str) -> InventoryError:
    where = f"{source}:{line}" if line is not None else source
    return InventoryError(f"{where}: {problem}", field="inventory")


def check_name(kind: str, name: str, source: str, line: int | None) -> str:
    if not name or _BAD_NAME_RE.search(name):
        raise parse_error(source, line, f"invalid {kind} name {name!r}")
    return name


class Entries:
    """Host names as listed (after range expansion), counted against ``max_entries``.

    Distinct hosts are capped by the inventory itself; this caps the work of
    listing the same names again and again (``web[1:100000]`` on every line).
    """

    def __init__(self, limits: InventoryLimits | None, source: str) -> None:
        self.cap = limits.max_entries if limits is not None else None
        self.source = source
        self.used = 0

    def take(self, count: int, line: int | None) -> None:
        self.used += count
        if self.cap is not None and self.used > self.cap:
            raise parse_error(
                self.source,
                line,
                f"the inventory lists more than {self.cap} host entries (the limit; "
                "a host listed on several lines counts once per line)",
            )


def adding(source: str, line: int | None, add: Callable[[], None]) -> None:
    """Run one inventory change, naming the line when the inventory refuses it."""
    try:
        add()
    except InventoryError as exc:
        if exc.message.startswith(f"{source}:"):
            raise
        raise parse_error(source, line, exc.message) from None


def host_entry(
    entry: str, source: str, line: int | None, entries: Entries
) -> tuple[list[str], int | None]:
    """Hosts named by one inventory host entry (``web[01:03]:2222``) and its port."""
    pattern, port = split_host_port(entry)
    if port is not None and not 0 < port < 65536:
        raise parse_error(source, line, f"port {port} out of range")
    if "[" in pattern:
        try:
            entries.take(host_pattern_size(pattern), line)
            names = expand_host_pattern(pattern)
        except ValueError as exc:
            raise parse_error(source, line, str(exc)) from None
    else:
        entries.take(1, line)
        names = [pattern]
    for name in names:
        check_name("host", name, source, line)
    return names, port


def ini_value(text: str) -> VarValue:
    """An INI value as Ansible reads it: a Python literal when it is one
    (``8080``, ``True``, ``['a', 'b']``, ``"quoted" # note``), else the text as written."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text
    return _plain(value)


def _plain(value: object) -> VarValue:
    """Literal results as variable values: tuples and sets become lists, complex
    numbers and ``...`` stay text, bytes become text."""
    if isinstance(value, str | bool | int | float) or value is None:
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if value is Ellipsis:
        return "..."
    return str(value)
