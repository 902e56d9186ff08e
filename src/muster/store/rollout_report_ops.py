"""Published rollout reports over SQLAlchemy (see :mod:`muster.store.rollout_reports`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import RowMapping, insert, select

from muster.domain.rollout_report import ReportSummary
from muster.errors import ConflictError, NotFoundError
from muster.store._core import StoreCore
from muster.store.rollout_report_tables import rollout_reports
from muster.store.rollout_reports import PublishedReport, RolloutReportRecord, report_instant

__all__ = ["RolloutReportOps"]

_r = rollout_reports
_LISTED = [c for c in _r.c if c.name != "document"]


def _record(row: RowMapping | Mapping[str, Any]) -> RolloutReportRecord:
    return RolloutReportRecord(
        id=row["id"],
        workflow=row["workflow"],
        status=row["status"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        hosts=row["hosts"],
        flagged=row["flagged"],
        published_by=row["published_by"],
        published_at=row["published_at"],
        content_hash=row["content_hash"],
    )


def _same_or_conflict(found: RowMapping, content_hash: str) -> PublishedReport:
    if found["content_hash"] != content_hash:
        raise ConflictError(
            f"rollout report {found['id']} is already published with other content "
            "(a published report never changes; publish it under a new id)"
        )
    return PublishedReport(_record(found), created=False)


class RolloutReportOps(StoreCore):
    def publish_rollout_report(
        self,
        summary: ReportSummary,
        document: Mapping[str, Any],
        *,
        content_hash: str,
        published_by: str | None = None,
    ) -> PublishedReport:
        lookup = select(*_LISTED).where(_r.c.id == summary.id)
        with self._read() as conn:
            found = conn.execute(lookup).mappings().first()
        if found is not None:
            return _same_or_conflict(found, content_hash)
        values = {
            "id": summary.id,
            "workflow": summary.workflow,
            "status": summary.status,
            "started_at": report_instant(summary.started_at),
            "finished_at": report_instant(summary.finished_at),
            "hosts": summary.hosts,
            "flagged": summary.flagged,
            "published_by": published_by,
            "published_at": self.clock(),
            "content_hash": content_hash,
        }
        try:
            with self._tx() as tx:
                tx.conn.execute(insert(_r).values(**values, document=dict(document)))
        except ConflictError:
            # Another publisher stored this id between our read and our insert.
            with self._read() as conn:
                again = conn.execute(lookup).mappings().first()
            if again is None:
                raise
            return _same_or_conflict(again, content_hash)
        return PublishedReport(_record(values), created=True)

    def list_rollout_reports(self, *, limit: int = 100) -> list[RolloutReportRecord]:
        stmt = select(*_LISTED).order_by(_r.c.published_at.desc(), _r.c.id).limit(limit)
        with self._read() as conn:
            return [_record(r) for r in conn.execute(stmt).mappings()]

    def get_rollout_report(self, report_id: str) -> RolloutReportRecord:
        with self._read() as conn:
            found = conn.execute(select(*_LISTED).where(_r.c.id == report_id)).mappings().first()
        if found is None:
            raise NotFoundError(f"no rollout report {report_id}")
        return _record(found)

    def rollout_report_document(self, report_id: str) -> dict[str, Any]:
        with self._read() as conn:
            doc = conn.execute(select(_r.c.document).where(_r.c.id == report_id)).scalar()
        if doc is None:
            raise NotFoundError(f"no rollout report {report_id}")
        return dict(doc)
