"""An inventory as ``ansible-inventory`` shows it: ``--list``, ``--graph``, ``--host``.

Users check an inventory by comparing these views with Ansible's, so they
follow ansible-inventory 2.19's layout exactly: ``--list`` is one entry per
group (its own hosts and its children, empty keys left out) plus
``_meta.hostvars``; ``--graph`` draws ``@group:`` lines with children
before hosts; ``--host`` is the host's merged variables. JSON text is
written with sorted keys and a four-space indent, as Ansible writes it.
"""

from __future__ import annotations

import json
from typing import Final

from muster.domain.inventory import ALL_GROUP, Inventory, VarValue
from muster.errors import InventoryError

__all__ = ["dump_json", "graph_view", "host_view", "list_view"]

#: What ``ansible-inventory --list`` puts under ``_meta.profile``.
LIST_PROFILE: Final = "inventory_legacy"


def list_view(inventory: Inventory) -> dict[str, object]:
    """``ansible-inventory --list``: groups with hosts and children, and hostvars."""
    groups = inventory.groups
    result: dict[str, object] = {}
    seen: set[str] = set()

    def visit(name: str) -> None:
        group = groups[name]
        entry: dict[str, object] = {}
        if name != ALL_GROUP and group.hosts:
            entry["hosts"] = list(group.hosts)
        if group.children:
            entry["children"] = list(group.children)
        if entry:
            result[name] = entry
        for child in group.children:
            if child not in seen:
                seen.add(child)
                visit(child)

    visit(ALL_GROUP)
    hostvars: dict[str, dict[str, VarValue]] = {}
    for name in inventory.group_members(ALL_GROUP):
        variables = inventory.host_variables(name)
        if variables:
            hostvars[name] = variables
    result["_meta"] = {"hostvars": hostvars, "profile": LIST_PROFILE}
    return result


def graph_view(inventory: Inventory, group: str = ALL_GROUP) -> str:
    """``ansible-inventory --graph [group]``: the tree below ``group``."""
    groups = inventory.groups
    if group not in groups:
        raise InventoryError(f"--graph needs a group name; {group!r} is not a group")
    lines: list[str] = []

    def line(text: str, depth: int) -> str:
        return "  |" * depth + "--" + text if depth else text

    def visit(name: str, depth: int, path: tuple[str, ...]) -> None:
        lines.append(line(f"@{name}:", depth))
        for child in groups[name].children:
            if child not in path:
                visit(child, depth + 1, (*path, child))
        if name != ALL_GROUP:
            lines.extend(line(host, depth + 1) for host in groups[name].hosts)

    visit(group, 0, (group,))
    return "\n".join(lines)


def host_view(inventory: Inventory, name: str) -> dict[str, VarValue]:
    """``ansible-inventory --host name``: the host's merged variables."""
    if name not in inventory:
        raise InventoryError(f"--host: no host {name!r} in the inventory")
    return inventory.host_variables(name)


def dump_json(data: object) -> str:
    """JSON as ansible-inventory writes it (sorted keys, four-space indent)."""
    return json.dumps(data, sort_keys=True, indent=4, default=str)
