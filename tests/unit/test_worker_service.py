"""WorkerService on the in-memory store: admin only, audited, lost read from the clock."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from muster.domain.workers import WorkerState
from muster.errors import PermissionDeniedError
from muster.security.rbac import Permission
from muster.services.actor import Actor
from muster.services.workers import WorkerService
from muster.testing import FakeClock, InMemoryStore


class _Audit:
    def __init__(self) -> None:
        self.records: list[tuple[str, str, str]] = []

    def record_audit(
        self,
        *,
        actor: str,
        action: str,
        target: str,
        address: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        self.records.append((actor, action, target))


ADMIN = Actor("root", permissions=frozenset({Permission.ADMIN}), address="10.0.0.1")
VIEWER = Actor("vic", permissions=frozenset({Permission.JOBS_VIEW}))


def test_drain_and_resume_are_admin_only_and_audited() -> None:
    clock = FakeClock()
    store = InMemoryStore(clock=clock)
    audit = _Audit()
    service = WorkerService(store, audit, clock)
    store.register_worker("w1", hostname="n", pid=1, lease_seconds=30)
    with pytest.raises(PermissionDeniedError, match="admin"):
        service.drain(VIEWER, "w1")
    assert not store.get_worker("w1").drain_requested and audit.records == []
    view = service.drain(ADMIN, "w1")
    assert view.record.drain_requested_by == "root" and view.may_resume and not view.may_drain
    assert not service.resume(ADMIN, "w1").record.drain_requested
    assert audit.records == [
        ("root", "worker.drain", "worker:w1"),
        ("root", "worker.resume", "worker:w1"),
    ]
    clock.advance(31)
    assert [v.state for v in service.workers()] == [WorkerState.LOST]
