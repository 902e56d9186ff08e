"""Resolving an inventory's hosts: merged variables, groups, connection fields.

Connection variables, as Ansible's ssh connection reads them: when both a
name and its legacy ``ansible_ssh_*`` alias are set (at any level), the
legacy one wins, because Ansible's connection plugin reads the merged
variables name by name and keeps the last it finds:

- ``ansible_host`` / ``ansible_ssh_host`` -> address;
- ``ansible_port`` / ``ansible_ssh_port`` -> port;
- ``ansible_user`` / ``ansible_ssh_user`` -> user;
- ``ansible_private_key_file`` / ``ansible_ssh_private_key_file`` -> key_file;
- ``ansible_connection`` (``local`` -> local transport; ``ssh``/``smart``/
  ``paramiko`` -> ssh; ``muster_agent`` -> agent); ``muster_shells`` (comma
  list) -> shells; ``muster_platform`` (else ``ansible_os_family``/
  ``ansible_system``) -> platform; ``muster_credential`` -> credential_ref.

A connection value may be a Jinja2 template (``"{{ inventory_hostname }}.lan"``,
``"{{ base_port + 1 }}"``): it is rendered in Jinja2's sandbox with the host's
variables (themselves rendered when they are templates) and the magic
``inventory_hostname``, ``inventory_hostname_short`` and ``group_names``.
Other variables stay as written, as ``ansible-inventory`` shows them.

Labels: ``muster_labels`` (``"k=v,k2=v2"``) or ``labels`` (a mapping, from
YAML). Unlike other variables, labels *accumulate* across levels key by key
(a ``dc=dc1`` label from one group and ``role=web`` from another both apply;
the more specific level wins a key).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final

from muster.domain.hosts import Host, TransportKind
from muster.domain.inventory import (
    ALL_GROUP,
    MAX_GROUP_DEPTH,
    Group,
    VarValue,
    var_text,
)
from muster.domain.inventory_templates import is_template, render_value
from muster.errors import InventoryError

if TYPE_CHECKING:
    from muster.domain.inventory import Inventory

__all__ = ["group_depths", "merged_variables", "resolve_hosts"]

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


def group_depths(groups: Mapping[str, Group]) -> dict[str, int]:
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
        ups = [depth(p, (*path, name)) for p in parents[name]]
        depths[name] = 1 + max(ups, default=0)
        if depths[name] > MAX_GROUP_DEPTH:
            raise _too_deep(name)
        return depths[name]

    for name in groups:
        depth(name, ())
    return depths


def _too_deep(name: str) -> InventoryError:
    return InventoryError(
        f"groups nest more than {MAX_GROUP_DEPTH} levels deep (at group {name!r})"
    )


class _Structure:
    """What every host's resolution shares: depths, ancestors, group levels by key."""

    def __init__(self, inventory: Inventory) -> None:
        self.inventory = inventory
        self.groups = inventory.groups
        self.depths = group_depths(self.groups)
        self.order = {name: i for i, name in enumerate(self.groups)}
        self.parents: dict[str, list[str]] = {name: [] for name in self.groups}
        self.direct: dict[str, list[str]] = {name: [] for name in inventory.host_names()}
        for group in self.groups.values():
            for child in group.children:
                self.parents[child].append(group.name)
            for host_name in group.hosts:
                self.direct[host_name].append(group.name)
        self._ancestors: dict[str, frozenset[str]] = {}
        self._levels: dict[tuple[str, ...], _GroupLevels] = {}

    def lineage(self, name: str) -> frozenset[str]:
        found = self._ancestors.get(name)
        if found is None:
            collected = {name}
            for parent in self.parents[name]:
                collected |= self.lineage(parent)
            found = self._ancestors[name] = frozenset(collected)
        return found

    def levels(self, host: str) -> _GroupLevels:
        key = tuple(self.direct[host])
        levels = self._levels.get(key)
        if levels is None:
            member_of: set[str] = {ALL_GROUP}
            for group_name in key:
                member_of |= self.lineage(group_name)
            groups = self.groups
            ranked = sorted(
                (g for g in member_of if g != ALL_GROUP),
                key=lambda g: (self.depths[g], groups[g].priority, g),
            )
            vars_levels = [groups[ALL_GROUP].vars]
            vars_levels += [groups[g].vars for g in ranked]
            vars_levels.append(self.inventory.group_file_vars(ALL_GROUP))
            vars_levels += [self.inventory.group_file_vars(g) for g in ranked]
            shown = tuple(
                g for g in sorted(member_of, key=self.order.__getitem__) if g != ALL_GROUP
            )
            levels = self._levels[key] = _GroupLevels.merge(host, vars_levels, shown)
        return levels


def _structure(inventory: Inventory) -> _Structure:
    found = inventory.shared(_Structure)
    assert isinstance(found, _Structure)
    return found


def merged_variables(inventory: Inventory, name: str) -> dict[str, VarValue]:
    """One host's variables with Ansible's precedence, values as parsed."""
    levels = _structure(inventory).levels(name)
    merged = dict(levels.vars)
    merged.update(inventory.own_host_vars(name))
    merged.update(inventory.host_file_vars(name))
    return merged


def resolve_hosts(inventory: Inventory) -> dict[str, Host]:
    """Every host with its merged variables and groups.

    Hosts that sit in the same groups share one merge of the group levels,
    so the cost is one pass over the members plus, per host, its own
    variables and a copy of the merged ones (counted against
    ``limits.max_values``).
    """
    structure = _structure(inventory)
    budget = inventory.limits.max_values
    used = 0
    resolved: dict[str, Host] = {}
    for name in inventory.host_names():
        own = dict(inventory.own_host_vars(name))
        own.update(inventory.host_file_vars(name))
        host = _build_host(inventory.raw_host(name), structure.levels(name), own)
        used += len(host.vars)
        if budget is not None and used > budget:
            raise InventoryError(
                f"the hosts hold more than {budget} variables in total once group "
                f"variables are copied to every member (the limit); refused at host {name!r}"
            )
        resolved[name] = host
    return resolved


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


def _build_host(raw: Host, levels: _GroupLevels, own: Mapping[str, VarValue]) -> Host:
    labels = dict(levels.labels)
    labels.update(raw.labels)
    labels.update(_labels_of(raw.name, own))
    texts = dict(levels.texts)
    texts.update((k, var_text(v)) for k, v in own.items())
    merged = dict(levels.vars)
    merged.update(own)
    magic: dict[str, object] = {
        "inventory_hostname": raw.name,
        "inventory_hostname_short": raw.name.split(".", 1)[0],
        "group_names": sorted(levels.groups),
    }

    def pick(keys: tuple[str, ...], attr: str) -> VarValue | None:
        if getattr(raw, attr) != getattr(_DEFAULT, attr) and not any(k in own for k in keys):
            return None  # the explicit field wins over group variables
        for key in reversed(keys):  # Ansible: the legacy name, listed last, wins
            if key in merged:
                value = merged[key]
                if is_template(value):
                    value = render_value(raw.name, key, merged, magic)
                return value
        return None

    changes: dict[str, object] = {"vars": texts, "labels": labels, "groups": levels.groups}
    if (address := pick(("ansible_host", "ansible_ssh_host"), "address")) is not None:
        changes["address"] = var_text(address)
    if (user := pick(("ansible_user", "ansible_ssh_user"), "user")) is not None:
        changes["user"] = var_text(user)
    if key := pick(("ansible_private_key_file", "ansible_ssh_private_key_file"), "key_file"):
        changes["key_file"] = var_text(key)
    if (cred := pick(("muster_credential",), "credential_ref")) is not None:
        changes["credential_ref"] = var_text(cred)
    if (port := pick(("ansible_port", "ansible_ssh_port"), "port")) is not None:
        changes["port"] = _port(raw.name, port)
    if (conn := pick(("ansible_connection",), "transport")) is not None:
        changes["transport"] = _transport(raw.name, conn)
    if (shells := pick(("muster_shells",), "shells")) is not None:
        changes["shells"] = _shells(shells)
    platform = pick(("ansible_system", "ansible_os_family", "muster_platform"), "platform")
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
