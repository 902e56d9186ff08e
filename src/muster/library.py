"""The library face's verbs: run a script or command on a selector from Python.

import muster
inv = muster.load_inventory("hosts.ini")
patch = muster.ScriptVersion(name="patch", shell=muster.Shell.BASH, body="...",
                             parameters=(muster.ParameterSpec("target_dir", required=True),))
result = muster.run(inv, "web:&dc1", script=patch, params={"target_dir": "/var/www"})
result.status, result.successful_hosts, result.failed_hosts
result.host_runs["web1"].stdout
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence

from muster.app import SshOptions, default_transports
from muster.domain.executions import Execution
from muster.domain.hosts import Host
from muster.domain.inventory import Inventory
from muster.domain.scripts import ScriptVersion
from muster.domain.selectors import select
from muster.engine.dispatcher import Dispatcher, DispatchPolicy, ExecutionListener
from muster.engine.local_audit import audited, open_audit
from muster.engine.runner import command_job, run_job, script_job
from muster.engine.windows import WindowRule
from muster.errors import SelectorError, ValidationError

__all__ = ["run", "run_async"]


async def run_async(
    inventory: Inventory | Sequence[Host],
    selector: str = "all",
    *,
    script: ScriptVersion | None = None,
    command: str | None = None,
    params: Mapping[str, object] | None = None,
    timeout: float = 300,
    policy: DispatchPolicy | None = None,
    ssh: SshOptions | None = None,
    listener: ExecutionListener | None = None,
    windows: WindowRule | None = None,
    audit: str | os.PathLike[str] | bool | None = None,
) -> Execution:
    """Run ``script`` (with ``params``) or ``command`` on the hosts ``selector`` picks.

    Parameters are checked before any host is contacted; a selector that
    matches nothing is an error rather than a silent no-op. ``windows``
    holds each host to its maintenance windows (wait for one, or fail
    outside; see :mod:`muster.engine.windows`). ``audit``: the local audit file every
    host run is recorded in (``None``: the default, see
    :mod:`muster.engine.local_audit`; ``False``: not recorded).
    """
    if (script is None) == (command is None):
        raise ValidationError("give exactly one of script= or command=", field="script")
    if script is not None:
        job = script_job(script, params)
    else:
        if params:
            raise ValidationError("params only apply to a script", field="params")
        assert command is not None
        job = command_job(command, timeout=timeout)
    hosts = select(inventory, selector) if isinstance(inventory, Inventory) else list(inventory)
    if not hosts:
        raise SelectorError(f"selector {selector!r} matches no host", field="selector")
    log = open_audit(audit)
    transports = audited(default_transports(ssh, kinds={host.transport for host in hosts}), log)
    try:
        return await run_job(
            Dispatcher(transports, policy or DispatchPolicy(), listener, windows), job, hosts
        )
    finally:
        for t in transports.values():
            await t.close()
        if log is not None:
            log.close()


def run(
    inventory: Inventory | Sequence[Host],
    selector: str = "all",
    **kwargs: object,
) -> Execution:
    """Blocking form of :func:`run_async` for scripts and notebooks."""
    return asyncio.run(run_async(inventory, selector, **kwargs))  # type: ignore[arg-type]
