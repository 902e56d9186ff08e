"""The YAML parser against Ansible's own, for generated YAML inventories.

Generated documents nest groups under ``all`` and at the top level, give
``hosts``/``children``/``vars`` as mappings, as a single name or empty, add
keys Ansible skips with a warning, and use host entries with ranges and
ports. Ansible (in-process) either refuses the file, and then muster must
too, or reads it, and then muster must have the same groups in the same
order with the same hosts and children, and every host the same variables.
Bounded and seeded (derandomized).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import yaml
from ansible import constants as C
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.utils.display import Display
from ansible.vars.manager import VariableManager
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from muster.domain.inventory_formats import parse_ansible_yaml
from muster.domain.inventory_views import dump_json
from muster.errors import InventoryError

Display().verbosity = -1  # its warnings about skipped keys are expected here

_DIR = Path(tempfile.mkdtemp(prefix="muster-yaml-oracle-"))
GROUPS = ("web", "db", "app", "edge", "ungrouped")
HOSTS = ("w1", "w2", "db-1", "10.0.0.7", "fe80::9", "node[1:2]", "n[:1]", "p1:2222", "z[01:02]")
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5000),
    st.sampled_from(("x", "two words", "{{ inventory_hostname }}", "01", "yes")),
    st.lists(st.integers(0, 3), max_size=2),
    st.dictionaries(st.sampled_from(("a", "b")), st.integers(0, 3), max_size=2),
)
KEYS = st.sampled_from(("color", "port_no", "ansible_user", "note"))


def _group(draw: st.DrawFn, depth: int) -> object:
    if draw(st.integers(0, 5)) == 0:
        return None
    body: dict[str, object] = {}
    for section in draw(st.lists(st.sampled_from(("hosts", "children", "vars", "extra")),
                                 unique=True, max_size=3)):  # fmt: skip
        if section == "hosts":
            if draw(st.booleans()) and draw(st.booleans()):
                body["hosts"] = draw(st.sampled_from(HOSTS))
            else:
                hosts = draw(st.lists(st.sampled_from(HOSTS), unique=True, max_size=3))
                body["hosts"] = {
                    h: draw(st.one_of(st.none(), st.dictionaries(KEYS, VALUES, max_size=2)))
                    for h in hosts
                }
        elif section == "children" and depth < 2:
            if draw(st.booleans()) and draw(st.booleans()):
                body["children"] = draw(st.sampled_from(GROUPS))
            else:
                kids = draw(st.lists(st.sampled_from(GROUPS), unique=True, max_size=2))
                body["children"] = {k: _group(draw, depth + 1) for k in kids}
        elif section == "vars":
            body["vars"] = draw(st.dictionaries(KEYS, VALUES, max_size=3))
        elif section == "extra":
            body["extra"] = draw(st.sampled_from(({"k": 1}, [1], "text")))
    return body


@st.composite
def yaml_files(draw: st.DrawFn) -> str:
    top = draw(st.lists(st.sampled_from(("all", *GROUPS)), min_size=1, max_size=3, unique=True))
    return yaml.safe_dump({name: _group(draw, 0) for name in top}, sort_keys=False)


def ansible_reads(text: str) -> dict[str, object] | None:
    path = _DIR / "hosts.yml"
    path.write_text(text)
    loader = DataLoader()
    manager = InventoryManager(loader=loader, sources=[str(path)])
    if str(path) not in manager._inventory.processed_sources:
        return None
    variables = VariableManager(loader=loader, inventory=manager)
    groups = [
        [name, [h.name for h in g.hosts], [c.name for c in g.child_groups]]
        for name, g in manager.groups.items()
    ]
    hostvars = {}
    for name, host in manager.hosts.items():
        found = variables.get_vars(host=host, include_hostvars=False)
        hostvars[name] = {k: v for k, v in found.items() if k not in C.INTERNAL_STATIC_VARS}
    return json.loads(json.dumps({"groups": groups, "hostvars": hostvars}, default=str))


def muster_reads(text: str) -> dict[str, object] | None:
    try:
        inventory = parse_ansible_yaml(text, "hosts.yml")
        groups = [[n, list(g.hosts), list(g.children)] for n, g in inventory.groups.items()]
        hostvars = {name: inventory.host_variables(name) for name in inventory.host_names()}
    except InventoryError:
        return None
    return json.loads(dump_json({"groups": groups, "hostvars": hostvars}))


@settings(
    max_examples=300,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(text=yaml_files())
def test_muster_reads_generated_yaml_as_ansible_does(text: str) -> None:
    assert muster_reads(text) == ansible_reads(text), text
