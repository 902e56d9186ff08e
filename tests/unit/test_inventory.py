"""Inventory: groups, children, variable precedence and resolved host fields."""

from __future__ import annotations

import pytest

from muster.domain.hosts import Host, TransportKind
from muster.domain.inventory import Group, Inventory, var_text
from muster.errors import InventoryError


def _inv() -> Inventory:
    inv = Inventory()
    inv.add_group("web", hosts=("web1", "web2"))
    inv.add_group("db", hosts=("db1",))
    inv.add_group("dc1", hosts=("web1", "db1"))
    inv.add_group("prod", children=("web", "db"))
    return inv


def test_add_group_creates_member_hosts_in_insertion_order() -> None:
    inv = _inv()
    assert inv.host_names() == ["web1", "web2", "db1"]
    assert [h.name for h in inv.all_hosts()] == ["web1", "web2", "db1"]
    assert len(inv) == 3
    assert "web1" in inv and "nope" not in inv


def test_seed_style_add_group_with_a_list_of_names() -> None:
    inv = Inventory()
    inv.add_group("web_servers", ["web01.example.com", "web02.example.com"])
    assert inv.group_members("web_servers") == ["web01.example.com", "web02.example.com"]


def test_add_group_merges_repeated_declarations() -> None:
    inv = Inventory()
    inv.add_group("web", hosts=("a",), vars={"x": "1"})
    group = inv.add_group("web", hosts=("b", "a"), vars={"y": "2"})
    assert group == Group("web", hosts=("a", "b"), children=(), vars={"x": "1", "y": "2"})


def test_add_group_rejects_a_bare_string_and_all_as_child() -> None:
    inv = Inventory()
    with pytest.raises(InventoryError, match="lists of names"):
        inv.add_group("web", hosts="web1")
    with pytest.raises(InventoryError, match="'all' cannot be a child"):
        inv.add_group("web", children=("all",))


def test_group_members_resolves_children_recursively() -> None:
    inv = _inv()
    inv.add_group("everything", children=("prod",))
    assert inv.group_members("prod") == ["web1", "web2", "db1"]
    assert inv.group_members("everything") == ["web1", "web2", "db1"]
    assert inv.group_members("dc1") == ["web1", "db1"]
    # Ansible's order: all's children are ungrouped and the parentless groups (dc1,
    # everything) in the order declared; each group's own hosts, then level by level
    assert inv.group_members("all") == ["web1", "db1", "web2"]


def test_group_members_of_unknown_group_is_an_error() -> None:
    with pytest.raises(InventoryError, match="unknown group 'nope'"):
        _inv().group_members("nope")


def test_children_cycle_is_detected() -> None:
    inv = Inventory()
    inv.add_group("a", hosts=("h",), children=("b",))
    inv.add_group("b", children=("c",))
    inv.add_group("c", children=("a",))
    with pytest.raises(InventoryError, match="cycle"):
        inv.group_members("a")
    with pytest.raises(InventoryError, match="cycle") as caught:
        inv.all_hosts()
    cycle = str(caught.value).split("cycle: ")[1]
    assert cycle in ("a -> b -> c -> a", "b -> c -> a -> b", "c -> a -> b -> c")


def test_self_child_is_a_cycle() -> None:
    inv = Inventory()
    with pytest.raises(InventoryError, match="a -> a"):
        inv.add_group("a", hosts=("h",), children=("a",))


def test_ungrouped_holds_hosts_in_no_named_group() -> None:
    inv = _inv()
    inv.add_host(Host(name="lonely"))
    assert inv.group_members("ungrouped") == ["lonely"]
    assert inv.host("lonely").groups == ("ungrouped",)
    assert "ungrouped" in inv.groups
    assert inv.host("web1").groups == ("web", "dc1", "prod")


def test_groups_of_a_host_include_ancestors_but_not_all() -> None:
    inv = _inv()
    inv.add_group("world", children=("prod",))
    assert inv.host("db1").groups == ("db", "dc1", "prod", "world")


def test_add_host_with_groups_joins_them() -> None:
    inv = Inventory()
    inv.add_host(Host(name="h", groups=("web", "dc1")))
    assert inv.group_members("web") == ["h"]
    assert inv.host("h").groups == ("web", "dc1")


def test_child_group_vars_override_parent_and_host_vars_override_groups() -> None:
    inv = Inventory()
    inv.add_group("all", vars={"a": "all", "b": "all", "c": "all", "d": "all"})
    inv.add_group("parent", children=("child",), vars={"b": "parent", "c": "parent"})
    inv.add_group("child", hosts=("h",), vars={"c": "child"})
    inv.add_host(Host(name="h"), vars={"d": "host"})
    assert dict(inv.host("h").vars) == {"a": "all", "b": "parent", "c": "child", "d": "host"}


def test_child_declared_before_parent_still_overrides() -> None:
    inv = Inventory()
    inv.add_group("child", hosts=("h",), vars={"x": "child"})
    inv.add_group("parent", children=("child",), vars={"x": "parent"})
    assert inv.host("h").vars["x"] == "child"


def test_same_depth_groups_apply_in_name_order() -> None:
    inv = Inventory()
    inv.add_group("zeta", hosts=("h",), vars={"x": "zeta"})
    inv.add_group("alpha", hosts=("h",), vars={"x": "alpha"})
    assert inv.host("h").vars["x"] == "zeta"


def test_depth_is_the_longest_path_from_all() -> None:
    inv = Inventory()
    inv.add_group("top", children=("mid",), vars={"x": "top"})
    inv.add_group("mid", children=("leaf",))
    inv.add_group("leaf", hosts=("h",))
    inv.add_group("aaa", hosts=("h",), vars={"x": "aaa"})  # depth 1
    inv.add_group("leaf", vars={"x": "leaf"})  # depth 3
    assert inv.host("h").vars["x"] == "leaf"


def test_connection_fields_come_from_ansible_vars() -> None:
    inv = Inventory()
    inv.add_host(
        Host(name="h"),
        vars={
            "ansible_host": "10.0.0.5",
            "ansible_port": "2222",
            "ansible_user": "deploy",
            "ansible_ssh_private_key_file": "/keys/id",
            "muster_shells": "bash, zsh",
            "muster_platform": "FreeBSD",
            "muster_credential": "cred-1",
        },
    )
    host = inv.host("h")
    assert (host.address, host.port, host.user, host.key_file) == (
        "10.0.0.5",
        2222,
        "deploy",
        "/keys/id",
    )
    assert host.shells == ("bash", "zsh")
    assert host.platform == "freebsd"
    assert host.credential_ref == "cred-1"
    assert host.transport is TransportKind.SSH


@pytest.mark.parametrize(
    ("connection", "kind"),
    [
        ("local", TransportKind.LOCAL),
        ("ssh", TransportKind.SSH),
        ("smart", TransportKind.SSH),
        ("paramiko", TransportKind.SSH),
        ("muster_agent", TransportKind.AGENT),
    ],
)
def test_ansible_connection_maps_to_transport(connection: str, kind: TransportKind) -> None:
    inv = Inventory()
    inv.add_group("g", hosts=("h",), vars={"ansible_connection": connection})
    assert inv.host("h").transport is kind


def test_unknown_connection_and_bad_port_are_errors_naming_the_host() -> None:
    inv = Inventory()
    inv.add_host(Host(name="h"), vars={"ansible_connection": "winrm"})
    with pytest.raises(InventoryError, match=r"'h'.*winrm"):
        inv.all_hosts()
    inv = Inventory()
    inv.add_host(Host(name="h"), vars={"ansible_port": "ssh"})
    with pytest.raises(InventoryError, match=r"'h'.*not a port"):
        inv.all_hosts()
    inv = Inventory()
    inv.add_host(Host(name="h"), vars={"ansible_port": 70000})
    with pytest.raises(InventoryError, match="not a port"):
        inv.all_hosts()


def test_os_family_gives_platform() -> None:
    inv = Inventory()
    inv.add_host(Host(name="a"), vars={"ansible_os_family": "Debian"})
    inv.add_host(Host(name="b"), vars={"ansible_os_family": "Windows"})
    assert inv.host("a").platform == "linux"
    assert inv.host("b").platform == "windows"
    assert inv.host("b").effective_shells == ("powershell", "cmd")


def test_explicit_host_field_beats_group_var_but_not_host_var() -> None:
    inv = Inventory()
    inv.add_group("g", hosts=("a", "b", "c"), vars={"ansible_user": "group"})
    inv.add_host(Host(name="a", user="explicit"))
    inv.add_host(Host(name="b", user="explicit"), vars={"ansible_user": "hostvar"})
    assert inv.host("a").user == "explicit"
    assert inv.host("b").user == "hostvar"
    assert inv.host("c").user == "group"


def test_labels_accumulate_across_levels_and_specific_wins() -> None:
    inv = Inventory()
    inv.add_group("all", vars={"muster_labels": "env=prod,tier=x"})
    inv.add_group("dc1", hosts=("h",), vars={"muster_labels": "dc=dc1"})
    inv.add_group("web", hosts=("h",), vars={"labels": {"role": "web", "tier": "front"}})
    inv.add_host(Host(name="h"), vars={"muster_labels": "role=canary"})
    assert dict(inv.host("h").labels) == {
        "env": "prod",
        "tier": "front",
        "dc": "dc1",
        "role": "canary",
    }


def test_yaml_typed_labels_and_shells() -> None:
    inv = Inventory()
    inv.add_group("g", hosts=("h",), vars={"muster_labels": {"tier": 1}, "muster_shells": ["zsh"]})
    inv.add_host(Host(name="h"), vars={"muster_labels": "a=1,, b = 2 ,"})
    host = inv.host("h")
    assert dict(host.labels) == {"tier": "1", "a": "1", "b": "2"}
    assert host.shells == ("zsh",)


def test_host_labels_field_is_kept() -> None:
    inv = Inventory()
    inv.add_host(Host(name="h", labels={"a": "1"}))
    assert dict(inv.host("h").labels) == {"a": "1"}


def test_bad_muster_labels_is_an_error() -> None:
    inv = Inventory()
    inv.add_host(Host(name="h"), vars={"muster_labels": "justaword"})
    with pytest.raises(InventoryError, match="not key=value"):
        inv.all_hosts()


def test_vars_become_text_on_the_host() -> None:
    inv = Inventory()
    inv.add_host(Host(name="h"), vars={"n": 3, "t": True, "none": None, "l": [1, 2]})
    assert dict(inv.host("h").vars) == {"n": "3", "t": "true", "none": "", "l": "[1, 2]"}
    assert var_text({"b": 1, "a": 2}) == '{"a": 2, "b": 1}'
    assert var_text(1.5) == "1.5"


def test_resolution_is_recomputed_after_a_change() -> None:
    inv = _inv()
    assert inv.host("web1").user is None
    inv.add_group("web", vars={"ansible_user": "www"})
    assert inv.host("web1").user == "www"


def test_merge_unions_groups_and_later_wins_vars() -> None:
    first = Inventory()
    first.add_group("web", hosts=("a",), vars={"x": "first"})
    first.add_host(Host(name="a"), vars={"ansible_user": "one", "keep": "yes"})
    second = Inventory()
    second.add_group("web", hosts=("b",), vars={"x": "second"})
    second.add_host(Host(name="a"), vars={"ansible_user": "two"})
    second.add_group("db", hosts=("c",))
    first.merge(second)
    assert first.host_names() == ["a", "b", "c"]
    assert first.group_members("web") == ["a", "b"]
    host = first.host("a")
    assert host.user == "two"
    assert host.vars["keep"] == "yes"
    assert host.vars["x"] == "second"
    assert first.group_members("db") == ["c"]


def test_iterating_yields_resolved_hosts() -> None:
    inv = _inv()
    inv.add_group("web", vars={"ansible_connection": "local"})
    kinds = {h.name: h.transport for h in inv}
    assert kinds == {
        "web1": TransportKind.LOCAL,
        "web2": TransportKind.LOCAL,
        "db1": TransportKind.SSH,
    }


def test_unknown_host_lookup_raises_key_error() -> None:
    with pytest.raises(KeyError):
        _inv().host("missing")
