"""Scripts and their immutable versions.

Saving follows the domain rule (``Script.save``): identical content to the
latest version adds nothing; changed content adds version N+1; older
versions are never touched. A deleted script keeps its versions (executions
pin them); saving its name again revives it and continues the numbering.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, RowMapping, func, insert, or_, select, update

from muster.domain.scripts import ScriptVersion
from muster.errors import ConflictError, NotFoundError
from muster.store._core import StoreCore, new_id
from muster.store._rows import script_record, version_record
from muster.store.base import Page, SavedScript, ScriptRecord, VersionRecord
from muster.store.tables import script_versions, scripts

__all__ = ["ScriptOps"]


class ScriptOps(StoreCore):
    def save_script(
        self,
        content: ScriptVersion,
        *,
        description: str | None = None,
        tags: Sequence[str] | None = None,
        created_by: str | None = None,
    ) -> SavedScript:
        for attempt in range(2):
            try:
                with self._tx() as tx:
                    return self._save(tx.conn, content, description, tags, created_by)
            except ConflictError as exc:
                # Two first saves of one name raced (the unique name, translated by
                # ``_tx``); the loser saves onto the winner's.
                if attempt:
                    raise ConflictError(
                        f"script '{content.name}' is being saved concurrently"
                    ) from exc
        raise AssertionError("unreachable")

    def _save(
        self,
        conn: Connection,
        content: ScriptVersion,
        description: str | None,
        tags: Sequence[str] | None,
        created_by: str | None,
    ) -> SavedScript:
        now = self.clock()
        stmt = select(scripts).where(scripts.c.name == content.name)
        if self.is_postgres:
            stmt = stmt.with_for_update()
        row = conn.execute(stmt).mappings().first()
        if row is None:
            script_id = new_id()
            conn.execute(
                insert(scripts).values(
                    id=script_id,
                    name=content.name,
                    description=description if description is not None else content.description,
                    tags=list(tags or ()),
                    latest_version=0,
                    created_at=now,
                    updated_at=now,
                )
            )
            latest_number = 0
        else:
            script_id = row["id"]
            latest_number = row["latest_version"]
        meta: dict[str, Any] = {"updated_at": now, "deleted_at": None}
        if description is not None:
            meta["description"] = description
        if tags is not None:
            meta["tags"] = list(tags)
        latest = self._version_row(conn, script_id, latest_number) if latest_number else None
        created = latest is None or latest["content_hash"] != content.content_hash
        if created:
            latest_number += 1
            conn.execute(
                insert(script_versions).values(
                    script_id=script_id,
                    number=latest_number,
                    content_hash=content.content_hash,
                    shell=content.shell.value,
                    body=content.body,
                    parameters=[p.to_dict() for p in content.parameters],
                    timeout=content.timeout,
                    requires_approval=content.requires_approval,
                    idempotent=content.idempotent,
                    libraries=[{"name": lib.name, "body": lib.body} for lib in content.libraries],
                    description=content.description,
                    created_at=now,
                    created_by=created_by,
                )
            )
            meta["latest_version"] = latest_number
        conn.execute(update(scripts).where(scripts.c.id == script_id).values(**meta))
        srow = conn.execute(select(scripts).where(scripts.c.id == script_id)).mappings().one()
        vrow = self._version_row(conn, script_id, latest_number)
        assert vrow is not None
        return SavedScript(script_record(srow), version_record(vrow, content.name), created)

    @staticmethod
    def _version_row(conn: Connection, script_id: str, number: int) -> RowMapping | None:
        return (
            conn.execute(
                select(script_versions).where(
                    script_versions.c.script_id == script_id, script_versions.c.number == number
                )
            )
            .mappings()
            .first()
        )

    def restore_version(
        self, script_id: str, number: int, *, created_by: str | None = None
    ) -> SavedScript:
        old = self.get_version(script_id, number)
        return self.save_script(old.domain(), created_by=created_by)

    @staticmethod
    def _script_row(conn: Connection, id_or_name: str, *, deleted: bool = False) -> RowMapping:
        stmt = select(scripts).where(or_(scripts.c.id == id_or_name, scripts.c.name == id_or_name))
        if not deleted:
            stmt = stmt.where(scripts.c.deleted_at.is_(None))
        row = conn.execute(stmt).mappings().first()
        if row is None:
            raise NotFoundError(f"no script {id_or_name!r}")
        return row

    def get_script(self, id_or_name: str) -> ScriptRecord:
        with self._read() as conn:
            return script_record(self._script_row(conn, id_or_name))

    def list_scripts(
        self,
        *,
        tag: str | None = None,
        search: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> Page[ScriptRecord]:
        conds: list[ColumnElement[bool]] = [scripts.c.deleted_at.is_(None)]
        if search:
            like = f"%{search.lower()}%"
            conds.append(
                or_(
                    func.lower(scripts.c.name).like(like),
                    func.lower(scripts.c.description).like(like),
                )
            )
        with self._read() as conn:
            rows = conn.execute(select(scripts).where(*conds).order_by(scripts.c.name)).mappings()
            # Tags are a JSON list: filter here, portable across both databases.
            records = [script_record(r) for r in rows]
        if tag:
            records = [r for r in records if tag in r.tags]
        return Page(tuple(records[offset : offset + limit]), len(records), limit, offset)

    def get_version(self, script_id: str, number: int | None = None) -> VersionRecord:
        with self._read() as conn:
            srow = self._script_row(conn, script_id, deleted=True)
            wanted = srow["latest_version"] if number is None else number
            vrow = self._version_row(conn, srow["id"], wanted)
            if vrow is None:
                raise NotFoundError(f"script {srow['name']!r} has no version {wanted}")
            return version_record(vrow, srow["name"])

    def list_versions(self, script_id: str) -> list[VersionRecord]:
        with self._read() as conn:
            srow = self._script_row(conn, script_id)
            rows = conn.execute(
                select(script_versions)
                .where(script_versions.c.script_id == srow["id"])
                .order_by(script_versions.c.number.desc())
            ).mappings()
            return [version_record(r, srow["name"]) for r in rows]

    def delete_script(self, script_id: str) -> None:
        with self._tx() as tx:
            row = self._script_row(tx.conn, script_id)
            tx.conn.execute(
                update(scripts).where(scripts.c.id == row["id"]).values(deleted_at=self.clock())
            )
