"""Users, tokens, sessions, approvals and the audit chain on real SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import text, update

from muster.domain.approvals import (
    ApprovalExpiredError,
    ApprovalStatus,
    open_request,
)
from muster.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from muster.security.audit import AuditKeys
from muster.security.passwords import Passwords
from muster.security.rbac import Permission
from muster.store.audit_store import use_audit_keys
from muster.store.security_ops import FREE_FAILURES
from muster.store.security_tables import api_tokens, audit_log
from muster.store.session_store import csrf_matches
from muster.store.sqlalchemy_store import SqlStore

P = Permission
PW = "plum-orbit-cactus-42"


@pytest.fixture(autouse=True)
def audit_key(engine) -> AuditKeys:
    """The audit key the database's stores chain with (``open_store`` loads it from the
    data directory; these tests build their stores on a bare engine)."""
    keys = AuditKeys(os.urandom(32))
    use_audit_keys(engine, keys)
    return keys


@pytest.fixture
def sec(engine, clock) -> Iterator[SqlStore]:
    s = SqlStore(engine, clock=clock)
    s.passwords = Passwords(time_cost=1, memory_cost=8, parallelism=1)
    yield s
    s.notifier.close()


# --- users and passwords -----------------------------------------------------


def test_bootstrap_admin_once(sec: SqlStore) -> None:
    pw = sec.bootstrap_admin()
    assert pw is not None and len(pw.reveal()) == 24
    admin = sec.get_user("admin")
    assert admin.roles == ("admin",) and admin.must_change_password
    assert sec.bootstrap_admin() is None
    who = sec.authenticate_password("admin", pw)
    assert who.permissions == frozenset(Permission)


def test_password_never_stored_in_clear(sec: SqlStore, engine) -> None:
    sec.create_user("ann", roles=["viewer"], password=PW)
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT password_hash FROM users")).scalar_one()
    assert stored.startswith("$argon2id$") and PW not in stored


def test_create_user_validates(sec: SqlStore) -> None:
    with pytest.raises(ValidationError) as info:
        sec.create_user("ann", roles=["viewer"], password="short")
    assert info.value.field == "password"
    with pytest.raises(ValidationError) as info:
        sec.create_user("ann", roles=["wizard"])
    assert info.value.field == "roles"
    sec.create_user("ann", roles=["viewer"])
    with pytest.raises(ConflictError):
        sec.create_user("ann", roles=["viewer"])


def test_login_throttling_and_reset(sec: SqlStore, clock) -> None:
    sec.create_user("ann", roles=["operator"], password=PW)
    for _ in range(FREE_FAILURES + 1):
        with pytest.raises(AuthenticationError):
            sec.authenticate_password("ann", "wrong-password-x")
    # locked now: even the right password is refused, with the same message
    with pytest.raises(AuthenticationError, match="invalid user name or password"):
        sec.authenticate_password("ann", PW)
    clock.advance(2)
    who = sec.authenticate_password("ann", PW)
    assert who.name == "ann" and who.can(P.JOBS_MANAGE) and who.via == "password"
    # counter reset: a fresh wrong attempt does not lock
    with pytest.raises(AuthenticationError):
        sec.authenticate_password("ann", "wrong-password-x")
    assert sec.authenticate_password("ann", PW).name == "ann"


def test_unknown_and_disabled_users_fail_alike(sec: SqlStore) -> None:
    sec.create_user("ann", roles=["viewer"], password=PW)
    sec.update_user("ann", disabled=True)
    for name in ("ann", "nobody"):
        with pytest.raises(AuthenticationError, match="invalid user name or password"):
            sec.authenticate_password(name, PW)


def test_weak_hash_is_upgraded_on_login(sec: SqlStore, engine) -> None:
    sec.create_user("ann", roles=["viewer"], password=PW)
    sec.passwords = Passwords(time_cost=2, memory_cost=16, parallelism=1)
    sec.authenticate_password("ann", PW)
    with engine.connect() as conn:
        assert "m=16,t=2" in conn.execute(text("SELECT password_hash FROM users")).scalar_one()


def test_custom_roles(sec: SqlStore) -> None:
    sec.create_role("auditor", ["audit.view", "jobs.view"])
    with pytest.raises(ConflictError):
        sec.create_role("auditor", ["jobs.view"])
    sec.create_user("ann", roles=["auditor"], password=PW)
    who = sec.authenticate_password("ann", PW)
    assert who.permissions == {P.AUDIT_VIEW, P.JOBS_VIEW}
    with pytest.raises(ConflictError, match="held by ann"):
        sec.delete_role("auditor")
    sec.update_user("ann", roles=["viewer"])
    sec.delete_role("auditor")
    with pytest.raises(NotFoundError):
        sec.delete_role("auditor")


# --- tokens ------------------------------------------------------------------


def test_token_roundtrip_narrowing_and_revocation(sec: SqlStore, engine) -> None:
    sec.create_user("ann", roles=["admin"], password=PW)
    issued, info = sec.create_token("ann", "ci", role="viewer")
    clear = issued.token.reveal()
    assert info.hint.startswith("mst_") and clear not in info.hint
    who = sec.authenticate_token(clear)
    assert who.via == "token" and who.token_role == "viewer"
    assert who.can(P.JOBS_VIEW) and not who.can(P.JOBS_MANAGE)
    with engine.connect() as conn:
        row = conn.execute(api_tokens.select()).mappings().one()
    assert clear not in str(dict(row)) and row["last_used_at"] is not None
    sec.revoke_token(info.id)
    with pytest.raises(AuthenticationError):
        sec.authenticate_token(clear)
    with pytest.raises(NotFoundError):
        sec.revoke_token(info.id)


def test_token_expiry_and_disabled_owner(sec: SqlStore, clock) -> None:
    sec.create_user("ann", roles=["operator"])
    issued, _ = sec.create_token("ann", "short", ttl=dt.timedelta(hours=1))
    assert sec.authenticate_token(issued.token).can(P.JOBS_MANAGE)
    sec.update_user("ann", disabled=True)
    with pytest.raises(AuthenticationError):
        sec.authenticate_token(issued.token)
    sec.update_user("ann", disabled=False)
    clock.advance(3600)
    with pytest.raises(AuthenticationError):
        sec.authenticate_token(issued.token)


def test_token_demoted_with_its_user(sec: SqlStore) -> None:
    sec.create_user("root", roles=["admin"])  # ann is not the last admin
    sec.create_user("ann", roles=["admin"])
    issued, _ = sec.create_token("ann", "ci")
    assert sec.authenticate_token(issued.token).can(P.CREDENTIALS_MANAGE)
    sec.update_user("ann", roles=["viewer"])
    assert not sec.authenticate_token(issued.token).can(P.CREDENTIALS_MANAGE)


# --- sessions ----------------------------------------------------------------


def test_sessions(sec: SqlStore, clock, engine) -> None:
    ann = sec.create_user("ann", roles=["approver"], password=PW)
    cookie, csrf = sec.create_session(ann.id, address="127.0.0.1")
    info = sec.get_session(cookie)
    assert info.principal.can(P.APPROVALS_DECIDE) and info.csrf_token == csrf
    assert csrf_matches(csrf, csrf) and not csrf_matches(csrf, None)
    assert not csrf_matches(csrf, csrf[:-1] + "x")
    with engine.connect() as conn:
        assert cookie.reveal() not in str(conn.execute(text("SELECT * FROM sessions")).all())
    sec.delete_session(cookie)
    with pytest.raises(AuthenticationError):
        sec.get_session(cookie)
    cookie, _ = sec.create_session(ann.id, ttl=dt.timedelta(minutes=5))
    clock.advance(301)
    with pytest.raises(AuthenticationError):
        sec.get_session(cookie)
    cookie, _ = sec.create_session(ann.id)
    sec.update_user("ann", disabled=True)
    with pytest.raises(AuthenticationError):
        sec.get_session(cookie)


# --- audit -------------------------------------------------------------------


def _audit_some(sec: SqlStore, n: int) -> None:
    for i in range(n):
        sec.record_audit(
            actor="ann",
            action="script.execute" if i % 2 else "user.create",
            target=f"x:{i}",
            address="10.1.2.3",
            details={"params": {"password": "hunter2", "n": i}, "note": "hunter2!"},
            secret_keys={"password"},
            secrets=["hunter2"],
        )


def test_audit_chain_verifies_and_masks(sec: SqlStore, engine) -> None:
    _audit_some(sec, 5)
    result = sec.verify_audit()
    assert result.ok and result.checked == 5 and result.head is not None
    with engine.connect() as conn:
        dump = str(conn.execute(audit_log.select()).all())
    assert "hunter2" not in dump


def test_audit_query(sec: SqlStore, clock) -> None:
    _audit_some(sec, 4)
    clock.advance(60)
    sec.record_audit(actor="bob", action="script.save", target="s:1")
    assert [r.actor for r in sec.list_audit(actor="bob").items] == ["bob"]
    assert sec.list_audit(action="script.*").total == 3
    assert sec.list_audit(action="user.create").total == 2
    since = clock.now - dt.timedelta(seconds=1)
    assert [r.seq for r in sec.list_audit(since=since).items] == [5]
    page = sec.list_audit(limit=2, offset=1)
    assert [r.seq for r in page.items] == [4, 3] and page.total == 5


def test_direct_database_edit_is_detected(sec: SqlStore, engine) -> None:
    _audit_some(sec, 6)
    with engine.begin() as conn:
        conn.execute(update(audit_log).where(audit_log.c.seq == 3).values(actor="mallory"))
    result = sec.verify_audit()
    assert not result.ok and result.first_bad_seq == 3 and "edited" in (result.problem or "")


def test_direct_database_delete_is_detected(sec: SqlStore, engine) -> None:
    _audit_some(sec, 6)
    with engine.begin() as conn:
        conn.execute(audit_log.delete().where(audit_log.c.seq == 4))
    result = sec.verify_audit()
    assert not result.ok and result.first_bad_seq == 4


def test_iter_audit_batches(sec: SqlStore) -> None:
    _audit_some(sec, 7)
    assert [r.seq for r in sec.iter_audit(batch=3)] == list(range(1, 8))


def test_concurrent_appends_keep_one_chain(engine, clock) -> None:
    stores = [SqlStore(engine, clock=clock) for _ in range(4)]
    errors: list[BaseException] = []

    def work(s: SqlStore, k: int) -> None:
        try:
            for i in range(10):
                s.record_audit(actor=f"w{k}", action="t", target=str(i))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s, k)) for k, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    result = stores[0].verify_audit()
    assert result.ok and result.checked == 40
    for s in stores:
        s.notifier.close()


# --- approvals ---------------------------------------------------------------


def _request(sec: SqlStore, clock, policy: str = "two_of_many", **kw):
    req = open_request(
        id=kw.pop("id", "r1"),
        subject="execution:e1",
        policy=policy,
        approvers=kw.pop("approvers", ["role:approver", "user:carl"]),
        requester="rita",
        now=clock.now,
        deadline=clock.now + dt.timedelta(minutes=30),
        **kw,
    )
    return sec.create_approval(req, content_hash="ab" * 32)


def test_approval_lifecycle(sec: SqlStore, clock) -> None:
    rec = _request(sec, clock)
    assert rec.request.status is ApprovalStatus.PENDING and rec.content_hash == "ab" * 32
    with pytest.raises(PermissionDeniedError):
        sec.decide_approval("r1", "rita", ["approver"], "approve")
    one = sec.decide_approval("r1", "amy", ["approver"], "approve", "looks fine")
    assert one.request.approvals == ("amy",)
    with pytest.raises(ConflictError):
        sec.decide_approval("r1", "amy", ["approver"], "approve")
    done = sec.decide_approval("r1", "carl", [], "approve")
    assert done.request.status is ApprovalStatus.APPROVED
    assert sec.get_approval("r1").request == done.request
    assert sec.list_approvals(status="pending").total == 0
    assert sec.list_approvals(status="approved").items[0].id == "r1"


def test_approval_deadline_is_durable(sec: SqlStore, clock) -> None:
    _request(sec, clock)
    clock.advance(31 * 60)
    with pytest.raises(ApprovalExpiredError):
        sec.decide_approval("r1", "carl", [], "approve")
    stored = sec.get_approval("r1").request
    assert stored.status is ApprovalStatus.EXPIRED and stored.reason == "deadline passed"
    assert stored.votes == ()


def test_expire_due_approvals(sec: SqlStore, clock) -> None:
    _request(sec, clock, id="r1")
    clock.advance(10 * 60)
    _request(sec, clock, id="r2")
    clock.advance(25 * 60)
    expired = sec.expire_due_approvals()
    assert [r.id for r in expired] == ["r1"]
    assert sec.get_approval("r2").request.status is ApprovalStatus.PENDING
    assert sec.expire_due_approvals() == []


def test_majority_electorate_survives_reload(sec: SqlStore, clock) -> None:
    _request(
        sec,
        clock,
        policy="majority",
        approvers=["role:ops"],
        role_members={"ops": ["a", "b", "c", "rita"]},
    )
    r = sec.get_approval("r1").request
    assert r.electorate == {"a", "b", "c"} and r.required == 2
    sec.decide_approval("r1", "a", [], "reject")
    assert sec.decide_approval("r1", "b", [], "reject").request.status is ApprovalStatus.REJECTED
