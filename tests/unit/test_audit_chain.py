from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from muster.domain.secret import Secret
from muster.errors import ValidationError
from muster.security.audit import (
    GENESIS,
    SWITCH_ACTION,
    AuditKeyError,
    AuditKeys,
    AuditRecord,
    canonical,
    chain_hash,
    keyed_hash,
    load_audit_keys,
    next_record,
    verify_chain,
)

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
KEYS = AuditKeys(b"k" * 32)


def chain(n: int, keys: AuditKeys = KEYS) -> list[AuditRecord]:
    out: list[AuditRecord] = []
    prev = None
    for i in range(n):
        prev = next_record(
            prev,
            keys=keys,
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


def sha256_rebuild(records: list[AuditRecord], *, drop_key_id: bool) -> list[AuditRecord]:
    """What someone with write access to the database but not the key can do: relink
    every record with plain SHA-256 (the legacy formula), as unkeyed records or not."""
    out: list[AuditRecord] = []
    prev = GENESIS
    for rec in records:
        draft = replace(rec, prev_hash=prev, key_id=None if drop_key_id else rec.key_id)
        draft = replace(draft, hash=chain_hash(prev, canonical(draft.body())))
        out.append(draft)
        prev = draft.hash
    return out


def legacy_chain(n: int) -> list[AuditRecord]:
    """Records as a server from before keyed audit wrote them."""
    return sha256_rebuild(chain(n), drop_key_id=True)


def test_first_record_links_to_genesis_and_hash_is_an_hmac() -> None:
    [first, second] = chain(2)
    assert (first.seq, first.prev_hash, first.key_id) == (1, GENESIS, KEYS.key_id)
    assert second.prev_hash == first.hash and second.seq == 2
    assert first.hash == keyed_hash(b"k" * 32, GENESIS, canonical(first.body()))
    assert first.hash != chain_hash(GENESIS, canonical(first.body()))
    assert len(first.hash) == 64 and "key_id" in first.body()


def test_chain_rebuilt_with_plain_sha256_fails_at_the_first_record() -> None:
    records = chain(6)
    records[2] = replace(records[2], actor="mallory")
    for drop in (False, True):
        forged = sha256_rebuild(records, drop_key_id=drop)
        # Without the key this rebuild verified before keyed audit; now it never does.
        result = verify_chain(forged, KEYS)
        assert not result.ok, drop
        if drop:
            assert "unkeyed" in (result.problem or "") and result.checked == 6
        else:
            assert result.first_bad_seq == 1 and "HMAC" in (result.problem or "")


def test_chain_rebuilt_under_another_key_fails() -> None:
    forged = chain(4, AuditKeys(b"m" * 32))
    result = verify_chain(forged, KEYS)
    assert not result.ok and result.first_bad_seq == 1
    assert "not configured" in (result.problem or "")
    same_id = [replace(r, key_id=KEYS.key_id) for r in forged]
    result = verify_chain(same_id, KEYS)
    assert not result.ok and result.first_bad_seq == 1 and "HMAC" in (result.problem or "")


def test_older_keys_still_verify_their_records() -> None:
    old = AuditKeys(b"o" * 32)
    first = chain(2, old)
    rotated = AuditKeys(b"n" * 32, [b"o" * 32])
    nxt = next_record(first[-1], keys=rotated, at=T0, actor="a", action="x", target="t")
    assert nxt.key_id == rotated.key_id != old.key_id
    assert verify_chain([*first, nxt], rotated).ok
    result = verify_chain([*first, nxt], AuditKeys(b"n" * 32))
    assert not result.ok and result.first_bad_seq == 1


def test_no_key_configured_names_the_first_keyed_record() -> None:
    result = verify_chain(chain(3), None)
    assert not result.ok and result.first_bad_seq == 1
    assert KEYS.key_id in (result.problem or "") and "MUSTER_AUDIT_KEY" in (result.problem or "")


def _switch(prev: AuditRecord, n: int) -> AuditRecord:
    return next_record(
        prev, keys=KEYS, at=T0, actor="muster", action=SWITCH_ACTION, target="audit",
        details={"legacy_records": n},
    )  # fmt: skip


def test_legacy_records_verify_up_to_the_switch_record() -> None:
    old = legacy_chain(4)
    switch = _switch(old[-1], 4)
    after = next_record(switch, keys=KEYS, at=T0, actor="a", action="script.save", target="s")
    result = verify_chain([*old, switch, after], KEYS)
    assert result.ok and result.checked == 6 and result.legacy == 4
    # A legacy database not yet upgraded verifies as what it is, without a key...
    assert verify_chain(old, None).ok
    # ...but with a key configured, a chain of only unkeyed records is a rewrite.
    only_legacy = verify_chain(old, KEYS)
    assert not only_legacy.ok and "seal-legacy" in (only_legacy.problem or "")


def test_legacy_prefix_cannot_be_edited_under_the_switch() -> None:
    old = legacy_chain(4)
    switch = _switch(old[-1], 4)
    forged = sha256_rebuild(
        [old[0], replace(old[1], actor="mallory"), old[2], old[3]], drop_key_id=True
    )
    result = verify_chain([*forged, switch], KEYS)
    assert not result.ok and result.first_bad_seq == 5
    assert "prev_hash" in (result.problem or "")


def test_keyed_record_after_legacy_ones_must_be_the_switch() -> None:
    old = legacy_chain(3)
    plain = next_record(old[-1], keys=KEYS, at=T0, actor="a", action="script.save", target="s")
    result = verify_chain([*old, plain], KEYS)
    assert not result.ok and result.first_bad_seq == 4 and SWITCH_ACTION in (result.problem or "")


def test_unkeyed_record_after_keyed_ones_is_refused() -> None:
    records = chain(3)
    tail = sha256_rebuild(records, drop_key_id=True)[2]
    tail = replace(tail, prev_hash=records[1].hash)
    tail = replace(tail, hash=chain_hash(tail.prev_hash, canonical(tail.body())))
    result = verify_chain([*records[:2], tail], KEYS)
    assert not result.ok and result.first_bad_seq == 3 and "unkeyed" in (result.problem or "")


def test_anchor_catches_a_rewrite_by_someone_holding_the_key() -> None:
    records = chain(6)
    anchor = (4, records[3].hash)
    assert verify_chain(records, KEYS, anchors=[anchor]).anchors == 1
    edited = list(records)
    edited[1] = replace(edited[1], actor="mallory")
    prev: AuditRecord | None = edited[0]
    rewritten = [edited[0]]
    for rec in edited[1:]:
        prev = next_record(
            prev, keys=KEYS, at=rec.at, actor=rec.actor, action=rec.action,
            target=rec.target, address=rec.address, details=rec.details,
        )  # fmt: skip
        rewritten.append(prev)
    assert verify_chain(rewritten, KEYS).ok  # the key holder's rewrite is a valid chain...
    result = verify_chain(rewritten, KEYS, anchors=[anchor])
    assert not result.ok and result.first_bad_seq == 4  # ...the anchor names where it differs
    assert "anchor" in (result.problem or "")


def test_load_audit_keys_creates_a_private_file_once(tmp_path: Path) -> None:
    path = tmp_path / "data" / "audit.key"
    assert load_audit_keys("", path, create=False) == (None, False)
    keys, created = load_audit_keys("", path, create=True)
    assert created and keys is not None and path.stat().st_mode & 0o777 == 0o600
    again, created = load_audit_keys("", path, create=True)
    assert not created and again is not None and again.key_id == keys.key_id
    assert keys.key_id in repr(keys) and path.read_text().strip() not in repr(keys)
    path.chmod(0o644)
    with pytest.raises(AuditKeyError, match="chmod 600"):
        load_audit_keys("", path, create=True)


def test_load_audit_keys_from_the_environment(tmp_path: Path) -> None:
    import base64

    text = base64.urlsafe_b64encode(os.urandom(32)).decode()
    keys, created = load_audit_keys(text, tmp_path / "audit.key", create=True)
    assert keys is not None and not created and not (tmp_path / "audit.key").exists()
    with pytest.raises(AuditKeyError, match="MUSTER_AUDIT_KEY"):
        load_audit_keys("not-a-key", tmp_path / "audit.key", create=True)


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
        keys=KEYS,
    )
    assert rec.details == {"params": {"token": "***", "n": 1}, "echo": "*** seen", "s": "***"}
    assert "tok-123" not in canonical(rec.body()).decode()
    assert verify_chain([rec], KEYS).ok


def test_non_json_details_refused() -> None:
    for bad in (float("nan"), object()):
        with pytest.raises(ValidationError):
            next_record(
                None, keys=KEYS, at=T0, actor="a", action="x", target="t", details={"v": bad}
            )


def test_valid_chain_verifies_and_reports_head() -> None:
    records = chain(10)
    result = verify_chain(records, KEYS)
    assert result.ok and result.checked == 10 and result.legacy == 0
    assert result.head == (10, records[-1].hash)
    assert verify_chain([], KEYS).ok


def test_naive_and_other_zone_timestamps_hash_the_same() -> None:
    [rec] = chain(1)
    naive = replace(rec, at=rec.at.replace(tzinfo=None))
    berlin = replace(rec, at=rec.at.astimezone(timezone(timedelta(hours=2))))
    assert verify_chain([naive], KEYS).ok and verify_chain([berlin], KEYS).ok


def test_verify_from_checkpoint() -> None:
    records = chain(6)
    assert verify_chain(records[3:], KEYS, start=(3, records[2].hash)).ok
    bad = verify_chain(records[3:], KEYS, start=(3, "f" * 64))
    assert not bad.ok and bad.first_bad_seq == 4


def test_anchor_catches_truncation_of_the_newest_records() -> None:
    records = chain(5)
    anchor = verify_chain(records, KEYS).head
    assert anchor is not None
    assert verify_chain(records[:3], KEYS).ok  # a truncated chain is still a chain...
    result = verify_chain(records[:3], KEYS, anchors=[anchor])
    assert not result.ok and result.first_bad_seq == 4  # ...the anchor tells
    assert "newest records" in (result.problem or "")
    assert verify_chain(records, KEYS, anchors=[anchor]).ok
    # The chain grows past its anchor: still fine, the anchored record is there.
    more = chain(8)
    assert more[4] == records[4] and verify_chain(more, KEYS, anchors=[anchor]).anchors == 1


def test_removed_first_record_detected() -> None:
    result = verify_chain(chain(3)[1:], KEYS)
    assert not result.ok and result.first_bad_seq == 1


def test_renumbered_chain_after_removal_detected() -> None:
    records = chain(4)
    # remove record 2 and renumber 3,4 -> 2,3 to hide the gap
    forged = [records[0], replace(records[2], seq=2), replace(records[3], seq=3)]
    result = verify_chain(forged, KEYS)
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
    "key_id": lambda r: None,
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
    result = verify_chain(records, KEYS)
    assert not result.ok
    assert result.first_bad_seq == i + 1
    assert result.checked == i


@given(n=st.integers(2, 12), data=st.data())
def test_any_deletion_but_the_newest_is_detected(n: int, data: st.DataObject) -> None:
    records = chain(n)
    i = data.draw(st.integers(0, n - 2))
    del records[i]
    result = verify_chain(records, KEYS)
    assert not result.ok and result.first_bad_seq == i + 1


@given(n=st.integers(2, 12), data=st.data())
def test_any_swap_is_detected(n: int, data: st.DataObject) -> None:
    records = chain(n)
    i = data.draw(st.integers(0, n - 2))
    j = data.draw(st.integers(i + 1, n - 1))
    records[i], records[j] = records[j], records[i]
    result = verify_chain(records, KEYS)
    assert not result.ok and result.first_bad_seq == i + 1


@given(n=st.integers(1, 12), data=st.data())
def test_deleting_the_newest_is_detected_with_an_anchor(n: int, data: st.DataObject) -> None:
    records = chain(n)
    anchor = verify_chain(records, KEYS).head
    assert anchor is not None
    k = data.draw(st.integers(1, n))
    assert not verify_chain(records[:-k], KEYS, anchors=[anchor]).ok
