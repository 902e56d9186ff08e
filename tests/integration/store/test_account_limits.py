"""Login limits, password changes and the last admin in the store, on real SQLite
and PostgreSQL: what one address can and cannot do to an account, what a password
change ends, and that no change leaves the server without an admin."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from muster.errors import (
    AuthenticationError,
    ConflictError,
    LoginFailedError,
    TooManyAttemptsError,
)
from muster.security.passwords import Passwords
from muster.store import login_limits as limits
from muster.store.security_tables import login_limits, users
from muster.store.sqlalchemy_store import SqlStore

PW = "plum-orbit-cactus-42"
WRONG = "wrong-password-x1"


@pytest.fixture
def sec(engine, clock) -> Iterator[SqlStore]:
    s = SqlStore(engine, clock=clock)
    s.passwords = Passwords(time_cost=1, memory_cost=8, parallelism=1)
    yield s
    s.notifier.close()


def fail(sec: SqlStore, name: str, address: str, password: str = WRONG) -> Exception:
    with pytest.raises(AuthenticationError) as info:
        sec.authenticate_password(name, password, address=address)
    return info.value


# --- login limits ------------------------------------------------------------------


def test_a_pair_locks_after_its_free_failures_and_doubles(sec: SqlStore, clock) -> None:
    sec.create_user("ann", roles=["viewer"], password=PW)
    counts = [fail(sec, "ann", "10.0.0.1").attempts for _ in range(limits.PAIR_FREE + 1)]
    assert counts == list(range(1, limits.PAIR_FREE + 2))
    # locked (1 s): the right password is refused with the same message and counted
    err = fail(sec, "ann", "10.0.0.1", PW)
    assert isinstance(err, LoginFailedError) and str(err) == "invalid user name or password"
    clock.advance(1.5)  # the refused attempt extended the lock to 2 s
    fail(sec, "ann", "10.0.0.1", PW)
    clock.advance(4)
    assert sec.authenticate_password("ann", PW, address="10.0.0.1").name == "ann"
    # a success forgets the pair: the next failure is the first again
    assert fail(sec, "ann", "10.0.0.1").attempts == 1


def test_unknown_names_are_counted_and_locked_alike(sec: SqlStore) -> None:
    sec.create_user("ann", roles=["viewer"], password=PW)
    known = [fail(sec, "ann", "10.0.0.2").attempts for _ in range(limits.PAIR_FREE + 3)]
    unknown = [fail(sec, "nobody", "10.0.0.3").attempts for _ in range(limits.PAIR_FREE + 3)]
    assert known == unknown


def test_one_address_cannot_lock_the_account_for_others(sec: SqlStore, clock) -> None:
    sec.create_user("admin2", roles=["admin"], password=PW)
    for _ in range(limits.ADDRESS_FREE + 10):
        fail(sec, "admin2", "10.6.6.6")
    with sec.engine.connect() as conn:
        row = conn.execute(select(users).where(users.c.name == "admin2")).mappings().one()
    assert row["failed_logins"] == 1 and row["locked_until"] is None
    assert sec.authenticate_password("admin2", PW, address="10.0.0.9").name == "admin2"


def test_a_paused_address_is_told_to_wait_before_any_hashing(sec: SqlStore) -> None:
    sec.create_user("ann", roles=["viewer"], password=PW)
    for i in range(limits.ADDRESS_FREE + 1):
        fail(sec, f"user{i}", "10.0.0.4")
    hashed: list[str] = []
    real_verify = sec.passwords.verify
    sec.passwords.verify = lambda h, p: hashed.append(h) or real_verify(h, p)  # type: ignore[method-assign]
    err = fail(sec, "ann", "10.0.0.4", PW)
    assert isinstance(err, TooManyAttemptsError) and err.retry_after >= 1
    assert hashed == [], "a paused address still made the server hash a password"
    assert sec.authenticate_password("ann", PW, address="10.0.0.5").name == "ann"


def test_many_addresses_lock_the_account(sec: SqlStore, clock) -> None:
    sec.create_user("ann", roles=["viewer"], password=PW)
    for i in range(limits.ACCOUNT_FREE_ADDRESSES + 1):
        fail(sec, "ann", f"10.1.0.{i}")
    # a fresh address with the right password: the account itself is locked now
    fail(sec, "ann", "10.2.0.1", PW)
    clock.advance(limits.MAX_LOCK.total_seconds())
    assert sec.authenticate_password("ann", PW, address="10.2.0.1").name == "ann"


def test_a_quiet_window_starts_over(sec: SqlStore, clock) -> None:
    for _ in range(3):
        fail(sec, "ann", "10.0.0.7")
    clock.advance(limits.QUIET.total_seconds() + 1)
    assert fail(sec, "ann", "10.0.0.7").attempts == 1


def test_concurrent_failures_are_all_counted_and_lock(sec: SqlStore, engine) -> None:
    sec.create_user("ann", roles=["viewer"], password=PW)
    n = limits.ADDRESS_FREE  # all within the address's allowance: only the pair decides
    together = threading.Barrier(n)

    def attempt(_: int) -> int:
        together.wait(timeout=30)
        try:
            sec.authenticate_password("ann", WRONG, address="10.0.0.8")
        except LoginFailedError as exc:
            return exc.attempts
        except TooManyAttemptsError:
            return -1
        return 0

    with ThreadPoolExecutor(n) as pool:
        seen = list(pool.map(attempt, range(n)))
    assert sorted(seen) == list(range(1, n + 1)), "a count was lost or repeated"
    with engine.connect() as conn:
        pair = (
            conn.execute(select(login_limits).where(login_limits.c.user_name == "ann"))
            .mappings()
            .one()
        )
    assert pair["attempts"] == n and pair["locked_until"] is not None
    with pytest.raises(LoginFailedError):
        sec.authenticate_password("ann", PW, address="10.0.0.8")


# --- password changes ----------------------------------------------------------------


def test_password_change_ends_other_sessions_keeps_one(sec: SqlStore) -> None:
    ann = sec.create_user("ann", roles=["viewer"], password=PW)
    mine, _ = sec.create_session(ann.id)
    other, _ = sec.create_session(ann.id)
    issued, _ = sec.create_token("ann", "ci")
    change = sec.change_user("ann", password="new-" + PW, keep_session=mine)
    assert (change.sessions_ended, change.tokens_revoked) == (1, 0)
    assert sec.get_session(mine).principal.name == "ann"
    with pytest.raises(AuthenticationError):
        sec.get_session(other)
    assert sec.authenticate_token(issued.token).name == "ann"
    change = sec.change_user("ann", password="newer-" + PW, revoke_tokens=True)
    assert (change.sessions_ended, change.tokens_revoked) == (1, 1)
    with pytest.raises(AuthenticationError):
        sec.authenticate_token(issued.token)


def test_changing_the_password_clears_must_change(sec: SqlStore) -> None:
    sec.create_user("ann", roles=["viewer"], password=PW, must_change_password=True)
    assert sec.authenticate_password("ann", PW).must_change_password
    sec.change_user("ann", password="new-" + PW)
    assert not sec.authenticate_password("ann", "new-" + PW).must_change_password


# --- the last admin ---------------------------------------------------------------------


def test_the_last_admin_stays(sec: SqlStore) -> None:
    sec.create_user("root", roles=["admin"])
    sec.create_user("ann", roles=["viewer"])
    with pytest.raises(ConflictError, match="last enabled admin"):
        sec.update_user("root", roles=["viewer"])
    with pytest.raises(ConflictError, match="last enabled admin"):
        sec.update_user("root", disabled=True)
    assert sec.get_user("root").roles == ("admin",) and not sec.get_user("root").disabled
    # an admin by custom role counts as one
    sec.create_role("superuser", ["admin"])
    sec.update_user("ann", roles=["superuser"])
    sec.update_user("root", roles=["viewer"])
    with pytest.raises(ConflictError):
        sec.update_user("ann", roles=["viewer"])
    assert sec.count_admins() == 1


def _demote_together(sec: SqlStore, names: list[str]) -> list[str]:
    together = threading.Barrier(len(names))

    def demote(name: str) -> str:
        together.wait(timeout=30)
        try:
            sec.update_user(name, roles=["viewer"])
        except ConflictError:
            return "refused"
        return "done"

    with ThreadPoolExecutor(len(names)) as pool:
        return sorted(pool.map(demote, names))


def test_concurrent_demotions_cannot_both_win(sec: SqlStore) -> None:
    for round_no in range(6):
        names = [f"r{round_no}a", f"r{round_no}b"]
        for name in names:
            sec.create_user(name, roles=["admin"])
        for u in sec.list_users():
            if u.name not in names and "admin" in u.roles:
                sec.update_user(u.name, roles=["viewer"])
        assert _demote_together(sec, names) == ["done", "refused"]
        assert sec.count_admins() == 1
