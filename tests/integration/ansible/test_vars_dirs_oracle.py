"""``group_vars/`` and ``host_vars/`` against Ansible's own, for generated layouts.

Each example writes an INI inventory with groups at two depths and
``ansible_group_priority``, then ``group_vars``/``host_vars`` entries as a
plain file, ``.yml``, ``.yaml``, ``.json`` (several may exist: the first in
that order wins) or a directory of files (read in name order, hidden and
backup files skipped). Every host's merged variables must equal what
Ansible's VariableManager gives (in-process), so precedence between
inventory variables, ``group_vars/all``, group files by depth and priority,
and host files is Ansible's. Bounded and seeded (derandomized).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from ansible import constants as C
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.vars.manager import VariableManager
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from muster.engine.inventory_files import load_inventories

_ROOT = Path(tempfile.mkdtemp(prefix="muster-vars-oracle-"))
INVENTORY = """\
h0 layer=inventory-host
[web]
h1
h2 layer=inventory-host
[db]
h2
h3
[prod:children]
web
db
[web:vars]
layer=inventory-web
[db:vars]
layer=inventory-db
[all:vars]
layer=inventory-all
"""
ENTITIES = (("group_vars", "all"), ("group_vars", "web"), ("group_vars", "db"),
            ("group_vars", "prod"), ("group_vars", "ungrouped"), ("host_vars", "h1"),
            ("host_vars", "h2"), ("host_vars", "h0"))  # fmt: skip
FORMS = ("", ".yml", ".yaml", ".json", "dir")
KEYS = ("layer", "color", "ansible_group_priority")


@st.composite
def layouts(draw: st.DrawFn) -> dict[str, str]:
    files: dict[str, str] = {"hosts": INVENTORY}
    for folder, name in draw(st.lists(st.sampled_from(ENTITIES), unique=True, max_size=6)):
        forms = draw(st.lists(st.sampled_from(FORMS), min_size=1, max_size=2, unique=True))
        if "" in forms and "dir" in forms:
            forms.remove("dir")  # one path cannot be both a file and a directory
        for form in forms:
            keys = draw(st.lists(st.sampled_from(KEYS), unique=True, max_size=2))
            if folder == "host_vars":
                keys = [k for k in keys if k != "ansible_group_priority"]
            values = {
                k: draw(st.integers(1, 5)) if k == "ansible_group_priority" else f"{form}-{name}"
                for k in keys
            }
            text = json.dumps(values)
            if form == "dir":
                files[f"{folder}/{name}/b.yml"] = text
                files[f"{folder}/{name}/a.yaml"] = json.dumps({"color": f"dir-a-{name}"})
                files[f"{folder}/{name}/.hidden.yml"] = json.dumps({"color": "hidden"})
                files[f"{folder}/{name}/c.txt"] = json.dumps({"color": "txt"})
            else:
                files[f"{folder}/{name}{form}"] = text
    return files


def _write(files: dict[str, str]) -> Path:
    where = Path(tempfile.mkdtemp(dir=_ROOT))
    for name, text in files.items():
        path = where / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return where


def ansible_vars(where: Path) -> dict[str, object]:
    loader = DataLoader()
    manager = InventoryManager(loader=loader, sources=[str(where / "hosts")])
    variables = VariableManager(loader=loader, inventory=manager)
    found = {}
    for name, host in manager.hosts.items():
        merged = variables.get_vars(host=host, include_hostvars=False)
        found[name] = {k: v for k, v in merged.items() if k not in C.INTERNAL_STATIC_VARS}
    return json.loads(json.dumps(found, default=str))


@settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(files=layouts())
def test_group_and_host_vars_files_merge_as_ansible_merges_them(files: dict[str, str]) -> None:
    where = _write(files)
    try:
        inventory = load_inventories([where / "hosts"])
        found = {name: inventory.host_variables(name) for name in inventory.host_names()}
        assert json.loads(json.dumps(found)) == ansible_vars(where), sorted(files)
    finally:
        shutil.rmtree(where)
