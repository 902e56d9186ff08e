"""Inventories: hosts, the groups that name sets of them, and their variables.

An :class:`Inventory` is a builder: parsers and callers add hosts and groups,
and every read (:meth:`Inventory.host`, :meth:`Inventory.all_hosts`) returns
*resolved* :class:`Host` objects that carry their merged variables, every
group they belong to (ancestors included) and the connection fields derived
from those variables (see :mod:`muster.domain.inventory_hosts`).

Structure and order follow Ansible (ansible-core 2.19), so that ``web[0]``
and ``all[-1]`` pick the hosts Ansible picks:

- hosts and groups keep the order they first appear in;
- ``all`` and ``ungrouped`` always exist; ``ungrouped`` holds the hosts in no
  other group; ``all``'s children are ``ungrouped``, the children named for
  it, then every group without a parent;
- a group's hosts (:meth:`Inventory.group_members`) are its own, then its
  children's, level by level.

Variable precedence, lowest first: ``all``'s variables; every other group
of the host by (depth, ``ansible_group_priority``, name); ``group_vars/all``;
``group_vars/<group>`` files in the same order; the host's own variables;
``host_vars/<host>`` files. A field given directly on a :class:`Host`
(``Host(name, user="root")``) counts as a host variable.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Final

from muster.domain.hosts import Host
from muster.errors import InventoryError

__all__ = [
    "ALL_GROUP",
    "MAX_GROUP_DEPTH",
    "UNGROUPED_GROUP",
    "Group",
    "Inventory",
    "InventoryLimits",
    "VarValue",
    "var_text",
]

#: A variable as parsed: text, or any YAML / Python-literal value.
VarValue = object

ALL_GROUP: Final = "all"
UNGROUPED_GROUP: Final = "ungrouped"
#: Children nest at most this deep below ``all``: deeper chains are refused
#: (real inventories stay within a handful of levels).
MAX_GROUP_DEPTH: Final = 100
PRIORITY_VAR: Final = "ansible_group_priority"

_DEFAULT: Final = Host(name="-")


@dataclass(frozen=True, slots=True)
class Group:
    """A named set of hosts and child groups, with variables for its members."""

    name: str
    hosts: tuple[str, ...] = ()
    children: tuple[str, ...] = ()
    vars: Mapping[str, VarValue] = field(default_factory=dict)
    #: ``ansible_group_priority``: among groups at one depth, higher wins variables.
    priority: int = 1


@dataclass(frozen=True, slots=True)
class InventoryLimits:
    """Caps on what one inventory may make, so that any input is parsed in bounded work.

    ``None`` is no cap (files a user loads on their own machine). The server
    sets every cap for uploads, where the text comes from someone else.
    """

    #: Distinct hosts.
    max_hosts: int | None = None
    #: Host names as listed, counted once per line (or YAML key) that lists
    #: them, after range expansion: ``web[1:100]`` on three lines is 300.
    max_entries: int | None = None
    #: Variables over all resolved hosts: group variables are copied into every
    #: member, so 100 group variables on 10,000 hosts are 1,000,000.
    max_values: int | None = None


_NO_LIMITS: Final = InventoryLimits()


class _GroupParts:
    """A group while it is built: members in insertion order, amortised O(1) to extend."""

    __slots__ = ("children", "file_vars", "hosts", "priority", "vars")

    def __init__(self) -> None:
        self.hosts: dict[str, None] = {}
        self.children: dict[str, None] = {}
        self.vars: dict[str, VarValue] = {}
        self.file_vars: dict[str, VarValue] = {}
        self.priority = 1


def var_text(value: VarValue) -> str:
    """A variable as the text stored in ``Host.vars`` (YAML values become JSON text)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, sort_keys=True, default=str)


def _priority(group: str, value: VarValue) -> int:
    try:
        return value if isinstance(value, int) else int(str(value).strip())
    except (TypeError, ValueError):
        raise InventoryError(
            f"group {group!r}: {PRIORITY_VAR} {value!r} is not a whole number"
        ) from None


class Inventory:
    """Hosts by name and groups by name, each in the order first seen.

    Adding a host or group that exists merges into it (later sources add
    members and override variables), which is how repeated sections and
    several inventory files combine. Building is linear: each added member
    costs O(1) however large its group already is.
    """

    def __init__(self, limits: InventoryLimits | None = None) -> None:
        self.limits = limits or _NO_LIMITS
        #: What a source did that Ansible warns about (an unknown YAML key...):
        #: loaded anyway, shown to the user.
        self.warnings: list[str] = []
        self._hosts: dict[str, Host] = {}
        self._host_vars: dict[str, dict[str, VarValue]] = {}
        self._host_file_vars: dict[str, dict[str, VarValue]] = {}
        self._groups: dict[str, _GroupParts] = {
            ALL_GROUP: _GroupParts(),
            UNGROUPED_GROUP: _GroupParts(),
        }
        self._groups[ALL_GROUP].children[UNGROUPED_GROUP] = None
        self._resolved: dict[str, Host] | None = None
        self._groups_view: dict[str, Group] | None = None
        self._members: dict[str, list[str]] = {}
        #: What resolving shares across hosts (inventory_hosts._Structure), built once.
        self._structure: object | None = None

    # -- building -----------------------------------------------------------

    def _changed(self) -> None:
        self._resolved = self._groups_view = self._structure = None
        self._members = {}

    def _new_host(self, name: str) -> None:
        if not name:
            raise InventoryError("an empty host name")
        cap = self.limits.max_hosts
        if cap is not None and len(self._hosts) >= cap:
            raise InventoryError(
                f"the inventory defines more than {cap} hosts (the limit); refused at host {name!r}"
            )
        self._hosts[name] = Host(name=name)
        self._host_vars[name] = {}

    def add_host(self, host: Host, *, vars: Mapping[str, VarValue] | None = None) -> None:
        """Add or merge a host. ``host.groups`` name groups it joins (created if needed).

        ``vars`` carries typed values (YAML); ``host.vars`` is merged first.
        """
        self._changed()
        name = host.name
        old = self._hosts.get(name)
        if old is None:
            self._new_host(name)
            self._hosts[name] = replace(host, vars={}, groups=())
        else:
            self._hosts[name] = _overlay(old, host)
        merged_vars = self._host_vars[name]
        merged_vars.update(host.vars)
        merged_vars.update(vars or {})
        for group in host.groups:
            self.extend_group(group, hosts=(name,))

    def add_group(
        self,
        name: str,
        hosts: Iterable[str] = (),
        children: Iterable[str] = (),
        vars: Mapping[str, VarValue] | None = None,
    ) -> Group:
        """Add or merge a group; unknown member hosts and child groups are created empty.

        Returns the group's parts as declared so far (a copy: O(its size));
        parsers adding members one at a time use :meth:`extend_group`.
        """
        self.extend_group(name, hosts, children, vars)
        parts = self._groups[name]
        return Group(name, tuple(parts.hosts), tuple(parts.children), dict(parts.vars))

    def extend_group(
        self,
        name: str,
        hosts: Iterable[str] = (),
        children: Iterable[str] = (),
        vars: Mapping[str, VarValue] | None = None,
    ) -> None:
        """:meth:`add_group` without building the result: O(what is added)."""
        if isinstance(hosts, str) or isinstance(children, str):
            raise InventoryError(f"group {name!r}: hosts and children must be lists of names")
        if not name:
            raise InventoryError("an empty group name")
        child_names = tuple(children)
        if ALL_GROUP in child_names:
            raise InventoryError(f"group {name!r}: 'all' cannot be a child group")
        if name in child_names:
            raise InventoryError(f"group children form a cycle: {name} -> {name}")
        self._changed()
        parts = self._groups.get(name)
        if parts is None:
            parts = self._groups[name] = _GroupParts()
        for host_name in hosts:
            if host_name not in self._hosts:
                self._new_host(host_name)
            parts.hosts[host_name] = None
        for child in child_names:
            if child not in self._groups:
                self._groups[child] = _GroupParts()
            parts.children[child] = None
        for key, value in (vars or {}).items():
            if key == PRIORITY_VAR:
                parts.priority = _priority(name, value)
            else:
                parts.vars[key] = value

    def add_file_vars(self, kind: str, name: str, vars: Mapping[str, VarValue]) -> bool:
        """Variables from ``group_vars/<name>`` (``kind="group"``) or ``host_vars/<name>``
        (``"host"``): they rank above the inventory's own. Ignored (False) when the
        group or host does not exist, as Ansible loads them only for known ones."""
        if kind == "group":
            parts = self._groups.get(name)
            if parts is None:
                return False
            # As in Ansible, ansible_group_priority ranks a group only when the
            # inventory sets it; from a group_vars file it is an ordinary variable.
            parts.file_vars.update(vars)
        else:
            if name not in self._hosts:
                return False
            self._host_file_vars.setdefault(name, {}).update(vars)
        self._changed()
        return True

    def merge(self, other: Inventory) -> None:
        """Fold ``other`` into this inventory; ``other`` wins variable conflicts."""
        for name, host in other._hosts.items():
            self.add_host(host, vars=other._host_vars[name])
            if name in other._host_file_vars:
                self.add_file_vars("host", name, other._host_file_vars[name])
        for name, parts in other._groups.items():
            children = [
                c for c in parts.children if not (name == ALL_GROUP and c == UNGROUPED_GROUP)
            ]
            self.extend_group(name, parts.hosts, children, parts.vars)
            if parts.priority != 1:
                self._groups[name].priority = parts.priority
            self._groups[name].file_vars.update(parts.file_vars)
        self.warnings.extend(other.warnings)

    # -- reading ------------------------------------------------------------

    @property
    def groups(self) -> Mapping[str, Group]:
        """Groups by name in the order first seen, as Ansible shows them."""
        if self._groups_view is None:
            self._groups_view = self._build_groups_view()
        return self._groups_view

    def check(self) -> None:
        """Refuse what Ansible refuses while reading: children that form a cycle, or
        nest deeper than :data:`MAX_GROUP_DEPTH`. Parsers call it once at the end."""
        from muster.domain.inventory_hosts import group_depths

        group_depths(self.groups)

    def has_group(self, name: str) -> bool:
        """Whether the group exists: O(1), without building the :attr:`groups` view
        (parsers ask at every section header)."""
        return name in self._groups

    def host_names(self) -> list[str]:
        return list(self._hosts)

    def __contains__(self, name: object) -> bool:
        return name in self._hosts

    def __len__(self) -> int:
        return len(self._hosts)

    def __iter__(self) -> Iterator[Host]:
        return iter(self.all_hosts())

    def host(self, name: str) -> Host:
        """The resolved host; KeyError when absent."""
        return self._resolve()[name]

    def all_hosts(self) -> list[Host]:
        """Every host, resolved, in the order first seen."""
        return list(self._resolve().values())

    def host_variables(self, name: str) -> dict[str, VarValue]:
        """The host's variables merged with Ansible's precedence, values as parsed
        (what ``ansible-inventory --host`` shows); KeyError when absent."""
        from muster.domain.inventory_hosts import merged_variables

        if name not in self._hosts:
            raise KeyError(name)
        return merged_variables(self, name)

    def shared(self, build: Callable[[Inventory], object]) -> object:
        """The resolver's shared structure, built by ``build`` once per change."""
        if self._structure is None:
            self._structure = build(self)
        return self._structure

    def group_members(self, name: str) -> list[str]:
        """Host names in ``name`` and its descendants, in Ansible's order: the group's
        own hosts, then its children's, level by level.

        Raises InventoryError for an unknown group.
        """
        cached = self._members.get(name)
        if cached is not None:
            return list(cached)
        groups = self.groups
        if name not in groups:
            raise InventoryError(f"unknown group {name!r}")
        if not self._members:
            from muster.domain.inventory_hosts import group_depths

            group_depths(groups)  # Ansible refuses a cycle of children: so does muster
        found: dict[str, None] = {}
        for group in self.descendants(name):
            found.update(dict.fromkeys(groups[group].hosts))
        self._members[name] = list(found)
        return list(found)

    def descendants(self, name: str) -> list[str]:
        """``name``, its children, their children... each once, level by level."""
        groups = self.groups
        order = [name]
        seen = {name}
        level = [name]
        while level:
            following: list[str] = []
            for group in level:
                for child in groups[group].children:
                    if child not in seen:
                        seen.add(child)
                        order.append(child)
                        following.append(child)
            level = following
        return order

    # -- the derived structure ----------------------------------------------

    def _build_groups_view(self) -> dict[str, Group]:
        """Groups as Ansible reconciles them: ``ungrouped`` holds the hosts of no other
        group, every parentless group is a child of ``all``."""
        grouped: set[str] = set()
        has_parent: set[str] = set()
        for name, parts in self._groups.items():
            if name not in (ALL_GROUP, UNGROUPED_GROUP):
                grouped.update(parts.hosts)
            has_parent.update(parts.children)
        explicit = self._groups[UNGROUPED_GROUP].hosts
        # A host listed under ungrouped leaves it when it is in another group, or when
        # ungrouped itself sits in a group other than all (Ansible counts ancestors).
        nested = any(
            UNGROUPED_GROUP in parts.children for name, parts in self._groups.items()
            if name != ALL_GROUP
        )  # fmt: skip
        loose = dict.fromkeys(h for h in explicit if h not in grouped and not nested)
        loose.update(
            dict.fromkeys(h for h in self._hosts if h not in grouped and h not in explicit)
        )
        all_parts = self._groups[ALL_GROUP]
        top = dict(all_parts.children)
        top.update(
            (name, None)
            for name in self._groups
            if name not in has_parent and name not in (ALL_GROUP, UNGROUPED_GROUP)
        )
        view: dict[str, Group] = {}
        for name, parts in self._groups.items():
            hosts: Iterable[str] = parts.hosts
            children: Iterable[str] = parts.children
            if name == ALL_GROUP:
                children = top
            elif name == UNGROUPED_GROUP:
                hosts = loose
            view[name] = Group(name, tuple(hosts), tuple(children), parts.vars, parts.priority)
        return view

    def group_file_vars(self, name: str) -> Mapping[str, VarValue]:
        """Variables ``group_vars/<name>`` gave the group (empty if none)."""
        parts = self._groups.get(name)
        return parts.file_vars if parts is not None else {}

    def own_host_vars(self, name: str) -> Mapping[str, VarValue]:
        """The host's own inventory variables (not its groups')."""
        return self._host_vars[name]

    def host_file_vars(self, name: str) -> Mapping[str, VarValue]:
        """Variables ``host_vars/<name>`` gave the host (empty if none)."""
        return self._host_file_vars.get(name, {})

    def raw_host(self, name: str) -> Host:
        """The host as added (explicit fields, no variables resolved)."""
        return self._hosts[name]

    def _resolve(self) -> dict[str, Host]:
        if self._resolved is None:
            from muster.domain.inventory_hosts import resolve_hosts

            self._resolved = resolve_hosts(self)
        return self._resolved


def _overlay(old: Host, new: Host) -> Host:
    """``old`` with every field ``new`` sets explicitly (differs from the default)."""
    changes: dict[str, object] = {}
    for name in ("address", "port", "user", "transport", "platform", "shells", "labels",
                 "key_file", "credential_ref", "id"):  # fmt: skip
        value = getattr(new, name)
        if value != getattr(_DEFAULT, name):
            changes[name] = value
    return replace(old, **changes)  # type: ignore[arg-type]
