"""``muster inventory list``: ansible-inventory's views, warnings, and error text kept whole."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from muster.cli.main import app

_ENV = {"COLUMNS": "200", "NO_COLOR": "1"}

INI = """\
lonely
[web]
web2 http_port=8080
web1
[prod:children]
web
"""


def _invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["inventory", "list", *args], env=_ENV)
    return result.exit_code, result.stdout, result.stderr


def test_error_messages_keep_square_brackets(tmp_path: Path) -> None:
    """Rich markup is not applied to user text: `[ghost:vars]` used to print as nothing."""
    ghost = tmp_path / "ghost.ini"
    ghost.write_text("[web]\nw1\n[ghost:vars]\nx=1\n")
    code, _, err = _invoke("-i", str(ghost), "all")
    assert code == 2
    assert "section [ghost:vars] not valid for undefined group 'ghost'" in err
    letters = tmp_path / "letters.ini"
    letters.write_text("[web]\nweb[1:b]\n")
    code, _, err = _invoke("-i", str(letters), "all")
    assert code == 2
    assert "use numbers ([01:10]) or letters ([a:f])" in err


def test_host_names_with_brackets_print_as_written(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts"
    inventory.write_text("[web]\nweb]x muster_labels=note=[bold]y\n")
    code, out, _ = _invoke("-i", str(inventory), "all")
    assert code == 0, out
    assert "web]x" in out
    assert "note=[bold]y" in out


def test_graph_matches_ansible_inventorys_drawing(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts"
    inventory.write_text(INI)
    code, out, _ = _invoke("-i", str(inventory), "--graph")
    assert code == 0
    assert out.splitlines() == [
        "@all:",
        "  |--@ungrouped:",
        "  |  |--lonely",
        "  |--@prod:",
        "  |  |--@web:",
        "  |  |  |--web2",
        "  |  |  |--web1",
    ]
    code, out, _ = _invoke("-i", str(inventory), "--graph", "web")
    assert out.splitlines() == ["@web:", "  |--web2", "  |--web1"]
    code, _, err = _invoke("-i", str(inventory), "--graph", "web2")
    assert code == 2
    assert "'web2' is not a group" in err


def test_host_and_list_views_are_ansible_json(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts"
    inventory.write_text(INI)
    code, out, _ = _invoke("-i", str(inventory), "--host", "web2")
    assert code == 0
    assert json.loads(out) == {"http_port": 8080}
    assert out.startswith('{\n    "http_port": 8080')  # four spaces, as Ansible
    code, out, _ = _invoke("-i", str(inventory), "--list")
    listing = json.loads(out)
    assert listing["all"] == {"children": ["ungrouped", "prod"]}
    assert listing["web"] == {"hosts": ["web2", "web1"]}
    assert listing["_meta"]["hostvars"] == {"web2": {"http_port": 8080}}
    code, _, err = _invoke("-i", str(inventory), "--host", "nosuch")
    assert code == 2
    assert "no host 'nosuch'" in err


def test_host_lists_and_several_sources(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts"
    inventory.write_text(INI)
    code, out, _ = _invoke("-i", "alpha,beta:2222,", "-i", str(inventory), "--json", "all[-1]")
    assert code == 0
    assert [h["name"] for h in json.loads(out)] == ["web1"]
    code, out, _ = _invoke("-i", "alpha,beta:2222,", "--json", "beta")
    assert [(h["name"], h["port"]) for h in json.loads(out)] == [("beta", 2222)]


def test_yaml_warnings_are_shown_not_swallowed(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  hosts:\n    a:\n  hostz:\n    b:\n")
    code, out, err = _invoke("-i", str(inventory), "--json", "all")
    assert code == 0
    assert [h["name"] for h in json.loads(out)] == ["a"]
    assert "skipping unexpected key 'hostz'" in err
    assert f"{inventory}:4" in err
