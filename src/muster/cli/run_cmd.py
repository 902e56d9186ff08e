"""``muster run``: a command or a script on every selected host at once."""

from __future__ import annotations

import asyncio
import gc
import json
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from muster.app import SshOptions, default_transports
from muster.cli.common import (
    EXIT_HOSTS_FAILED,
    AuditFileOption,
    NoAuditOption,
    fail,
    open_local_audit,
    pick_hosts,
)
from muster.cli.human import FEW_HOSTS, HumanReport, OutputMode, Terminal
from muster.cli.output_files import OutputDir
from muster.cli.present import LiveReport, host_end, summary_table
from muster.cli.run_waves import (
    AutoRollbackOption,
    MaxFailuresOption,
    RollbackOption,
    SoakOption,
    ThresholdScopeOption,
    VerifyOption,
    WavesOption,
    rollout_options,
    run_in_waves,
)
from muster.cli.run_windows import window_rule
from muster.domain.durations import parse_duration
from muster.domain.executions import Execution, HostRun
from muster.domain.hosts import Host, TransportKind
from muster.domain.states import ExecutionStatus
from muster.engine.dispatcher import Dispatcher, DispatchPolicy, ExecutionListener
from muster.engine.runner import Job, command_job, run_job, script_job
from muster.engine.script_files import load_script_file
from muster.engine.windows import WindowMode, WindowRule
from muster.errors import MusterError
from muster.transports.base import Stream, Transport
from muster.transports.ssh_policy import HostKeyPolicy

if TYPE_CHECKING:
    from muster.engine.local_audit import LocalAuditLog


def run(
    selector: Annotated[
        str,
        typer.Argument(
            help="Host pattern: '*', group, host, 'web*', 'label=value', 'a,b', 'a:&b', 'a:!b'."
        ),
    ],
    command: Annotated[
        list[str] | None, typer.Argument(help="Command to run, after --.", show_default=False)
    ] = None,
    inventory: Annotated[
        list[Path] | None,
        typer.Option("-i", "--inventory", help="Ansible INI/YAML or OpenSSH config; repeatable."),
    ] = None,
    script: Annotated[
        Path | None, typer.Option("--script", "-s", help="Script file to run instead.")
    ] = None,
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="Script parameter NAME=VALUE.")
    ] = None,
    shell: Annotated[str | None, typer.Option(help="Script shell (default: from header).")] = None,
    timeout: Annotated[
        str | None, typer.Option(help="Per-host timeout, e.g. 5m (default: script's, or 300s).")
    ] = None,
    forks: Annotated[int, typer.Option(help="Hosts running at once.", min=1)] = 50,
    per_group: Annotated[
        int | None, typer.Option("--per-group", help="Hosts running at once per group.", min=1)
    ] = None,
    delay: Annotated[str, typer.Option(help="Time between host starts, e.g. 2s.")] = "0s",
    user: Annotated[str | None, typer.Option("--user", "-u", help="SSH user.")] = None,
    key: Annotated[
        list[str] | None, typer.Option("--key", help="SSH private key file; repeatable.")
    ] = None,
    known_hosts: Annotated[str | None, typer.Option(help="known_hosts file.")] = None,
    host_key_policy: Annotated[
        HostKeyPolicy, typer.Option(help="Unknown host keys: strict refuses, accept-new records.")
    ] = HostKeyPolicy.STRICT,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
    output: Annotated[
        OutputMode | None,
        typer.Option(
            "--output",
            help="Host output: grouped (identical results once, the default above "
            f"{FEW_HOSTS} hosts), full (every host), none (summary only).",
            show_default=False,
        ),
    ] = None,
    stream: Annotated[
        bool, typer.Option("--stream", help="Print lines as they arrive, as 'host | line'.")
    ] = False,
    output_dir: Annotated[
        Path | None,
        typer.Option(
            "--output-dir", help="Write every host's whole output to DIR/HOST.stdout|stderr."
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Show hosts, rendered body, shell and throttling; send nothing."
        ),
    ] = False,
    window: Annotated[
        list[str] | None,
        typer.Option(
            "--window",
            help="Maintenance window for every host, e.g. 'Sun 01:00-03:00 Europe/Berlin' "
            "(' stop' at the end stops hosts still running at its close); repeatable. "
            "Hosts' muster_window inventory variables add theirs.",
        ),
    ] = None,
    window_policy: Annotated[
        WindowMode,
        typer.Option(help="Outside a window: wait (with a countdown), fail, or ignore."),
    ] = WindowMode.WAIT,
    audit_file: AuditFileOption = None,
    no_audit: NoAuditOption = False,
    waves: WavesOption = None,
    max_failures: MaxFailuresOption = None,
    threshold_scope: ThresholdScopeOption = None,
    soak: SoakOption = None,
    verify: VerifyOption = None,
    rollback: RollbackOption = None,
    auto_rollback: AutoRollbackOption = None,
) -> None:
    """Run a command (after --) or a script (--script) on the hosts SELECTOR picks.

    Without -i, the selector 'localhost' means this machine (local transport).
    The terminal shows at most 100 lines or 16 KiB of each host's stdout and
    stderr; --output-dir keeps all of it, --json up to the output budget.
    Exits 0 when every host succeeded, 1 when any did not, 2 on bad input.
    With --waves it is a rollout (muster.cli.run_waves) and exits 1 when it stopped.
    """
    if (script is None) == (not command):
        raise fail("give either a command after -- or --script FILE (not both)")
    in_waves = rollout_options(
        waves, max_failures, threshold_scope, soak, verify, rollback, auto_rollback
    )
    if in_waves is not None:
        ssh_opts: dict[str, object] = {
            "known_hosts": known_hosts,
            "host_key_policy": host_key_policy,
        }
        ssh_opts |= {"username": user, "client_keys": tuple(key or ())}
        view = {"output": output, "stream": stream, "output_dir": output_dir, "dry_run": dry_run}
        return run_in_waves(
            in_waves, selector=selector, command=command, inventory=inventory or [],
            script=script, params=parse_params(param or []), shell=shell, timeout=timeout,
            forks=forks, per_group=per_group, delay=delay, ssh=ssh_opts, as_json=as_json,
            window=window or [], window_policy=window_policy, audit_file=audit_file,
            no_audit=no_audit, view=view,
        )  # fmt: skip
    if stream and (output is not None or as_json):
        raise fail("--stream prints lines as they arrive: it goes with neither --output nor --json")
    if as_json and output is not None:
        raise fail("--json prints one document: --output does not apply")
    job = _job(command, script, param or [], shell, timeout)
    hosts = pick_hosts(inventory or [], selector)
    if not hosts:
        raise fail(f"selector {selector!r} matches no host", code=EXIT_HOSTS_FAILED)
    files = _output_dir(output_dir, hosts)
    try:
        policy = DispatchPolicy(
            forks=forks, per_group=per_group, delay=parse_duration(delay, field="delay")
        )
    except MusterError as exc:
        raise fail(str(exc)) from exc
    if dry_run:
        _preview(job, hosts, policy, as_json)
        return
    ssh = SshOptions(
        known_hosts=known_hosts,
        host_key_policy=host_key_policy,
        username=user,
        client_keys=tuple(key or ()),
    )
    log = open_local_audit(audit_file, no_audit)
    report = None
    if not as_json:
        report = HumanReport(Terminal(), len(hosts), mode=output, stream=stream, output_dir=files)
    windows = window_rule(window or [], window_policy, hosts)
    # Everything imported so far lives until exit: freeze it out of the collector, and
    # collect young objects less often. A 1,000-host fan-out allocates many short-lived
    # objects per host; with the default threshold the collector ran 237 times and took
    # a fifth of the controller's CPU (bench/fanout.py), at 10,000 it runs a dozen.
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)
    try:
        execution = asyncio.run(_dispatch(job, hosts, policy, ssh, report, files, windows, log))
    finally:
        if log is not None:
            log.close()
    if report is None:
        json.dump(execution.to_dict(), sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        report.close()
        ends = [host_end(run) for run in execution.host_runs.values()]
        for end in ends:
            if end.host in report.ends:
                end.first_error = report.ends[end.host].first_error
        sys.stdout.flush()
        Console().print(summary_table(ends, f"execution {execution.status.value}"))
    if execution.status != ExecutionStatus.SUCCEEDED:
        raise typer.Exit(EXIT_HOSTS_FAILED)


def _job(
    command: list[str] | None,
    script: Path | None,
    params: list[str],
    shell: str | None,
    timeout: str | None,
) -> Job:
    try:
        seconds = parse_duration(timeout, field="timeout") if timeout else None
        if script is None:
            if params:
                raise fail("--param only applies to --script")
            assert command
            return command_job(" ".join(command), timeout=seconds or 300)
        version = load_script_file(script, shell=shell, timeout=seconds)
        return script_job(version, parse_params(params))
    except MusterError as exc:
        raise fail(str(exc)) from exc


def _preview(job: Job, hosts: list[Host], policy: DispatchPolicy, as_json: bool) -> None:
    """``--dry-run``: per host what would run (secrets stay environment references in
    the body and show as ``***``), which hosts would be skipped, and the throttling."""
    from muster.domain.hosts import skip_reason
    from muster.domain.secret import Secret

    run_hosts: dict[str, str] = {}
    skipped: dict[str, str] = {}
    env: dict[str, str] = {}
    for host in hosts:
        why = skip_reason(host, job.shell.value)
        if why is not None:
            skipped[host.name] = why
            continue
        try:
            plan = job.plan_for(host, "dryrun")
        except MusterError as exc:
            skipped[host.name] = str(exc)
            continue
        body = plan.files[0].content if plan.files else plan.commands[0].argv[-1]
        run_hosts[host.name] = body
        env = {
            k: ("***" if isinstance(v, Secret) else v)
            for k, v in sorted(plan.env.items())
            if k != "MUSTER_RUN_ID"
        }
    doc = {
        "dry_run": True,
        "description": job.description,
        "shell": job.shell.value,
        "timeout": job.timeout,
        "throttle": {"forks": policy.forks, "per_group": policy.per_group, "delay": policy.delay},
        "hosts": list(run_hosts),
        "skipped": skipped,
        "bodies": run_hosts,
        "env": env,
    }
    if as_json:
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    out = Console(highlight=False)
    out.print(f"dry run: {job.description} (nothing is sent)")
    out.print(
        f"shell {job.shell.value}, timeout {job.timeout:g}s, forks {policy.forks}, "
        f"per group {policy.per_group or '-'}, delay {policy.delay:g}s"
    )
    out.print(f"hosts ({len(run_hosts)}): {', '.join(run_hosts)}", markup=False)
    for name, why in skipped.items():
        out.print(f"skipped {name}: {why}", markup=False)
    by_body: dict[str, list[str]] = {}
    for name, body in run_hosts.items():
        by_body.setdefault(body, []).append(name)
    for body, names in by_body.items():
        out.print(f"on {', '.join(names)}:", markup=False)
        for line in body.splitlines() or [""]:
            out.print(f"  | {line}", markup=False)
    if env:
        out.print("env: " + ", ".join(f"{k}={v}" for k, v in env.items()), markup=False)


def parse_params(pairs: list[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise fail(f"--param {pair!r}: expected NAME=VALUE")
        if name in values:
            raise fail(f"--param {name} given twice")
        values[name] = value
    return values


def _output_dir(directory: Path | None, hosts: list[Host]) -> OutputDir | None:
    """The --output-dir writer, refusing before anything runs a host name that cannot
    be a file name there."""
    if directory is None:
        return None
    try:
        files = OutputDir(directory)
        for host in hosts:
            files.path(host.name, "stdout")
    except MusterError as exc:
        raise fail(str(exc)) from exc
    return files


class _FilesOnly(ExecutionListener):
    """--json with --output-dir: the files are written, nothing is printed."""

    def __init__(self, files: OutputDir) -> None:
        self._files = files

    def on_state(self, execution: Execution, host_run: HostRun) -> None:
        if host_run.state.terminal:
            self._files.finish(host_run.host)

    def on_output(self, execution: Execution, host_run: HostRun, stream: Stream, text: str) -> None:
        self._files.write(host_run.host, stream.value, text)


async def _dispatch(
    job: Job,
    hosts: list[Host],
    policy: DispatchPolicy,
    ssh: SshOptions,
    report: HumanReport | None,
    files: OutputDir | None,
    windows: WindowRule | None = None,
    log: LocalAuditLog | None = None,
) -> Execution:
    transports: Mapping[TransportKind, Transport] = default_transports(
        ssh, kinds={host.transport for host in hosts}
    )
    if log is not None:
        from muster.engine.local_audit import audited

        transports = audited(transports, log)
    listener: ExecutionListener | None = None
    if report is not None:
        listener = LiveReport(report)
    elif files is not None:
        listener = _FilesOnly(files)
    dispatcher = Dispatcher(transports, policy, listener, windows)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, dispatcher.cancel)
    try:
        return await run_job(dispatcher, job, hosts)
    finally:
        if report is None and files is not None:
            files.close()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        for t in transports.values():
            await t.close()


__all__ = ["parse_params", "run"]
