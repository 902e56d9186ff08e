"""Reading inventories: the I/O edge in front of the pure parsers.

Sources combine as Ansible's ``-i`` options do (ansible-core 2.19):

- several sources are read in order into one inventory (later ones add
  members and win variable conflicts);
- a source that does not exist and has a comma is a host list,
  ``web1,web2:2222,`` (its hosts are ``ungrouped``);
- a directory stands for every file in it, in name order, its
  subdirectories too, skipping hidden names, ``group_vars``, ``host_vars``
  and ``vars_plugins``, and the extensions Ansible skips (``.md``, ``.txt``,
  ``.cfg``, ``.bak``, ``~``...);
- ``group_vars/`` and ``host_vars/`` beside each file source (inside each
  directory source) give groups and hosts variables: ``group_vars/web``,
  ``web.yml``, ``web.yaml`` or ``web.json`` (the first that exists), or a
  directory ``group_vars/web/`` whose files are read in name order.

The format of one file is chosen from the file: ``.yml``/``.yaml``/``.json``
is an Ansible YAML inventory; a file named ``config`` (or ``ssh_config``,
``*.ssh_config``) or whose first meaningful line is a ``Host``/``Match``/
``HostName`` keyword is an OpenSSH client config; anything else (``.ini``,
``hosts``, no extension) is Ansible INI, unless its first line reads as YAML.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Final

import yaml

from muster.domain.ansible_names import parse_address
from muster.domain.hosts import Host
from muster.domain.inventory import UNGROUPED_GROUP, Inventory, VarValue
from muster.domain.inventory_formats import (
    parse_ansible_ini,
    parse_ansible_yaml,
    parse_ssh_config,
)
from muster.errors import InventoryError

__all__ = [
    "default_ssh_config_inventory",
    "detect_format",
    "load_inventories",
    "load_inventory",
]

_SSH_FIRST_LINE_RE: Final = re.compile(
    r"(?:host|match|hostname|include|identityfile|user|port)(?:\s|=)", re.IGNORECASE
)
_YAML_FIRST_LINE_RE: Final = re.compile(r"[A-Za-z0-9_.-]+:\s*(?:#.*)?$|---")
#: Names a directory source skips, as Ansible does by default.
_IGNORED_NAMES: Final = ("group_vars", "host_vars", "vars_plugins")
_IGNORED_ENDINGS: Final = (".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".md", ".txt",
                           ".rst", ".orig", ".cfg", ".retry")  # fmt: skip
#: Vars files: ``name`` itself first (a file or a directory), then these.
_VARS_EXTENSIONS: Final = ("", ".yml", ".yaml", ".json")


def detect_format(path: Path, text: str) -> str:
    """``"yaml"``, ``"ssh_config"`` or ``"ini"`` for this file name and content."""
    suffix = path.suffix.lower()
    if suffix in (".yml", ".yaml", ".json"):
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


def _read(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InventoryError(f"{file}: no such inventory file", field="inventory") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InventoryError(f"{file}: cannot read inventory: {exc}", field="inventory") from exc


def _parse_file(file: Path, inventory: Inventory) -> None:
    text = _read(file)
    kind = detect_format(file, text)
    if kind == "yaml":
        parse_ansible_yaml(text, str(file), into=inventory)
    elif kind == "ssh_config":
        inventory.merge(parse_ssh_config(text, str(file)))
    else:
        parse_ansible_ini(text, str(file), into=inventory)


def load_inventory(path: Path | str) -> Inventory:
    """Read and parse one inventory source (file, directory or host list);
    InventoryError names the path."""
    return load_inventories([path])


def _is_host_list(source: str) -> bool:
    return "," in source and not os.path.exists(source)


def _host_list(source: str, inventory: Inventory) -> None:
    """``a,b:2222,`` -> hosts ``a`` and ``b`` (port 2222), in ``ungrouped``."""
    for entry in source.split(","):
        entry = entry.strip()
        if not entry:
            continue
        try:
            name, port = parse_address(entry)
        except ValueError:
            name, port = entry, None
        if name in inventory:
            continue
        variables: dict[str, VarValue] = {} if port is None else {"ansible_port": port}
        inventory.add_host(Host(name=name), vars=variables)
        inventory.extend_group(UNGROUPED_GROUP, hosts=(name,))


def _skipped(name: str) -> bool:
    return name.startswith(".") or name in _IGNORED_NAMES or name.endswith(_IGNORED_ENDINGS)


def _parse_source(path: Path, inventory: Inventory) -> None:
    if path.is_dir():
        for child in sorted(path.iterdir(), key=lambda p: os.fsencode(p.name)):
            if not _skipped(child.name):
                _parse_source(child, inventory)
    else:
        _parse_file(path, inventory)


def load_inventories(paths: Iterable[Path | str]) -> Inventory:
    """Several inventory sources read in order into one inventory, then the
    ``group_vars``/``host_vars`` beside each (see the module's description)."""
    inventory = Inventory()
    bases: list[Path] = []
    for source in paths:
        text = str(source)
        if _is_host_list(text):
            _host_list(text, inventory)
            continue
        path = Path(source)
        if not path.exists():
            raise InventoryError(f"{path}: no such inventory file", field="inventory")
        _parse_source(path, inventory)
        bases.append(path if path.is_dir() else path.parent)
    for base in bases:
        _load_vars_dirs(base, inventory)
    return inventory


def _load_vars_dirs(base: Path, inventory: Inventory) -> None:
    for kind, folder, names in (
        ("group", base / "group_vars", list(inventory.groups)),
        ("host", base / "host_vars", inventory.host_names()),
    ):
        if not folder.is_dir():
            continue
        for name in names:
            if name.startswith(os.sep):
                continue
            for file in _vars_files(folder, name):
                variables = _read_vars(file)
                if variables:
                    inventory.add_file_vars(kind, name, variables)


def _vars_files(folder: Path, name: str) -> list[Path]:
    for extension in _VARS_EXTENSIONS:
        candidate = folder / f"{name}{extension}"
        if candidate.is_dir():
            return _dir_vars_files(candidate)
        if candidate.exists():
            return [candidate]
    return []


def _dir_vars_files(folder: Path) -> list[Path]:
    found: list[Path] = []
    for child in sorted(folder.iterdir(), key=lambda p: p.name):
        if child.name.startswith(".") or child.name.endswith("~"):
            continue
        if child.is_dir() and not child.suffix:
            found.extend(_dir_vars_files(child))
        elif child.is_file() and child.suffix in _VARS_EXTENSIONS:
            found.append(child)
    return found


def _read_vars(file: Path) -> dict[str, VarValue]:
    text = _read(file)
    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise InventoryError(f"{file}: invalid YAML: {exc}", field="inventory") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InventoryError(
            f"{file}: variables must be a mapping, not {type(data).__name__}", field="inventory"
        )
    return {str(k): v for k, v in data.items()}


def default_ssh_config_inventory(home: Path | None = None) -> Inventory:
    """Hosts from ``~/.ssh/config``, or an empty inventory when there is none."""
    config = (home if home is not None else Path.home()) / ".ssh" / "config"
    if not config.is_file():
        return Inventory()
    return load_inventory(config)
