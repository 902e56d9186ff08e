"""The rollout report document as data: its checks, masking, hash and host view."""

from __future__ import annotations

from typing import Any

import pytest

from muster.domain.rollout_report import (
    REPORT_FORMAT,
    check_document,
    document_hash,
    host_entries,
    mask_document,
    summarize,
)
from muster.errors import ValidationError


def _doc(**extra: Any) -> dict[str, Any]:
    return {
        "id": "r1",
        "workflow": "patch",
        "status": "running",
        "started_at": "2026-01-04T01:00:00+00:00",
        "waves": [
            {"index": 0, "hosts": ["a"], "status": "succeeded", "failed_hosts": {}},
            {
                "index": 1,
                "hosts": ["b", "c"],
                "status": "running",
                "failed_hosts": {"c": {"reason": "command_failed", "step": "up", "detail": ""}},
            },
            {"index": 2, "hosts": ["d"], "status": "not_run", "failed_hosts": {}},
        ],
        "rollback": {"a": {"state": "unreachable", "message": "no route"}},
        "flagged_hosts": ["a"],
        "verification_results": {
            "v": {"a": {"passed": True, "drift": ["motd"]}, "c": {"passed": False, "drift": []}}
        },
        **extra,
    }


def test_host_entries_give_each_host_its_state_reason_and_evidence() -> None:
    hosts = host_entries(_doc())
    assert {h: e["state"] for h, e in hosts.items()} == {
        "a": "rollback_failed",
        "b": "running",
        "c": "failed",
        "d": "not_run",
    }
    assert hosts["a"]["reason"] == "no route" and hosts["a"]["flagged"] is True
    assert hosts["a"]["drift"] == ["motd"] and hosts["a"]["passed"] is True
    assert hosts["c"]["reason"] == "command_failed at up" and hosts["c"]["passed"] is False
    assert hosts["b"]["evidence"] == [] and hosts["b"]["rollback"] is None
    assert hosts["d"]["wave"] == 2


def test_masking_reaches_every_string_and_key_longest_secret_first() -> None:
    doc = _doc(
        message="pw hunter2-long and hunter2",
        parameters={"token": "tok-123", "n": 3},
        secret_parameters=["token"],
        nested={"hunter2": ["x tok-123 y", 7, None, True]},
    )
    out = mask_document(doc, ["hunter2", "hunter2-long", ""])
    assert out["message"] == "pw *** and ***"
    assert out["parameters"] == {"token": "***", "n": 3}
    assert out["nested"] == {"***": ["x *** y", 7, None, True]}
    assert doc["message"].startswith("pw hunter2"), "the input is not changed"
    # An already masked parameter is not a secret to look for.
    assert (
        mask_document({"parameters": {"t": "***"}, "secret_parameters": ["t"], "m": "Kioq"})["m"]
        == "Kioq"
    )


def test_the_hash_is_of_content_not_of_key_order() -> None:
    a = {"id": "x", "waves": [], "z": 1}
    b = {"z": 1, "waves": [], "id": "x"}
    assert document_hash(a) == document_hash(b) != document_hash({**a, "z": 2})


@pytest.mark.parametrize(
    ("doc", "field", "words"),
    [
        ([], "document", "JSON object"),
        ({**_doc(), "format": "other/9"}, "format", "unknown rollout report format"),
        ({**_doc(), "id": 5}, "id", "the rollout's id"),
        ({**_doc(), "id": "a b"}, "id", "letters, digits"),
        ({**_doc(), "id": "x" * 129}, "id", "1-128"),
        ({**_doc(), "workflow": None}, "workflow", "workflow's name"),
        ({**_doc(), "status": 1}, "status", "status"),
        ({**_doc(), "waves": {}}, "waves", "a list of waves"),
        ({**_doc(), "waves": [{"hosts": "a"}]}, "waves", r"waves\[0\] must be an object"),
        ({**_doc(), "rollback": []}, "rollback", "must be an object"),
    ],
)
def test_a_malformed_document_is_refused_naming_the_key(doc: Any, field: str, words: str) -> None:
    with pytest.raises(ValidationError, match=words) as caught:
        check_document(doc)
    assert caught.value.field == field


def test_summary_counts_hosts_and_flags() -> None:
    doc = check_document({**_doc(), "format": REPORT_FORMAT})
    s = summarize(doc)
    assert (s.id, s.workflow, s.status, s.hosts, s.flagged) == ("r1", "patch", "running", 4, 1)
    assert s.started_at == "2026-01-04T01:00:00+00:00" and s.finished_at is None
    assert summarize({**_doc(), "flagged_hosts": None}).flagged == 0
