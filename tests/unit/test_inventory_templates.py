"""Jinja2 in connection variables: rendered in the sandbox, failures name host and variable."""

from __future__ import annotations

import pytest

from muster.domain.inventory_formats import parse_ansible_ini
from muster.errors import InventoryError


def test_connection_variables_are_rendered_with_host_variables() -> None:
    inventory = parse_ansible_ini(
        "[web]\nw1 ansible_host='{{ inventory_hostname }}.{{ domain }}' "
        "ansible_port='{{ base + 1 }}'\n[web:vars]\ndomain='{{ dc }}.lan'\ndc=eu\nbase=2200\n"
    )
    host = inventory.host("w1")
    assert (host.address, host.port) == ("w1.eu.lan", 2201)
    # other variables are shown as written, as ansible-inventory shows them
    assert inventory.host_variables("w1")["domain"] == "{{ dc }}.lan"


def test_an_undefined_variable_names_the_host_and_the_variable() -> None:
    inventory = parse_ansible_ini("w1 ansible_user='{{ nobody }}'\n")
    with pytest.raises(InventoryError, match=r"host 'w1': variable 'ansible_user'.*nobody"):
        inventory.all_hosts()


def test_variables_that_refer_to_each_other_in_a_loop_are_an_error() -> None:
    inventory = parse_ansible_ini("w1 ansible_host='{{ a }}' a='{{ b }}' b='{{ a }}'\n")
    with pytest.raises(InventoryError, match="loop: ansible_host -> a -> b -> a"):
        inventory.all_hosts()


def test_the_sandbox_refuses_unsafe_attribute_access() -> None:
    inventory = parse_ansible_ini(
        "w1 ansible_host=\"{{ ''.__class__.__mro__[1].__subclasses__() }}\"\n"
    )
    with pytest.raises(InventoryError, match="cannot be rendered"):
        inventory.all_hosts()
