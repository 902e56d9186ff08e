"""The INI parser against Ansible's own, for generated INI inventories.

Generated files mix hosts before any section, ``[g]``, ``[g:vars]`` and
``[g:children]`` sections in any order (children named before they are
declared, vars for groups never declared), ranges, ports and Python-literal
values with and without trailing comments. Ansible (ansible-core's
InventoryManager and VariableManager, in-process) either refuses the file,
and then muster must refuse it too, or reads it, and then muster must have
the same groups in the same order, each with the same hosts and children in
the same order, and every host the same variables.

Bounded and seeded (derandomized). Generated names avoid the documented
differences (a host named like a group, a port on a second appearance).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from ansible import constants as C
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.utils.display import Display
from ansible.vars.manager import VariableManager
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from muster.domain.inventory_formats import parse_ansible_ini
from muster.domain.inventory_views import dump_json
from muster.errors import InventoryError

Display().verbosity = -1  # its warnings about files it refuses are expected here

_DIR = Path(tempfile.mkdtemp(prefix="muster-ini-oracle-"))
GROUPS = ("web", "db", "app", "edge", "ungrouped", "all")
HOSTS = ("w1", "w2", "db-1", "10.0.0.7", "fe80::9", "x.lan", "node[1:2]", "r[a:b]", "n[:1]",
         "z[01:02]", "bad[01:100]", "q[3:1]")  # fmt: skip
VALUES = ("1", "01", "True", "yes", "'q'", '"two words"', "[1, 2]", "{'a': 1}", "hello # c",
          "x=y", "3.5", "-1", "None", "'bad", "'x' # note", "a;b", "")  # fmt: skip
KEYS = ("color", "port_no", "ansible_user", "note")


@st.composite
def ini_files(draw: st.DrawFn) -> str:
    lines: list[str] = []
    ports = iter(range(1000))

    def host_line() -> str:
        if draw(st.booleans()) and draw(st.booleans()):
            entry = f"p{next(ports)}:{draw(st.integers(1, 65535))}"
        else:
            entry = draw(st.sampled_from(HOSTS))
        words = [entry]
        for _ in range(draw(st.integers(0, 2))):
            value = draw(st.sampled_from(VALUES))
            words.append(f"{draw(st.sampled_from(KEYS))}={value}" if " " not in value else
                         f"{draw(st.sampled_from(KEYS))}='{value}'")  # fmt: skip
        return " ".join(words)

    for _ in range(draw(st.integers(0, 2))):
        lines.append(host_line())
    for _ in range(draw(st.integers(1, 6))):
        group = draw(st.sampled_from(GROUPS))
        kind = draw(st.sampled_from(("", "", ":vars", ":children")))
        lines.append(f"[{group}{kind}]" + draw(st.sampled_from(("", " # comment"))))
        for _ in range(draw(st.integers(0, 3))):
            if kind == "":
                lines.append(host_line())
            elif kind == ":vars":
                spaces = draw(st.sampled_from(("", " ")))
                key, value = draw(st.sampled_from(KEYS)), draw(st.sampled_from(VALUES))
                lines.append(f"{key}{spaces}={spaces}{value}")
            else:
                lines.append(draw(st.sampled_from(GROUPS[:4])))
        if draw(st.booleans()):
            lines.append(draw(st.sampled_from(("", "; a comment", "# another"))))
    return "\n".join(lines) + "\n"


def ansible_reads(text: str) -> dict[str, object] | None:
    path = _DIR / "hosts"
    path.write_text(text)
    loader = DataLoader()
    manager = InventoryManager(loader=loader, sources=[str(path)])
    if str(path) not in manager._inventory.processed_sources:
        return None  # Ansible refused the file (it warns and goes on without it)
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
        inventory = parse_ansible_ini(text, "hosts")
        groups = [[name, list(g.hosts), list(g.children)] for name, g in inventory.groups.items()]
        hostvars = {name: inventory.host_variables(name) for name in inventory.host_names()}
    except InventoryError:
        return None
    return json.loads(dump_json({"groups": groups, "hostvars": hostvars}))


@settings(
    max_examples=400,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(text=ini_files())
def test_muster_reads_generated_ini_as_ansible_does(text: str) -> None:
    assert muster_reads(text) == ansible_reads(text), text
