"""Turn an execution request into stored work, or reject it with nothing stored.

Everything that can be wrong with a request (unknown host, bad parameter, a
value no shell can carry) is found here, before ``create_execution``; hosts
that cannot run the shell are recorded as skipped with the reason.
Running on the server's own machine (a local-transport host) needs
``hosts.local`` of the caller ``who``; without a caller it is refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from muster.domain.approval_rules import ApprovalGate, approval_policy
from muster.domain.hosts import Host
from muster.domain.inventory import Inventory
from muster.domain.jobtypes import RenderedJob
from muster.domain.params import coerce_values
from muster.domain.planbuilder import build_command_plan, build_script_plan
from muster.domain.scripts import Shell
from muster.domain.secret import Secret
from muster.domain.selectors import select
from muster.domain.states import Priority
from muster.domain.throttle import Throttle, group_key
from muster.errors import NotFoundError, SelectorError, ValidationError
from muster.security.rbac import Principal
from muster.server.local_hosts import local_names, require_local_permission
from muster.store.base import ExecutionKind, HostTarget, NewExecution, Store, VersionRecord

__all__ = ["resolve_hosts", "submit_command", "submit_job", "submit_script"]

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


def _resolve_for(store: Store, refs: Sequence[str], who: Principal | None) -> list[Host]:
    """``resolve_hosts``, refused (403, naming them) when it reaches the server's own
    machine and ``who`` may not: a selector is never quietly narrowed."""
    hosts = resolve_hosts(store, refs)
    require_local_permission(who, local_names(hosts), doing="run anything on")
    return hosts


def _shell_skip(host: Host, shell: str) -> str | None:
    if not host.has_shell(shell):
        have = ", ".join(host.effective_shells) or "none"
        return f"host does not advertise shell {shell} (has: {have})"
    return None


def submit_script(
    store: Store,
    version: VersionRecord,
    host_refs: Sequence[str],
    raw_values: Mapping[str, object],
    *,
    requested_by: str | None = None,
    who: Principal | None = None,
    throttle: Throttle = _UNLIMITED,
    gate: ApprovalGate,
) -> str:
    """Validate and queue ``version`` on the hosts; return the execution id.

    ``gate`` alone decides whether it waits for approval (the script's and the
    targeted groups' rules); the version's own ``requires_approval`` does not.
    """
    hosts = _resolve_for(store, host_refs, who)
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
    return store.create_execution(
        NewExecution(
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
            description=f"script {label} ({version.content_hash[:12]})",
            requested_by=requested_by,
            throttle=throttle,
        )
    ).id


def submit_command(
    store: Store,
    command: str,
    host_refs: Sequence[str],
    *,
    timeout: float,
    shell: str = "sh",
    requested_by: str | None = None,
    who: Principal | None = None,
    throttle: Throttle = _UNLIMITED,
    gate: ApprovalGate,
) -> str:
    try:
        sh = Shell(shell)
    except ValueError:
        allowed = ", ".join(s.value for s in Shell)
        raise ValidationError(
            f"unknown shell {shell!r} (one of {allowed})", field="shell"
        ) from None
    build_command_plan(command, timeout=timeout, shell=sh)
    hosts = _resolve_for(store, host_refs, who)
    need = gate(ExecutionKind.COMMAND.value, hosts, None)
    targets = [
        HostTarget(h.id, h.name, _shell_skip(h, sh.value), group_key(h.groups)) for h in hosts
    ]
    return store.create_execution(
        NewExecution(
            kind=ExecutionKind.COMMAND,
            targets=targets,
            timeout=timeout,
            priority=Priority.NORMAL,
            command=command,
            shell=sh.value,
            requires_approval=need is not None,
            policy=approval_policy(need),
            description=f"command {command[:200]}",
            requested_by=requested_by,
            throttle=throttle,
        )
    ).id


def submit_job(
    store: Store,
    job: RenderedJob,
    fields: Mapping[str, object],
    host_refs: Sequence[str],
    *,
    requested_by: str | None = None,
    who: Principal | None = None,
    throttle: Throttle = _UNLIMITED,
    gate: ApprovalGate,
) -> str:
    """Queue a built-in job; its fields are stored (password sealed as a secret)."""
    hosts = _resolve_for(store, host_refs, who)
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
    return store.create_execution(
        NewExecution(
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
    ).id
