"""Selectors: every term form, Ansible's order of operations, implicit localhost.

The expected host lists (other than label terms, muster's own) are what
ansible-core 2.19 answers for the same inventory and pattern
(``ansible PATTERN -i fleet.ini --list-hosts``); the differential test in
tests/integration/ansible checks many more against the real Ansible."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from muster.domain.hosts import Host, TransportKind
from muster.domain.inventory import Inventory
from muster.domain.inventory_formats import parse_ansible_ini
from muster.domain.selectors import select, split_pattern
from muster.errors import InventoryError, SelectorError

FLEET = """\
lonely ansible_user=solo
[web]
web1.dc1 muster_labels=role=web,tier=front
web2.dc1 muster_labels=role=web
web1.dc2 muster_labels=role=web
[db]
db-1 muster_labels=role=db
db-2 muster_labels=role=db
db-10
[dc1]
web1.dc1
web2.dc1
db-1
[dc2]
web1.dc2
db-2
[dc1:vars]
muster_labels=env=prod
ansible_user=deploy
[dc2:vars]
muster_labels=env=staging
[dcs:children]
dc1
dc2
"""


@pytest.fixture(scope="module")
def fleet() -> Inventory:
    return parse_ansible_ini(FLEET, "fleet.ini")


def names(inventory: Inventory, pattern: str) -> list[str]:
    return [h.name for h in select(inventory, pattern)]


ALL = ["lonely", "web1.dc1", "web2.dc1", "web1.dc2", "db-1", "db-2", "db-10"]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("all", ALL),
        ("*", ALL),
        ("web", ["web1.dc1", "web2.dc1", "web1.dc2"]),
        ("db-2", ["db-2"]),
        # a group's hosts: its children's level by level, each child's in its order
        ("dcs", ["web1.dc1", "web2.dc1", "db-1", "web1.dc2", "db-2"]),
        ("ungrouped", ["lonely"]),
        # globs over host names and group names
        ("web*", ["web1.dc1", "web2.dc1", "web1.dc2"]),
        ("db-?", ["db-1", "db-2"]),
        ("db-*", ["db-1", "db-2", "db-10"]),
        ("*.dc2", ["web1.dc2"]),
        ("d?1", ["web1.dc1", "web2.dc1", "db-1"]),  # the group dc1
        ("web[12].dc1", ["web1.dc1", "web2.dc1"]),  # a class, not a subscript: not at the end
        ("web?.dc[!2]", ["web1.dc1", "web2.dc1"]),
        # regex, matched at the start like Ansible
        ("~web\\d\\.dc1", ["web1.dc1", "web2.dc1"]),
        ("~db-\\d$", ["db-1", "db-2"]),
        ("~dc", ["web1.dc1", "web2.dc1", "db-1", "web1.dc2", "db-2"]),  # groups dc1/dc2/dcs
        ("~(db-|web)1", ["web1.dc1", "web1.dc2", "db-1", "db-10"]),
        # labels, then variables
        ("role=web", ["web1.dc1", "web2.dc1", "web1.dc2"]),
        ("env=prod", ["web1.dc1", "web2.dc1", "db-1"]),
        ("tier=front", ["web1.dc1"]),
        ("ansible_user=deploy", ["web1.dc1", "web2.dc1", "db-1"]),
        ("env!=prod", ["lonely", "web1.dc2", "db-2", "db-10"]),
        ("env=*ing", ["web1.dc2", "db-2"]),
        ("role=nothing", []),
        # unions with ',' and ':'
        ("web,db", ["web1.dc1", "web2.dc1", "web1.dc2", "db-1", "db-2", "db-10"]),
        ("db-2:web1.dc1", ["db-2", "web1.dc1"]),  # a union in the order written
        ("lonely, db-10", ["lonely", "db-10"]),
        # intersections and exclusions
        ("web:&dc1", ["web1.dc1", "web2.dc1"]),
        ("web,&dc1", ["web1.dc1", "web2.dc1"]),
        ("dcs:!web", ["db-1", "db-2"]),
        ("all:!dcs", ["lonely", "db-10"]),
        ("web:&dc1:!web2.dc1", ["web1.dc1"]),
        ("role=web:&env=prod", ["web1.dc1", "web2.dc1"]),
        ("*:!role=web", ["lonely", "db-1", "db-2", "db-10"]),
        ("web:&~.*dc2", ["web1.dc2"]),
        ("web:!~web2", ["web1.dc1", "web1.dc2"]),
        # a pattern of only & and ! starts from all
        ("!web", ["lonely", "db-1", "db-2", "db-10"]),
        ("&dc2", ["web1.dc2", "db-2"]),
        # subscripts on a term's hosts
        ("web[0]", ["web1.dc1"]),
        ("web[-1]", ["web1.dc2"]),
        ("web[1:2]", ["web2.dc1", "web1.dc2"]),
        ("web[1:]", ["web2.dc1", "web1.dc2"]),
        ("web[:0]", []),  # no start: not a subscript but a glob class, as in Ansible
        ("web[0-1]", ["web1.dc1", "web2.dc1"]),  # the old form of [0:1]
        ("db-*[2]", ["db-10"]),
        # nothing
        ("nosuch", []),
        ("nosuch*", []),
    ],
)
def test_selector_forms(fleet: Inventory, pattern: str, expected: list[str]) -> None:
    assert names(fleet, pattern) == expected


def test_order_of_operations_is_unions_then_intersections_then_exclusions(
    fleet: Inventory,
) -> None:
    # written out of order, evaluated like Ansible: (web or db) and dc1, minus db-1
    assert names(fleet, "!db-1:&dc1:web:db") == ["web1.dc1", "web2.dc1"]
    assert names(fleet, "&dc1,!db-1,web,db") == ["web1.dc1", "web2.dc1"]
    # an exclusion written first still removes hosts a later union adds
    assert names(fleet, "!web1.dc1:web") == ["web2.dc1", "web1.dc2"]


def test_several_intersections_all_apply(fleet: Inventory) -> None:
    assert names(fleet, "all:&dcs:&role=web:&env=prod") == ["web1.dc1", "web2.dc1"]


def test_result_is_in_ansibles_order_without_duplicates(fleet: Inventory) -> None:
    assert names(fleet, "db-10,web1.dc2,db,web1.dc2,lonely") == [
        "db-10",
        "web1.dc2",
        "db-1",
        "db-2",
        "lonely",
    ]


def test_selected_hosts_are_resolved(fleet: Inventory) -> None:
    (host,) = select(fleet, "db-1")
    assert host.user == "deploy"
    assert host.groups == ("db", "dc1", "dcs")
    assert dict(host.labels) == {"env": "prod", "role": "db"}


def test_a_host_and_a_group_of_the_same_name() -> None:
    """As in Ansible: a plain term that names a host is that host; with ``&``/``!``
    the group's name matches first."""
    inv = Inventory()
    inv.add_group("app", hosts=("h1",))
    inv.add_host(Host(name="app"))
    assert names(inv, "app") == ["app"]
    assert names(inv, "all:!app") == ["app"]
    assert names(inv, "all:&app") == ["h1"]
    # a glob looks at both
    assert names(inv, "ap*") == ["h1", "app"]


def test_label_beats_a_variable_of_the_same_name() -> None:
    inv = Inventory()
    inv.add_host(Host(name="a"), vars={"role": "var", "muster_labels": "role=label"})
    inv.add_host(Host(name="b"), vars={"role": "var"})
    assert names(inv, "role=label") == ["a"]
    assert names(inv, "role=var") == ["b"]


# -- implicit localhost -----------------------------------------------------------


def test_implicit_localhost_when_not_in_inventory(fleet: Inventory) -> None:
    (host,) = select(fleet, "localhost")
    assert host == Host(name="localhost", transport=TransportKind.LOCAL)
    assert select(Inventory(), "localhost") == [host]
    assert [h.name for h in select(Inventory(), "127.0.0.1")] == ["127.0.0.1"]


def test_implicit_localhost_is_not_in_all_or_star() -> None:
    assert select(Inventory(), "all") == []
    assert select(Inventory(), "*") == []
    assert select(Inventory(), "local*") == []


def test_implicit_localhost_joins_unions_and_obeys_exclusions(fleet: Inventory) -> None:
    assert names(fleet, "db-2,localhost") == ["db-2", "localhost"]
    assert names(fleet, "localhost:!localhost") == []
    assert names(fleet, "localhost:&web") == []
    assert names(fleet, "localhost:&localhost") == ["localhost"]


def test_inventory_localhost_is_used_when_defined() -> None:
    inv = Inventory()
    inv.add_host(Host(name="localhost", user="me"), vars={"ansible_connection": "ssh"})
    (host,) = select(inv, "localhost")
    assert (host.user, host.transport) == ("me", TransportKind.SSH)
    assert names(inv, "all") == ["localhost"]


# -- malformed patterns -----------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("", "names no hosts"),
        ("   ", "names no hosts"),
        (",", "names no hosts"),
        (" : ", "names no hosts"),
        ("web:&", "needs a pattern"),
        ("web:!", "needs a pattern"),
        ("web,& ", "needs a pattern"),
        ("~web(", "invalid host pattern"),
        ("web[9]", "no hosts matched the subscripted pattern 'web\\[9\\]'"),
        ("db,web[-4]", "no hosts matched"),
    ],
)
def test_malformed_patterns_raise(fleet: Inventory, pattern: str, problem: str) -> None:
    with pytest.raises(SelectorError, match=problem) as caught:
        select(fleet, pattern)
    assert caught.value.field == "selector"


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("web,,db", ["web1.dc1", "web2.dc1", "web1.dc2", "db-1", "db-2", "db-10"]),
        ("web:", ["web1.dc1", "web2.dc1", "web1.dc2"]),
        (":web", ["web1.dc1", "web2.dc1", "web1.dc2"]),
        (":~web", ["web1.dc1", "web2.dc1", "web1.dc2"]),
        ("web[1", ["web1.dc1", "web2.dc1", "web1.dc2"]),
        ("web]", ["web1.dc1", "web2.dc1", "web1.dc2"]),
        ("web[3:1]", []),
        ("web:&!db", []),
    ],
)
def test_forms_ansible_tolerates(fleet: Inventory, pattern: str, expected: list[str]) -> None:
    """Empty terms are skipped; unbalanced brackets are part of a name (these
    answers are Ansible's)."""
    assert names(fleet, pattern) == expected


@pytest.mark.parametrize(
    ("pattern", "terms"),
    [
        ("web:&dc1:!db", ["web", "&dc1", "!db"]),
        ("a, b ,c", ["a", "b", "c"]),
        ("web[1:3]:db", ["web[1:3]", "db"]),
        ("web:&~db:[0-9]", ["web", "&~db", "[0-9]"]),  # no comma: a regex ends at ':'
        ("staging,web:&prod", ["staging", "web:&prod"]),  # a comma: ':' separates nothing
        ("::1", ["::1"]),  # an address is one term
        ("web:22", ["web:22"]),
        ("web db", ["web", "db"]),
        ("~a:b,c", ["~a:b", "c"]),
        ("env=prod:role!=db", ["env=prod", "role!=db"]),
    ],
)
def test_split_pattern(pattern: str, terms: list[str]) -> None:
    assert split_pattern(pattern) == terms


def test_cycle_in_inventory_surfaces_as_inventory_error() -> None:
    inv = Inventory()
    inv.add_group("a", hosts=("h",), children=("b",))
    inv.add_group("b", children=("a",))
    with pytest.raises(InventoryError, match="cycle"):
        select(inv, "a")


_NAME = st.text(alphabet="abcdefgh0123456789.-", min_size=1, max_size=8)


@given(
    hosts=st.lists(_NAME, min_size=1, max_size=12, unique=True),
    members=st.lists(st.integers(0, 11), max_size=12),
    excluded=st.lists(st.integers(0, 11), max_size=4),
)
def test_set_algebra_matches_a_reference(
    hosts: list[str], members: list[int], excluded: list[int]
) -> None:
    inv = Inventory()
    for name in hosts:
        inv.add_host(Host(name=f"h{name}"))
    chosen = [f"h{hosts[i]}" for i in members if i < len(hosts)]
    inv.add_group("grp", hosts=chosen)
    drop = {f"h{hosts[i]}" for i in excluded if i < len(hosts)}
    pattern = "all:&grp" + "".join(f":!{d}" for d in sorted(drop))
    # all's order (ungrouped first, then grp) filtered to grp: grp's order
    expected = [h for h in dict.fromkeys(chosen) if h not in drop]
    assert names(inv, pattern) == expected
