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

__all__ = ["ALL_GROUP", "UNGROUPED_GROUP", "Group", "Inventory", "VarValue", "var_text"]

#: A variable as parsed: text (INI), or any YAML scalar/collection.
VarValue = object

ALL_GROUP: Final = "all"
UNGROUPED_GROUP: Final = "ungrouped"

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
    several inventory files combine.
    """

    def __init__(self) -> None:
        self._hosts: dict[str, Host] = {}
        self._host_vars: dict[str, dict[str, VarValue]] = {}
        self._groups: dict[str, Group] = {ALL_GROUP: Group(ALL_GROUP)}
        self._resolved: dict[str, Host] | None = None
        self._groups_view: dict[str, Group] | None = None

    # -- building -----------------------------------------------------------

    def add_host(self, host: Host, *, vars: Mapping[str, VarValue] | None = None) -> None:
        """Add or merge a host. ``host.groups`` name groups it joins (created if needed).

        ``vars`` carries typed values (YAML); ``host.vars`` is merged first.
        """
        self._resolved = self._groups_view = None
        name = host.name
        merged_vars = dict(self._host_vars.get(name, {}))
        merged_vars.update(host.vars)
        merged_vars.update(vars or {})
        old = self._hosts.get(name)
        if old is None:
            self._hosts[name] = replace(host, vars={}, groups=())
        else:
            self._hosts[name] = _overlay(old, host)
        self._host_vars[name] = merged_vars
        for group in host.groups:
            self.add_group(group, hosts=(name,))

    def add_group(
        self,
        name: str,
        hosts: Iterable[str] = (),
        children: Iterable[str] = (),
        vars: Mapping[str, VarValue] | None = None,
    ) -> Group:
        """Add or merge a group; unknown member hosts and child groups are created empty."""
        self._resolved = self._groups_view = None
        host_names = tuple(hosts)
        child_names = tuple(children)
        if isinstance(hosts, str) or isinstance(children, str):
            raise InventoryError(f"group {name!r}: hosts and children must be lists of names")
        if ALL_GROUP in child_names:
            raise InventoryError(f"group {name!r}: 'all' cannot be a child group")
        for host_name in host_names:
            if host_name not in self._hosts:
                self._hosts[host_name] = Host(name=host_name)
                self._host_vars[host_name] = {}
        for child in child_names:
            if child not in self._groups:
                self._groups[child] = Group(child)
        old = self._groups.get(name, Group(name))
        group = Group(
            name=name,
            hosts=_union(old.hosts, host_names),
            children=_union(old.children, child_names),
            vars={**old.vars, **(vars or {})},
        )
        self._groups[name] = group
        return group

    def merge(self, other: Inventory) -> None:
        """Fold ``other`` into this inventory; ``other`` wins variable conflicts."""
        for name, host in other._hosts.items():
            self.add_host(host, vars=other._host_vars[name])
        for group in other._groups.values():
            self.add_group(group.name, group.hosts, group.children, group.vars)

    # -- reading ------------------------------------------------------------

    @property
    def groups(self) -> Mapping[str, Group]:
        """Groups by name, as declared (``all`` included; ``ungrouped`` when used)."""
        if self._groups_view is None:
            view = dict(self._groups)
            ungrouped = self._ungrouped()
            if ungrouped or UNGROUPED_GROUP in view:
                found = view.get(UNGROUPED_GROUP, Group(UNGROUPED_GROUP))
                view[UNGROUPED_GROUP] = replace(found, hosts=_union(found.hosts, ungrouped))
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
        group = groups[name]
        into.update(group.hosts)
        for child in group.children:
            self._collect(groups, child, into, (*path, name))

    # -- resolution ---------------------------------------------------------

    def _ungrouped(self) -> tuple[str, ...]:
        grouped: set[str] = set()
        for group in self._groups.values():
            if group.name not in (ALL_GROUP, UNGROUPED_GROUP):
                grouped.update(group.hosts)
        return tuple(h for h in self._hosts if h not in grouped)

    def _depths(self, groups: Mapping[str, Group]) -> dict[str, int]:
        """Longest distance from ``all`` for each group; cycles are errors."""
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
            ups = [depth(p, (*path, name)) for p in parents[name] if p != ALL_GROUP]
            depths[name] = 1 + max(ups, default=0)
            return depths[name]

        for name in groups:
            depth(name, ())
        return depths

    def _resolve(self) -> dict[str, Host]:
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
        resolved: dict[str, Host] = {}
        for name, raw in self._hosts.items():
            member_of: set[str] = {ALL_GROUP}
            for group_name in direct[name]:
                member_of |= lineage(group_name)
            ranked = sorted(member_of, key=lambda g: (depths[g], g))
            levels = [groups[g].vars for g in ranked]
            levels.append(self._host_vars[name])
            shown = tuple(g for g in sorted(member_of, key=order.__getitem__) if g != ALL_GROUP)
            resolved[name] = _build_host(raw, levels, shown)
        self._resolved = resolved
        return resolved


def _union(old: tuple[str, ...], new: tuple[str, ...]) -> tuple[str, ...]:
    seen = set(old)
    extra = [n for n in dict.fromkeys(new) if n not in seen]
    return old + tuple(extra)


def _overlay(old: Host, new: Host) -> Host:
    """``old`` with every field ``new`` sets explicitly (differs from the default)."""
    changes: dict[str, object] = {}
    for name in ("address", "port", "user", "transport", "platform", "shells", "labels",
                 "key_file", "credential_ref", "id"):  # fmt: skip
        value = getattr(new, name)
        if value != getattr(_DEFAULT, name):
            changes[name] = value
    return replace(old, **changes)  # type: ignore[arg-type]


def _build_host(raw: Host, levels: list[Mapping[str, VarValue]], groups: tuple[str, ...]) -> Host:
    merged: dict[str, VarValue] = {}
    labels: dict[str, str] = {}
    for level in levels[:-1]:
        merged.update(level)
        labels.update(_labels_of(raw.name, level))
    labels.update(raw.labels)
    own = levels[-1]
    merged.update(own)
    labels.update(_labels_of(raw.name, own))

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

    changes: dict[str, object] = {
        "vars": {k: var_text(v) for k, v in merged.items()},
        "labels": labels,
        "groups": groups,
    }
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
