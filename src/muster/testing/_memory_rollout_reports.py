"""Published rollout reports in memory, as ``store/rollout_report_ops.py`` keeps them."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from muster.domain.rollout_report import ReportSummary
from muster.errors import ConflictError, NotFoundError
from muster.store.rollout_reports import PublishedReport, RolloutReportRecord, report_instant
from muster.testing._memory_core import MemoryCore

__all__ = ["RolloutReportOps"]


class RolloutReportOps(MemoryCore):
    def reset(self) -> None:
        super().reset()
        with self._lock:
            #: Report id -> (its listed columns, the document as JSON text).
            self._rollout_reports: dict[str, tuple[RolloutReportRecord, str]] = {}

    def _reports(self) -> dict[str, tuple[RolloutReportRecord, str]]:
        return self._rollout_reports

    def publish_rollout_report(
        self,
        summary: ReportSummary,
        document: Mapping[str, Any],
        *,
        content_hash: str,
        published_by: str | None = None,
    ) -> PublishedReport:
        # Kept as JSON text, as a database keeps it: later changes to the caller's
        # dict cannot reach the stored report, and what is not JSON fails here too.
        text = json.dumps(document)
        with self._tx():
            reports = self._reports()
            if summary.id in reports:
                record = reports[summary.id][0]
                if record.content_hash != content_hash:
                    raise ConflictError(
                        f"rollout report {summary.id} is already published with other "
                        "content (a published report never changes; publish it under a new id)"
                    )
                return PublishedReport(record, created=False)
            record = RolloutReportRecord(
                id=summary.id,
                workflow=summary.workflow,
                status=summary.status,
                started_at=report_instant(summary.started_at),
                finished_at=report_instant(summary.finished_at),
                hosts=summary.hosts,
                flagged=summary.flagged,
                published_by=published_by,
                published_at=self.clock(),
                content_hash=content_hash,
            )
            reports[summary.id] = (record, text)
            return PublishedReport(record, created=True)

    def list_rollout_reports(self, *, limit: int = 100) -> list[RolloutReportRecord]:
        with self._tx():
            records = [r for r, _ in self._reports().values()]
        records.sort(key=lambda r: r.id)
        records.sort(key=lambda r: r.published_at, reverse=True)
        return copy.copy(records[:limit])

    def _found(self, report_id: str) -> tuple[RolloutReportRecord, str]:
        with self._tx():
            found = self._reports().get(report_id)
        if found is None:
            raise NotFoundError(f"no rollout report {report_id}")
        return found

    def get_rollout_report(self, report_id: str) -> RolloutReportRecord:
        return self._found(report_id)[0]

    def rollout_report_document(self, report_id: str) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self._found(report_id)[1])
        return doc
