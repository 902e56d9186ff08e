"""muster against the real Ansible on a corpus of inventories and patterns.

For every inventory of the corpus, ``ansible-inventory --list`` and
``--graph`` (ansible-core 2.19, a test dependency) are compared with
muster's views, and every pattern's hosts (in order) with ``select``.
Every part agrees, or the case names the documented difference it shows
(docs/ansible-differences.md, read here so the list cannot drift): then
that part must really differ, so a fixed difference cannot stay listed.
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from muster.domain.inventory import Inventory
from muster.domain.inventory_views import dump_json, graph_view, host_view, list_view
from muster.domain.selectors import select
from muster.engine.inventory_files import load_inventories
from muster.errors import InventoryError, SelectorError
from tests.integration.ansible.corpus import CORPUS, Case
from tests.integration.ansible.oracle import AnsibleView, ask_ansible

DOC = Path(__file__).resolve().parents[3] / "docs" / "ansible-differences.md"


def documented_differences() -> set[str]:
    """The ids of the deliberate differences, from their ``### `id` `` headings."""
    return set(re.findall(r"^### `([a-z0-9-]+)`", DOC.read_text(), re.MULTILINE))


def _write(case: Case, root: Path) -> Path:
    workdir = root / case.name
    for name, text in case.files.items():
        path = workdir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    workdir.mkdir(parents=True, exist_ok=True)
    return workdir


def _sources(case: Case, workdir: Path) -> list[str]:
    return [str(workdir / s) if (workdir / s).exists() else s for s in case.sources]


@pytest.fixture(scope="module")
def ansible_views(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, AnsibleView]]:
    """Ansible's answers for the whole corpus, asked two inventories at a time."""
    root = tmp_path_factory.mktemp("ansible-corpus")

    def ask(case: Case) -> tuple[str, tuple[Path, AnsibleView]]:
        workdir = _write(case, root)
        return case.name, (
            workdir,
            ask_ansible(workdir, list(case.sources), list(case.patterns), graph=case.graph),
        )

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(ask, CORPUS))


def _normal(data: object) -> object:
    return json.loads(dump_json(data))


def test_the_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 20
    assert sum(len(c.patterns) for c in CORPUS) >= 120
    assert len({c.name for c in CORPUS}) == len(CORPUS)


def test_every_named_difference_is_documented() -> None:
    documented = documented_differences()
    assert documented, f"no differences found in {DOC}"
    named = {d for case in CORPUS for d, _ in case.differences}
    assert named <= documented, f"undocumented: {named - documented}"


@pytest.mark.parametrize("case", CORPUS, ids=[c.name for c in CORPUS])
def test_muster_reads_the_inventory_as_ansible_does(
    case: Case, ansible_views: dict[str, tuple[Path, AnsibleView]]
) -> None:
    workdir, ansible = ansible_views[case.name]
    differs = {part: d for d, part in case.differences}
    if case.refused is not None:
        assert ansible.refused, f"Ansible accepted {case.name}"
        with pytest.raises(InventoryError) as refused:
            load_inventories(_sources(case, workdir))
        assert case.refused in str(refused.value)
        return
    assert ansible.refused is None, ansible.refused
    if "load" in differs:  # Ansible reads it; muster refuses, on purpose
        with pytest.raises(InventoryError):
            load_inventories(_sources(case, workdir)).all_hosts()
        return
    inventory = load_inventories(_sources(case, workdir))
    mismatches: list[str] = []

    def compare(part: str, ours: object, theirs: object) -> None:
        if part in differs:
            if ours == theirs:
                mismatches.append(f"{part}: listed as {differs[part]!r} but agrees now")
        elif ours != theirs:
            mismatches.append(f"{part}:\n  muster:  {ours!r}\n  ansible: {theirs!r}")

    compare("list", _normal(list_view(inventory)), ansible.listing)
    if case.graph:
        compare("graph", graph_view(inventory), ansible.graph)
    for pattern in case.patterns:
        compare(pattern, _select(inventory, pattern), ansible.patterns[pattern])
    assert not mismatches, f"{case.name}:\n" + "\n".join(mismatches)


def _select(inventory: Inventory, pattern: str) -> list[str] | None:
    try:
        return [h.name for h in select(inventory, pattern)]
    except SelectorError:
        return None


@pytest.mark.parametrize(
    "case", [c for c in CORPUS if c.refused is None and not c.differences][:3], ids=str
)
def test_host_view_is_the_list_views_hostvars(
    case: Case, ansible_views: dict[str, tuple[Path, AnsibleView]]
) -> None:
    """``--host`` shows what ``--list`` shows under ``_meta.hostvars`` (as in Ansible,
    where both come from one function), so the list comparison covers it."""
    workdir, _ = ansible_views[case.name]
    inventory = load_inventories(_sources(case, workdir))
    hostvars = list_view(inventory)["_meta"]["hostvars"]  # type: ignore[index]
    for name in inventory.host_names():
        assert host_view(inventory, name) == hostvars.get(name, {})
