"""Run a script version or an ad-hoc command on a set of hosts, in memory.

This is the library's and the CLI's path (no database): coerce parameters
before anything starts, build one plan per host, hand them to the dispatcher.
The server's path persists the same steps through the store instead.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from muster.domain.executions import Execution
from muster.domain.hosts import Host
from muster.domain.params import coerce_values
from muster.domain.planbuilder import build_command_plan, build_script_plan
from muster.domain.plans import Plan
from muster.domain.scripts import ScriptVersion, Shell
from muster.engine.dispatcher import Dispatcher

__all__ = ["Job", "command_job", "run_job", "script_job"]


@dataclass(frozen=True, slots=True)
class Job:
    """What to run, already validated: plans are built per host from it."""

    description: str
    shell: Shell
    version: ScriptVersion | None = None
    values: Mapping[str, object] | None = None
    command: str | None = None
    timeout: float = 300

    def plan_for(self, host: Host, run_id: str) -> Plan:
        if self.version is not None:
            return build_script_plan(
                self.version, dict(self.values or {}), run_id=run_id, platform=host.platform
            )
        assert self.command is not None
        return build_command_plan(self.command, timeout=self.timeout, shell=self.shell)


def script_job(version: ScriptVersion, params: Mapping[str, object] | None = None) -> Job:
    """Validate ``params`` against the version now, so bad input fails before any host."""
    values = coerce_values(version.parameters, dict(params or {}))
    label = f"{version.name} v{version.version}" if version.version else version.name
    return Job(
        description=f"script {label} ({version.content_hash[:12]})",
        shell=Shell(version.shell),
        version=version,
        values=values,
        timeout=version.timeout,
    )


def command_job(command: str, *, timeout: float = 300, shell: Shell = Shell.SH) -> Job:
    return Job(description=f"command {command}", shell=shell, command=command, timeout=timeout)


async def run_job(
    dispatcher: Dispatcher, job: Job, hosts: Sequence[Host], *, execution_id: str | None = None
) -> Execution:
    """Dispatch ``job`` on ``hosts`` and return the finished execution."""
    execution = Execution.create(
        id=execution_id or uuid.uuid4().hex, description=job.description, hosts=hosts
    )
    run_prefix = execution.id[:12]

    def plan_for(host: Host) -> Plan:
        return job.plan_for(host, f"{run_prefix}_{_safe(host.name)}")

    # Scripts and commands alike: hosts that cannot run the shell are skipped,
    # by the rule the server applies when it queues them.
    return await dispatcher.run(execution, plan_for, hosts, required_shell=job.shell.value)


def _safe(name: str) -> str:
    return "".join(c if (c.isascii() and c.isalnum()) or c in "-_" else "_" for c in name)[:40]
