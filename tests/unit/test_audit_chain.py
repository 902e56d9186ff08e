from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from muster.domain.secret import Secret
from muster.errors import ValidationError
from muster.security.audit import (
    GENESIS,
    AuditRecord,
    canonical,
    chain_hash,
    next_record,
    verify_chain,
)

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


def chain(n: int) -> list[AuditRecord]:
    out: list[AuditRecord] = []
    prev = None
    for i in range(n):
        prev = next_record(
            prev,
            at=T0 + timedelta(seconds=i),
            actor=f"user{i % 3}",
            action="script.execute" if i % 2 else "script.save",
            target=f"script:{i}",
            address="10.0.0.1" if i % 2 else None,
            details={"i": i, "params": {"pw": "hunter2"}, "hash": "ab" * 32},
            secret_keys={"pw"},
        )
        out.append(prev)
    return out


def test_first_record_links_to_genesis_and_hash_is_recomputable() -> None:
    [first, second] = chain(2)
    assert (first.seq, first.prev_hash) == (1, GENESIS)
    assert second.prev_hash == first.hash and second.seq == 2
    assert first.hash == chain_hash(GENESIS, canonical(first.body()))
    assert len(first.hash) == 64


def test_details_are_masked_before_hashing() -> None:
    rec = next_record(
        None,
        at=T0,
        actor="ann",
        action="execution.create",
        target="execution:1",
        details={"params": {"token": "tok-123", "n": 1}, "echo": "tok-123 seen", "s": Secret("x")},
        secret_keys={"token"},
        secrets=["tok-123"],
    )
    assert rec.details == {"params": {"token": "***", "n": 1}, "echo": "*** seen", "s": "***"}
    assert "tok-123" not in canonical(rec.body()).decode()
    assert verify_chain([rec]).ok


def test_non_json_details_refused() -> None:
    with pytest.raises(ValidationError):
        next_record(None, at=T0, actor="a", action="x", target="t", details={"v": float("nan")})
    with pytest.raises(ValidationError):
        next_record(None, at=T0, actor="a", action="x", target="t", details={"v": object()})


def test_valid_chain_verifies_and_reports_head() -> None:
    records = chain(10)
    result = verify_chain(records)
    assert result.ok and result.checked == 10
    assert result.head == (10, records[-1].hash)
    assert verify_chain([]).ok


def test_naive_and_other_zone_timestamps_hash_the_same() -> None:
    [rec] = chain(1)
    naive = replace(rec, at=rec.at.replace(tzinfo=None))
    berlin = replace(rec, at=rec.at.astimezone(timezone(timedelta(hours=2))))
    assert verify_chain([naive]).ok and verify_chain([berlin]).ok


def test_verify_from_checkpoint() -> None:
    records = chain(6)
    assert verify_chain(records[3:], start=(3, records[2].hash)).ok
    bad = verify_chain(records[3:], start=(3, "f" * 64))
    assert not bad.ok and bad.first_bad_seq == 4


def test_anchor_catches_truncation_of_the_newest_records() -> None:
    records = chain(5)
    anchor = verify_chain(records).head
    assert verify_chain(records[:3]).ok  # a truncated chain is still a chain...
    result = verify_chain(records[:3], expect_head=anchor)
    assert not result.ok and result.first_bad_seq == 4  # ...the anchor tells
    assert "newest records" in (result.problem or "")
    assert verify_chain(records, expect_head=anchor).ok


def test_removed_first_record_detected() -> None:
    result = verify_chain(chain(3)[1:])
    assert not result.ok and result.first_bad_seq == 1


def test_renumbered_chain_after_removal_detected() -> None:
    records = chain(4)
    # remove record 2 and renumber 3,4 -> 2,3 to hide the gap
    forged = [records[0], replace(records[2], seq=2), replace(records[3], seq=3)]
    result = verify_chain(forged)
    assert not result.ok and result.first_bad_seq == 2


_FIELDS: dict[str, Any] = {
    "seq": lambda r: r.seq + 7,
    "at": lambda r: r.at + timedelta(microseconds=1),
    "actor": lambda r: r.actor + "x",
    "action": lambda r: "audit.delete",
    "target": lambda r: r.target + "0",
    "address": lambda r: "192.0.2.9",
    "details": lambda r: {**r.details, "i": -1},
    "prev_hash": lambda r: "0" * 63 + "1",
    "hash": lambda r: "f" * 64,
}


@given(
    n=st.integers(1, 12),
    data=st.data(),
    field=st.sampled_from(sorted(_FIELDS)),
)
def test_any_single_field_edit_is_detected(n: int, data: st.DataObject, field: str) -> None:
    records = chain(n)
    i = data.draw(st.integers(0, n - 1))
    edited = replace(records[i], **{field: _FIELDS[field](records[i])})
    records[i] = edited
    result = verify_chain(records)
    assert not result.ok
    assert result.first_bad_seq == i + 1
    assert result.checked == i


@given(n=st.integers(2, 12), data=st.data())
def test_any_deletion_but_the_newest_is_detected(n: int, data: st.DataObject) -> None:
    records = chain(n)
    i = data.draw(st.integers(0, n - 2))
    del records[i]
    result = verify_chain(records)
    assert not result.ok and result.first_bad_seq == i + 1


@given(n=st.integers(2, 12), data=st.data())
def test_any_swap_is_detected(n: int, data: st.DataObject) -> None:
    records = chain(n)
    i = data.draw(st.integers(0, n - 2))
    j = data.draw(st.integers(i + 1, n - 1))
    records[i], records[j] = records[j], records[i]
    result = verify_chain(records)
    assert not result.ok and result.first_bad_seq == i + 1


@given(n=st.integers(1, 12), data=st.data())
def test_deleting_the_newest_is_detected_with_an_anchor(n: int, data: st.DataObject) -> None:
    records = chain(n)
    anchor = verify_chain(records).head
    k = data.draw(st.integers(1, n))
    assert not verify_chain(records[:-k], expect_head=anchor).ok
