"""Users, custom roles, API tokens and console sessions.

``SecurityOps`` is a mixin over :class:`StoreCore` like the store's other
``*Ops`` classes: the full store composes it, and the CLI can build one on
an engine alone. Every operation is one transaction. Clear passwords,
tokens and session ids only pass through; the tables keep hashes.

Failed-login throttling is stored, so it holds across processes and
restarts, and counted atomically per client address, per (address, user)
and per account; :mod:`muster.store.login_limits` explains how one
address throttles itself long before it could lock anyone else out. A
locked account or pair answers exactly like a wrong password; a paused
address gets :class:`~muster.errors.TooManyAttemptsError`.

Changing a password ends the user's other sessions (and, when asked, their
tokens). No change may leave the server without an enabled admin: the
check runs in the same transaction as the change, with the user rows
locked, so two admins stepping down at once cannot both succeed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Connection, RowMapping, and_, delete, insert, select, update

from muster.domain.secret import Secret
from muster.errors import (
    AuthenticationError,
    ConflictError,
    LoginFailedError,
    NotFoundError,
    TooManyAttemptsError,
    ValidationError,
)
from muster.security.passwords import DEFAULT_POLICY, Passwords, generate_password
from muster.security.rbac import (
    BUILTIN_ROLES,
    Permission,
    Principal,
    effective_permissions,
    permissions_of,
    validate_custom_role,
)
from muster.security.tokens import (
    DEFAULT_TTL,
    IssuedToken,
    TokenRecord,
    issue_token,
    token_lookup,
    verify_token,
)
from muster.store import login_limits as limits
from muster.store._core import StoreCore, new_id
from muster.store.security_tables import api_tokens, custom_roles, sessions, users

__all__ = [
    "FREE_FAILURES",
    "SecurityOps",
    "TokenInfo",
    "UserChange",
    "UserRecord",
    "principal_for",
    "session_digest",
]

#: Failures from one address for one user name before that pair is locked.
FREE_FAILURES: Final = limits.PAIR_FREE
_TOUCH_EVERY: Final = dt.timedelta(minutes=1)
_BAD_LOGIN: Final = "invalid user name or password"
_USER_NAME_MAX: Final = 128


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: str
    name: str
    roles: tuple[str, ...]
    disabled: bool
    must_change_password: bool
    has_password: bool
    created_at: dt.datetime
    updated_at: dt.datetime
    last_login_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class UserChange:
    """What a change to a user did besides the row: sessions ended, tokens revoked."""

    user: UserRecord
    sessions_ended: int = 0
    tokens_revoked: int = 0


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A token as listed: never the token itself. ``hint`` is ``mst_<lookup>…``."""

    id: str
    user_id: str
    name: str
    hint: str
    role: str | None
    created_at: dt.datetime
    expires_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None


def _user(r: RowMapping) -> UserRecord:
    return UserRecord(
        id=r["id"],
        name=r["name"],
        roles=tuple(r["roles"] or ()),
        disabled=bool(r["disabled"]),
        must_change_password=bool(r["must_change_password"]),
        has_password=r["password_hash"] is not None,
        created_at=r["created_at"],
        updated_at=r["updated_at"],
        last_login_at=r["last_login_at"],
    )


def _token(r: RowMapping) -> TokenInfo:
    return TokenInfo(
        id=r["id"],
        user_id=r["user_id"],
        name=r["name"],
        hint=f"mst_{r['lookup']}…",
        role=r["role"],
        created_at=r["created_at"],
        expires_at=r["expires_at"],
        last_used_at=r["last_used_at"],
        revoked_at=r["revoked_at"],
    )


def session_digest(cookie: str | Secret) -> str:
    """The key of a session row: SHA-256 of the cookie value, never the value."""
    value = cookie.reveal() if isinstance(cookie, Secret) else cookie
    return hashlib.sha256(value.encode()).hexdigest()


def _custom(conn: Connection) -> dict[str, frozenset[Permission]]:
    return {
        r["name"]: frozenset(Permission(p) for p in r["permissions"])
        for r in conn.execute(select(custom_roles)).mappings()
    }


def _enabled_admins(conn: Connection) -> list[str]:
    custom = _custom(conn)
    rows = conn.execute(select(users.c.name, users.c.roles, users.c.disabled)).mappings()
    return [
        r["name"]
        for r in rows
        if not r["disabled"] and Permission.ADMIN in permissions_of(r["roles"] or (), custom)
    ]


def principal_for(
    conn: Connection, row: RowMapping, via: str, token_role: str | None = None
) -> Principal:
    """The principal of a ``users`` row, permissions resolved against current custom roles."""
    roles = tuple(row["roles"] or ())
    return Principal(
        user_id=row["id"],
        name=row["name"],
        roles=roles,
        permissions=effective_permissions(roles, token_role, _custom(conn)),
        via=via,
        token_role=token_role,
        must_change_password=bool(row["must_change_password"]),
    )


class SecurityOps(StoreCore):
    #: Replace with a cheaper instance in tests; hashes record their own cost.
    passwords: Passwords = Passwords()

    # --- roles ---------------------------------------------------------------

    def custom_roles(self) -> dict[str, frozenset[Permission]]:
        with self._read() as conn:
            rows = conn.execute(select(custom_roles)).mappings().all()
        return {r["name"]: frozenset(Permission(p) for p in r["permissions"]) for r in rows}

    def create_role(self, name: str, permissions: Iterable[str], description: str = "") -> None:
        perms = validate_custom_role(name, permissions)
        try:
            with self._tx() as tx:
                tx.conn.execute(
                    insert(custom_roles).values(
                        name=name,
                        permissions=sorted(p.value for p in perms),
                        description=description,
                        created_at=self.clock(),
                    )
                )
        except ConflictError as exc:  # a unique rule, translated by ``_tx``
            raise ConflictError(f"role {name!r} already exists") from exc

    def delete_role(self, name: str) -> None:
        with self._tx() as tx:
            holders = [
                r["name"]
                for r in tx.conn.execute(select(users.c.name, users.c.roles)).mappings()
                if name in (r["roles"] or ())
            ]
            if holders:
                raise ConflictError(f"role {name!r} is held by {', '.join(sorted(holders))}")
            if not tx.conn.execute(
                delete(custom_roles).where(custom_roles.c.name == name)
            ).rowcount:
                raise NotFoundError(f"no custom role {name!r}")

    def _check_roles(self, conn: Connection, roles: Sequence[str]) -> list[str]:
        known = set(BUILTIN_ROLES) | set(conn.execute(select(custom_roles.c.name)).scalars())
        unknown = [r for r in roles if r not in known]
        if unknown:
            raise ValidationError(f"roles: unknown role(s) {', '.join(unknown)}", field="roles")
        return sorted(set(roles))

    # --- users ---------------------------------------------------------------

    def create_user(
        self,
        name: str,
        *,
        roles: Sequence[str],
        password: str | Secret | None = None,
        must_change_password: bool = False,
    ) -> UserRecord:
        """A new user; the password must pass the policy. ``None``: no password login."""
        if not name or len(name) > _USER_NAME_MAX or name != name.strip() or ":" in name:
            raise ValidationError("name: 1-128 characters, no ':' or outer spaces", field="name")
        hashed = None
        if password is not None:
            DEFAULT_POLICY.check(password, username=name)
            hashed = self.passwords.hash(password)
        now = self.clock()
        uid = new_id()
        try:
            with self._tx() as tx:
                tx.conn.execute(
                    insert(users).values(
                        id=uid,
                        name=name,
                        password_hash=hashed,
                        roles=self._check_roles(tx.conn, roles),
                        disabled=False,
                        must_change_password=must_change_password,
                        failed_logins=0,
                        created_at=now,
                        updated_at=now,
                    )
                )
                row = tx.conn.execute(select(users).where(users.c.id == uid)).mappings().one()
        except ConflictError as exc:  # a unique rule, translated by ``_tx``
            raise ConflictError(f"user {name!r} already exists") from exc
        return _user(row)

    def bootstrap_admin(self, name: str = "admin") -> Secret | None:
        """On an empty user table, create admin ``name`` with a one-time password.

        Returns the password to print once (the user must change it at first
        login), or ``None`` when any user already exists.
        """
        if self.list_users():
            return None
        password = generate_password()
        try:
            self.create_user(name, roles=["admin"], password=password, must_change_password=True)
        except ConflictError:
            return None
        return Secret(password)

    def _user_row(self, conn: Connection, id_or_name: str) -> RowMapping:
        row = (
            conn.execute(
                select(users).where((users.c.id == id_or_name) | (users.c.name == id_or_name))
            )
            .mappings()
            .first()
        )
        if row is None:
            raise NotFoundError(f"no user {id_or_name!r}")
        return row

    def get_user(self, id_or_name: str) -> UserRecord:
        with self._read() as conn:
            return _user(self._user_row(conn, id_or_name))

    def list_users(self) -> list[UserRecord]:
        with self._read() as conn:
            return [_user(r) for r in conn.execute(select(users).order_by(users.c.name)).mappings()]

    def update_user(
        self,
        id_or_name: str,
        *,
        roles: Sequence[str] | None = None,
        disabled: bool | None = None,
        password: str | Secret | None = None,
    ) -> UserRecord:
        """Change roles, the disabled flag, or the password (see :meth:`change_user`)."""
        return self.change_user(id_or_name, roles=roles, disabled=disabled, password=password).user

    def change_user(
        self,
        id_or_name: str,
        *,
        roles: Sequence[str] | None = None,
        disabled: bool | None = None,
        password: str | Secret | None = None,
        keep_session: str | Secret | None = None,
        revoke_tokens: bool = False,
        must_change_password: bool | None = None,
    ) -> UserChange:
        """Change roles, the disabled flag or the password, in one transaction.

        A new password clears must-change (unless ``must_change_password``
        says otherwise) and the lock, and ends every session of the user but
        ``keep_session`` (the caller's own cookie); ``revoke_tokens`` revokes
        their API tokens too. Disabling ends all sessions. A change that
        would leave no enabled admin is refused with ``ConflictError``.
        """
        now = self.clock()
        values: dict[str, Any] = {"updated_at": now}
        with self._read() as conn:
            name = self._user_row(conn, id_or_name)["name"]
        if password is not None:
            DEFAULT_POLICY.check(password, username=name)
            values.update(
                password_hash=self.passwords.hash(password),
                must_change_password=bool(must_change_password),
                failed_logins=0,
                locked_until=None,
            )
        elif must_change_password is not None:
            values["must_change_password"] = must_change_password
        if disabled is not None:
            values["disabled"] = disabled
        ended = revoked = 0
        before: list[str] = []
        with self._tx() as tx:
            touches_admins = roles is not None or bool(disabled)
            if touches_admins:
                # Lock every user row first: a concurrent demotion waits here and
                # then counts the admins this one left.
                tx.conn.execute(select(users.c.id).with_for_update()).all()
                before = _enabled_admins(tx.conn)
            row = self._user_row(tx.conn, id_or_name)
            if roles is not None:
                values["roles"] = self._check_roles(tx.conn, roles)
            tx.conn.execute(update(users).where(users.c.id == row["id"]).values(**values))
            if touches_admins and before and not _enabled_admins(tx.conn):
                raise ConflictError(
                    f"{row['name']} is the last enabled admin: give another user the admin "
                    "role before demoting or disabling this one"
                )
            if disabled:
                ended = tx.conn.execute(
                    delete(sessions).where(sessions.c.user_id == row["id"])
                ).rowcount
            elif password is not None:
                cond = sessions.c.user_id == row["id"]
                if keep_session is not None:
                    cond = and_(cond, sessions.c.digest != session_digest(keep_session))
                ended = tx.conn.execute(delete(sessions).where(cond)).rowcount
            if password is not None and revoke_tokens:
                revoked = tx.conn.execute(
                    update(api_tokens)
                    .where(api_tokens.c.user_id == row["id"], api_tokens.c.revoked_at.is_(None))
                    .values(revoked_at=now)
                ).rowcount
            user = _user(self._user_row(tx.conn, row["id"]))
        return UserChange(user, sessions_ended=ended, tokens_revoked=revoked)

    def count_admins(self) -> int:
        """Enabled users holding the admin permission (by a built-in or custom role)."""
        with self._read() as conn:
            return len(_enabled_admins(conn))

    def authenticate_password(
        self, name: str, password: str | Secret, *, address: str | None = None
    ) -> Principal:
        """The user's principal, or ``AuthenticationError`` (same message for every failure).

        ``address`` is the client's; every attempt is counted against it, the
        (address, name) pair and, once per fresh pair, the account, before
        the password is checked (see :mod:`muster.store.login_limits`). A
        paused address raises :class:`TooManyAttemptsError`; any other
        failure :class:`LoginFailedError` with the pair's running count.
        """
        now = self.clock()
        where = (address or limits.UNKNOWN_ADDRESS)[:64]
        key = name[:128]
        with self._tx() as tx:
            by_address = limits.reserve(
                tx.conn,
                address=where,
                user_name=limits.ADDRESS_ROW,
                free=limits.ADDRESS_FREE,
                now=now,
            )
            if not by_address.allowed:
                pair = None
            else:
                pair = limits.reserve(
                    tx.conn, address=where, user_name=key, free=limits.PAIR_FREE, now=now
                )
                if pair.attempts == 1:
                    limits.bump_account(tx.conn, key, now)
                row = tx.conn.execute(select(users).where(users.c.name == key)).mappings().first()
        if pair is None:
            wait = (by_address.locked_until or now) - now
            raise TooManyAttemptsError(
                "too many login attempts from this address; try again later",
                retry_after=max(1.0, wait.total_seconds()),
                attempts=by_address.attempts,
            )
        failed = LoginFailedError(_BAD_LOGIN, attempts=pair.attempts)
        if not pair.allowed:
            raise failed  # locked pairs exist for unknown names too: nothing to hide
        if (
            row is None
            or row["password_hash"] is None
            or row["disabled"]
            or (row["locked_until"] is not None and row["locked_until"] > now)
        ):
            self.passwords.verify_nobody(password)
            raise failed
        check = self.passwords.verify(row["password_hash"], password)
        if not check.ok:
            raise failed
        values: dict[str, Any] = {"failed_logins": 0, "locked_until": None, "last_login_at": now}
        if check.needs_rehash:
            values["password_hash"] = self.passwords.hash(password)
        with self._tx() as tx:
            limits.forget_success(tx.conn, address=where, user_name=key)
            limits.purge_quiet(tx.conn, now)
            tx.conn.execute(update(users).where(users.c.id == row["id"]).values(**values))
            fresh = tx.conn.execute(select(users).where(users.c.id == row["id"])).mappings().one()
            return principal_for(tx.conn, fresh, "password")

    # --- API tokens ----------------------------------------------------------

    def create_token(
        self,
        user: str,
        name: str,
        *,
        ttl: dt.timedelta = DEFAULT_TTL,
        role: str | None = None,
    ) -> tuple[IssuedToken, TokenInfo]:
        """Issue a token for ``user``; show ``issued.token`` once, it is not kept."""
        with self._tx() as tx:
            row = self._user_row(tx.conn, user)
            if role is not None:
                self._check_roles(tx.conn, [role])
            issued = issue_token(user=row["id"], name=name, now=self.clock(), ttl=ttl, role=role)
            rec = issued.record
            tid = new_id()
            tx.conn.execute(
                insert(api_tokens).values(
                    id=tid,
                    lookup=rec.lookup,
                    digest=rec.digest,
                    user_id=row["id"],
                    name=rec.name,
                    role=rec.role,
                    created_at=rec.created_at,
                    expires_at=rec.expires_at,
                )
            )
            info = (
                tx.conn.execute(select(api_tokens).where(api_tokens.c.id == tid)).mappings().one()
            )
        return issued, _token(info)

    def list_tokens(self, user: str | None = None) -> list[TokenInfo]:
        with self._read() as conn:
            stmt = select(api_tokens).order_by(api_tokens.c.created_at)
            if user is not None:
                stmt = stmt.where(api_tokens.c.user_id == self._user_row(conn, user)["id"])
            return [_token(r) for r in conn.execute(stmt).mappings()]

    def revoke_token(self, token_id: str) -> None:
        with self._tx() as tx:
            done = tx.conn.execute(
                update(api_tokens)
                .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=self.clock())
            ).rowcount
        if not done:
            raise NotFoundError(f"no active token {token_id!r}")

    def authenticate_token(self, presented: str | Secret) -> Principal:
        """The principal behind a bearer token, narrowed by its role."""
        now = self.clock()
        lookup = token_lookup(presented)
        with self._read() as conn:
            row = (
                conn.execute(select(api_tokens).where(api_tokens.c.lookup == lookup))
                .mappings()
                .first()
            )
            record = None
            if row is not None and row["revoked_at"] is None:
                record = TokenRecord(
                    lookup=row["lookup"],
                    digest=row["digest"],
                    user=row["user_id"],
                    name=row["name"],
                    created_at=row["created_at"],
                    expires_at=row["expires_at"],
                    role=row["role"],
                )
            verify_token(presented, record, now)
            assert row is not None
            owner = conn.execute(select(users).where(users.c.id == row["user_id"])).mappings().one()
            if owner["disabled"]:
                raise AuthenticationError("invalid or expired token")
            principal = principal_for(conn, owner, "token", row["role"])
        last = row["last_used_at"]
        if last is None or now - last >= _TOUCH_EVERY:
            with self._tx() as tx:
                tx.conn.execute(
                    update(api_tokens).where(api_tokens.c.id == row["id"]).values(last_used_at=now)
                )
        return principal
