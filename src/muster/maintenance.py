"""Seed 004's library face: build a maintenance workflow in Python, run it on a fleet.

    import muster
    inventory = muster.load_inventory("hosts.ini")
    auth = muster.SSHAuth.from_keyfile("~/.ssh/id_ed25519")
    wf = muster.MaintenanceWorkflow("os_patching")
    wf.add_task("backup", "tar -czf /backup/$(hostname).tar.gz /etc", targets=["*"])
    wf.add_task("update_repos", "apt-get update", targets=["*"])
    wf.add_task("upgrade_packages", "apt-get -y upgrade", targets=["*"],
                depends_on=["update_repos"])
    result = muster.Engine(inventory, auth).execute(wf)
    result.status, result.successful_servers, result.failed_servers
    result.task_results["backup"].hosts["web1"].stdout

A MaintenanceWorkflow is only a builder of the one workflow model
(:class:`muster.domain.workflows.Workflow`): the same definition as YAML runs
with ``muster workflow run`` and on the server, through the same engine.
Seed 004's rollout parts map onto the same model: ``set_progressive_execution``
is the workflow's ``rollout:`` (waves, verification tasks, auto-rollback,
soak, failure threshold), ``add_verification`` its ``verifications:``,
``set_maintenance_window`` its ``windows:``, ``add_task(rollback=...)`` a
step's ``rollback:``, ``set_parallelization`` its throttle. ``Engine.execute``
returns a :class:`~muster.engine.rollout_result.RolloutRun` (a workflow
without a rollout runs as one wave of everything).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from typing import Any

from muster.app import SshOptions, default_transports
from muster.domain.hosts import Host
from muster.domain.inventory import Inventory
from muster.domain.workflows import Workflow, load_workflow_text, parse_workflow, validate
from muster.engine.dispatcher import DispatchPolicy, ExecutionListener
from muster.engine.local_audit import audited, open_audit
from muster.engine.rollout import RolloutEngine
from muster.engine.rollout_result import RolloutRun
from muster.engine.workflow import ScriptResolver
from muster.ssh_auth import SSHAuth

__all__ = ["Engine", "MaintenanceWorkflow", "SSHAuth"]


class MaintenanceWorkflow:
    """A builder for a workflow of tasks (command steps) with targets and dependencies."""

    def __init__(self, name: str, description: str = "") -> None:
        self.name = name
        self.description = description
        self._steps: list[dict[str, Any]] = []
        self._throttle: dict[str, Any] = {}
        self._parameters: list[dict[str, Any]] = []
        self._env: dict[str, str] = {}
        self._rollout: dict[str, Any] | None = None
        self._verifications: dict[str, dict[str, Any]] = {}
        self._windows: dict[str, Any] = {}

    def add_task(
        self,
        name: str,
        command: str,
        targets: Sequence[str] | str | None = None,
        depends_on: Sequence[str] | None = None,
        *,
        on_success: str | None = None,
        on_failure: str | None = None,
        timeout: float | None = None,
        retries: int = 0,
        env: Mapping[str, str] | None = None,
        shell: str = "sh",
        idempotent: bool = False,
        rollback: str | None = None,
    ) -> MaintenanceWorkflow:
        """Add a command task; ``targets`` are selectors (``*``, groups, hosts, globs);
        ``rollback`` undoes it where it ran when a rollout rolls back."""
        step: dict[str, Any] = {"id": name, "type": "command", "command": command, "shell": shell}
        if targets is not None:
            step["targets"] = [targets] if isinstance(targets, str) else list(targets)
        if depends_on:
            step["depends_on"] = list(depends_on)
        for key, value in (
            ("on_success", on_success),
            ("on_failure", on_failure),
            ("timeout", timeout),
        ):
            if value is not None:
                step[key] = value
        if retries:
            step["retries"] = retries
        if env:
            step["env"] = dict(env)
        if idempotent:
            step["idempotent"] = True
        if rollback is not None:
            step["rollback"] = rollback
        return self.add_step(step)

    def add_step(self, step: Mapping[str, Any]) -> MaintenanceWorkflow:
        """Add any step as the YAML/JSON form writes it (approval, conditional, delay...)."""
        self._steps.append(dict(step))
        return self

    def add_parameter(self, name: str, type: str = "string", **spec: Any) -> MaintenanceWorkflow:
        self._parameters.append({"name": name, "type": type, **spec})
        return self

    def set_env(self, env: Mapping[str, str]) -> MaintenanceWorkflow:
        self._env = dict(env)
        return self

    def set_parallelization(self, config: Mapping[str, Any]) -> MaintenanceWorkflow:
        """Seed 004's ``max_parallel_servers``, ``max_parallel_per_group``,
        ``delay_between_servers`` (or forks, per_group, delay)."""
        self._throttle = dict(config)
        return self

    def set_progressive_execution(self, config: Mapping[str, Any]) -> MaintenanceWorkflow:
        """Roll out in waves: ``groups`` (or ``waves``: selector lists, host counts,
        ``"10%"``), ``verification_tasks``, ``auto_rollback``, ``soak``,
        ``failure_threshold``, ``threshold_scope``, ``wave_duration``, ``rollback_retry``."""
        self._rollout = dict(config)
        return self

    def add_verification(self, name: str, spec: Mapping[str, Any]) -> MaintenanceWorkflow:
        """Capture ``commands`` before ``before_tasks`` and after ``after_tasks`` on each
        host and compare them (``comparisons``); the evidence gates the wave."""
        self._verifications[name] = dict(spec)
        return self

    def set_maintenance_window(self, windows: Mapping[str, Any]) -> MaintenanceWorkflow:
        """Selector (group, host) -> window spec(s), e.g. ``"Sunday 01:00-03:00"``."""
        self._windows = dict(windows)
        return self

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"name": self.name, "steps": list(self._steps)}
        if self.description:
            doc["description"] = self.description
        if self._throttle:
            doc["throttle"] = dict(self._throttle)
        if self._parameters:
            doc["parameters"] = list(self._parameters)
        if self._env:
            doc["env"] = dict(self._env)
        if self._rollout is not None:
            doc["rollout"] = dict(self._rollout)
        if self._verifications:
            doc["verifications"] = dict(self._verifications)
        if self._windows:
            doc["windows"] = dict(self._windows)
        return doc

    def definition(self) -> Workflow:
        """The checked definition (raises WorkflowError naming the task and field)."""
        workflow = parse_workflow(self.to_dict())
        validate(workflow)
        return workflow


class Engine:
    """Runs workflows on an inventory, in this process (seed 004's ``Engine``).

    ``inventory`` is an Inventory, a list of hosts, or a path to an inventory
    file; ``auth`` how to log in (:class:`SSHAuth`, or raw :class:`SshOptions`).
    """

    def __init__(
        self,
        inventory: Inventory | Sequence[Host] | str | os.PathLike[str],
        auth: SSHAuth | SshOptions | None = None,
        *,
        policy: DispatchPolicy | None = None,
        scripts: ScriptResolver | None = None,
        listener: ExecutionListener | None = None,
        audit: str | os.PathLike[str] | bool | None = None,
    ) -> None:
        if isinstance(inventory, str | os.PathLike):
            from muster.engine.inventory_files import load_inventory

            inventory = load_inventory(os.fspath(inventory))
        self.inventory = inventory
        self.auth = auth
        self.policy = policy
        self.scripts = scripts
        self.listener = listener
        #: Where every host run is recorded (``None``: the default local audit file,
        #: ``False``: nowhere); see :mod:`muster.engine.local_audit`.
        self.audit = audit

    async def execute_async(
        self,
        workflow: MaintenanceWorkflow | Workflow | str,
        *,
        params: Mapping[str, object] | None = None,
        targets: str | None = None,
    ) -> RolloutRun:
        """Run ``workflow`` to its end (in waves when it has a rollout) and return its result."""
        from muster.testing import InMemoryStore

        if isinstance(workflow, MaintenanceWorkflow):
            workflow = workflow.definition()
        elif isinstance(workflow, str):
            workflow = load_workflow_text(workflow)
        validate(workflow)
        hosts = (
            self.inventory.all_hosts()
            if isinstance(self.inventory, Inventory)
            else list(self.inventory)
        )
        ssh = self.auth.ssh_options() if isinstance(self.auth, SSHAuth) else self.auth
        log = open_audit(self.audit)
        transports = audited(default_transports(ssh, kinds={h.transport for h in hosts}), log)
        engine = RolloutEngine(
            transports,
            self.inventory,
            store=InMemoryStore(),
            scripts=self.scripts,
            policy=self.policy,
            listener=self.listener,
        )
        try:
            return await engine.run(workflow, params=params, targets=targets)
        finally:
            await engine.close()
            for transport in transports.values():
                await transport.close()
            if log is not None:
                log.close()

    def execute(
        self,
        workflow: MaintenanceWorkflow | Workflow | str,
        *,
        params: Mapping[str, object] | None = None,
        targets: str | None = None,
    ) -> RolloutRun:
        """Blocking form of :meth:`execute_async`."""
        return asyncio.run(self.execute_async(workflow, params=params, targets=targets))
