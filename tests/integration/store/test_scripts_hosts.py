"""Scripts keep every version; identical content adds none; hosts upsert by name."""

from __future__ import annotations

import pytest

from muster.domain.hosts import Host, TransportKind
from muster.domain.params import ParameterSpec
from muster.domain.scripts import Library, ScriptVersion
from muster.errors import ConflictError, NotFoundError


def _v(body: str, **kw) -> ScriptVersion:
    return ScriptVersion(name="deploy", shell="bash", body=body, **kw)


def test_identical_content_creates_no_version_and_changes_append(store):
    first = store.save_script(_v("echo 1"), description="d", tags=["a"], created_by="ann")
    assert first.created and first.version.number == 1
    again = store.save_script(_v("echo 1"))
    assert not again.created and again.version.number == 1
    second = store.save_script(_v("echo 2", timeout=10))
    assert second.created and second.version.number == 2
    assert second.version.content_hash != first.version.content_hash
    versions = store.list_versions(first.script.id)
    assert [v.number for v in versions] == [2, 1]  # newest first
    assert versions[1].body == "echo 1" and versions[1].created_by == "ann"
    assert store.get_script("deploy").latest_version == 2
    assert store.get_script(first.script.id).tags == ("a",)


def test_versions_round_trip_to_the_same_domain_hash(store):
    content = _v(
        "echo ${who}",
        parameters=(
            ParameterSpec("who", required=True),
            ParameterSpec("n", type="integer", default=3),
        ),
        libraries=(Library("lib", "f() { :; }"),),
        requires_approval=True,
        idempotent=True,
    )
    saved = store.save_script(content)
    back = store.get_version(saved.script.id, 1).domain()
    assert back.content_hash == content.content_hash
    assert back.parameters == content.parameters and back.libraries == content.libraries


def test_restore_makes_an_old_version_the_newest(store):
    s = store.save_script(_v("echo old")).script
    store.save_script(_v("echo new"))
    restored = store.restore_version(s.id, 1, created_by="bob")
    assert restored.created and restored.version.number == 3
    assert restored.version.body == "echo old"
    assert store.get_version(s.id, 2).body == "echo new"  # older versions untouched


def test_deleted_script_is_hidden_but_its_versions_stay_readable(store):
    s = store.save_script(_v("echo 1")).script
    store.delete_script(s.id)
    with pytest.raises(NotFoundError):
        store.get_script(s.id)
    assert store.get_version(s.id, 1).body == "echo 1"  # executions pin it
    assert store.list_scripts().total == 0
    revived = store.save_script(_v("echo 2"))
    assert revived.script.id == s.id and revived.version.number == 2


def test_list_scripts_filters_by_tag_and_search(store):
    store.save_script(ScriptVersion(name="a1", shell="sh", body=":"), tags=["x"])
    store.save_script(ScriptVersion(name="b2", shell="sh", body=":"), description="Backup")
    assert [s.name for s in store.list_scripts(tag="x").items] == ["a1"]
    assert [s.name for s in store.list_scripts(search="backup").items] == ["b2"]


def test_hosts_create_update_upsert_delete(store):
    h = store.create_host(
        Host(
            name="web1",
            address="10.0.0.1",
            transport=TransportKind.SSH,
            labels={"env": "prod"},
            groups=("web",),
            shells=("bash",),
        )
    )
    assert store.get_host("web1").to_host().labels == {"env": "prod"}
    with pytest.raises(ConflictError):
        store.create_host(Host(name="web1"))
    upd = store.update_host(h.id, port=2222, groups=["web", "edge"])
    assert upd.port == 2222 and upd.groups == ("web", "edge")
    created, updated = store.upsert_hosts([Host(name="web1", port=22), Host(name="db1")])
    assert created == ["db1"] and updated == ["web1"]
    with pytest.raises(ConflictError):
        store.upsert_hosts([Host(name="db1"), Host(name="new")], update_existing=False)
    assert [x.name for x in store.list_hosts()] == ["db1", "web1"]  # all or nothing
    store.delete_host(h.id)
    with pytest.raises(NotFoundError):
        store.get_host(h.id)
