"""Turn an execution request into stored work, or reject it with nothing stored.

Everything that can be wrong with a request (unknown host, bad parameter, a
value no shell can carry) is found here, before ``create_execution``; hosts
that cannot run the shell are recorded as skipped with the reason.
Running on the server's own machine (a local-transport host) needs
``hosts.local`` of the caller; without a caller it is refused.

:class:`Submission` is what every face that submits work for a caller uses
(the API's execute, commands and jobs; the console's execute form): it asks
the approval gate, stores the execution, then opens the approval request at
once if one is needed (requester = the caller, who then cannot approve it)
and writes the audit record of who asked for what, from where, with which
pinned script hash and parameters (secret values already ``***``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from muster.domain.approval_rules import ApprovalGate, ApprovalNeed, approval_policy
from muster.domain.hosts import Host
from muster.domain.inventory import Inventory
from muster.domain.jobtypes import RenderedJob
from muster.domain.params import coerce_values
from muster.domain.planbuilder import ENV_PREFIX, build_command_plan, build_script_plan
from muster.domain.scripts import ScriptVersion, Shell
from muster.domain.secret import Secret
from muster.domain.selectors import select
from muster.domain.states import Priority
from muster.domain.throttle import Throttle, group_key
from muster.errors import MusterError, NotFoundError, SelectorError, ValidationError
from muster.services.actor import Actor
from muster.services.approvals import Approvals
from muster.services.local_hosts import local_names, require_local_permission
from muster.store.base import (
    ExecutionKind,
    ExecutionRecord,
    HostTarget,
    NewExecution,
    Store,
    VersionRecord,
)
from muster.store.protocols import AuditStore

__all__ = [
    "Prepared",
    "Submission",
    "prepare_command",
    "prepare_job",
    "prepare_script",
    "resolve_hosts",
    "submit_command",
    "submit_job",
    "submit_script",
]

_UNLIMITED = Throttle()


def resolve_hosts(store: Store, refs: Sequence[str]) -> list[Host]:
    """Hosts by id, name or selector (group, glob, ``label=value``, ``*``), in request
    order, each once; refs that match nothing are rejected, naming ``host_ids``."""
    hosts: list[Host] = []
    seen: set[str] = set()
    missing: list[str] = []
    fleet: tuple[Inventory, dict[str, Host]] | None = None

    def add(host: Host) -> None:
        key = host.id or host.name
        if key not in seen:
            seen.add(key)
            hosts.append(host)

    for ref in refs:
        try:
            add(store.get_host(ref).to_host())
            continue
        except NotFoundError:
            pass
        if fleet is None:
            stored = {r.name: r.to_host() for r in store.list_hosts()}
            inventory = Inventory()
            for host in stored.values():
                inventory.add_host(host)
            fleet = (inventory, stored)
        try:
            picked = [fleet[1][h.name] for h in select(fleet[0], ref) if h.name in fleet[1]]
        except SelectorError:
            picked = []
        if not picked:
            missing.append(ref)
        for host in picked:
            add(host)
    if missing:
        text = f"unknown host(s) or selector(s) matching nothing: {', '.join(missing)}"
        raise ValidationError(text, field="host_ids", problems={"host_ids": text})
    return hosts


def _resolve_for(store: Store, refs: Sequence[str], actor: Actor | None) -> list[Host]:
    """``resolve_hosts``, refused (403, naming them) when it reaches the server's own
    machine and ``actor`` may not: a selector is never quietly narrowed."""
    hosts = resolve_hosts(store, refs)
    require_local_permission(actor, local_names(hosts), doing="run anything on")
    return hosts


def _shell_skip(host: Host, shell: str) -> str | None:
    if not host.has_shell(shell):
        have = ", ".join(host.effective_shells) or "none"
        return f"host does not advertise shell {shell} (has: {have})"
    return None


@dataclass(frozen=True, slots=True)
class Prepared:
    """A checked request, not stored yet: what ``create_execution`` would persist, the
    hosts it resolved to and the approval it would wait for.

    The submit functions store it at once; a dry run (:mod:`muster.services.preview`)
    shows it; the durable workflow driver stores it in the same transaction as the
    step that dispatches it, so a step never gets two executions.
    """

    new: NewExecution
    hosts: tuple[Host, ...]
    need: ApprovalNeed | None
    #: Coerced parameter values (secrets as ``Secret``); scripts only.
    values: Mapping[str, object] = field(default_factory=dict)
    version: ScriptVersion | None = None


def prepare_script(
    store: Store,
    version: VersionRecord,
    host_refs: Sequence[str],
    raw_values: Mapping[str, object],
    *,
    requested_by: str | None = None,
    actor: Actor | None = None,
    throttle: Throttle = _UNLIMITED,
    gate: ApprovalGate,
    description: str | None = None,
) -> Prepared:
    """Check running ``version`` on the hosts; nothing is stored.

    ``gate`` alone decides whether it waits for approval (the script's and the
    targeted groups' rules); the version's own ``requires_approval`` does not.
    """
    hosts = _resolve_for(store, host_refs, actor)
    need = gate(ExecutionKind.SCRIPT.value, hosts, version.script_id)
    domain = version.domain()
    values = coerce_values(domain.parameters, dict(raw_values))
    targets: list[HostTarget] = []
    checked: set[str] = set()
    for host in hosts:
        skip = _shell_skip(host, domain.shell.value)
        if skip is None and domain.shell.is_windows != host.is_windows:
            skip = f"shell {domain.shell.value} cannot run on platform {host.platform}"
        if skip is None and host.platform not in checked:
            # Render once per platform now, so a value no shell can carry fails
            # the request instead of every host.
            build_script_plan(domain, values, run_id="check", platform=host.platform)
            checked.add(host.platform)
        targets.append(HostTarget(host.id, host.name, skip, group_key(host.groups)))
    label = f"{domain.name} v{version.number}"
    new = NewExecution(
        kind=ExecutionKind.SCRIPT,
        targets=targets,
        timeout=domain.timeout,
        priority=Priority.NORMAL,
        parameters=values,
        script_id=version.script_id,
        script_version=version.number,
        content_hash=version.content_hash,
        idempotent=domain.idempotent,
        requires_approval=need is not None,
        policy=approval_policy(need),
        shell=domain.shell.value,
        description=description or f"script {label} ({version.content_hash[:12]})",
        requested_by=requested_by,
        throttle=throttle,
    )
    return Prepared(new, tuple(hosts), need, values, domain)


def submit_script(
    store: Store,
    version: VersionRecord,
    host_refs: Sequence[str],
    raw_values: Mapping[str, object],
    *,
    requested_by: str | None = None,
    actor: Actor | None = None,
    throttle: Throttle = _UNLIMITED,
    gate: ApprovalGate,
) -> str:
    """Validate and queue ``version`` on the hosts; return the execution id."""
    prepared = prepare_script(
        store,
        version,
        host_refs,
        raw_values,
        requested_by=requested_by,
        actor=actor,
        throttle=throttle,
        gate=gate,
    )
    return store.create_execution(prepared.new).id


def prepare_command(
    store: Store,
    command: str,
    host_refs: Sequence[str],
    *,
    timeout: float,
    shell: str = "sh",
    requested_by: str | None = None,
    actor: Actor | None = None,
    throttle: Throttle = _UNLIMITED,
    gate: ApprovalGate,
    description: str | None = None,
    env: Mapping[str, str | Secret] | None = None,
) -> Prepared:
    """Check running one command line on the hosts; nothing is stored.

    ``env`` (a workflow's environment) travels with the execution's parameters as
    ``env:NAME`` entries; see :func:`command_env`.
    """
    try:
        sh = Shell(shell)
    except ValueError:
        allowed = ", ".join(s.value for s in Shell)
        raise ValidationError(
            f"unknown shell {shell!r} (one of {allowed})", field="shell"
        ) from None
    build_command_plan(command, timeout=timeout, shell=sh)
    hosts = _resolve_for(store, host_refs, actor)
    need = gate(ExecutionKind.COMMAND.value, hosts, None)
    targets = [
        HostTarget(h.id, h.name, _shell_skip(h, sh.value), group_key(h.groups)) for h in hosts
    ]
    parameters: dict[str, object] = {f"{ENV_PREFIX}{k}": v for k, v in (env or {}).items()}
    new = NewExecution(
        kind=ExecutionKind.COMMAND,
        targets=targets,
        timeout=timeout,
        priority=Priority.NORMAL,
        parameters=parameters,
        command=command,
        shell=sh.value,
        requires_approval=need is not None,
        policy=approval_policy(need),
        description=description or f"command {command[:200]}",
        requested_by=requested_by,
        throttle=throttle,
    )
    return Prepared(new, tuple(hosts), need, parameters)


def submit_command(
    store: Store,
    command: str,
    host_refs: Sequence[str],
    *,
    timeout: float,
    shell: str = "sh",
    requested_by: str | None = None,
    actor: Actor | None = None,
    throttle: Throttle = _UNLIMITED,
    gate: ApprovalGate,
) -> str:
    prepared = prepare_command(
        store,
        command,
        host_refs,
        timeout=timeout,
        shell=shell,
        requested_by=requested_by,
        actor=actor,
        throttle=throttle,
        gate=gate,
    )
    return store.create_execution(prepared.new).id


def submit_job(
    store: Store,
    job: RenderedJob,
    fields: Mapping[str, object],
    host_refs: Sequence[str],
    *,
    requested_by: str | None = None,
    actor: Actor | None = None,
    throttle: Throttle = _UNLIMITED,
    gate: ApprovalGate,
) -> str:
    """Queue a built-in job; its fields are stored (password sealed as a secret)."""
    return store.create_execution(
        prepare_job(
            store,
            job,
            fields,
            host_refs,
            requested_by=requested_by,
            actor=actor,
            throttle=throttle,
            gate=gate,
        ).new
    ).id


def prepare_job(
    store: Store,
    job: RenderedJob,
    fields: Mapping[str, object],
    host_refs: Sequence[str],
    *,
    requested_by: str | None = None,
    actor: Actor | None = None,
    throttle: Throttle = _UNLIMITED,
    gate: ApprovalGate,
) -> Prepared:
    """Check a built-in job on the hosts; nothing is stored."""
    hosts = _resolve_for(store, host_refs, actor)
    need = gate(ExecutionKind.JOB.value, hosts, None)
    targets = [
        HostTarget(
            h.id,
            h.name,
            "built-in jobs for Windows are rendered as data only; not runnable here"
            if h.is_windows
            else None,
            group_key(h.groups),
        )
        for h in hosts
    ]
    stored: dict[str, object] = {
        k: Secret(v) if k == "password" and isinstance(v, str) else v for k, v in fields.items()
    }
    new = NewExecution(
        kind=ExecutionKind.JOB,
        targets=targets,
        timeout=job.timeout,
        priority=job.priority,
        parameters=stored,
        job_type=job.type.value,
        description=job.description,
        requested_by=requested_by,
        requires_approval=need is not None,
        policy={"windows": job.windows, **approval_policy(need)},
        throttle=throttle,
    )
    return Prepared(new, tuple(hosts), need, stored)


class Submission:
    """Submit work for a caller: gate, store, then open the approval request and audit.

    ``watch`` is told every new execution's id (the webhook watcher follows it);
    it must be callable from any thread.
    """

    def __init__(
        self,
        store: Store,
        approvals: Approvals,
        audit: AuditStore,
        *,
        watch: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self.approvals = approvals
        self.audit = audit
        self.watch = watch

    def script(
        self,
        actor: Actor | None,
        version: VersionRecord,
        host_refs: Sequence[str],
        values: Mapping[str, object],
        *,
        throttle: Throttle = _UNLIMITED,
    ) -> ExecutionRecord:
        """Run ``version`` (its exact content hash, pinned now) on the hosts."""
        execution_id = submit_script(
            self.store,
            version,
            host_refs,
            values,
            requested_by=actor.name if actor is not None else None,
            actor=actor,
            throttle=throttle,
            gate=self.approvals.need_for,
        )
        return self.after_submit(actor, execution_id)

    def prepare_script(
        self,
        actor: Actor | None,
        version: VersionRecord,
        host_refs: Sequence[str],
        values: Mapping[str, object],
        *,
        throttle: Throttle = _UNLIMITED,
    ) -> Prepared:
        """What :meth:`script` would store, checked the same way; nothing is stored
        (a dry run)."""
        return prepare_script(
            self.store,
            version,
            host_refs,
            values,
            requested_by=actor.name if actor is not None else None,
            actor=actor,
            throttle=throttle,
            gate=self.approvals.need_for,
        )

    def command(
        self,
        actor: Actor | None,
        command: str,
        host_refs: Sequence[str],
        *,
        timeout: float,
        shell: str = "sh",
        throttle: Throttle = _UNLIMITED,
    ) -> ExecutionRecord:
        """Run one command line through ``shell -c`` on the hosts."""
        execution_id = submit_command(
            self.store,
            command,
            host_refs,
            timeout=timeout,
            shell=shell,
            requested_by=actor.name if actor is not None else None,
            actor=actor,
            throttle=throttle,
            gate=self.approvals.need_for,
        )
        return self.after_submit(actor, execution_id)

    def job(
        self,
        actor: Actor | None,
        job: RenderedJob,
        fields: Mapping[str, object],
        host_refs: Sequence[str],
        *,
        throttle: Throttle = _UNLIMITED,
    ) -> ExecutionRecord:
        """Run a built-in job rendered from ``fields``."""
        execution_id = submit_job(
            self.store,
            job,
            fields,
            host_refs,
            requested_by=actor.name if actor is not None else None,
            actor=actor,
            throttle=throttle,
            gate=self.approvals.need_for,
        )
        return self.after_submit(actor, execution_id)

    def after_submit(self, actor: Actor | None, execution_id: str) -> ExecutionRecord:
        """Open the approval request if one is needed and audit the request (both only
        with a caller); hand the execution to ``watch``; return it as it stands."""
        execution = self.store.get_execution(execution_id)
        if actor is not None:
            execution = self._open_and_audit(actor, execution)
        if self.watch is not None:
            self.watch(execution.id)
        return execution

    def _open_and_audit(self, actor: Actor, execution: ExecutionRecord) -> ExecutionRecord:
        try:
            approval = self.approvals.open_for(execution, requester=actor.name)
        except MusterError as exc:
            # The policy cannot be met (e.g. nobody but the requester may approve):
            # the execution is refused visibly rather than left waiting forever.
            approval = None
            self.store.reject_execution(execution.id, f"approval request not possible: {exc}")
            execution = self.store.get_execution(execution.id)
        self.audit.record_audit(
            actor=actor.name,
            action="execution.create",
            target=f"execution:{execution.id}",
            address=actor.address,
            details={
                "kind": execution.kind.value,
                "script_id": execution.script_id,
                "script_version": execution.script_version,
                "content_hash": execution.content_hash,
                "job_type": execution.job_type,
                "command": execution.command,
                "parameters": dict(execution.parameters),
                "hosts": [r.host_name for r in execution.host_runs],
                "status": execution.status.value,
                "approval_id": approval.id if approval is not None else None,
                "approval_reasons": list(
                    (execution.policy.get("approval") or {}).get("reasons", [])
                ),
            },
            secret_keys=execution.secret_fields,
        )
        return execution
