"""Webhooks and their delivery records, on the store's database.

The tables hang on the store's metadata and are created by migration
0004_webhooks; the secret is sealed with the vault when one is available,
because it signs every delivery.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
)

from muster.domain.webhooks import WebhookTarget
from muster.errors import NotFoundError
from muster.store.tables import metadata

__all__ = ["WebhookRepo"]

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("url", Text, nullable=False),
    Column("secret", Text, nullable=False),
    Column("events", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("webhook_id", String(36), ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False),
    Column("event", String(64), nullable=False),
    Column("status_code", Integer),
    Column("attempts", Integer, nullable=False),
    Column("delivered", Boolean, nullable=False),
    Column("last_error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


class WebhookRepo:
    def __init__(self, engine: Engine, vault: Any = None) -> None:
        self._engine = engine
        self._vault = vault

    def _seal(self, webhook_id: str, secret: str) -> str:
        if self._vault is None:
            return secret
        return "v:" + str(self._vault.seal(secret, f"webhooks:{webhook_id}:secret"))

    def _open(self, webhook_id: str, stored: str) -> str:
        if stored.startswith("v:") and self._vault is not None:
            return str(self._vault.open(stored[2:], f"webhooks:{webhook_id}:secret"))
        return stored

    def create(self, url: str, secret: str, events: list[str]) -> dict[str, Any]:
        wid = str(uuid.uuid4())
        now = dt.datetime.now(dt.UTC)
        row = {"id": wid, "url": url, "events": events, "created_at": now}
        with self._engine.begin() as conn:
            conn.execute(insert(webhooks).values(secret=self._seal(wid, secret), **row))
        return row

    def all(self) -> list[dict[str, Any]]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(webhooks).order_by(webhooks.c.created_at)).mappings()
            return [
                {
                    "id": r["id"],
                    "url": r["url"],
                    "events": list(r["events"]),
                    "created_at": _aware(r["created_at"]),
                }
                for r in rows
            ]

    def get(self, webhook_id: str) -> dict[str, Any]:
        for hook in self.all():
            if hook["id"] == webhook_id:
                return hook
        raise NotFoundError(f"no webhook {webhook_id}")

    def delete(self, webhook_id: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                delete(webhook_deliveries).where(webhook_deliveries.c.webhook_id == webhook_id)
            )
            if not conn.execute(delete(webhooks).where(webhooks.c.id == webhook_id)).rowcount:
                raise NotFoundError(f"no webhook {webhook_id}")

    def targets(self) -> list[WebhookTarget]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(webhooks)).mappings().all()
        return [
            WebhookTarget(r["id"], r["url"], self._open(r["id"], r["secret"]), tuple(r["events"]))
            for r in rows
        ]

    def record(
        self,
        *,
        webhook_id: str,
        event: str,
        status_code: int | None,
        attempts: int,
        delivered: bool,
        error: str | None,
    ) -> None:
        with self._engine.begin() as conn:
            exists = conn.execute(select(webhooks.c.id).where(webhooks.c.id == webhook_id)).first()
            if exists is None:  # deleted while delivering
                return
            conn.execute(
                insert(webhook_deliveries).values(
                    id=str(uuid.uuid4()),
                    webhook_id=webhook_id,
                    event=event,
                    status_code=status_code,
                    attempts=attempts,
                    delivered=delivered,
                    last_error=error,
                    created_at=dt.datetime.now(dt.UTC),
                )
            )

    def deliveries(self, webhook_id: str, limit: int = 100) -> list[dict[str, Any]]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(webhook_deliveries)
                .where(webhook_deliveries.c.webhook_id == webhook_id)
                .order_by(webhook_deliveries.c.created_at.desc())
                .limit(limit)
            ).mappings()
            return [{**dict(r), "created_at": _aware(r["created_at"])} for r in rows]
