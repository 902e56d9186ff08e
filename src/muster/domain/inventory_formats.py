"""Inventory parsers: Ansible INI, Ansible YAML and OpenSSH client config.

Each takes text and the name of its source and returns an
:class:`~muster.domain.inventory.Inventory`; bad input raises
:class:`InventoryError` whose message starts ``source:line:``. Parsing is
pure: reading files is the engine's job (``muster.engine.inventory_files``).

Where Ansible is lenient in ways that hide mistakes (unknown keys in a YAML
group, an INI ``[x:vars]`` for a group never declared) we refuse, naming the
line. Values stay text in INI (Ansible would evaluate Python literals; the
connection fields convert what they need) and keep their YAML types in YAML.
"""

from __future__ import annotations

import itertools
import math
import re
import shlex
import string
from collections.abc import Callable
from fnmatch import translate
from functools import partial
from typing import Final

import yaml

from muster.domain.hosts import Host
from muster.domain.inventory import (
    ALL_GROUP,
    MAX_GROUP_DEPTH,
    Inventory,
    InventoryLimits,
    VarValue,
)
from muster.errors import InventoryError

__all__ = [
    "expand_host_pattern",
    "host_pattern_size",
    "parse_ansible_ini",
    "parse_ansible_yaml",
    "parse_ssh_config",
]

#: Names selectors can express: no whitespace, separators or pattern characters.
_NAME_RE: Final = re.compile(r"[^\s:,&!~=*?\[\]\"'#;]+")
_SECTION_RE: Final = re.compile(r"\[([^\]:\s]+)(?::([A-Za-z_]+))?\]\s*(?:[#;].*)?")
_RANGE_RE: Final = re.compile(r"\[([^\]]*)\]")
_MAX_EXPANSION: Final = 100_000
#: One YAML variable may expand (through aliases) to at most this many nodes.
_MAX_VALUE_NODES: Final = 100_000
#: ``Host`` lines with wildcards or negation are matched against every alias,
#: so their number bounds the work per alias.
_MAX_SSH_PATTERN_BLOCKS: Final = 64


def _error(source: str, line: int | None, problem: str) -> InventoryError:
    where = f"{source}:{line}" if line is not None else source
    return InventoryError(f"{where}: {problem}", field="inventory")


def _check_name(kind: str, name: str, source: str, line: int | None) -> str:
    if not _NAME_RE.fullmatch(name):
        raise _error(source, line, f"invalid {kind} name {name!r}")
    return name


class _Entries:
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
            raise _error(
                self.source,
                line,
                f"the inventory lists more than {self.cap} host entries (the limit; "
                "a host listed on several lines counts once per line)",
            )


def _adding(source: str, line: int | None, add: Callable[[], None]) -> None:
    """Run one inventory change, naming the line when the inventory refuses it."""
    try:
        add()
    except InventoryError as exc:
        if exc.message.startswith(f"{source}:"):
            raise
        raise _error(source, line, exc.message) from None


# -- host patterns (shared by INI and YAML) ------------------------------------------


def _pattern_pieces(pattern: str) -> list[str | range | tuple[range, int]]:
    """Literal text and ranges, in order; nothing is expanded yet."""
    pieces: list[str | range | tuple[range, int]] = []
    pos = 0
    for match in _RANGE_RE.finditer(pattern):
        pieces.append(pattern[pos : match.start()])
        pieces.append(_range_of(match.group(1)))
        pos = match.end()
    tail = pattern[pos:]
    if "[" in tail or "]" in tail:
        raise ValueError(f"unbalanced brackets in {pattern!r}")
    pieces.append(tail)
    return pieces


def _piece_size(piece: str | range | tuple[range, int]) -> int:
    if isinstance(piece, str):
        return 1
    span = piece[0] if isinstance(piece, tuple) else piece
    # Not len(): a range of more than sys.maxsize numbers has no len().
    return max(0, (span.stop - span.start + span.step - 1) // span.step)


def host_pattern_size(pattern: str) -> int:
    """How many names ``pattern`` expands to, computed without expanding it.

    Raises ValueError describing a bad range.
    """
    return math.prod(_piece_size(p) for p in _pattern_pieces(pattern))


def expand_host_pattern(pattern: str) -> list[str]:
    """Expand Ansible ranges: ``web[01:03]`` -> web01..web03, ``[a:c]``, ``[0:10:2]``.

    Several ranges multiply. Raises ValueError describing a bad range.
    """
    pieces = _pattern_pieces(pattern)
    total = math.prod(_piece_size(p) for p in pieces)
    if total > _MAX_EXPANSION:
        raise ValueError(f"{pattern!r} expands to {total} hosts (limit {_MAX_EXPANSION})")
    choices: list[list[str]] = []
    for piece in pieces:
        if isinstance(piece, str):
            choices.append([piece])
        elif isinstance(piece, tuple):
            numbers, width = piece
            choices.append([str(n).zfill(width) for n in numbers])
        else:
            choices.append([chr(c) for c in piece])
    return ["".join(parts) for parts in itertools.product(*choices)]


def _range_of(spec: str) -> range | tuple[range, int]:
    """A numeric range with its zero-padding width, or a range of letter code points."""
    parts = spec.split(":")
    if len(parts) not in (2, 3):
        raise ValueError(f"range [{spec}] must be [start:end] or [start:end:step]")
    start, end = parts[0], parts[1]
    try:
        step = int(parts[2]) if len(parts) == 3 else 1
    except ValueError:
        raise ValueError(f"range [{spec}]: step must be a number") from None
    if step < 1:
        raise ValueError(f"range [{spec}]: step must be positive")
    if start.isdigit() and end.isdigit() and start.isascii() and end.isascii():
        first, last = int(start), int(end)
        width = len(start) if start.startswith("0") and len(start) > 1 else 0
        if first > last:
            raise ValueError(f"range [{spec}]: start is after end")
        return range(first, last + 1, step), width
    letters = string.ascii_letters
    if len(start) == 1 and len(end) == 1 and start in letters and end in letters:
        if start.islower() != end.islower() or start > end:
            raise ValueError(f"range [{spec}]: letters must go up within one case")
        return range(ord(start), ord(end) + 1, step)
    raise ValueError(f"range [{spec}]: use numbers ([01:10]) or single letters ([a:f])")


def _host_names(
    pattern: str, source: str, line: int | None, entries: _Entries
) -> tuple[list[str], int | None]:
    """Hosts named by an inventory host pattern, and a ``:port`` if it had one."""
    port: int | None = None
    head, sep, tail = pattern.rpartition(":")
    if sep and tail.isdigit() and "[" not in tail and head.count("[") == head.count("]"):
        pattern, port = head, int(tail)
        if not 0 < port < 65536:
            raise _error(source, line, f"port {tail} out of range")
    try:
        entries.take(host_pattern_size(pattern), line)
        names = expand_host_pattern(pattern)
    except ValueError as exc:
        raise _error(source, line, str(exc)) from None
    for name in names:
        _check_name("host", name, source, line)
    return names, port


# -- Ansible INI ---------------------------------------------------------------------


def parse_ansible_ini(
    text: str, source: str = "<string>", limits: InventoryLimits | None = None
) -> Inventory:
    """Parse an Ansible INI inventory (hosts, ``:vars``, ``:children`` sections)."""
    inventory = Inventory(limits)
    entries = _Entries(limits, source)
    group, kind = ALL_GROUP, "hosts"
    pending_vars: dict[str, int] = {}
    declared: set[str] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            match = _SECTION_RE.fullmatch(line)
            if match is None:
                raise _error(source, number, f"malformed section header {line!r}")
            group = _check_name("group", match.group(1), source, number)
            kind = match.group(2) or "hosts"
            if kind not in ("hosts", "vars", "children"):
                raise _error(source, number, f"unknown section type ':{kind}' (vars or children)")
            if kind == "vars":
                if group not in declared and group != ALL_GROUP:
                    pending_vars.setdefault(group, number)
            else:
                declared.add(group)
                inventory.extend_group(group)
            continue
        if kind == "hosts":
            _ini_host_line(inventory, group, line, source, number, entries)
        elif kind == "children":
            child = line.split("#", 1)[0].strip()
            _check_name("group", child, source, number)
            if child == ALL_GROUP:
                raise _error(source, number, "'all' cannot be a child group")
            inventory.extend_group(group, children=(child,))
            declared.add(child)
        else:
            key, value = _ini_assignment(line, source, number)
            inventory.extend_group(group, vars={key: value})
    for group_name, number in pending_vars.items():
        if group_name not in declared:
            raise _error(source, number, f"[{group_name}:vars] for a group never declared")
    return inventory


def _ini_host_line(
    inventory: Inventory, group: str, line: str, source: str, number: int, entries: _Entries
) -> None:
    try:
        words = shlex.split(line, comments=True)
    except ValueError as exc:
        raise _error(source, number, f"cannot split host line: {exc}") from None
    names, port = _host_names(words[0], source, number, entries)
    host_vars: dict[str, VarValue] = {}
    if port is not None:
        host_vars["ansible_port"] = str(port)
    for word in words[1:]:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise _error(source, number, f"expected key=value after the host name, got {word!r}")
        host_vars[key] = value

    def add() -> None:
        for name in names:
            inventory.add_host(Host(name=name), vars=host_vars)
        if group != ALL_GROUP:
            inventory.extend_group(group, hosts=names)

    _adding(source, number, add)


def _ini_assignment(line: str, source: str, number: int) -> tuple[str, str]:
    key, sep, value = line.partition("=")
    key, value = key.strip(), value.strip()
    if not sep or not key or any(c.isspace() for c in key):
        raise _error(source, number, f"expected key=value, got {line!r}")
    if value[:1] in ("'", '"'):
        lexer = shlex.shlex(value, posix=True)
        lexer.whitespace_split = True
        lexer.commenters = "#;"
        try:
            value = " ".join(lexer)
        except ValueError as exc:
            raise _error(source, number, f"bad quoting in value: {exc}") from None
    else:
        value = re.split(r"\s+[#;]", value, maxsplit=1)[0]
    return key, value


# -- Ansible YAML --------------------------------------------------------------------

#: libyaml's parser when PyYAML was built with it: the same safe loading, ten
#: times faster than the pure-Python one on large inventories.
_YamlLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_ansible_yaml(
    text: str, source: str = "<string>", limits: InventoryLimits | None = None
) -> Inventory:
    """Parse an Ansible YAML inventory: ``all: {hosts: ..., children: ..., vars: ...}``.

    Aliases are followed, but a group reached twice under the same name is
    walked once, and a variable may not expand past a fixed number of nodes:
    a few lines of anchors cannot make unbounded work.
    """
    try:
        # The reader already refuses control characters, so build it inside the try.
        loader = _YamlLoader(text)
    except yaml.YAMLError as exc:
        raise _error(
            source, None, f"invalid YAML: {getattr(exc, 'problem', None) or exc}"
        ) from None
    try:
        root = loader.get_single_node()
        inventory = Inventory(limits)
        if root is None or _is_null(root):
            return inventory
        walk = _YamlWalk(inventory, loader, source, _Entries(limits, source))
        groups = _mapping(root, source, "the top level")
        for key_node, value_node in groups:
            name = _key(key_node, source)
            walk.group(name, value_node, parents=())
        return inventory
    except RecursionError:
        raise _error(source, None, "invalid YAML: nested too deeply") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise _error(source, line, f"invalid YAML: {problem}") from None
    finally:
        loader.dispose()


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _mapping(node: yaml.Node, source: str, what: str) -> list[tuple[yaml.Node, yaml.Node]]:
    if _is_null(node):
        return []
    if not isinstance(node, yaml.MappingNode):
        raise _error(source, _line(node), f"{what} must be a mapping")
    return list(node.value)


def _key(node: yaml.Node, source: str) -> str:
    if not isinstance(node, yaml.ScalarNode):
        raise _error(source, _line(node), "a key must be a plain name")
    return str(node.value)


class _YamlWalk:
    """One walk over a composed YAML inventory, building ``inventory``."""

    def __init__(
        self, inventory: Inventory, loader: yaml.SafeLoader, source: str, entries: _Entries
    ) -> None:
        self.inventory = inventory
        self.loader = loader
        self.source = source
        self.entries = entries
        self.walked: set[tuple[str, int]] = set()
        self.sizes: dict[int, int] = {}

    def vars(self, node: yaml.Node, what: str) -> dict[str, VarValue]:
        found: dict[str, VarValue] = {}
        for key_node, value_node in _mapping(node, self.source, what):
            key = _key(key_node, self.source)
            if self._size(value_node, ()) > _MAX_VALUE_NODES:
                raise _error(
                    self.source,
                    _line(value_node),
                    f"{what}: {key!r} expands to more than {_MAX_VALUE_NODES} values "
                    "through aliases",
                )
            found[key] = self.loader.construct_object(value_node, deep=True)
        return found

    def _size(self, node: yaml.Node, path: tuple[int, ...]) -> int:
        """Nodes in ``node`` with every alias expanded (memoised: linear in the document)."""
        key = id(node)
        if key in self.sizes:
            return self.sizes[key]
        if key in path:
            raise _error(self.source, _line(node), "a value refers to itself through an alias")
        total = 1
        if isinstance(node, yaml.SequenceNode):
            for item in node.value:
                total += self._size(item, (*path, key))
        elif isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                total += self._size(k, (*path, key)) + self._size(v, (*path, key))
        self.sizes[key] = total
        return total

    def group(self, name: str, node: yaml.Node, parents: tuple[str, ...]) -> None:
        source = self.source
        _check_name("group", name, source, _line(node))
        if name in parents:
            raise _error(source, _line(node), f"group {name!r} is nested inside itself")
        if len(parents) > MAX_GROUP_DEPTH:
            raise _error(
                source, _line(node), f"groups nest more than {MAX_GROUP_DEPTH} levels deep"
            )
        self.inventory.extend_group(name)
        if (name, id(node)) in self.walked:
            return  # the same group reached again through an alias: nothing new in it
        self.walked.add((name, id(node)))
        for key_node, value_node in _mapping(node, source, f"group {name!r}"):
            key = _key(key_node, source)
            if key == "hosts":
                for host_key, host_node in _mapping(value_node, source, f"hosts of {name!r}"):
                    self._hosts(name, host_key, host_node)
            elif key == "children":
                for child_key, child_node in _mapping(value_node, source, f"children of {name!r}"):
                    child = _key(child_key, source)
                    if child == ALL_GROUP:
                        raise _error(source, _line(child_key), "'all' cannot be a child group")
                    self.group(child, child_node, (*parents, name))
                    self.inventory.extend_group(name, children=(child,))
            elif key == "vars":
                self.inventory.extend_group(name, vars=self.vars(value_node, "vars"))
            else:
                raise _error(
                    source, _line(key_node), f"group {name!r}: unknown key {key!r} "
                    "(expected hosts, children or vars)"
                )  # fmt: skip

    def _hosts(self, group: str, host_key: yaml.Node, host_node: yaml.Node) -> None:
        pattern = _key(host_key, self.source)
        line = _line(host_key)
        names, port = _host_names(pattern, self.source, line, self.entries)
        host_vars = self.vars(host_node, f"variables of host {pattern!r}")
        if port is not None:
            host_vars.setdefault("ansible_port", port)

        def add() -> None:
            for host_name in names:
                self.inventory.add_host(Host(name=host_name), vars=host_vars)
            if group != ALL_GROUP:
                self.inventory.extend_group(group, hosts=names)

        _adding(self.source, line, add)


# -- OpenSSH client config -----------------------------------------------------------

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
    entries = _Entries(limits, source)
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
            raise _error(source, number, f"expected 'Keyword value', got {line!r}")
        keyword, value = match.group(1).lower(), match.group(2)
        if keyword == "host":
            try:
                patterns = shlex.split(value)
            except ValueError as exc:
                raise _error(source, number, f"bad quoting: {exc}") from None
            index = len(blocks)
            blocks.append({})
            skipping = False
            entries.take(len(patterns), number)
            literal = [p for p in patterns if not any(c in p for c in "*?!")]
            for pattern in literal:
                _check_name("host", pattern, source, number)
            if len(literal) < len(patterns):
                if len(patterned) > _MAX_SSH_PATTERN_BLOCKS:
                    raise _error(
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
            raise _error(source, number, f"invalid {match.group(1)} value {value!r}")
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
        _adding(source, None, partial(inventory.add_host, Host(name=alias), vars=host_vars))
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
