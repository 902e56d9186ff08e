"""Published rollout reports: the store contract on SQLite, PostgreSQL and InMemoryStore.

The document is a real rollout's report (tests/support/rollout_sample.py runs the
in-process engine on local hosts), stored whole and read back equal.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from muster.domain.rollout_report import document_hash, summarize
from muster.errors import ConflictError, NotFoundError
from muster.store.base import Store
from muster.testing import FakeClock
from tests.support.rollout_sample import SECRET, sample_report


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return sample_report(tmp_path_factory.mktemp("rollout"))


def _publish(store: Store, doc: dict[str, Any], by: str | None = "ada") -> Any:
    return store.publish_rollout_report(
        summarize(doc), doc, content_hash=document_hash(doc), published_by=by
    )


def test_a_published_report_reads_back_whole(store: Store, report: dict[str, Any]) -> None:
    out = _publish(store, report)
    assert out.created
    rec = store.get_rollout_report(report["id"])
    assert (rec.id, rec.workflow, rec.status) == (report["id"], "patch_openssl", "rollback_failed")
    assert (rec.hosts, rec.flagged, rec.published_by) == (4, 1, "ada")
    assert rec.content_hash == document_hash(report)
    assert rec.started_at is not None and rec.started_at.tzinfo is not None
    assert rec.started_at.isoformat() == report["started_at"]
    assert store.rollout_report_document(report["id"]) == report
    assert SECRET not in str(store.rollout_report_document(report["id"]))


def test_publishing_the_same_report_again_changes_nothing(
    store: Store, report: dict[str, Any], clock: FakeClock
) -> None:
    first = _publish(store, report)
    clock.advance(60)
    again = _publish(store, report, by="bob")
    assert not again.created
    assert again.record == first.record
    assert store.get_rollout_report(report["id"]).published_by == "ada"
    assert len(store.list_rollout_reports()) == 1


def test_other_content_under_a_published_id_conflicts(store: Store, report: dict[str, Any]) -> None:
    _publish(store, report)
    changed = {**report, "status": "succeeded"}
    with pytest.raises(ConflictError, match="already published with other content"):
        _publish(store, changed)
    assert store.rollout_report_document(report["id"])["status"] == "rollback_failed"


def test_reports_list_newest_first_within_the_limit(
    store: Store, report: dict[str, Any], clock: FakeClock
) -> None:
    for n in range(3):
        _publish(store, {**report, "id": f"r{n}"})
        clock.advance(1)
    assert [r.id for r in store.list_rollout_reports()] == ["r2", "r1", "r0"]
    assert [r.id for r in store.list_rollout_reports(limit=2)] == ["r2", "r1"]
    assert store.list_rollout_reports()[0].published_at > dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def test_a_missing_report_is_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError, match="no rollout report nope"):
        store.get_rollout_report("nope")
    with pytest.raises(NotFoundError, match="no rollout report nope"):
        store.rollout_report_document("nope")


def test_the_stored_document_is_a_copy(store: Store, report: dict[str, Any]) -> None:
    doc = {**report, "id": "copy", "waves": [dict(w) for w in report["waves"]]}
    _publish(store, doc)
    doc["waves"][0]["status"] = "changed later"
    got = store.rollout_report_document("copy")
    got["status"] = "changed by a reader"
    stored = store.rollout_report_document("copy")
    assert stored["waves"][0]["status"] == report["waves"][0]["status"]
    assert stored["status"] == report["status"]
