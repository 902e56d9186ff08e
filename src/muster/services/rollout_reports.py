"""Publishing a rollout report: check its shape, mask its secrets, store it once, audit.

The server's one path for ``POST /api/v1/rollouts`` (the CLI publishes through
it). Masking happens here, before anything is stored or hashed: the values
of the document's own secret parameters and of every credential in the vault
are replaced by ``***`` in every string, so a report written by an older or
careless publisher still never stores a secret in clear.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from muster.domain.rollout_report import (
    check_document,
    document_hash,
    host_entries,
    mask_document,
    summarize,
)
from muster.services.actor import Actor, AuditSink
from muster.store.rollout_reports import PublishedReport, RolloutReportStore

__all__ = ["RolloutReportService"]


class RolloutReportService:
    """``secrets`` gives the values to mask (the vault's, read when a report arrives)."""

    def __init__(
        self,
        store: RolloutReportStore,
        audit: AuditSink | None = None,
        secrets: Callable[[], Iterable[str]] = tuple,
    ) -> None:
        self.store = store
        self.audit = audit
        self.secrets = secrets

    def publish(self, who: Actor | None, document: object) -> PublishedReport:
        checked = check_document(document)
        if not isinstance(checked.get("hosts"), Mapping):
            # A plain RolloutRun.to_dict() (an older writer): derive the host view.
            checked = {**checked, "hosts": host_entries(checked)}
        doc = mask_document(checked, self.secrets())
        summary = summarize(doc)
        out = self.store.publish_rollout_report(
            summary,
            doc,
            content_hash=document_hash(doc),
            published_by=who.name if who is not None else None,
        )
        if self.audit is not None:
            self.audit.record_audit(
                actor=who.name if who is not None else "system",
                action="rollout.publish",
                target=f"rollout:{summary.id}",
                address=who.address if who is not None else None,
                details={
                    "workflow": summary.workflow,
                    "status": summary.status,
                    "hosts": summary.hosts,
                    "flagged": summary.flagged,
                    "content_hash": out.record.content_hash,
                    "created": out.created,
                },
            )
        return out
