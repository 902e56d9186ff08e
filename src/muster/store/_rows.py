"""Rows to records: the one place that knows column names map to record fields."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import RowMapping

from muster.domain.hosts import TransportKind
from muster.domain.params import ParameterSpec
from muster.domain.scripts import Library, Shell
from muster.domain.states import ExecutionStatus, HostRunState, Priority
from muster.domain.throttle import Throttle
from muster.store.base import (
    ExecutionKind,
    ExecutionRecord,
    HostRecord,
    HostRunRecord,
    OutputChunk,
    ScriptRecord,
    VersionRecord,
)
from muster.store.tables import STATE_COUNTERS

__all__ = [
    "execution_record",
    "host_record",
    "host_run_record",
    "output_chunk",
    "script_record",
    "version_record",
]


def script_record(r: RowMapping) -> ScriptRecord:
    return ScriptRecord(
        id=r["id"],
        name=r["name"],
        description=r["description"],
        tags=tuple(r["tags"] or ()),
        latest_version=r["latest_version"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
        deleted_at=r["deleted_at"],
    )


def version_record(r: RowMapping, script_name: str) -> VersionRecord:
    return VersionRecord(
        script_id=r["script_id"],
        script_name=script_name,
        number=r["number"],
        content_hash=r["content_hash"],
        shell=Shell(r["shell"]),
        body=r["body"],
        parameters=tuple(ParameterSpec.from_dict(p) for p in r["parameters"]),
        timeout=r["timeout"],
        requires_approval=r["requires_approval"],
        idempotent=r["idempotent"],
        libraries=tuple(Library(name=x["name"], body=x["body"]) for x in r["libraries"]),
        description=r["description"],
        created_at=r["created_at"],
        created_by=r["created_by"],
    )


def host_record(r: RowMapping) -> HostRecord:
    return HostRecord(
        id=r["id"],
        name=r["name"],
        address=r["address"],
        port=r["port"],
        user=r["user"],
        transport=TransportKind(r["transport"]),
        platform=r["platform"],
        shells=tuple(r["shells"]),
        labels=dict(r["labels"]),
        groups=tuple(r["groups"]),
        vars=dict(r["vars"]),
        key_file=r["key_file"],
        credential_ref=r["credential_ref"],
        last_contact=r["last_contact"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
    )


def host_run_record(r: RowMapping) -> HostRunRecord:
    return HostRunRecord(
        id=r["id"],
        execution_id=r["execution_id"],
        host_id=r["host_id"],
        host_name=r["host_name"],
        state=HostRunState(r["state"]),
        attempt=r["attempt"],
        retry_of=r["retry_of"],
        superseded=r["superseded"],
        priority=Priority(r["priority"]),
        timeout=r["timeout"],
        queued_at=r["queued_at"],
        available_at=r["available_at"],
        claimed_at=r["claimed_at"],
        started_at=r["started_at"],
        finished_at=r["finished_at"],
        exit_code=r["exit_code"],
        reason=r["reason"],
        message=r["message"],
        waiting_reason=r["waiting_reason"],
        owner=r["owner"],
        epoch=r["epoch"],
        lease_expires_at=r["lease_expires_at"],
        cancel_requested=r["cancel_requested"],
        stdout_tail=r["stdout_tail"],
        stderr_tail=r["stderr_tail"],
        stdout_bytes=r["stdout_bytes"],
        stderr_bytes=r["stderr_bytes"],
        stored_bytes=r["stored_bytes"],
        stdout_truncated=r["stdout_truncated"],
        stderr_truncated=r["stderr_truncated"],
        chunks=r["chunks"],
        events=r["events"],
    )


def counts_of(r: Mapping[str, Any] | RowMapping) -> dict[str, int]:
    return {s: int(r[f"n_{s}"]) for s in STATE_COUNTERS}


def execution_record(r: RowMapping, host_runs: tuple[HostRunRecord, ...] = ()) -> ExecutionRecord:
    return ExecutionRecord(
        id=r["id"],
        kind=ExecutionKind(r["kind"]),
        job_type=r["job_type"],
        description=r["description"],
        script_id=r["script_id"],
        script_version=r["script_version"],
        content_hash=r["content_hash"],
        command=r["command"],
        shell=r["shell"],
        timeout=r["timeout"],
        idempotent=r["idempotent"],
        parameters=dict(r["parameters"]),
        secret_fields=tuple(r["secret_fields"]),
        priority=Priority(r["priority"]),
        requested_by=r["requested_by"],
        policy=dict(r["policy"]),
        created_at=r["created_at"],
        finished_at=r["finished_at"],
        status=ExecutionStatus(r["status"]),
        counts=counts_of(r),
        host_runs=host_runs,
        throttle=Throttle(r["forks"], r["per_group"], r["delay_seconds"] or 0.0),
    )


def output_chunk(r: RowMapping) -> OutputChunk:
    return OutputChunk(
        id=r["id"],
        execution_id=r["execution_id"],
        host_run_id=r["host_run_id"],
        stream=r["stream"],
        seq=r["seq"],
        data=r["data"],
        created_at=r["created_at"],
    )
