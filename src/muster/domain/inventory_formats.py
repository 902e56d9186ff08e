"""Inventory parsers: Ansible INI, Ansible YAML (and OpenSSH client config).

Each takes text and the name of its source and returns an
:class:`~muster.domain.inventory.Inventory` (or adds to the one given as
``into``, which is how several sources combine as Ansible combines them);
bad input raises :class:`InventoryError` whose message starts
``source:line:``. Parsing is pure: reading files is the engine's job
(``muster.engine.inventory_files``).

Both follow ansible-core 2.19: INI values are Python literals when they
read as one (``8080`` is a number, ``x=hello # note`` keeps its ``# note``
as Ansible does), hosts before the first section are ``ungrouped``, a
``[x:vars]`` or ``:children`` entry naming a group never declared is
refused with Ansible's reason; YAML ``hosts:``/``children:``/``vars:`` given
as a string name one entry, and keys Ansible skips with a warning are
skipped with a warning (in ``Inventory.warnings``), never silently.
Deliberate differences are listed in docs/ansible-differences.md.
"""

from __future__ import annotations

import re
import shlex
from functools import partial
from typing import Final

import yaml

from muster.domain.ansible_names import expand_host_pattern, host_pattern_size
from muster.domain.hosts import Host
from muster.domain.inventory import (
    ALL_GROUP,
    MAX_GROUP_DEPTH,
    UNGROUPED_GROUP,
    Inventory,
    InventoryLimits,
    VarValue,
)
from muster.domain.inventory_parsing import (
    Entries,
    adding,
    check_name,
    host_entry,
    ini_value,
    parse_error,
)
from muster.domain.inventory_ssh_config import parse_ssh_config

__all__ = [
    "expand_host_pattern",
    "host_pattern_size",
    "parse_ansible_ini",
    "parse_ansible_yaml",
    "parse_ssh_config",
]

_SECTION_RE: Final = re.compile(r"\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?")
_GROUP_LINE_RE: Final = re.compile(r"([^:\]\s]+)\s*(?:#.*)?")
#: One YAML variable may expand (through aliases) to at most this many nodes.
_MAX_VALUE_NODES: Final = 100_000


# -- Ansible INI ---------------------------------------------------------------------


class _Pending:
    """Groups named before they are declared: ``[x:vars]`` and ``:children`` entries."""

    def __init__(self) -> None:
        #: group -> (kind, line, parents waiting for it)
        self.waiting: dict[str, tuple[str, int, list[str]]] = {}

    def declared(self, inventory: Inventory, group: str) -> None:
        entry = self.waiting.pop(group, None)
        if entry is None:
            return
        kind, _line, parents = entry
        if kind != "children":
            return
        for parent in parents:
            inventory.extend_group(parent, children=(group,))
            self.declared(inventory, parent)

    def check(self, source: str) -> None:
        for group, (kind, line, parents) in self.waiting.items():
            if kind == "vars":
                raise parse_error(
                    source, line, f"section [{group}:vars] not valid for undefined group {group!r}"
                )
            raise parse_error(
                source, line, f"section [{parents[-1]}:children] includes undefined group {group!r}"
            )


def parse_ansible_ini(
    text: str,
    source: str = "<string>",
    limits: InventoryLimits | None = None,
    *,
    into: Inventory | None = None,
) -> Inventory:
    """Parse an Ansible INI inventory (hosts, ``:vars``, ``:children`` sections)."""
    inventory = into if into is not None else Inventory(limits)
    entries = Entries(limits, source)
    group, kind = UNGROUPED_GROUP, "hosts"
    pending = _Pending()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        match = _SECTION_RE.fullmatch(line)
        if match is not None:
            group = check_name("group", match.group(1), source, number)
            kind = match.group(2) or "hosts"
            if kind not in ("hosts", "vars", "children"):
                raise parse_error(
                    source, number, f"section [{group}:{kind}] has unknown type {kind!r}"
                )
            if not inventory.has_group(group):
                if kind == "vars" and group not in pending.waiting:
                    pending.waiting[group] = ("vars", number, [])
                inventory.extend_group(group)
            if kind != "vars":
                pending.declared(inventory, group)
            continue
        if line.startswith("[") and line.endswith("]"):
            raise parse_error(
                source, number, f"invalid section entry {line!r}: no spaces or other "
                "invalid characters are allowed in a section header",
            )  # fmt: skip
        if kind == "hosts":
            _ini_host_line(inventory, group, line, source, number, entries)
        elif kind == "children":
            found = _GROUP_LINE_RE.fullmatch(line)
            if found is None:
                raise parse_error(source, number, f"expected a group name, got {line!r}")
            child = found.group(1)
            if child == ALL_GROUP:
                raise parse_error(source, number, "'all' cannot be a child group")
            if inventory.has_group(child):
                adding(source, number, partial(inventory.extend_group, group, children=(child,)))
            elif child in pending.waiting:
                pending.waiting[child][2].append(group)
            else:
                pending.waiting[child] = ("children", number, [group])
        else:
            key, sep, value = line.partition("=")
            if not sep:
                raise parse_error(source, number, f"expected key=value, got {line!r}")
            var = {key.strip(): ini_value(value.strip())}
            adding(source, number, partial(inventory.extend_group, group, vars=var))
    pending.check(source)
    adding(source, None, inventory.check)
    return inventory


def _ini_host_line(
    inventory: Inventory, group: str, line: str, source: str, number: int, entries: Entries
) -> None:
    try:
        words = shlex.split(line, comments=True)
    except ValueError as exc:
        raise parse_error(source, number, f"cannot split host line {line!r}: {exc}") from None
    if not words:
        return
    entry = words[0]
    names, port = host_entry(entry, source, number, entries)
    if entry.strip().endswith(":") and port is None:
        raise parse_error(
            source, number, f"invalid host pattern {entry!r}: a ':' at the end is reserved "
            "for a port",
        )  # fmt: skip
    if any(name.strip() == "---" for name in names):
        raise parse_error(
            source, number, f"invalid host pattern {entry!r}: '---' is a sign of a YAML file"
        )
    host_vars: dict[str, VarValue] = {}
    if port is not None:
        host_vars["ansible_port"] = port
    for word in words[1:]:
        key, sep, value = word.partition("=")
        if not sep:
            raise parse_error(
                source, number, f"expected key=value host variable assignment, got {word!r}"
            )
        host_vars[key] = ini_value(value)

    def add() -> None:
        for name in names:
            inventory.add_host(Host(name=name), vars=host_vars)
        inventory.extend_group(group, hosts=names)

    adding(source, number, add)


# -- Ansible YAML --------------------------------------------------------------------

#: libyaml's parser when PyYAML was built with it: the same safe loading, ten
#: times faster than the pure-Python one on large inventories.
_YamlLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR_TAG: Final = "tag:yaml.org,2002:str"
_SECTIONS: Final = ("vars", "children", "hosts")


def parse_ansible_yaml(
    text: str,
    source: str = "<string>",
    limits: InventoryLimits | None = None,
    *,
    into: Inventory | None = None,
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
        raise parse_error(
            source, None, f"invalid YAML: {getattr(exc, 'problem', None) or exc}"
        ) from None
    try:
        root = loader.get_single_node()
        inventory = into if into is not None else Inventory(limits)
        if root is None or _is_null(root):
            return inventory
        if not isinstance(root, yaml.MappingNode):
            raise parse_error(
                source, _line(root), "a YAML inventory must be a mapping of group names"
            )
        walk = _YamlWalk(inventory, loader, source, Entries(limits, source))
        for key_node, value_node in root.value:
            name = _key(key_node, source)
            if name == "plugin":
                raise parse_error(
                    source, _line(key_node), "an inventory plugin's configuration, not a YAML "
                    "inventory (plugins are not run)",
                )  # fmt: skip
            walk.group(name, value_node, parents=())
        adding(source, None, inventory.check)
        return inventory
    except RecursionError:
        raise parse_error(source, None, "invalid YAML: nested too deeply") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise parse_error(source, line, f"invalid YAML: {problem}") from None
    finally:
        loader.dispose()


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _key(node: yaml.Node, source: str) -> str:
    if not isinstance(node, yaml.ScalarNode) or node.tag != _STR_TAG:
        raise parse_error(
            source, _line(node), f"{getattr(node, 'value', node)!r} must be a string: "
            "enclose numbers in quotation marks",
        )  # fmt: skip
    return str(node.value)


def _entries(node: yaml.Node, source: str, what: str) -> list[tuple[yaml.Node, yaml.Node | None]]:
    """A section's entries: a mapping's pairs, or a single name given as a string."""
    if _is_null(node):
        return []
    if isinstance(node, yaml.ScalarNode) and node.tag == _STR_TAG:
        return [(node, None)]
    if not isinstance(node, yaml.MappingNode):
        raise parse_error(source, _line(node), f"{what} requires a mapping")
    return list(node.value)


class _YamlWalk:
    """One walk over a composed YAML inventory, building ``inventory``."""

    def __init__(
        self, inventory: Inventory, loader: yaml.SafeLoader, source: str, entries: Entries
    ) -> None:
        self.inventory = inventory
        self.loader = loader
        self.source = source
        self.entries = entries
        self.walked: set[tuple[str, int]] = set()
        self.sizes: dict[int, int] = {}

    def warn(self, node: yaml.Node, message: str) -> None:
        self.inventory.warnings.append(f"{self.source}:{_line(node)}: {message}")

    def value(self, node: yaml.Node, what: str) -> VarValue:
        if self._size(node, ()) > _MAX_VALUE_NODES:
            raise parse_error(
                self.source,
                _line(node),
                f"{what} expands to more than {_MAX_VALUE_NODES} values through aliases",
            )
        return self.loader.construct_object(node, deep=True)

    def vars(self, node: yaml.Node, what: str) -> dict[str, VarValue]:
        found: dict[str, VarValue] = {}
        for key_node, value_node in _entries(node, self.source, what):
            key = _key(key_node, self.source)
            found[key] = None if value_node is None else self.value(value_node, f"{what}: {key!r}")
        return found

    def _size(self, node: yaml.Node, path: tuple[int, ...]) -> int:
        """Nodes in ``node`` with every alias expanded (memoised: linear in the document)."""
        key = id(node)
        if key in self.sizes:
            return self.sizes[key]
        if key in path:
            raise parse_error(self.source, _line(node), "a value refers to itself through an alias")
        total = 1
        if isinstance(node, yaml.SequenceNode):
            for item in node.value:
                total += self._size(item, (*path, key))
        elif isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                total += self._size(k, (*path, key)) + self._size(v, (*path, key))
        self.sizes[key] = total
        return total

    def group(self, name: str, node: yaml.Node | None, parents: tuple[str, ...]) -> bool:
        """Walk one group; False when Ansible would skip it (not a mapping)."""
        source = self.source
        line = _line(node) if node is not None else None
        check_name("group", name, source, line)
        if node is not None and not (_is_null(node) or isinstance(node, yaml.MappingNode)):
            self.warn(node, f"skipping {name!r}: not a valid group definition (not a mapping)")
            return False
        if name in parents:
            raise parse_error(source, line, f"group {name!r} is nested inside itself")
        if len(parents) > MAX_GROUP_DEPTH:
            raise parse_error(source, line, f"groups nest more than {MAX_GROUP_DEPTH} levels deep")
        self.inventory.extend_group(name)
        if node is None or _is_null(node) or (name, id(node)) in self.walked:
            return True  # empty, or reached again through an alias: nothing new in it
        self.walked.add((name, id(node)))
        assert isinstance(node, yaml.MappingNode)
        for key_node, value_node in node.value:
            key = _key(key_node, source)
            if _is_null(value_node):
                continue
            is_mapping = isinstance(value_node, yaml.MappingNode)
            if key in _SECTIONS:
                is_text = isinstance(value_node, yaml.ScalarNode) and value_node.tag == _STR_TAG
                if not (is_mapping or is_text):
                    raise parse_error(
                        source, _line(value_node),
                        f"invalid {key!r} entry for group {name!r}: requires a mapping",
                    )  # fmt: skip
            elif not is_mapping:
                self.warn(key_node, f"skipping key {key!r} in group {name!r}: not a mapping")
                continue
            if key == "hosts":
                for host_key, host_node in _entries(value_node, source, f"hosts of {name!r}"):
                    self._hosts(name, host_key, host_node)
            elif key == "children":
                for child_key, child_node in _entries(value_node, source, f"children of {name!r}"):
                    child = _key(child_key, source)
                    if child == ALL_GROUP:
                        raise parse_error(source, _line(child_key), "'all' cannot be a child group")
                    if not self.group(child, child_node, (*parents, name)):
                        raise parse_error(
                            source, _line(child_key), f"{child!r} is not a known host nor group"
                        )
                    adding(
                        source,
                        _line(child_key),
                        partial(self.inventory.extend_group, name, children=(child,)),
                    )
            elif key == "vars":
                found = self.vars(value_node, f"vars of {name!r}")
                adding(
                    source,
                    _line(key_node),
                    partial(self.inventory.extend_group, name, vars=found),
                )
            else:
                self.warn(
                    key_node, f"skipping unexpected key {key!r} in group {name!r}: only "
                    "'vars', 'children' and 'hosts' are valid",
                )  # fmt: skip
        return True

    def _hosts(self, group: str, host_key: yaml.Node, host_node: yaml.Node | None) -> None:
        pattern = _key(host_key, self.source)
        line = _line(host_key)
        names, port = host_entry(pattern, self.source, line, self.entries)
        host_vars: dict[str, VarValue] = {}
        if port is not None:
            host_vars["ansible_port"] = port
        if host_node is not None and not _is_null(host_node):
            if not isinstance(host_node, yaml.MappingNode):
                raise parse_error(
                    self.source,
                    _line(host_node),
                    f"variables of host {pattern!r} must be a mapping",
                )
            host_vars.update(self.vars(host_node, f"variables of host {pattern!r}"))

        def add() -> None:
            for host_name in names:
                self.inventory.add_host(Host(name=host_name), vars=host_vars)
            self.inventory.extend_group(group, hosts=names)

        adding(self.source, line, add)
