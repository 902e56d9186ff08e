"""Login throttling, counted and locked by the database itself.

Three counters, each changed only by one ``UPDATE`` that reads and writes the
row at once, so concurrent attempts (threads, processes, servers on one
PostgreSQL) can never lose a count or miss a lock:

- **per client address** (``login_limits`` row with ``user_name = ""``):
  every attempt from the address, whatever the name. After
  :data:`ADDRESS_FREE` attempts in a window the address is paused, doubling
  from 1 s to :data:`MAX_LOCK`; a paused address is answered 429 with
  ``Retry-After`` *before* any password is hashed, so a flood costs the
  server nothing and spraying many names stops quickly.
- **per (address, user name)**: after :data:`PAIR_FREE` attempts the pair is
  locked the same way; it answers exactly like a wrong password, and names
  that belong to no user are counted alike, so the lock tells nothing.
- **per account** (``users.failed_logins`` / ``users.locked_until``): it
  counts *addresses* that started failing for the user since their last
  success (one per fresh pair), not attempts, and locks only after
  :data:`ACCOUNT_FREE_ADDRESSES` of them. One address can add at most one
  per quiet window, so a single anonymous caller throttles itself long
  before it could lock the real admin out; it takes many addresses.

Every attempt is counted before its password is checked (a reservation:
"may this attempt proceed?" and "count it" are one statement), and attempts
refused while locked count too and extend the lock, so N concurrent
attempts reach the password check at most ``free + 1`` times. A success
forgets the pair and gives the address its attempt back. A row quiet for
:data:`QUIET` starts over.

Behind a reverse proxy every client shares the proxy's address: name the
proxy in ``Settings.trusted_proxies`` so the real client address is used.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import ColumnElement, Connection, and_, case, delete, literal, or_, update
from sqlalchemy.dialects import postgresql, sqlite

from muster.store.security_tables import login_limits, users
from muster.store.tables import UTCDateTime

__all__ = [
    "ACCOUNT_FREE_ADDRESSES",
    "ADDRESS_FREE",
    "ADDRESS_ROW",
    "MAX_LOCK",
    "PAIR_FREE",
    "QUIET",
    "UNKNOWN_ADDRESS",
    "Reservation",
    "bump_account",
    "forget_success",
    "is_worth_recording",
    "lock_after",
    "purge_quiet",
    "reserve",
]

PAIR_FREE: Final = 5
ADDRESS_FREE: Final = 20
ACCOUNT_FREE_ADDRESSES: Final = 10
MAX_LOCK: Final = dt.timedelta(minutes=15)
QUIET: Final = dt.timedelta(hours=1)
#: The key for attempts that come with no address (the CLI, in-process callers).
UNKNOWN_ADDRESS: Final = "-"
#: ``user_name`` of the row that counts every attempt from an address.
ADDRESS_ROW: Final = ""


@dataclass(frozen=True, slots=True)
class Reservation:
    #: The scope was not locked: this attempt may check its password.
    allowed: bool
    #: Attempts in the current window, this one included.
    attempts: int
    locked_until: dt.datetime | None


def lock_after(count: ColumnElement[Any], free: int, now: dt.datetime) -> ColumnElement[Any]:
    """``locked_until`` for a scope whose count is now ``count``: none up to ``free``,
    then 1 s, 2 s, 4 s, ... capped at :data:`MAX_LOCK` (bound values, so the SQL is
    the same on SQLite and PostgreSQL)."""

    def at(delta: dt.timedelta | None) -> ColumnElement[Any]:
        return literal(None if delta is None else now + delta, UTCDateTime())

    whens: list[tuple[ColumnElement[bool], ColumnElement[Any]]] = [(count <= free, at(None))]
    step = 0
    while dt.timedelta(seconds=2**step) < MAX_LOCK:
        whens.append((count == free + 1 + step, at(dt.timedelta(seconds=2**step))))
        step += 1
    return case(*whens, else_=at(MAX_LOCK))


def _key(address: str, user_name: str) -> ColumnElement[bool]:
    return and_(login_limits.c.address == address, login_limits.c.user_name == user_name)


def reserve(
    conn: Connection, *, address: str, user_name: str, free: int, now: dt.datetime
) -> Reservation:
    """Count one attempt for a scope and say whether it may proceed (it may unless
    the scope was locked). The count, the lock and the decision are each one
    statement on the scope's row, so concurrent callers serialise on it."""
    table = login_limits
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    count = case((table.c.updated_at < now - QUIET, 1), else_=table.c.attempts + 1)
    values = {"attempts": count, "locked_until": lock_after(count, free, now), "updated_at": now}
    unlocked = or_(table.c.locked_until.is_(None), table.c.locked_until <= now)
    out = (table.c.attempts, table.c.locked_until)
    # A purge may delete a quiet row between the insert and the update: then insert again.
    for _ in range(3):
        conn.execute(
            insert(table)
            .values(address=address, user_name=user_name, attempts=0, updated_at=now)
            .on_conflict_do_nothing(index_elements=["address", "user_name"])
        )
        row = conn.execute(
            update(table).where(_key(address, user_name), unlocked).values(**values).returning(*out)
        ).first()
        if row is not None:
            return Reservation(True, int(row[0]), row[1])
        row = conn.execute(
            update(table).where(_key(address, user_name)).values(**values).returning(*out)
        ).first()
        if row is not None:
            return Reservation(False, int(row[0]), row[1])
    raise RuntimeError(f"login limit row for {address!r} vanished three times")


def bump_account(conn: Connection, name: str, now: dt.datetime) -> None:
    """One more address failing for user ``name`` (no-op for an unknown name)."""
    count = users.c.failed_logins + 1
    conn.execute(
        update(users)
        .where(users.c.name == name)
        .values(
            failed_logins=count,
            locked_until=lock_after(count, ACCOUNT_FREE_ADDRESSES, now),
        )
    )


def forget_success(conn: Connection, *, address: str, user_name: str) -> None:
    """A good password: drop the pair's count and give the address its attempt back."""
    conn.execute(delete(login_limits).where(_key(address, user_name)))
    conn.execute(
        update(login_limits)
        .where(_key(address, ADDRESS_ROW), login_limits.c.attempts > 0)
        .values(attempts=login_limits.c.attempts - 1)
    )


def purge_quiet(conn: Connection, now: dt.datetime) -> None:
    """Drop rows quiet for twice :data:`QUIET` (they would start over anyway)."""
    conn.execute(delete(login_limits).where(login_limits.c.updated_at < now - 2 * QUIET))


def is_worth_recording(attempts: int) -> bool:
    """Audit the 1st, 2nd, 4th, 8th... failure of a scope: a flood of N failures
    leaves about log2(N) records, each carrying the running count."""
    return attempts > 0 and attempts & (attempts - 1) == 0
