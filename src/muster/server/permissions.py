"""The one place every route declares what it needs: ``(METHOD, path template) -> Rule``.

:func:`rule_for` maps a concrete request to its rule; the auth middleware
enforces it before routing. A route missing from the table is served only
to an authenticated admin (fail closed), and a test walks the app's route
table to prove every route has an entry and each role gets exactly what it
should.

``PUBLIC`` routes need no credentials; ``AUTHENTICATED`` ones any valid
user (their handlers narrow further, e.g. "your own tokens"). Handlers that
write a richer audit record themselves set ``self_audited`` so the
middleware's generic record is not doubled.

A caller still on a generated one-time password reaches only
:data:`BEFORE_PASSWORD_CHANGE` (whatever their roles) until they change it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from muster.security.rbac import Permission

__all__ = [
    "AUTHENTICATED",
    "BEFORE_PASSWORD_CHANGE",
    "PUBLIC",
    "ROUTE_RULES",
    "Rule",
    "rule_for",
]

PUBLIC: Final = "public"
AUTHENTICATED: Final = "authenticated"

P = Permission


@dataclass(frozen=True, slots=True)
class Rule:
    need: Permission | str
    self_audited: bool = False


_A = "/api/v1/automation"
_RULES: dict[tuple[str, str], Permission | str | Rule] = {
    # operations and documentation
    ("GET", "/health"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
    ("GET", "/metrics"): P.JOBS_VIEW,
    # workers: drains and resumes audit themselves (WorkerService)
    ("GET", "/api/v1/workers"): P.JOBS_VIEW,
    ("GET", "/api/v1/workers/{worker_id}"): P.JOBS_VIEW,
    ("POST", "/api/v1/workers/drain"): Rule(P.ADMIN, True),
    ("POST", "/api/v1/workers/resume"): Rule(P.ADMIN, True),
    ("POST", "/api/v1/workers/{worker_id}/drain"): Rule(P.ADMIN, True),
    ("POST", "/api/v1/workers/{worker_id}/resume"): Rule(P.ADMIN, True),
    ("POST", "/workers/{worker_id}/drain"): Rule(P.ADMIN, True),
    ("POST", "/workers/{worker_id}/resume"): Rule(P.ADMIN, True),
    # scripts (seed 001: scripts.manage includes executing them)
    ("GET", f"{_A}/scripts"): P.SCRIPTS_VIEW,
    ("POST", f"{_A}/scripts"): P.SCRIPTS_MANAGE,
    ("GET", f"{_A}/scripts/{{script_id}}"): P.SCRIPTS_VIEW,
    ("DELETE", f"{_A}/scripts/{{script_id}}"): P.SCRIPTS_MANAGE,
    ("GET", f"{_A}/scripts/{{script_id}}/versions"): P.SCRIPTS_VIEW,
    ("GET", f"{_A}/scripts/{{script_id}}/versions/{{number}}"): P.SCRIPTS_VIEW,
    ("POST", f"{_A}/scripts/{{script_id}}/versions/{{number}}/restore"): P.SCRIPTS_MANAGE,
    ("POST", f"{_A}/scripts/{{script_id}}/execute"): Rule(P.SCRIPTS_MANAGE, True),
    ("GET", f"{_A}/scripts/{{script_id}}/approval-policy"): P.SCRIPTS_VIEW,
    ("PUT", f"{_A}/scripts/{{script_id}}/approval-policy"): Rule(P.APPROVALS_MANAGE, True),
    # executions and jobs
    ("GET", f"{_A}/executions"): P.JOBS_VIEW,
    ("GET", f"{_A}/executions/{{execution_id}}"): P.JOBS_VIEW,
    ("DELETE", f"{_A}/executions/{{execution_id}}"): P.JOBS_MANAGE,
    ("POST", f"{_A}/executions/{{execution_id}}/cancel"): P.JOBS_MANAGE,
    # a retry audits itself: whether it waits for a new approval, and why
    ("POST", f"{_A}/executions/{{execution_id}}/retry"): Rule(P.JOBS_MANAGE, True),
    ("POST", "/executions/{execution_id}/retry"): Rule(P.JOBS_MANAGE, True),
    # the console's Approve/Reject on the execution page: the vote audits itself
    ("POST", "/executions/{execution_id}/approve"): Rule(P.APPROVALS_DECIDE, True),
    ("POST", "/executions/{execution_id}/reject"): Rule(P.APPROVALS_DECIDE, True),
    ("GET", f"{_A}/executions/{{execution_id}}/hosts/{{host}}/log"): P.JOBS_VIEW,
    ("GET", f"{_A}/executions/{{execution_id}}/stream"): P.JOBS_VIEW,
    ("POST", f"{_A}/commands"): Rule(P.COMMANDS_RUN, True),
    ("GET", f"{_A}/job-types"): P.JOBS_VIEW,
    ("POST", f"{_A}/jobs"): Rule(P.JOBS_MANAGE, True),
    # approvals: anyone who sees jobs sees the queue; deciding is its own permission
    ("GET", f"{_A}/approvals"): P.JOBS_VIEW,
    ("GET", f"{_A}/approvals/{{approval_id}}"): P.JOBS_VIEW,
    ("POST", f"{_A}/approvals/{{approval_id}}/approve"): Rule(P.APPROVALS_DECIDE, True),
    ("POST", f"{_A}/approvals/{{approval_id}}/reject"): Rule(P.APPROVALS_DECIDE, True),
    # whether runs need approval: reading follows what it governs, changing is its own right
    ("GET", f"{_A}/approval-policies"): P.JOBS_VIEW,
    ("GET", f"{_A}/approval-policies/groups/{{group}}"): P.JOBS_VIEW,
    ("PUT", f"{_A}/approval-policies/groups/{{group}}"): Rule(P.APPROVALS_MANAGE, True),
    ("DELETE", f"{_A}/approval-policies/groups/{{group}}"): Rule(P.APPROVALS_MANAGE, True),
    ("GET", f"{_A}/approval-policies/kinds/{{kind}}"): P.JOBS_VIEW,
    ("PUT", f"{_A}/approval-policies/kinds/{{kind}}"): Rule(P.APPROVALS_MANAGE, True),
    # workflows: definitions and instances (seed 001's workflows.view / workflows.manage);
    # the service audits every change itself
    ("GET", f"{_A}/workflows"): P.WORKFLOWS_VIEW,
    ("POST", f"{_A}/workflows"): Rule(P.WORKFLOWS_MANAGE, True),
    ("POST", f"{_A}/workflows/validate"): P.WORKFLOWS_VIEW,
    ("GET", f"{_A}/workflows/{{name}}"): P.WORKFLOWS_VIEW,
    ("GET", f"{_A}/workflows/{{name}}/versions"): P.WORKFLOWS_VIEW,
    ("GET", f"{_A}/workflows/{{name}}/graph.svg"): P.WORKFLOWS_VIEW,
    ("DELETE", f"{_A}/workflows/{{name}}"): Rule(P.WORKFLOWS_MANAGE, True),
    ("POST", f"{_A}/workflows/{{name}}/start"): Rule(P.WORKFLOWS_MANAGE, True),
    ("GET", f"{_A}/workflow-instances"): P.WORKFLOWS_VIEW,
    ("GET", f"{_A}/workflow-instances/{{instance_id}}"): P.WORKFLOWS_VIEW,
    ("GET", f"{_A}/workflow-instances/{{instance_id}}/graph.svg"): P.WORKFLOWS_VIEW,
    ("PUT", f"{_A}/workflow-instances/{{instance_id}}"): Rule(P.WORKFLOWS_MANAGE, True),
    ("GET", f"{_A}/workflow-instances/{{instance_id}}/steps/{{step_id}}"): P.WORKFLOWS_VIEW,
    ("PUT", f"{_A}/workflow-instances/{{instance_id}}/steps/{{step_id}}"): Rule(
        P.WORKFLOWS_MANAGE, True
    ),
    # hosts
    ("GET", "/api/v1/hosts"): P.HOSTS_VIEW,
    ("POST", "/api/v1/hosts"): P.HOSTS_MANAGE,
    ("GET", "/api/v1/hosts/{host_id}"): P.HOSTS_VIEW,
    ("PUT", "/api/v1/hosts/{host_id}"): P.HOSTS_MANAGE,
    ("PATCH", "/api/v1/hosts/{host_id}"): P.HOSTS_MANAGE,
    ("DELETE", "/api/v1/hosts/{host_id}"): P.HOSTS_MANAGE,
    ("POST", "/api/v1/hosts/import"): P.HOSTS_MANAGE,
    # schedules (issue 12): changes audit themselves; run-now audits the execution
    ("GET", f"{_A}/schedules"): P.SCHEDULES_VIEW,
    ("POST", f"{_A}/schedules"): Rule(P.SCHEDULES_MANAGE, True),
    ("GET", f"{_A}/schedules/{{schedule_id}}"): P.SCHEDULES_VIEW,
    ("PUT", f"{_A}/schedules/{{schedule_id}}"): Rule(P.SCHEDULES_MANAGE, True),
    ("DELETE", f"{_A}/schedules/{{schedule_id}}"): Rule(P.SCHEDULES_MANAGE, True),
    ("POST", f"{_A}/schedules/{{schedule_id}}/pause"): Rule(P.SCHEDULES_MANAGE, True),
    ("POST", f"{_A}/schedules/{{schedule_id}}/resume"): Rule(P.SCHEDULES_MANAGE, True),
    ("POST", f"{_A}/schedules/{{schedule_id}}/run-now"): Rule(P.SCHEDULES_MANAGE, True),
    ("GET", f"{_A}/schedules/{{schedule_id}}/firings"): P.SCHEDULES_VIEW,
    # webhooks carry signing secrets and reach out of the network: admin only
    ("GET", "/api/v1/webhooks"): P.ADMIN,
    ("POST", "/api/v1/webhooks"): P.ADMIN,
    ("DELETE", "/api/v1/webhooks/{webhook_id}"): P.ADMIN,
    ("GET", "/api/v1/webhooks/{webhook_id}/deliveries"): P.ADMIN,
    # published rollout reports: seeing them follows workflows, publishing is managing them
    ("GET", "/api/v1/rollouts"): P.WORKFLOWS_VIEW,
    ("POST", "/api/v1/rollouts"): Rule(P.WORKFLOWS_MANAGE, True),
    ("GET", "/api/v1/rollouts/{report_id}"): P.WORKFLOWS_VIEW,
    ("GET", "/api/v1/rollouts/{report_id}/evidence.json"): P.WORKFLOWS_VIEW,
    # maintenance windows: seeing them follows jobs; changing or skipping one is its own right
    ("GET", "/api/v1/maintenance-windows"): P.JOBS_VIEW,
    ("POST", "/api/v1/maintenance-windows"): Rule(P.WINDOWS_MANAGE, True),
    ("GET", "/api/v1/maintenance-windows/forecast"): P.JOBS_VIEW,
    ("POST", "/api/v1/maintenance-windows/overrides"): Rule(P.WINDOWS_OVERRIDE, True),
    ("GET", "/api/v1/maintenance-windows/{window_id}"): P.JOBS_VIEW,
    ("DELETE", "/api/v1/maintenance-windows/{window_id}"): Rule(P.WINDOWS_MANAGE, True),
    # identity
    ("POST", "/api/v1/auth/login"): Rule(PUBLIC, True),
    ("POST", "/api/v1/auth/logout"): Rule(AUTHENTICATED, True),
    ("GET", "/api/v1/auth/me"): AUTHENTICATED,
    ("POST", "/api/v1/auth/password"): Rule(AUTHENTICATED, True),
    # the console's password page writes the same record as the API
    ("POST", "/password"): Rule(AUTHENTICATED, True),
    # console operator pages whose handlers write the API's own audit records
    ("POST", "/approvals/{approval_id}/approve"): Rule(P.APPROVALS_DECIDE, True),
    ("POST", "/approvals/{approval_id}/reject"): Rule(P.APPROVALS_DECIDE, True),
    ("POST", "/commands"): Rule(P.COMMANDS_RUN, True),
    ("POST", "/admin/users"): Rule(P.ADMIN, True),
    ("POST", "/admin/users/{name}"): Rule(P.ADMIN, True),
    ("POST", "/admin/users/{name}/password"): Rule(P.ADMIN, True),
    ("POST", "/tokens"): Rule(AUTHENTICATED, True),
    ("POST", "/tokens/{token_id}/revoke"): Rule(AUTHENTICATED, True),
    ("POST", "/admin/credentials"): Rule(P.CREDENTIALS_MANAGE, True),
    ("POST", "/admin/credentials/{credential_id}/replace"): Rule(P.CREDENTIALS_MANAGE, True),
    ("POST", "/admin/credentials/{credential_id}/delete"): Rule(P.CREDENTIALS_MANAGE, True),
    ("POST", "/admin/webhooks/{webhook_id}/test"): Rule(P.ADMIN, True),
    # a preview parses and checks an inventory and writes nothing
    ("POST", "/hosts/import/preview"): Rule(P.HOSTS_MANAGE, True),
    ("GET", "/api/v1/users"): P.ADMIN,
    ("POST", "/api/v1/users"): Rule(P.ADMIN, True),
    ("PATCH", "/api/v1/users/{name}"): Rule(P.ADMIN, True),
    ("GET", "/api/v1/roles"): AUTHENTICATED,
    ("POST", "/api/v1/roles"): Rule(P.ADMIN, True),
    ("DELETE", "/api/v1/roles/{name}"): Rule(P.ADMIN, True),
    ("GET", "/api/v1/tokens"): AUTHENTICATED,
    ("POST", "/api/v1/tokens"): Rule(AUTHENTICATED, True),
    ("DELETE", "/api/v1/tokens/{token_id}"): Rule(AUTHENTICATED, True),
    ("GET", "/api/v1/audit"): P.AUDIT_VIEW,
    ("GET", "/api/v1/audit/verify"): P.AUDIT_VIEW,
    # the vault: names and fingerprints are host metadata; values go in, never out
    ("GET", "/api/v1/credentials"): P.HOSTS_VIEW,
    ("POST", "/api/v1/credentials"): Rule(P.CREDENTIALS_MANAGE, True),
    ("GET", "/api/v1/credentials/{credential_id}"): P.HOSTS_VIEW,
    ("DELETE", "/api/v1/credentials/{credential_id}"): Rule(P.CREDENTIALS_MANAGE, True),
    ("GET", "/api/v1/groups/credentials"): P.HOSTS_VIEW,
    ("PUT", "/api/v1/groups/{group}/credential"): Rule(P.CREDENTIALS_MANAGE, True),
}


#: All a caller whose generated password is unchanged may do: see who they are,
#: change it (API or console page), log out. Everything else answers 403.
BEFORE_PASSWORD_CHANGE: Final = frozenset(
    {
        ("GET", "/api/v1/auth/me"),
        ("POST", "/api/v1/auth/password"),
        ("POST", "/api/v1/auth/logout"),
        ("GET", "/password"),
        ("POST", "/password"),
    }
)


def _console_rules() -> dict[tuple[str, str], Permission | str]:
    """The web console declares its pages beside them; merged here so one table rules."""
    try:
        from muster.server.web.permissions import WEB_RULES
    except ModuleNotFoundError as exc:  # the console is optional; a broken import is not
        if exc.name not in ("muster.server.web", "muster.server.web.permissions"):
            raise
        return {}
    return dict(WEB_RULES)


for _key, _need in _console_rules().items():
    _RULES.setdefault(_key, _need)

#: Every declared route, normalised to :class:`Rule`.
ROUTE_RULES: Final[dict[tuple[str, str], Rule]] = {
    key: v if isinstance(v, Rule) else Rule(v) for key, v in _RULES.items()
}


def _compile(template: str) -> re.Pattern[str]:
    out, pos = [], 0
    for m in re.finditer(r"\{([^}:]+)(?::path)?\}", template):
        out.append(re.escape(template[pos : m.start()]))
        out.append(".+" if m.group(0).endswith(":path}") else "[^/]+")
        pos = m.end()
    out.append(re.escape(template[pos:]))
    return re.compile("".join(out) + "/?")


# Most literal first, so ``/hosts/import`` wins over ``/hosts/{host_id}``.
_MATCHERS: Final = sorted(
    ((method, _compile(path), path, rule) for (method, path), rule in ROUTE_RULES.items()),
    key=lambda t: -len(re.sub(r"\{[^}]*\}", "", t[2])),
)


def rule_for(method: str, path: str) -> tuple[str, Rule] | None:
    """(template, rule) for a request, or ``None`` when no route is declared.

    ``HEAD`` is treated as ``GET``.
    """
    method = "GET" if method.upper() == "HEAD" else method.upper()
    for m, regex, template, rule in _MATCHERS:
        if m == method and regex.fullmatch(path):
            return template, rule
    return None
