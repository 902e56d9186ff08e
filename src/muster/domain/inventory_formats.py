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
import re
import shlex
import string
from collections.abc import Callable
from fnmatch import fnmatchcase
from typing import Final

import yaml

from muster.domain.hosts import Host
from muster.domain.inventory import ALL_GROUP, Inventory, VarValue
from muster.errors import InventoryError

__all__ = ["expand_host_pattern", "parse_ansible_ini", "parse_ansible_yaml", "parse_ssh_config"]

#: Names selectors can express: no whitespace, separators or pattern characters.
_NAME_RE: Final = re.compile(r"[^\s:,&!~=*?\[\]\"'#;]+")
_SECTION_RE: Final = re.compile(r"\[([^\]:\s]+)(?::([A-Za-z_]+))?\]\s*(?:[#;].*)?")
_RANGE_RE: Final = re.compile(r"\[([^\]]*)\]")
_MAX_EXPANSION: Final = 100_000


def _error(source: str, line: int | None, problem: str) -> InventoryError:
    where = f"{source}:{line}" if line is not None else source
    return InventoryError(f"{where}: {problem}", field="inventory")


def _check_name(kind: str, name: str, source: str, line: int | None) -> str:
    if not _NAME_RE.fullmatch(name):
        raise _error(source, line, f"invalid {kind} name {name!r}")
    return name


# -- host patterns (shared by INI and YAML) ------------------------------------------


def expand_host_pattern(pattern: str) -> list[str]:
    """Expand Ansible ranges: ``web[01:03]`` -> web01..web03, ``[a:c]``, ``[0:10:2]``.

    Several ranges multiply. Raises ValueError describing a bad range.
    """
    pieces: list[list[str]] = []
    pos = 0
    for match in _RANGE_RE.finditer(pattern):
        pieces.append([pattern[pos : match.start()]])
        pieces.append(_expand_range(match.group(1)))
        pos = match.end()
    pieces.append([pattern[pos:]])
    if "[" in pieces[-1][0] or "]" in pieces[-1][0]:
        raise ValueError(f"unbalanced brackets in {pattern!r}")
    total = 1
    for choice in pieces:
        total *= len(choice)
    if total > _MAX_EXPANSION:
        raise ValueError(f"{pattern!r} expands to {total} hosts (limit {_MAX_EXPANSION})")
    return ["".join(parts) for parts in itertools.product(*pieces)]


def _expand_range(spec: str) -> list[str]:
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
    if start.isdigit() and end.isdigit():
        first, last = int(start), int(end)
        width = len(start) if start.startswith("0") and len(start) > 1 else 0
        if first > last:
            raise ValueError(f"range [{spec}]: start is after end")
        return [str(n).zfill(width) for n in range(first, last + 1, step)]
    letters = string.ascii_letters
    if len(start) == 1 and len(end) == 1 and start in letters and end in letters:
        if start.islower() != end.islower() or start > end:
            raise ValueError(f"range [{spec}]: letters must go up within one case")
        return [chr(c) for c in range(ord(start), ord(end) + 1, step)]
    raise ValueError(f"range [{spec}]: use numbers ([01:10]) or single letters ([a:f])")


def _host_names(pattern: str, source: str, line: int | None) -> tuple[list[str], int | None]:
    """Hosts named by an inventory host pattern, and a ``:port`` if it had one."""
    port: int | None = None
    head, sep, tail = pattern.rpartition(":")
    if sep and tail.isdigit() and "[" not in tail and head.count("[") == head.count("]"):
        pattern, port = head, int(tail)
        if not 0 < port < 65536:
            raise _error(source, line, f"port {tail} out of range")
    try:
        names = expand_host_pattern(pattern)
    except ValueError as exc:
        raise _error(source, line, str(exc)) from None
    for name in names:
        _check_name("host", name, source, line)
    return names, port


# -- Ansible INI ---------------------------------------------------------------------


def parse_ansible_ini(text: str, source: str = "<string>") -> Inventory:
    """Parse an Ansible INI inventory (hosts, ``:vars``, ``:children`` sections)."""
    inventory = Inventory()
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
                inventory.add_group(group)
            continue
        if kind == "hosts":
            _ini_host_line(inventory, group, line, source, number)
        elif kind == "children":
            child = line.split("#", 1)[0].strip()
            _check_name("group", child, source, number)
            if child == ALL_GROUP:
                raise _error(source, number, "'all' cannot be a child group")
            inventory.add_group(group, children=(child,))
            declared.add(child)
        else:
            key, value = _ini_assignment(line, source, number)
            inventory.add_group(group, vars={key: value})
    for group_name, number in pending_vars.items():
        if group_name not in declared:
            raise _error(source, number, f"[{group_name}:vars] for a group never declared")
    return inventory


def _ini_host_line(inventory: Inventory, group: str, line: str, source: str, number: int) -> None:
    try:
        words = shlex.split(line, comments=True)
    except ValueError as exc:
        raise _error(source, number, f"cannot split host line: {exc}") from None
    names, port = _host_names(words[0], source, number)
    host_vars: dict[str, VarValue] = {}
    if port is not None:
        host_vars["ansible_port"] = str(port)
    for word in words[1:]:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise _error(source, number, f"expected key=value after the host name, got {word!r}")
        host_vars[key] = value
    for name in names:
        inventory.add_host(Host(name=name), vars=host_vars)
        if group != ALL_GROUP:
            inventory.add_group(group, hosts=(name,))


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


def parse_ansible_yaml(text: str, source: str = "<string>") -> Inventory:
    """Parse an Ansible YAML inventory: ``all: {hosts: ..., children: ..., vars: ...}``."""
    try:
        # The reader already refuses control characters, so build it inside the try.
        loader = yaml.SafeLoader(text)
    except yaml.YAMLError as exc:
        raise _error(
            source, None, f"invalid YAML: {getattr(exc, 'problem', None) or exc}"
        ) from None
    try:
        root = loader.get_single_node()
        inventory = Inventory()
        if root is None or _is_null(root):
            return inventory
        groups = _mapping(root, source, "the top level")
        for key_node, value_node in groups:
            name = _key(key_node, source)
            _yaml_group(inventory, name, value_node, loader, source, parents=())
        return inventory
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


def _yaml_vars(
    node: yaml.Node, loader: yaml.SafeLoader, source: str, what: str
) -> dict[str, VarValue]:
    found: dict[str, VarValue] = {}
    for key_node, value_node in _mapping(node, source, what):
        found[_key(key_node, source)] = loader.construct_object(value_node, deep=True)
    return found


def _yaml_group(
    inventory: Inventory,
    name: str,
    node: yaml.Node,
    loader: yaml.SafeLoader,
    source: str,
    parents: tuple[str, ...],
) -> None:
    _check_name("group", name, source, _line(node))
    if name in parents:
        raise _error(source, _line(node), f"group {name!r} is nested inside itself")
    inventory.add_group(name)
    for key_node, value_node in _mapping(node, source, f"group {name!r}"):
        key = _key(key_node, source)
        if key == "hosts":
            for host_key, host_node in _mapping(value_node, source, f"hosts of {name!r}"):
                pattern = _key(host_key, source)
                names, port = _host_names(pattern, source, _line(host_key))
                host_vars = _yaml_vars(host_node, loader, source, f"variables of host {pattern!r}")
                if port is not None:
                    host_vars.setdefault("ansible_port", port)
                for host_name in names:
                    inventory.add_host(Host(name=host_name), vars=host_vars)
                    if name != ALL_GROUP:
                        inventory.add_group(name, hosts=(host_name,))
        elif key == "children":
            for child_key, child_node in _mapping(value_node, source, f"children of {name!r}"):
                child = _key(child_key, source)
                if child == ALL_GROUP:
                    raise _error(source, _line(child_key), "'all' cannot be a child group")
                _yaml_group(inventory, child, child_node, loader, source, (*parents, name))
                inventory.add_group(name, children=(child,))
        elif key == "vars":
            inventory.add_group(name, vars=_yaml_vars(value_node, loader, source, "vars"))
        else:
            raise _error(
                source, _line(key_node), f"group {name!r}: unknown key {key!r} "
                "(expected hosts, children or vars)"
            )  # fmt: skip


# -- OpenSSH client config -----------------------------------------------------------

_SSH_KEYWORD_RE: Final = re.compile(r"\s*([A-Za-z][A-Za-z0-9]*)\s*(?:=\s*|\s+)(.*?)\s*")
_SSH_VARS: Final[dict[str, tuple[str, Callable[[str], bool]]]] = {
    "hostname": ("ansible_host", lambda v: bool(v)),
    "port": ("ansible_port", lambda v: v.isdigit() and 0 < int(v) < 65536),
    "user": ("ansible_user", lambda v: bool(v)),
    "identityfile": ("ansible_ssh_private_key_file", lambda v: bool(v)),
}


def parse_ssh_config(text: str, source: str = "<string>") -> Inventory:
    """Hosts from an OpenSSH client config, with OpenSSH's first-value-wins rule.

    Every ``Host`` alias without wildcards or negation becomes a host. Its
    HostName, Port, User and IdentityFile come from every block whose
    patterns match it (``Host *`` and ``Host web*`` included), the first
    value obtained winning, as ``ssh`` does. ``Match`` blocks are skipped
    (their conditions need the network or a shell); ``Include`` is ignored.
    ``%h`` in HostName stands for the alias.
    """
    blocks: list[tuple[list[str], dict[str, str]]] = [(["*"], {})]
    aliases: list[str] = []
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
            blocks.append((patterns, {}))
            skipping = False
            for pattern in patterns:
                if not any(c in pattern for c in "*?!") and pattern not in aliases:
                    _check_name("host", pattern, source, number)
                    aliases.append(pattern)
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
        blocks[-1][1].setdefault(var, value)
    inventory = Inventory()
    for alias in aliases:
        host_vars: dict[str, VarValue] = {}
        for patterns, options in blocks:
            if _ssh_matches(alias, patterns):
                for key, value in options.items():
                    host_vars.setdefault(key, value)
        if "ansible_host" in host_vars:
            host_vars["ansible_host"] = str(host_vars["ansible_host"]).replace("%h", alias)
        inventory.add_host(Host(name=alias), vars=host_vars)
    return inventory


def _ssh_matches(alias: str, patterns: list[str]) -> bool:
    """OpenSSH pattern lists: any positive match, and no negated one."""
    matched = False
    for pattern in patterns:
        if pattern.startswith("!"):
            if fnmatchcase(alias, pattern[1:]):
                return False
        elif fnmatchcase(alias, pattern):
            matched = True
    return matched
