"""The credentials vault in the database, and re-sealing everything under a new key.

A credential's value is sealed with the store's vault, bound to its row and
field (``credentials:<id>:secret``), and only ever leaves the store opened
for a connection (:meth:`CredentialOps.ssh_credential`). Metadata (name,
kind, user, fingerprint, which key sealed it) is all that reads return.

:meth:`CredentialOps.rekey` re-seals, in batches and in short transactions,
every sealed value whose key is not the vault's current key: credentials,
execution secrets and webhook signing secrets. The vault must still be able
to open the old ones (it was built with the old key readable), so a server
running meanwhile keeps working; run it again until it returns 0.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import column, delete, insert, select, table, update

from muster.domain.credentials import CredentialKind, SshCredential
from muster.domain.hosts import Host
from muster.domain.secret import Secret
from muster.errors import ConflictError, NotFoundError, ValidationError
from muster.security.vault import Vault, VaultError, token_key_id
from muster.store._core import StoreCore, new_id
from muster.store._executions import secret_aad
from muster.store.security_tables import credentials, group_credentials
from muster.store.tables import execution_secrets, hosts
from muster.store.workflow_tables import workflow_instances, workflow_secret_aad

if TYPE_CHECKING:
    from muster.store.protocols import CredentialStore

__all__ = ["CredentialInfo", "CredentialOps", "StoreCredentialSource"]

_NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")
_MAX_SECRET: Final = 64 * 1024
#: The webhooks table belongs to the server; only its id and sealed secret matter here.
_webhooks = table("webhooks", column("id"), column("secret"))


@dataclass(frozen=True, slots=True)
class CredentialInfo:
    """What may be shown about a credential: never its value."""

    id: str
    name: str
    kind: CredentialKind
    description: str
    username: str | None
    fingerprint: str | None
    key_id: str
    has_passphrase: bool
    created_by: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


def _info(r: Any) -> CredentialInfo:
    return CredentialInfo(
        id=r["id"],
        name=r["name"],
        kind=CredentialKind(r["kind"]),
        description=r["description"] or "",
        username=r["username"],
        fingerprint=r["fingerprint"],
        key_id=r["key_id"],
        has_passphrase=r["passphrase_token"] is not None,
        created_by=r["created_by"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
    )


def _aad(credential_id: str, field: str) -> str:
    return f"credentials:{credential_id}:{field}"


class CredentialOps(StoreCore):
    def _need_vault(self) -> Vault:
        if self.vault is None:
            raise VaultError(
                "no secret key is configured (MUSTER_SECRET_KEY or the key file): "
                "credentials cannot be sealed or opened"
            )
        return self.vault

    def create_credential(
        self,
        name: str,
        kind: CredentialKind | str,
        secret: Secret,
        *,
        username: str | None = None,
        passphrase: Secret | None = None,
        description: str = "",
        fingerprint: str | None = None,
        created_by: str | None = None,
    ) -> CredentialInfo:
        """Seal and store a new credential; its value is never readable through the API."""
        vault = self._need_vault()
        if not _NAME.match(name):
            raise ValidationError("name: 1-128 letters, digits, '.', '_', '@' or '-'", field="name")
        try:
            kind = CredentialKind(kind)
        except ValueError:
            allowed = ", ".join(k.value for k in CredentialKind)
            raise ValidationError(f"kind: one of {allowed}", field="kind") from None
        value = secret.reveal()
        if not value or len(value) > _MAX_SECRET:
            raise ValidationError(f"secret: 1 to {_MAX_SECRET} characters", field="secret")
        now = self.clock()
        cid = new_id()
        row = {
            "id": cid,
            "name": name,
            "kind": kind.value,
            "description": description,
            "username": username or None,
            "fingerprint": fingerprint,
            "key_id": vault.key_id,
            "token": vault.seal(value, _aad(cid, "secret")),
            "passphrase_token": (
                vault.seal(passphrase.reveal(), _aad(cid, "passphrase"))
                if passphrase is not None and passphrase.reveal()
                else None
            ),
            "created_by": created_by,
            "created_at": now,
            "updated_at": now,
        }
        try:
            with self._tx() as tx:
                tx.conn.execute(insert(credentials).values(**row))
        except ConflictError as exc:  # a unique rule, translated by ``_tx``
            raise ConflictError(f"credential {name!r} already exists") from exc
        return _info(row)

    def _credential_row(self, conn: Any, id_or_name: str) -> Mapping[str, Any]:
        row = (
            conn.execute(
                select(credentials).where(
                    (credentials.c.id == id_or_name) | (credentials.c.name == id_or_name)
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            raise NotFoundError(f"no credential {id_or_name!r}")
        return row  # type: ignore[no-any-return]

    def get_credential(self, id_or_name: str) -> CredentialInfo:
        with self._read() as conn:
            return _info(self._credential_row(conn, id_or_name))

    def list_credentials(self) -> list[CredentialInfo]:
        with self._read() as conn:
            rows = conn.execute(select(credentials).order_by(credentials.c.name)).mappings()
            return [_info(r) for r in rows]

    def delete_credential(self, id_or_name: str) -> CredentialInfo:
        """Remove a credential no host or group refers to (else a conflict naming them)."""
        with self._tx() as tx:
            row = self._credential_row(tx.conn, id_or_name)
            users = sorted(
                tx.conn.execute(
                    select(hosts.c.name).where(hosts.c.credential_ref.in_([row["name"], row["id"]]))
                ).scalars()
            )
            users += sorted(
                f"group {g}"
                for g in tx.conn.execute(
                    select(group_credentials.c.group_name).where(
                        group_credentials.c.credential_name == row["name"]
                    )
                ).scalars()
            )
            if users:
                raise ConflictError(
                    f"credential {row['name']!r} is still used by {', '.join(users[:10])}"
                )
            tx.conn.execute(delete(credentials).where(credentials.c.id == row["id"]))
        return _info(row)

    def replace_credential(
        self,
        id_or_name: str,
        secret: Secret,
        *,
        passphrase: Secret | None = None,
        username: str | None = None,
        fingerprint: str | None = None,
    ) -> CredentialInfo:
        """Seal a new value for an existing credential, in place: same id and name, so
        every host and group that names it uses the new value from the next connection.
        The passphrase and fingerprint are replaced with the value (a value without a
        passphrase drops the old one); ``username`` changes only when given."""
        vault = self._need_vault()
        value = secret.reveal()
        if not value or len(value) > _MAX_SECRET:
            raise ValidationError(f"secret: 1 to {_MAX_SECRET} characters", field="secret")
        with self._tx() as tx:
            row = self._credential_row(tx.conn, id_or_name)
            cid = row["id"]
            values: dict[str, Any] = {
                "token": vault.seal(value, _aad(cid, "secret")),
                "passphrase_token": (
                    vault.seal(passphrase.reveal(), _aad(cid, "passphrase"))
                    if passphrase is not None and passphrase.reveal()
                    else None
                ),
                "fingerprint": fingerprint,
                "key_id": vault.key_id,
                "updated_at": self.clock(),
            }
            if username is not None:
                values["username"] = username or None
            tx.conn.execute(update(credentials).where(credentials.c.id == cid).values(**values))
            fresh = self._credential_row(tx.conn, cid)
        return _info(fresh)

    def open_credential(self, id_or_name: str) -> SshCredential:
        """The credential with its value opened (for a connection; never for a response)."""
        vault = self._need_vault()
        with self._read() as conn:
            row = self._credential_row(conn, id_or_name)
        passphrase = None
        if row["passphrase_token"] is not None:
            passphrase = Secret(vault.open(row["passphrase_token"], _aad(row["id"], "passphrase")))
        return SshCredential(
            name=row["name"],
            kind=CredentialKind(row["kind"]),
            secret=Secret(vault.open(row["token"], _aad(row["id"], "secret"))),
            username=row["username"],
            passphrase=passphrase,
        )

    # --- groups --------------------------------------------------------------

    def set_group_credential(self, group: str, credential: str | None) -> None:
        """Give ``group`` a default credential (``None`` removes it)."""
        with self._tx() as tx:
            tx.conn.execute(
                delete(group_credentials).where(group_credentials.c.group_name == group)
            )
            if credential is not None:
                name = self._credential_row(tx.conn, credential)["name"]
                tx.conn.execute(
                    insert(group_credentials).values(group_name=group, credential_name=name)
                )

    def group_credentials(self) -> dict[str, str]:
        with self._read() as conn:
            rows = conn.execute(select(group_credentials)).mappings()
            return {r["group_name"]: r["credential_name"] for r in rows}

    def credential_ref_for(self, host: Host) -> str | None:
        """The host's own credential, else its first group's (in the host's group order)."""
        if host.credential_ref:
            return host.credential_ref
        if not host.groups:
            return None
        by_group = self.group_credentials()
        return next((by_group[g] for g in host.groups if g in by_group), None)

    def ssh_credential(self, host: Host) -> SshCredential | None:
        ref = self.credential_ref_for(host)
        return self.open_credential(ref) if ref is not None else None

    # --- rotation ------------------------------------------------------------

    def sealed_key_ids(self) -> set[str]:
        """Ids of every key that sealed something still stored."""
        found: set[str] = set()
        with self._read() as conn:
            found.update(conn.execute(select(credentials.c.key_id).distinct()).scalars())
            found.update(conn.execute(select(execution_secrets.c.key_id).distinct()).scalars())
            if self.engine.dialect.has_table(conn, "webhooks"):
                for stored in conn.execute(select(_webhooks.c.secret)).scalars():
                    if isinstance(stored, str) and stored.startswith("v:"):
                        kid = token_key_id(stored[2:])
                        if kid is not None:
                            found.add(kid)
            for sealed in conn.execute(select(workflow_instances.c.secrets)).scalars():
                for token in dict(sealed or {}).values():
                    kid = token_key_id(token)
                    if kid is not None:
                        found.add(kid)
        return found

    def rekey(self, batch: int = 200) -> int:
        """Re-seal up to ``batch`` values per table not sealed with the current key."""
        vault = self._need_vault()
        done = 0
        with self._tx() as tx:
            rows = (
                tx.conn.execute(
                    select(credentials).where(credentials.c.key_id != vault.key_id).limit(batch)
                )
                .mappings()
                .all()
            )
            for r in rows:
                values: dict[str, Any] = {
                    "key_id": vault.key_id,
                    "token": vault.seal(
                        vault.open(r["token"], _aad(r["id"], "secret")), _aad(r["id"], "secret")
                    ),
                }
                if r["passphrase_token"] is not None:
                    aad = _aad(r["id"], "passphrase")
                    values["passphrase_token"] = vault.seal(
                        vault.open(r["passphrase_token"], aad), aad
                    )
                tx.conn.execute(
                    update(credentials).where(credentials.c.id == r["id"]).values(**values)
                )
                done += 1
        with self._tx() as tx:
            t = execution_secrets
            rows = (
                tx.conn.execute(select(t).where(t.c.key_id != vault.key_id).limit(batch))
                .mappings()
                .all()
            )
            for r in rows:
                aad = secret_aad(r["execution_id"], r["field"])
                tx.conn.execute(
                    update(t)
                    .where(t.c.execution_id == r["execution_id"], t.c.field == r["field"])
                    .values(key_id=vault.key_id, token=vault.seal(vault.open(r["token"], aad), aad))
                )
                done += 1
        with self._tx() as tx:
            if self.engine.dialect.has_table(tx.conn, "webhooks"):
                for wid, stored in tx.conn.execute(
                    select(_webhooks.c.id, _webhooks.c.secret)
                ).all():
                    if not (isinstance(stored, str) and stored.startswith("v:")):
                        continue
                    if token_key_id(stored[2:]) == vault.key_id:
                        continue
                    aad = f"webhooks:{wid}:secret"
                    sealed = "v:" + vault.seal(vault.open(stored[2:], aad), aad)
                    tx.conn.execute(
                        update(_webhooks).where(_webhooks.c.id == wid).values(secret=sealed)
                    )
                    done += 1
        return done + self._rekey_workflow_secrets(vault, batch)

    def _rekey_workflow_secrets(self, vault: Vault, batch: int) -> int:
        """Workflow instances keep their secret parameters sealed in one JSON column
        (their driver opens them at every step): re-seal the values an old key sealed."""
        t = workflow_instances
        done = 0
        with self._tx() as tx:
            for iid, sealed in tx.conn.execute(
                select(t.c.id, t.c.secrets).where(t.c.secrets.is_not(None))
            ).all():
                stale = {
                    name: token
                    for name, token in dict(sealed or {}).items()
                    if token_key_id(token) != vault.key_id
                }
                if not stale:
                    continue
                resealed = dict(sealed)
                for name, token in stale.items():
                    aad = workflow_secret_aad(iid, name)
                    resealed[name] = vault.seal(vault.open(token, aad), aad)
                tx.conn.execute(update(t).where(t.c.id == iid).values(secrets=resealed))
                done += len(stale)
                if done >= batch:
                    break
        return done


class StoreCredentialSource:
    """The SSH transport's :class:`~muster.transports.ssh_credentials.CredentialSource`
    over a credential store (database work runs in a thread)."""

    def __init__(self, store: CredentialStore) -> None:
        self._store = store

    async def ssh_credential(self, host: Host) -> SshCredential | None:
        return await asyncio.to_thread(self._store.ssh_credential, host)
