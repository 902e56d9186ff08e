"""Reading inventory files: the I/O edge in front of the pure parsers.

The format is chosen from the file: ``.yml``/``.yaml`` is an Ansible YAML
inventory; a file named ``config`` (or ``ssh_config``, ``*.ssh_config``) or
whose first meaningful line is a ``Host``/``Match``/``HostName`` keyword is
an OpenSSH client config; anything else (``.ini``, ``hosts``, no extension)
is an Ansible INI inventory.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from muster.domain.inventory import Inventory
from muster.domain.inventory_formats import (
    parse_ansible_ini,
    parse_ansible_yaml,
    parse_ssh_config,
)
from muster.errors import InventoryError

__all__ = ["default_ssh_config_inventory", "detect_format", "load_inventories", "load_inventory"]

_SSH_FIRST_LINE_RE: Final = re.compile(
    r"(?:host|match|hostname|include|identityfile|user|port)(?:\s|=)", re.IGNORECASE
)
_YAML_FIRST_LINE_RE: Final = re.compile(r"[A-Za-z0-9_.-]+:\s*(?:#.*)?$|---")


def detect_format(path: Path, text: str) -> str:
    """``"yaml"``, ``"ssh_config"`` or ``"ini"`` for this file name and content."""
    suffix = path.suffix.lower()
    if suffix in (".yml", ".yaml"):
        return "yaml"
    if path.name in ("config", "ssh_config") or path.name.endswith(".ssh_config"):
        return "ssh_config"
    if suffix in (".ini", ".cfg"):
        return "ini"
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if _SSH_FIRST_LINE_RE.match(line):
            return "ssh_config"
        if suffix == "" and _YAML_FIRST_LINE_RE.match(line) and not line.startswith("["):
            return "yaml"
        break
    return "ini"


def load_inventory(path: Path | str) -> Inventory:
    """Read and parse one inventory file; InventoryError names the path."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InventoryError(f"{file}: no such inventory file", field="inventory") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InventoryError(f"{file}: cannot read inventory: {exc}", field="inventory") from exc
    kind = detect_format(file, text)
    if kind == "yaml":
        return parse_ansible_yaml(text, str(file))
    if kind == "ssh_config":
        return parse_ssh_config(text, str(file))
    return parse_ansible_ini(text, str(file))


def load_inventories(paths: Iterable[Path | str]) -> Inventory:
    """Several inventories merged in order (later files win variable conflicts).

    A directory stands for its files in name order, skipping hidden ones.
    """
    merged = Inventory()
    for path in paths:
        file = Path(path)
        if file.is_dir():
            for child in sorted(file.iterdir()):
                if child.is_file() and not child.name.startswith("."):
                    merged.merge(load_inventory(child))
        else:
            merged.merge(load_inventory(file))
    return merged


def default_ssh_config_inventory(home: Path | None = None) -> Inventory:
    """Hosts from ``~/.ssh/config``, or an empty inventory when there is none."""
    config = (home if home is not None else Path.home()) / ".ssh" / "config"
    if not config.is_file():
        return Inventory()
    return load_inventory(config)
