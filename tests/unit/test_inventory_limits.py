"""Inventories are built in linear work, and every cap gives a clear error.

Work is counted, never timed: hashes of host names for the inventory
builder (each membership test and insert hashes a name once), and Python
lines executed for the parsers (``sys.settrace``). Doubling the input must
roughly double the count; a quadratic step would quadruple it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

import pytest

from muster.domain.hosts import Host
from muster.domain.inventory import MAX_GROUP_DEPTH, Inventory, InventoryLimits
from muster.domain.inventory_formats import (
    host_pattern_size,
    parse_ansible_ini,
    parse_ansible_yaml,
    parse_ssh_config,
)
from muster.errors import InventoryError


class CountingName(str):
    """A host name that counts how often it is hashed."""

    hashes = 0

    def __hash__(self) -> int:
        CountingName.hashes += 1
        return str.__hash__(self)


def _hashes_to_build(n: int) -> int:
    CountingName.hashes = 0
    inventory = Inventory()
    for i in range(n):
        name = CountingName(f"web{i:06d}")
        inventory.add_host(Host(name=name, groups=("web", "dc1")))
    inventory.all_hosts()
    return CountingName.hashes


def test_building_a_large_group_hashes_each_name_a_fixed_number_of_times() -> None:
    small, large = _hashes_to_build(1000), _hashes_to_build(2000)
    assert large / small < 2.3, (small, large)
    assert large < 40 * 2000, large


def _lines_run(parse: Callable[[], Any]) -> int:
    count = 0

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        if event == "line":
            count += 1
        return tracer

    # Put back whatever traced before (coverage's tracer in CI): clearing it
    # would leave every later test in this process unmeasured.
    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        parse()
    finally:
        sys.settrace(previous)
    return count


def _ssh_config(n: int) -> str:
    head = "Host *\n  User deploy\nHost *.db\n  Port 2222\n"
    return head + "".join(
        f"Host web{i:05d}\n  HostName 10.0.{i // 256}.{i % 256}\n" for i in range(n)
    )


def _ini(n: int) -> str:
    return "[web]\n" + "".join(
        f"web{i:05d} ansible_host=10.0.{i // 256}.{i % 256}\n" for i in range(n)
    )


def _yaml(n: int) -> str:
    hosts = "".join(f"        web{i:05d}: {{ansible_host: 10.0.0.1}}\n" for i in range(n))
    return "all:\n  children:\n    web:\n      hosts:\n" + hosts


@pytest.mark.parametrize(
    ("make", "parse"),
    [(_ssh_config, parse_ssh_config), (_ini, parse_ansible_ini), (_yaml, parse_ansible_yaml)],
    ids=["ssh_config", "ini", "yaml"],
)
def test_parsing_twice_the_hosts_runs_about_twice_the_lines(
    make: Callable[[int], str], parse: Callable[[str], Inventory]
) -> None:
    small_text, large_text = make(400), make(800)
    small = _lines_run(lambda: parse(small_text).all_hosts())
    large = _lines_run(lambda: parse(large_text).all_hosts())
    assert large / small < 2.3, (small, large)


def test_ssh_config_values_still_come_from_every_matching_block_in_order() -> None:
    text = (
        "Host web1 web2\n  Port 2201\nHost *\n  User root\n  Port 22\n"
        "Host web2\n  User deploy\nHost !web1 web*\n  HostName %h.example\n"
    )
    inv = parse_ssh_config(text)
    assert (inv.host("web1").port, inv.host("web1").user, inv.host("web1").address) == (
        2201,
        "root",
        None,
    )
    assert (inv.host("web2").port, inv.host("web2").user) == (2201, "root")
    assert inv.host("web2").address == "web2.example"


# -- caps ------------------------------------------------------------------------------


def test_more_hosts_than_the_cap_is_refused_naming_the_limit_and_line() -> None:
    limits = InventoryLimits(max_hosts=100)
    assert len(parse_ansible_ini(_ini(100), "up", limits)) == 100
    with pytest.raises(InventoryError, match=r"^up:102: .*more than 100 hosts \(the limit\)"):
        parse_ansible_ini(_ini(101), "up", limits)
    with pytest.raises(InventoryError, match="more than 100 hosts"):
        parse_ansible_yaml(_yaml(101), "up", limits)
    with pytest.raises(InventoryError, match="more than 100 hosts"):
        parse_ssh_config(_ssh_config(101), "up", limits)


def test_listing_the_same_range_again_and_again_is_capped_by_entries() -> None:
    limits = InventoryLimits(max_hosts=1000, max_entries=5000)
    text = "".join(f"[g{i}]\nweb[0001:1000]\n" for i in range(6))
    with pytest.raises(InventoryError, match=r"^upload:12: .*more than 5000 host entries"):
        parse_ansible_ini(text, "upload", limits)


def test_a_huge_range_is_sized_before_it_is_expanded() -> None:
    assert host_pattern_size("web[0:99999999999999999999]x[a:c]") == 3 * 10**20
    with pytest.raises(InventoryError, match="expands to 100000000000000000000 hosts"):
        parse_ansible_ini("web[0:99999999999999999999]\n")
    with pytest.raises(InventoryError, match="host entries"):
        parse_ansible_ini("web[0:99999]\n", limits=InventoryLimits(max_entries=10))


def test_group_variables_copied_to_every_member_are_capped() -> None:
    group_vars = "".join(f"v{i}=x\n" for i in range(50))
    text = _ini(100) + "[web:vars]\n" + group_vars
    assert len(parse_ansible_ini(text, limits=InventoryLimits(max_values=100 * 51)).all_hosts())
    with pytest.raises(InventoryError, match="more than 4000 variables in total"):
        parse_ansible_ini(text, limits=InventoryLimits(max_values=4000)).all_hosts()


def test_groups_nested_too_deep_are_refused_not_a_recursion_error() -> None:
    chain = "".join(f"[g{i}:children]\ng{i + 1}\n" for i in range(MAX_GROUP_DEPTH + 5))
    text = chain + f"[g{MAX_GROUP_DEPTH + 5}]\nweb1\n"
    with pytest.raises(InventoryError, match=f"more than {MAX_GROUP_DEPTH} levels deep"):
        parse_ansible_ini(text).all_hosts()
    nested = "all:\n" + "".join(
        " " * (2 + 4 * i) + f"children:\n{' ' * (4 + 4 * i)}g{i}:\n" for i in range(400)
    )
    with pytest.raises(InventoryError, match=r"levels deep|nested too deeply"):
        parse_ansible_yaml(nested)


def test_yaml_alias_bombs_are_refused() -> None:
    lines = ["all:", "  vars:", "    a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        refs = ", ".join([f"*a{i - 1}"] * 10)
        lines.append(f"    a{i}: &a{i} [{refs}]")
    with pytest.raises(InventoryError, match="expands to more than 100000 values"):
        parse_ansible_yaml("\n".join(lines) + "\n")


def test_yaml_groups_reached_again_through_an_alias_are_walked_once() -> None:
    lines = ["all:", "  children:", "    g0: &g0 {hosts: {web1: {}, web2: {}}}"]
    for i in range(1, 40):
        lines.append(f"    g{i}: &g{i} {{children: {{a{i}: *g{i - 1}, b{i}: *g{i - 1}}}}}")
    inv = parse_ansible_yaml("\n".join(lines) + "\n")
    assert inv.host_names() == ["web1", "web2"]
    assert {"g0", "g39", "a1", "b39"} <= set(inv.host("web1").groups)
