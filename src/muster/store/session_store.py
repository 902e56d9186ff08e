"""Console sessions: a random cookie whose SHA-256 is the row key, plus a CSRF token.

The cookie value exists only in the browser and in the response that set
it; the CSRF token is per session and must accompany every state-changing
form post (compare with :func:`csrf_matches`). Disabling a user or changing
their password deletes their sessions (see ``SecurityOps.change_user``);
expired rows are purged whenever a new session is made.
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
from dataclasses import dataclass
from typing import Final

from sqlalchemy import delete, func, insert, select

from muster.domain.secret import Secret
from muster.errors import AuthenticationError
from muster.security.rbac import Principal
from muster.store._core import StoreCore
from muster.store.security_ops import principal_for, session_digest
from muster.store.security_tables import sessions, users

__all__ = ["SESSION_TTL", "SessionInfo", "SessionOps", "csrf_matches"]

SESSION_TTL: Final = dt.timedelta(hours=12)


@dataclass(frozen=True, slots=True)
class SessionInfo:
    principal: Principal
    csrf_token: str
    expires_at: dt.datetime


_digest = session_digest


def csrf_matches(expected: str, presented: str | None) -> bool:
    """Constant-time CSRF token check; a missing token never matches."""
    return bool(presented) and hmac.compare_digest(expected.encode(), (presented or "").encode())


class SessionOps(StoreCore):
    def create_session(
        self, user_id: str, *, address: str | None = None, ttl: dt.timedelta = SESSION_TTL
    ) -> tuple[Secret, str]:
        """A new session: (cookie value to set once, CSRF token for its forms)."""
        cookie = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = self.clock()
        with self._tx() as tx:
            tx.conn.execute(delete(sessions).where(sessions.c.expires_at <= now))
            tx.conn.execute(
                insert(sessions).values(
                    digest=_digest(cookie),
                    user_id=user_id,
                    csrf_token=csrf,
                    address=address,
                    created_at=now,
                    expires_at=now + ttl,
                )
            )
        return Secret(cookie), csrf

    def get_session(self, cookie: str | Secret) -> SessionInfo:
        value = cookie.reveal() if isinstance(cookie, Secret) else cookie
        now = self.clock()
        with self._read() as conn:
            row = (
                conn.execute(
                    select(sessions, users.c.disabled)
                    .join(users, users.c.id == sessions.c.user_id)
                    .where(sessions.c.digest == _digest(value))
                )
                .mappings()
                .first()
            )
            if row is None or row["expires_at"] <= now or row["disabled"]:
                raise AuthenticationError("session expired; log in again")
            owner = conn.execute(select(users).where(users.c.id == row["user_id"])).mappings().one()
            return SessionInfo(
                principal_for(conn, owner, "session"), row["csrf_token"], row["expires_at"]
            )

    def delete_session(self, cookie: str | Secret) -> None:
        value = cookie.reveal() if isinstance(cookie, Secret) else cookie
        with self._tx() as tx:
            tx.conn.execute(delete(sessions).where(sessions.c.digest == _digest(value)))

    def count_sessions(self) -> int:
        with self._read() as conn:
            return int(conn.execute(select(func.count()).select_from(sessions)).scalar_one())
