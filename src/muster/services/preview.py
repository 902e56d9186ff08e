"""A dry run: what a request would do, per host, with nothing queued or sent.

Built from the same :class:`~muster.services.submission.Prepared` request the
submit functions store, so a preview cannot disagree with the real thing:
the hosts selected (and those that would be skipped, with the reason), the
rendered body per platform (secret values never appear: they travel only in
the environment, shown as ``***``), the shell, the throttling and what the
run would wait for (an approval, under which rule).
"""

from __future__ import annotations

from typing import Any

from muster.domain.planbuilder import build_command_plan, build_script_plan, command_env
from muster.domain.scripts import Shell
from muster.domain.secret import MASK, Secret
from muster.services.submission import Prepared

__all__ = ["preview"]


def _env(env: dict[str, Any]) -> dict[str, str]:
    return {k: MASK if isinstance(v, Secret) else str(v) for k, v in sorted(env.items())}


def preview(prepared: Prepared) -> dict[str, Any]:
    """The plan of ``prepared`` as JSON-ready data (``dry_run`` true, nothing stored)."""
    new = prepared.new
    by_name = {h.name: h for h in prepared.hosts}
    hosts: list[dict[str, Any]] = []
    rendered: dict[str, dict[str, Any]] = {}
    for target in new.targets:
        entry: dict[str, Any] = {
            "host": target.host_name,
            "selected": target.skip_reason is None,
            "skip_reason": target.skip_reason,
        }
        host = by_name.get(target.host_name)
        platform = host.platform if host is not None else "linux"
        entry["platform"] = platform
        if target.skip_reason is None:
            if platform not in rendered:
                rendered[platform] = _render(prepared, platform)
            entry.update(rendered[platform])
        hosts.append(entry)
    approval = (new.policy or {}).get("approval") or None
    return {
        "dry_run": True,
        "queued": False,
        "kind": new.kind.value,
        "description": new.description,
        "shell": new.shell,
        "timeout": new.timeout,
        "priority": new.priority.name.lower(),
        "content_hash": new.content_hash,
        "parameters": {k: MASK if isinstance(v, Secret) else v for k, v in new.parameters.items()},
        "throttle": {
            "forks": new.throttle.forks,
            "per_group": new.throttle.per_group,
            "delay": new.throttle.delay,
        },
        "waits_for": {"approval": approval} if approval else {},
        "hosts": hosts,
    }


def _render(prepared: Prepared, platform: str) -> dict[str, Any]:
    """Body, argv and environment for one platform (secrets masked)."""
    new = prepared.new
    if prepared.version is not None:
        plan = build_script_plan(
            prepared.version, prepared.values, run_id="dry-run", platform=platform
        )
        body = plan.files[0].content if plan.files else ""
    elif new.command is not None:
        plan = build_command_plan(
            new.command,
            timeout=new.timeout,
            shell=Shell(new.shell or "sh"),
            env=command_env(new.parameters),
        )
        body = new.command
    else:
        return {"body": None, "argv": None, "env": {}}
    return {
        "body": body,
        "argv": list(plan.commands[0].argv) if plan.commands else [],
        "env": _env(dict(plan.env)),
    }
