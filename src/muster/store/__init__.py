"""Persistence and the work queue: the Store protocol, its records, the SQL store."""

from muster.store.base import (
    ClaimedRun,
    ExecutionKind,
    ExecutionRecord,
    HostRecord,
    HostRunRecord,
    HostTarget,
    LeaseStatus,
    NewExecution,
    OutputChunk,
    Page,
    ReapReport,
    SavedScript,
    ScriptRecord,
    Store,
    VersionRecord,
)

__all__ = [
    "ClaimedRun",
    "ExecutionKind",
    "ExecutionRecord",
    "HostRecord",
    "HostRunRecord",
    "HostTarget",
    "LeaseStatus",
    "NewExecution",
    "OutputChunk",
    "Page",
    "ReapReport",
    "SavedScript",
    "ScriptRecord",
    "Store",
    "VersionRecord",
]
