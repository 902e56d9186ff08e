"""Hosts from an OpenSSH client config (``~/.ssh/config``), as ``ssh`` reads it.

Pure: text in, :class:`~muster.domain.inventory.Inventory` out; reading files
is the engine's job. Errors start ``source:line:``.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from fnmatch import translate
from functools import partial
from typing import Final

from muster.domain.hosts import Host
from muster.domain.inventory import Inventory, InventoryLimits, VarValue
from muster.domain.inventory_parsing import Entries, adding, check_name, parse_error

__all__ = ["parse_ssh_config"]

#: ``Host`` lines with wildcards or negation are matched against every alias,
#: so their number bounds the work per alias.
_MAX_SSH_PATTERN_BLOCKS: Final = 64

_SSH_KEYWORD_RE: Final = re.compile(r"\s*([A-Za-z][A-Za-z0-9]*)\s*(?:=\s*|\s+)(.*?)\s*")
_SSH_VARS: Final[dict[str, tuple[str, Callable[[str], bool]]]] = {
    "hostname": ("ansible_host", lambda v: bool(v)),
    "port": ("ansible_port", lambda v: v.isdigit() and 0 < int(v) < 65536),
    "user": ("ansible_user", lambda v: bool(v)),
    "identityfile": ("ansible_ssh_private_key_file", lambda v: bool(v)),
}


def parse_ssh_config(
    text: str, source: str = "<string>", limits: InventoryLimits | None = None
) -> Inventory:
    """Hosts from an OpenSSH client config, with OpenSSH's first-value-wins rule.

    Every ``Host`` alias without wildcards or negation becomes a host. Its
    HostName, Port, User and IdentityFile come from every block whose
    patterns match it (``Host *`` and ``Host web*`` included), the first
    value obtained winning, as ``ssh`` does. ``Match`` blocks are skipped
    (their conditions need the network or a shell); ``Include`` is ignored.
    ``%h`` in HostName stands for the alias.

    Blocks that only name aliases are found by name; only blocks with
    wildcards or negation (at most a fixed number) are matched against every
    alias, so the work grows with the file, not with aliases times blocks.
    """
    entries = Entries(limits, source)
    blocks: list[dict[str, str]] = [{}]
    #: Per alias, the blocks that name it literally (ascending).
    aliases: dict[str, list[int]] = {}
    #: Blocks matched by pattern, with their compiled positive and negated patterns.
    patterned: list[tuple[int, re.Pattern[str] | None, re.Pattern[str] | None]] = [
        (0, _compile_patterns(["*"]), None)
    ]
    skipping = False
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _SSH_KEYWORD_RE.fullmatch(line)
        if match is None or not match.group(2):
            raise parse_error(source, number, f"expected 'Keyword value', got {line!r}")
        keyword, value = match.group(1).lower(), match.group(2)
        if keyword == "host":
            try:
                patterns = shlex.split(value)
            except ValueError as exc:
                raise parse_error(source, number, f"bad quoting: {exc}") from None
            index = len(blocks)
            blocks.append({})
            skipping = False
            entries.take(len(patterns), number)
            literal = [p for p in patterns if not any(c in p for c in "*?!")]
            for pattern in literal:
                check_name("host", pattern, source, number)
            if len(literal) < len(patterns):
                if len(patterned) > _MAX_SSH_PATTERN_BLOCKS:
                    raise parse_error(
                        source,
                        number,
                        f"more than {_MAX_SSH_PATTERN_BLOCKS} Host lines use wildcards "
                        "or negation (the limit)",
                    )
                positive = [p for p in patterns if not p.startswith("!")]
                negative = [p[1:] for p in patterns if p.startswith("!")]
                patterned.append((index, _compile_patterns(positive), _compile_patterns(negative)))
                for pattern in literal:
                    aliases.setdefault(pattern, [])
            else:
                for pattern in dict.fromkeys(literal):
                    aliases.setdefault(pattern, []).append(index)
            continue
        if keyword == "match":
            skipping = True
            continue
        if skipping or keyword not in _SSH_VARS:
            continue
        var, valid = _SSH_VARS[keyword]
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        if not valid(value):
            raise parse_error(source, number, f"invalid {match.group(1)} value {value!r}")
        blocks[-1].setdefault(var, value)
    inventory = Inventory(limits)
    for alias, named_in in aliases.items():
        found = [i for i, pos, neg in patterned if _ssh_matches(alias, pos, neg)]
        host_vars: dict[str, VarValue] = {}
        for index in sorted(found + named_in):
            for key, value in blocks[index].items():
                host_vars.setdefault(key, value)
        if "ansible_host" in host_vars:
            host_vars["ansible_host"] = str(host_vars["ansible_host"]).replace("%h", alias)
        adding(source, None, partial(inventory.add_host, Host(name=alias), vars=host_vars))
    return inventory


def _compile_patterns(patterns: list[str]) -> re.Pattern[str] | None:
    """OpenSSH-style glob patterns (``*``, ``?``) as one regular expression."""
    if not patterns:
        return None
    return re.compile("|".join(translate(p) for p in patterns))


def _ssh_matches(
    alias: str, positive: re.Pattern[str] | None, negative: re.Pattern[str] | None
) -> bool:
    """OpenSSH pattern lists: any positive match, and no negated one."""
    if negative is not None and negative.match(alias):
        return False
    return positive is not None and positive.match(alias) is not None
