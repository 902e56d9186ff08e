"""Inventory parsers: Ansible INI and YAML, OpenSSH config; errors name source and line."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from muster.domain.hosts import TransportKind
from muster.domain.inventory_formats import (
    expand_host_pattern,
    parse_ansible_ini,
    parse_ansible_yaml,
    parse_ssh_config,
)
from muster.domain.selectors import select
from muster.engine.inventory_files import (
    default_ssh_config_inventory,
    detect_format,
    load_inventories,
    load_inventory,
)
from muster.errors import InventoryError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

INI = """\
# leading comment
; another comment style
bastion ansible_host=203.0.113.9

[web]
web[01:03].example.com ansible_user=www
web-extra.example.com:2222 motd="hello world" empty=

[db]
db-[a:b].example.com   # trailing comment

[prod:children]
web
db

[prod:vars]
env = production
quoted = "two  words"  ; not part of it
plain = value  # a comment

[web:vars]
ansible_connection=local
"""


# -- ranges -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("web[01:03]", ["web01", "web02", "web03"]),
        ("web[1:3]", ["web1", "web2", "web3"]),
        ("web[8:11]", ["web8", "web9", "web10", "web11"]),
        ("web[0:10:5]", ["web0", "web5", "web10"]),
        ("db-[a:c]", ["db-a", "db-b", "db-c"]),
        ("r[1:2]-[a:b]", ["r1-a", "r1-b", "r2-a", "r2-b"]),
        ("plain.example.com", ["plain.example.com"]),
    ],
)
def test_ranges_expand_like_ansible(pattern: str, expected: list[str]) -> None:
    assert expand_host_pattern(pattern) == expected


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("web[a:3]", "numbers"),
        ("web[1]", "begin:end"),
        ("web[1:3:0]", "numbers"),
        ("web[1:3:x]", "numbers"),
        ("web[c:a]", "begin <= end"),
        ("web[01:100]", "same width"),
        ("web[5:]", "end value"),
        ("web[1:2", "unbalanced"),
        ("n[0:999][0:999]", "limit"),
    ],
)
def test_bad_ranges_are_rejected(pattern: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        expand_host_pattern(pattern)


@given(st.integers(0, 500), st.integers(0, 50), st.integers(1, 4))
def test_numeric_range_count_and_padding(start: int, span: int, width: int) -> None:
    end = start + span
    names = expand_host_pattern(f"h[{start:0{width}d}:{end:0{width}d}]")
    assert len(names) == span + 1
    assert [int(n[1:]) for n in names] == list(range(start, end + 1))
    if width > 1 and len(str(start)) < width:
        assert all(len(n) - 1 >= width for n in names)


# -- Ansible INI --------------------------------------------------------------------


def test_ini_hosts_groups_and_children() -> None:
    inv = parse_ansible_ini(INI, "hosts.ini")
    assert inv.host_names() == [
        "bastion",
        "web01.example.com",
        "web02.example.com",
        "web03.example.com",
        "web-extra.example.com",
        "db-a.example.com",
        "db-b.example.com",
    ]
    assert inv.group_members("db") == ["db-a.example.com", "db-b.example.com"]
    assert inv.group_members("prod") == inv.host_names()[1:]
    assert inv.group_members("ungrouped") == ["bastion"]


def test_ini_host_vars_ports_and_quotes() -> None:
    inv = parse_ansible_ini(INI, "hosts.ini")
    extra = inv.host("web-extra.example.com")
    assert extra.port == 2222
    assert extra.vars["motd"] == "hello world"
    assert extra.vars["empty"] == ""
    assert inv.host("web02.example.com").user == "www"
    assert inv.host("bastion").address == "203.0.113.9"
    assert inv.host("bastion").transport is TransportKind.SSH
    assert inv.host("web01.example.com").transport is TransportKind.LOCAL


def test_ini_group_vars_are_python_literals_or_text_as_written() -> None:
    """As Ansible reads them: a value that is not a Python literal keeps its trailing
    comment; one that is (a quoted string, a number) is the literal."""
    inventory = parse_ansible_ini(INI, "hosts.ini")
    host = inventory.host("db-a.example.com")
    assert host.vars["env"] == "production"
    assert host.vars["quoted"] == '"two  words"  ; not part of it'
    assert host.vars["plain"] == "value  # a comment"
    typed = parse_ansible_ini("[g]\nh\n[g:vars]\nn=8080\nq='x' # note\nt=True\n")
    assert typed.host_variables("h") == {"n": 8080, "q": "x", "t": True}
    assert host.groups == ("db", "prod")


def test_ini_repeated_sections_merge() -> None:
    inv = parse_ansible_ini("[a]\nh1\n[b]\nh2\n[a]\nh3\n")
    assert inv.group_members("a") == ["h1", "h3"]


def test_ini_children_may_name_a_group_declared_later() -> None:
    inv = parse_ansible_ini("[p:children]\nc\n[c]\nh\n[c:vars]\nx=1\n")
    assert inv.group_members("p") == ["h"]
    assert inv.host("h").vars["x"] == "1"


def test_ini_vars_section_may_come_before_its_group() -> None:
    inv = parse_ansible_ini("[web:vars]\nx=1\n[web]\nh\n")
    assert inv.host("h").vars["x"] == "1"


def test_ini_all_vars_and_all_children() -> None:
    inv = parse_ansible_ini("[all:vars]\nansible_user=ops\n[all:children]\ng\n[g]\nh\n")
    assert inv.host("h").user == "ops"


def test_ini_hosts_under_all_section_stay_ungrouped() -> None:
    inv = parse_ansible_ini("[all]\nh1\n")
    assert inv.group_members("ungrouped") == ["h1"]


def test_ini_later_host_vars_override_earlier_ones() -> None:
    inv = parse_ansible_ini("[a]\nh x=1 y=1\n[b]\nh x=2\n")
    assert dict(inv.host("h").vars) == {"x": "2", "y": "1"}


def test_ini_empty_text_is_an_empty_inventory() -> None:
    assert len(parse_ansible_ini("")) == 0
    assert len(parse_ansible_ini("# only a comment\n\n")) == 0


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("[web\nh1\n", 1, "unbalanced"),
        ("ok\n[web:hostz]\n", 2, "unknown type"),
        ("ok\n[web:1]\n", 2, "unknown type"),
        ("ok\n[web x]\n", 2, "invalid section entry"),
        ("[web]\nh1 novalue\n", 2, "expected key=value"),
        ("[web]\n\n\nh[c:a]\n", 4, "begin <= end"),
        ("[web]\nh1 x='unterminated\n", 2, "cannot split"),
        ("[web:vars]\nx=1\n", 1, r"\[web:vars\] not valid for undefined group 'web'"),
        ("[a:children]\nb\n", 2, r"\[a:children\] includes undefined group 'b'"),
        ("[web]\nh\n[web:vars]\nnot an assignment\n", 4, "expected key=value"),
        ("[p:children]\ntwo words\n", 2, "expected a group name"),
        ("[p]\nh\n[p:children]\nall\n", 4, "'all' cannot be a child"),
        ('[web]\n"bad name"\n', 2, "invalid host name"),
        ("[web]\nh1:\n", 2, "reserved for a port"),
        ("[web]\nh:70000\n", 2, "port 70000"),
    ],
)
def test_ini_errors_name_source_and_line(text: str, line: int, problem: str) -> None:
    with pytest.raises(InventoryError, match=problem) as caught:
        parse_ansible_ini(text, "inv/hosts")
    assert str(caught.value).startswith(f"inv/hosts:{line}: ")


def test_ini_children_cycle_is_refused_while_parsing() -> None:
    """As Ansible refuses it (a recursive dependency loop): the file, not a later read."""
    with pytest.raises(InventoryError, match=r"cycle: .*a -> b -> a|cycle: .*b -> a -> b"):
        parse_ansible_ini("[a:children]\nb\n[b:children]\na\n[a]\nh\n")
    with pytest.raises(InventoryError, match="a -> a"):
        parse_ansible_ini("[a:children]\na\n")


# -- Ansible YAML -------------------------------------------------------------------

YAML = """\
all:
  vars:
    ansible_user: ops
    ntp: [a, b]
  hosts:
    bastion:
      ansible_host: 203.0.113.9
  children:
    web:
      hosts:
        web[1:2].example.com:
        web3.example.com:2222:
          ansible_user: www
      vars:
        http_port: 8080
        labels: {role: web}
    prod:
      children:
        web:
        db:
          hosts:
            db1: {ansible_connection: local}
"""


def test_yaml_shape_groups_children_and_vars() -> None:
    inv = parse_ansible_yaml(YAML, "hosts.yml")
    assert inv.host_names() == [
        "bastion",
        "web1.example.com",
        "web2.example.com",
        "web3.example.com",
        "db1",
    ]
    assert inv.group_members("prod") == inv.host_names()[1:]
    assert inv.group_members("ungrouped") == ["bastion"]
    web3 = inv.host("web3.example.com")
    assert (web3.port, web3.user) == (2222, "www")
    assert web3.vars["http_port"] == "8080"
    assert web3.vars["ntp"] == '["a", "b"]'
    assert dict(web3.labels) == {"role": "web"}
    assert web3.groups == ("web", "prod")
    assert inv.host("web1.example.com").user == "ops"
    assert inv.host("db1").transport is TransportKind.LOCAL
    assert inv.host("bastion").address == "203.0.113.9"


def test_yaml_top_level_groups_besides_all() -> None:
    inv = parse_ansible_yaml("web:\n  hosts:\n    a:\ndb:\n  hosts:\n    b:\n")
    assert inv.group_members("web") == ["a"]
    assert inv.group_members("db") == ["b"]


def test_yaml_empty_document_is_empty() -> None:
    assert len(parse_ansible_yaml("")) == 0
    assert len(parse_ansible_yaml("# nothing\n")) == 0
    assert len(parse_ansible_yaml("all:\n")) == 0


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("all:\n  hosts:\n    - a\n    - b\n", 3, "invalid 'hosts' entry for group 'all'"),
        ("all:\n  hosts:\n    a: 5\n", 3, "variables of host 'a' must be a mapping"),
        ("all:\n  vars: [1]\n", 2, "invalid 'vars' entry"),
        ("- a\n- b\n", 1, "must be a mapping of group names"),
        ("plugin: aws_ec2\n", 1, "plugin's configuration"),
        ("all:\n  hosts:\n    1:\n", 3, "must be a string"),
        ("all:\n  hosts:\n    a:\n  b: [\n", 5, "invalid YAML"),
        ("all:\n  children:\n    all:\n", 3, "'all' cannot be a child"),
        ("all:\n  children:\n    a:\n      children:\n        a:\n", 5, "inside itself"),
        ("all:\n  hosts:\n    web[c:a]:\n", 3, "begin <= end"),
        ("all:\n  children:\n    'bad group':\n", 3, "invalid group name"),
        ("all:\n  hosts:\n    ? [a, b]\n    : x\n", 3, "must be a string"),
    ],
)
def test_yaml_errors_name_source_and_line(text: str, line: int, problem: str) -> None:
    with pytest.raises(InventoryError, match=problem) as caught:
        parse_ansible_yaml(text, "hosts.yml")
    assert str(caught.value).startswith(f"hosts.yml:{line}: ")


def test_yaml_and_ini_examples_are_equivalent() -> None:
    ini = load_inventory(EXAMPLES / "inventory.ini")
    yml = load_inventory(EXAMPLES / "hosts.yml")
    assert ini.host_names() == yml.host_names()
    for a, b in zip(ini.all_hosts(), yml.all_hosts(), strict=True):
        assert (a.transport, dict(a.labels), a.shells, set(a.groups)) == (
            b.transport,
            dict(b.labels),
            b.shells,
            set(b.groups),
        )


def test_example_inventory_runs_locally_and_intersects() -> None:
    inv = load_inventory(EXAMPLES / "inventory.ini")
    assert all(h.transport is TransportKind.LOCAL for h in inv.all_hosts())
    picked = [h.name for h in select(inv, "web:&dc1")]
    assert picked == ["web1.dc1", "web2.dc1"]
    assert [h.name for h in select(inv, "role=db:&dc=dc2")] == ["db1.dc2"]


# -- OpenSSH config ---------------------------------------------------------------

SSH = """\
# global options apply to every host
User globaluser

Host web1 web2 !web3
    HostName %h.internal.example.com
    Port 2201

Host db1
    HostName=10.0.0.7
    User "dba"
    IdentityFile ~/.ssh/db_key
    IdentityFile ~/.ssh/other_key

Host web*
    Port 9999
    User webuser

Match host db1 exec "true"
    User matched

Host *.example.com
    User ignored-for-aliases

Host *
    Port 2000
    IdentityFile ~/.ssh/id_default
"""


def test_ssh_config_aliases_become_hosts() -> None:
    inv = parse_ssh_config(SSH, "~/.ssh/config")
    assert inv.host_names() == ["web1", "web2", "db1"]
    web1 = inv.host("web1")
    assert (web1.address, web1.port, web1.user) == ("web1.internal.example.com", 2201, "globaluser")
    assert web1.key_file == "~/.ssh/id_default"
    db1 = inv.host("db1")
    # options before the first Host apply first, and the first value wins
    assert (db1.address, db1.port, db1.user) == ("10.0.0.7", 2000, "globaluser")
    assert db1.key_file == "~/.ssh/db_key"
    assert db1.transport is TransportKind.SSH


def test_ssh_config_quoted_value_is_unquoted() -> None:
    host = parse_ssh_config('Host db\n  User "dba"\n').host("db")
    assert host.user == "dba"


def test_ssh_config_first_value_wins_like_openssh() -> None:
    text = "Host *\n  User first\nHost a\n  User second\n  HostName a.example\n"
    host = parse_ssh_config(text).host("a")
    assert (host.user, host.address) == ("first", "a.example")


def test_ssh_config_negated_pattern_excludes() -> None:
    text = "Host a b\nHost * !b\n  User notb\n"
    inv = parse_ssh_config(text)
    assert inv.host("a").user == "notb"
    assert inv.host("b").user is None


def test_ssh_config_match_blocks_are_skipped_until_next_host() -> None:
    text = "Match all\n  User m\nHost a\n  Port 23\n"
    host = parse_ssh_config(text).host("a")
    assert (host.user, host.port) == (None, 23)


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("Host a\n  Port abc\n", 2, "invalid Port"),
        ("Host a\n  Port 0\n", 2, "invalid Port"),
        ("Host a\n  HostName\n", 2, "Keyword value"),
        ('Host "a\n', 1, "bad quoting"),
        ("Host a\x01b\n", 1, "invalid host name"),
    ],
)
def test_ssh_config_errors_name_source_and_line(text: str, line: int, problem: str) -> None:
    with pytest.raises(InventoryError, match=problem) as caught:
        parse_ssh_config(text, "cfg")
    assert str(caught.value).startswith(f"cfg:{line}: ")


# -- files (engine edge) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "kind"),
    [
        ("hosts.yml", "all:\n", "yaml"),
        ("hosts.yaml", "all:\n", "yaml"),
        ("config", "Host a\n", "ssh_config"),
        ("ssh_config", "User x\n", "ssh_config"),
        ("hosts", "# c\nHost a\n  HostName x\n", "ssh_config"),
        ("hosts", "[web]\nh\n", "ini"),
        ("hosts", "h1 ansible_host=x\n", "ini"),
        ("hosts", "---\nall:\n", "yaml"),
        ("hosts", "all:\n  hosts:\n", "yaml"),
        ("inventory.ini", "Host a\n", "ini"),
    ],
)
def test_detect_format(name: str, text: str, kind: str) -> None:
    assert detect_format(Path(name), text) == kind


def test_load_inventory_errors_name_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.ini"
    with pytest.raises(InventoryError, match=f"{missing}: no such inventory file"):
        load_inventory(missing)
    bad = tmp_path / "bad.ini"
    bad.write_text("[web\n")
    with pytest.raises(InventoryError, match=f"{bad}:1: unbalanced"):
        load_inventory(bad)
    binary = tmp_path / "bin.ini"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InventoryError, match="cannot read"):
        load_inventory(binary)


def test_load_inventories_merges_files_and_directories(tmp_path: Path) -> None:
    first = tmp_path / "a.ini"
    first.write_text("[web]\nw1 x=1\n")
    folder = tmp_path / "more"
    folder.mkdir()
    (folder / "b.yml").write_text("all:\n  children:\n    web:\n      hosts:\n        w2:\n")
    (folder / "config").write_text("Host w1\n  HostName 10.1.1.1\n")
    (folder / ".hidden").write_text("this is not parsed [[[\n")
    inv = load_inventories([first, folder])
    assert inv.group_members("web") == ["w1", "w2"]
    assert inv.host("w1").address == "10.1.1.1"
    assert inv.host("w1").vars["x"] == "1"


def test_default_ssh_config_inventory(tmp_path: Path) -> None:
    assert len(default_ssh_config_inventory(tmp_path)) == 0
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "config").write_text("Host box\n  HostName 192.0.2.1\n")
    inv = default_ssh_config_inventory(tmp_path)
    assert inv.host("box").address == "192.0.2.1"
