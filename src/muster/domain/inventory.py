"""Inventories: hosts, the groups that name sets of them, and their variables.

An :class:`Inventory` is a builder: parsers and callers add hosts and groups,
and every read (:meth:`Inventory.host`, :meth:`Inventory.all_hosts`) returns
*resolved* :class:`Host` objects that carry their merged variables, every
group they belong to (ancestors included) and the connection fields derived
from those variables.

Variable precedence follows Ansible: the implicit ``all`` group, then groups
by depth (a child group overrides its parents; groups at the same depth apply
in name order), then the host's own variables. A field given directly on a
:class:`Host` (``Host(name, user="root")``) counts as a host variable: it
beats group variables but loses to the host's own ``ansible_user``.

Connection variables: ``ansible_host`` -> address, ``ansible_port`` -> port,
``ansible_user`` (or ``ansible_ssh_user``) -> user,
``ansible_ssh_private_key_file`` -> key_file, ``ansible_connection`` (``local``
-> local transport; ``ssh``/``smart``/``paramiko`` -> ssh; ``muster_agent`` ->
agent), ``muster_shells`` (comma list) -> shells, ``muster_platform`` (else
``ansible_os_family``/``ansible_system``) -> platform,
``muster_credential`` -> credential_ref.

Labels: ``muster_labels`` (``"k=v,k2=v2"``) or ``labels`` (a mapping, from
YAML). Unlike other variables, labels *accumulate* across levels key by key
(a ``dc=dc1`` label from one group and ``role=web`` from another both apply;
the more specific level wins a key). Selectors of the form ``key=value``
match labels first and then any host variable, so ``ansible_user=deploy``
selects too; labels stay the small, deliberate set shown in listings.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Final

from muster.domain.hosts import Host, TransportKind
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

#: A variable as parsed: text (INI), or any YAML scalar/collection.
VarValue = object

ALL_GROUP: Final = "all"
UNGROUPED_GROUP: Final = "ungrouped"
#: Children nest at most this deep below ``all``: deeper chains are refused
#: (real inventories stay within a handful of levels).
MAX_GROUP_DEPTH: Final = 100

_DEFAULT: Final = Host(name="-")
_TRANSPORTS: Final = {
    "local": TransportKind.LOCAL,
    "ssh": TransportKind.SSH,
    "smart": TransportKind.SSH,
    "paramiko": TransportKind.SSH,
    "muster_agent": TransportKind.AGENT,
    "agent": TransportKind.AGENT,
}
_PLATFORMS: Final = {"debian": "linux", "redhat": "linux", "suse": "linux", "archlinux": "linux",
                     "alpine": "linux", "gentoo": "linux", "linux": "linux", "darwin": "darwin",
                     "macos": "darwin", "macosx": "darwin", "freebsd": "freebsd",
                     "windows": "windows", "win32nt": "windows"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Group:
    """A named set of hosts and child groups, with variables for its members."""

    name: str
    hosts: tuple[str, ...] = ()
    children: tuple[str, ...] = ()
    vars: Mapping[str, VarValue] = field(default_factory=dict)


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

    __slots__ = ("children", "hosts", "vars")

    def __init__(self) -> None:
        self.hosts: dict[str, None] = {}
        self.children: dict[str, None] = {}
        self.vars: dict[str, VarValue] = {}

    def freeze(self, name: str) -> Group:
        return Group(name, tuple(self.hosts), tuple(self.children), dict(self.vars))


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


class Inventory:
    """Hosts by name (in insertion order) and groups by name.

    Adding a host or group that exists merges into it (later sources add
    members and override variables), which is how repeated sections and
    several inventory files combine. Building is linear: each added member
    costs O(1) however large its group already is.
    """

    def __init__(self, limits: InventoryLimits | None = None) -> None:
        self.limits = limits or _NO_LIMITS
        self._hosts: dict[str, Host] = {}
        self._host_vars: dict[str, dict[str, VarValue]] = {}
        self._groups: dict[str, _GroupParts] = {ALL_GROUP: _GroupParts()}
        self._resolved: dict[str, Host] | None = None
        self._groups_view: dict[str, Group] | None = None

    # -- building -----------------------------------------------------------

    def _new_host(self, name: str) -> None:
        cap = self.limits.max_hosts
        if cap is not None and len(self._hosts) >= cap:
            raise InventoryError(
                f"the inventory defines more than {cap} hosts (the limit); refused at host {name!r}"
            )

    def add_host(self, host: Host, *, vars: Mapping[str, VarValue] | None = None) -> None:
        """Add or merge a host. ``host.groups`` name groups it joins (created if needed).

        ``vars`` carries typed values (YAML); ``host.vars`` is merged first.
        """
        self._resolved = self._groups_view = None
        name = host.name
        old = self._hosts.get(name)
        if old is None:
            self._new_host(name)
            self._hosts[name] = replace(host, vars={}, groups=())
            merged_vars: dict[str, VarValue] = {}
        else:
            self._hosts[name] = _overlay(old, host)
            merged_vars = self._host_vars[name]
        merged_vars.update(host.vars)
        merged_vars.update(vars or {})
        self._host_vars[name] = merged_vars
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

        Returns the whole group as it now stands (a copy: O(its size)); parsers
        adding members one at a time use :meth:`extend_group`.
        """
        self.extend_group(name, hosts, children, vars)
        return self._groups[name].freeze(name)

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
        child_names = tuple(children)
        if ALL_GROUP in child_names:
            raise InventoryError(f"group {name!r}: 'all' cannot be a child group")
        self._resolved = self._groups_view = None
        parts = self._groups.get(name)
        if parts is None:
            parts = self._groups[name] = _GroupParts()
        for host_name in hosts:
            if host_name not in self._hosts:
                self._new_host(host_name)
                self._hosts[host_name] = Host(name=host_name)
                self._host_vars[host_name] = {}
            parts.hosts[host_name] = None
        for child in child_names:
            if child not in self._groups:
                self._groups[child] = _GroupParts()
            parts.children[child] = None
        if vars:
            parts.vars.update(vars)

    def merge(self, other: Inventory) -> None:
        """Fold ``other`` into this inventory; ``other`` wins variable conflicts."""
        for name, host in other._hosts.items():
            self.add_host(host, vars=other._host_vars[name])
        for name, parts in other._groups.items():
            self.extend_group(name, parts.hosts, parts.children, parts.vars)

    # -- reading ------------------------------------------------------------

    @property
    def groups(self) -> Mapping[str, Group]:
        """Groups by name, as declared (``all`` included; ``ungrouped`` when used)."""
        if self._groups_view is None:
            view = {name: parts.freeze(name) for name, parts in self._groups.items()}
            ungrouped = self._ungrouped()
            if ungrouped or UNGROUPED_GROUP in view:
                found = view.get(UNGROUPED_GROUP, Group(UNGROUPED_GROUP))
                members = dict.fromkeys(found.hosts)
                members.update(dict.fromkeys(ungrouped))
                view[UNGROUPED_GROUP] = replace(found, hosts=tuple(members))
            self._groups_view = view
        return self._groups_view

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
        """Every host, resolved, in insertion order."""
        return list(self._resolve().values())

    def group_members(self, name: str) -> list[str]:
        """Host names in ``name`` and its descendants, in inventory order.

        Raises InventoryError for an unknown group or a cycle of children.
        """
        if name == ALL_GROUP:
            return list(self._hosts)
        groups = self.groups
        if name not in groups:
            raise InventoryError(f"unknown group {name!r}")
        members: set[str] = set()
        self._collect(groups, name, members, ())
        return [h for h in self._hosts if h in members]

    def _collect(
        self, groups: Mapping[str, Group], name: str, into: set[str], path: tuple[str, ...]
    ) -> None:
        if name in path:
            cycle = " -> ".join((*path[path.index(name) :], name))
            raise InventoryError(f"group children form a cycle: {cycle}")
        if len(path) > MAX_GROUP_DEPTH:
            raise _too_deep(name)
        group = groups[name]
        into.update(group.hosts)
        for child in group.children:
            self._collect(groups, child, into, (*path, name))

    # -- resolution ---------------------------------------------------------

    def _ungrouped(self) -> tuple[str, ...]:
        grouped: set[str] = set()
        for name, parts in self._groups.items():
            if name not in (ALL_GROUP, UNGROUPED_GROUP):
                grouped.update(parts.hosts)
        return tuple(h for h in self._hosts if h not in grouped)

    def _depths(self, groups: Mapping[str, Group]) -> dict[str, int]:
        """Longest distance from ``all`` for each group; cycles and deep chains are errors."""
        parents: dict[str, list[str]] = {name: [] for name in groups}
        for group in groups.values():
            for child in group.children:
                parents[child].append(group.name)
        depths: dict[str, int] = {ALL_GROUP: 0}

        def depth(name: str, path: tuple[str, ...]) -> int:
            if name in depths:
                return depths[name]
            if name in path:
                cycle = " -> ".join((name, *reversed(path[path.index(name) :])))
                raise InventoryError(f"group children form a cycle: {cycle}")
            if len(path) > MAX_GROUP_DEPTH:
                raise _too_deep(name)
            ups = [depth(p, (*path, name)) for p in parents[name] if p != ALL_GROUP]
            depths[name] = 1 + max(ups, default=0)
            if depths[name] > MAX_GROUP_DEPTH:
                raise _too_deep(name)
            return depths[name]

        for name in groups:
            depth(name, ())
        return depths

    def _resolve(self) -> dict[str, Host]:
        """Every host with its merged variables and groups.

        Hosts that sit in the same groups share one merge of the group
        levels, so the cost is one pass over the members plus, per host, its
        own variables and a copy of the merged ones (counted against
        ``limits.max_values``).
        """
        if self._resolved is not None:
            return self._resolved
        groups = self.groups
        depths = self._depths(groups)
        parents: dict[str, list[str]] = {name: [] for name in groups}
        direct: dict[str, list[str]] = {name: [] for name in self._hosts}
        for group in groups.values():
            for child in group.children:
                parents[child].append(group.name)
            for host_name in group.hosts:
                direct[host_name].append(group.name)
        ancestors: dict[str, frozenset[str]] = {}

        def lineage(name: str) -> frozenset[str]:
            if name not in ancestors:
                found = {name}
                for parent in parents[name]:
                    found |= lineage(parent)
                ancestors[name] = frozenset(found)
            return ancestors[name]

        order = {name: i for i, name in enumerate(groups)}
        shared: dict[tuple[str, ...], _GroupLevels] = {}
        budget = self.limits.max_values
        used = 0
        resolved: dict[str, Host] = {}
        for name, raw in self._hosts.items():
            key = tuple(direct[name])
            levels = shared.get(key)
            if levels is None:
                member_of: set[str] = {ALL_GROUP}
                for group_name in key:
                    member_of |= lineage(group_name)
                ranked = sorted(member_of, key=lambda g: (depths[g], g))
                shown = tuple(g for g in sorted(member_of, key=order.__getitem__) if g != ALL_GROUP)
                levels = shared[key] = _GroupLevels.merge(
                    name, [groups[g].vars for g in ranked], shown
                )
            host = _build_host(raw, levels, self._host_vars[name])
            used += len(host.vars)
            if budget is not None and used > budget:
                raise InventoryError(
                    f"the hosts hold more than {budget} variables in total once group "
                    f"variables are copied to every member (the limit); refused at host {name!r}"
                )
            resolved[name] = host
        self._resolved = resolved
        return resolved


def _too_deep(name: str) -> InventoryError:
    return InventoryError(
        f"groups nest more than {MAX_GROUP_DEPTH} levels deep (at group {name!r})"
    )


@dataclass(frozen=True, slots=True)
class _GroupLevels:
    """What a set of groups gives each member: merged variables (typed and as text),
    accumulated labels, and the group names shown on the host."""

    vars: Mapping[str, VarValue]
    texts: Mapping[str, str]
    labels: Mapping[str, str]
    groups: tuple[str, ...]

    @classmethod
    def merge(
        cls, host: str, levels: list[Mapping[str, VarValue]], groups: tuple[str, ...]
    ) -> _GroupLevels:
        merged: dict[str, VarValue] = {}
        labels: dict[str, str] = {}
        for level in levels:
            merged.update(level)
            labels.update(_labels_of(host, level))
        texts = {k: var_text(v) for k, v in merged.items()}
        return cls(merged, texts, labels, groups)


def _overlay(old: Host, new: Host) -> Host:
    """``old`` with every field ``new`` sets explicitly (differs from the default)."""
    changes: dict[str, object] = {}
    for name in ("address", "port", "user", "transport", "platform", "shells", "labels",
                 "key_file", "credential_ref", "id"):  # fmt: skip
        value = getattr(new, name)
        if value != getattr(_DEFAULT, name):
            changes[name] = value
    return replace(old, **changes)  # type: ignore[arg-type]


def _build_host(raw: Host, levels: _GroupLevels, own: Mapping[str, VarValue]) -> Host:
    labels = dict(levels.labels)
    labels.update(raw.labels)
    labels.update(_labels_of(raw.name, own))
    texts = dict(levels.texts)
    texts.update((k, var_text(v)) for k, v in own.items())
    merged = levels.vars

    def pick(keys: tuple[str, ...], attr: str) -> VarValue | None:
        for key in keys:
            if key in own:
                return own[key]
        if getattr(raw, attr) != getattr(_DEFAULT, attr):
            return None  # the explicit field wins over group variables
        for key in keys:
            if key in merged:
                return merged[key]
        return None

    changes: dict[str, object] = {"vars": texts, "labels": labels, "groups": levels.groups}
    if (address := pick(("ansible_host", "ansible_ssh_host"), "address")) is not None:
        changes["address"] = var_text(address)
    if (user := pick(("ansible_user", "ansible_ssh_user"), "user")) is not None:
        changes["user"] = var_text(user)
    if key := pick(("ansible_ssh_private_key_file", "ansible_private_key_file"), "key_file"):
        changes["key_file"] = var_text(key)
    if (cred := pick(("muster_credential",), "credential_ref")) is not None:
        changes["credential_ref"] = var_text(cred)
    if (port := pick(("ansible_port", "ansible_ssh_port"), "port")) is not None:
        changes["port"] = _port(raw.name, port)
    if (conn := pick(("ansible_connection",), "transport")) is not None:
        changes["transport"] = _transport(raw.name, conn)
    if (shells := pick(("muster_shells",), "shells")) is not None:
        changes["shells"] = _shells(shells)
    platform = pick(("muster_platform", "ansible_os_family", "ansible_system"), "platform")
    if platform is not None:
        text = var_text(platform).strip().lower()
        changes["platform"] = _PLATFORMS.get(text, text)
    return replace(raw, **changes)  # type: ignore[arg-type]


def _labels_of(host: str, level: Mapping[str, VarValue]) -> dict[str, str]:
    found: dict[str, str] = {}
    table = level.get("labels")
    if isinstance(table, Mapping):
        found.update({str(k): var_text(v) for k, v in table.items()})
    text = level.get("muster_labels")
    if text is not None:
        if isinstance(text, Mapping):
            found.update({str(k): var_text(v) for k, v in text.items()})
            return found
        for item in var_text(text).split(","):
            item = item.strip()
            if not item:
                continue
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise InventoryError(f"host {host!r}: muster_labels item {item!r} is not key=value")
            found[key.strip()] = value.strip()
    return found


def _port(host: str, value: VarValue) -> int:
    try:
        port = int(var_text(value))
    except ValueError:
        port = -1
    if not 0 < port < 65536:
        raise InventoryError(f"host {host!r}: ansible_port {value!r} is not a port number")
    return port


def _transport(host: str, value: VarValue) -> TransportKind:
    text = var_text(value).strip().lower()
    if text not in _TRANSPORTS:
        known = ", ".join(sorted(_TRANSPORTS))
        raise InventoryError(
            f"host {host!r}: ansible_connection {text!r} is not supported (one of {known})"
        )
    return _TRANSPORTS[text]


def _shells(value: VarValue) -> tuple[str, ...]:
    if isinstance(value, list | tuple):
        return tuple(str(v).strip() for v in value if str(v).strip())
    return tuple(s.strip() for s in var_text(value).split(",") if s.strip())
