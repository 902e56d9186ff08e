"""Published rollout reports in the store: the :class:`RolloutReportStore` protocol.

A report is stored whole, as published (already masked by the caller), with
the columns it is listed by and the SHA-256 of its content. Publishing is
idempotent on content: the same id with the same hash returns the stored
report unchanged; the same id with other content is a ``ConflictError`` (a
report, once published, is evidence and never changes).

SQLAlchemy-free: the in-memory store and the server import it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from muster.domain.rollout_report import ReportSummary

__all__ = ["PublishedReport", "RolloutReportRecord", "RolloutReportStore", "report_instant"]


@dataclass(frozen=True, slots=True)
class RolloutReportRecord:
    """One published report's listed columns (the document is read separately)."""

    id: str
    workflow: str
    status: str
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    hosts: int
    flagged: int
    published_by: str | None
    published_at: dt.datetime
    content_hash: str


@dataclass(frozen=True, slots=True)
class PublishedReport:
    record: RolloutReportRecord
    #: False when an identical report was already stored (nothing written).
    created: bool


def report_instant(text: str | None) -> dt.datetime | None:
    """A document's ISO time as an aware UTC datetime (``None`` if absent or unreadable)."""
    if not text:
        return None
    try:
        at = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return (at if at.tzinfo else at.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


class RolloutReportStore(Protocol):
    """Published rollout reports: publish once, list, read."""

    def publish_rollout_report(
        self,
        summary: ReportSummary,
        document: Mapping[str, Any],
        *,
        content_hash: str,
        published_by: str | None = None,
    ) -> PublishedReport:
        """Store ``document`` under ``summary.id``; identical content again is a no-op,
        other content under a stored id raises ``ConflictError``."""
        ...

    def list_rollout_reports(self, *, limit: int = 100) -> list[RolloutReportRecord]:
        """Newest published first."""
        ...

    def get_rollout_report(self, report_id: str) -> RolloutReportRecord: ...
    def rollout_report_document(self, report_id: str) -> dict[str, Any]: ...
