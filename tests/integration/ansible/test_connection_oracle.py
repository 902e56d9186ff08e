"""Connection settings against Ansible's own: address, port, user and key file.

The oracle is ansible-core in-process: its VariableManager merges the host's
variables, its Templar renders them, and its ssh connection plugin picks
the values (so legacy ``ansible_ssh_*`` names win as they do in Ansible, at
whatever level they are set). muster must connect where Ansible would.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.playbook.play_context import PlayContext
from ansible.plugins.loader import connection_loader
from ansible.template import Templar
from ansible.vars.manager import VariableManager

from muster.engine.inventory_files import load_inventories

_CONNECTION_VARS = (
    "inventory_hostname",
    "ansible_host",
    "ansible_ssh_host",
    "ansible_port",
    "ansible_ssh_port",
    "ansible_user",
    "ansible_ssh_user",
    "ansible_private_key_file",
    "ansible_ssh_private_key_file",
)

CASES = {
    "legacy_names_win_at_any_level": (
        "hosts",
        """\
[web]
w1 ansible_ssh_host=10.1.0.1 ansible_host=10.9.9.9 ansible_ssh_user=old
w2 ansible_host=w2.lan ansible_port=2202
w3 ansible_private_key_file=/k/plain ansible_ssh_private_key_file=/k/ssh
w4:2204 ansible_user=own
[web:vars]
ansible_user=deploy
[legacy]
w2
[legacy:vars]
ansible_ssh_port=2022
""",
    ),
    "templates": (
        "hosts",
        """\
[web]
w1 ansible_host="{{ inventory_hostname }}.lan" ansible_port="{{ base_port + 1 }}"
w2.example.com ansible_host="{{ inventory_hostname_short }}-{{ dc }}" ansible_user="{{ who }}"
[web:vars]
base_port=2200
dc="{{ region }}1"
region=eu
who="{{ 'ops' if dc == 'eu1' else 'dev' }}"
""",
    ),
    "yaml_and_group_vars": (
        "site/hosts.yml",
        """\
all:
  children:
    web:
      hosts:
        w1:
        w2:2222:
          ansible_ssh_host: 192.0.2.2
      vars:
        ansible_host: "{{ inventory_hostname }}.internal"
""",
    ),
}
GROUP_VARS = {"site/group_vars/web.yml": "ansible_ssh_user: from_group_vars\nansible_port: 2300\n"}


def ansible_connection(path: Path) -> dict[str, tuple[object, ...]]:
    loader = DataLoader()
    manager = InventoryManager(loader=loader, sources=[str(path)])
    variables = VariableManager(loader=loader, inventory=manager)
    found: dict[str, tuple[object, ...]] = {}
    for host in manager.get_hosts("all"):
        host_vars = variables.get_vars(host=host, include_hostvars=False)
        templar = Templar(loader=loader, variables=host_vars)
        options = {k: templar.template(host_vars[k]) for k in _CONNECTION_VARS if k in host_vars}
        connection = connection_loader.get("ssh", PlayContext(), None)
        connection.set_options(var_options=options)
        port = connection.get_option("port")
        found[host.name] = (
            connection.get_option("host"),
            int(port) if port is not None else 22,
            connection.get_option("remote_user"),
            connection.get_option("private_key_file"),
        )
    return found


@pytest.mark.parametrize("name", sorted(CASES))
def test_muster_connects_where_ansible_would(name: str, tmp_path: Path) -> None:
    source, text = CASES[name]
    path = tmp_path / source
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    for extra, content in GROUP_VARS.items():
        (tmp_path / extra).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / extra).write_text(content)
    expected = ansible_connection(path)
    hosts = load_inventories([path]).all_hosts()
    found = {h.name: (h.hostname, h.port, h.user, h.key_file) for h in hosts}
    assert found == expected
