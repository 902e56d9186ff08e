"""What each console page and its fragments need, declared beside the console.

:mod:`muster.server.permissions` merges this table into its own when it is
imported (an API rule for the same method and path wins), so one table rules
every route and the auth middleware enforces it before routing. A console
route missing here is served only to an authenticated admin (fail closed);
the route-walk test in tests/integration/server/test_security_api.py finds
it. ``"public"`` and ``"authenticated"`` are that module's ``PUBLIC`` and
``AUTHENTICATED``.
"""

from __future__ import annotations

from typing import Final

from muster.security.rbac import Permission

__all__ = ["WEB_RULES"]

P = Permission
_X = "/executions/{execution_id}"
WEB_RULES: Final[dict[tuple[str, str], Permission | str]] = {
    ("GET", "/login"): "public",
    ("GET", "/password"): "authenticated",
    ("GET", "/static/{path:path}"): "public",
    ("GET", "/favicon.ico"): "public",
    ("GET", "/"): "authenticated",
    ("GET", "/scripts"): P.SCRIPTS_VIEW,
    ("GET", "/scripts/new"): P.SCRIPTS_MANAGE,
    ("POST", "/scripts"): P.SCRIPTS_MANAGE,
    ("GET", "/scripts/{script_id}"): P.SCRIPTS_VIEW,
    ("GET", "/scripts/{script_id}/edit"): P.SCRIPTS_MANAGE,
    ("GET", "/scripts/{script_id}/versions/{number}"): P.SCRIPTS_VIEW,
    ("POST", "/scripts/{script_id}/versions/{number}/restore"): P.SCRIPTS_MANAGE,
    ("GET", "/scripts/{script_id}/diff"): P.SCRIPTS_VIEW,
    ("GET", "/scripts/{script_id}/execute"): P.SCRIPTS_MANAGE,
    ("POST", "/scripts/{script_id}/execute"): P.SCRIPTS_MANAGE,
    ("GET", "/ui/hosts/resolve"): P.HOSTS_VIEW,
    ("GET", _X): P.JOBS_VIEW,
    ("GET", f"/ui{_X}/summary"): P.JOBS_VIEW,
    ("GET", f"/ui{_X}/runs/{{run_id}}/output"): P.JOBS_VIEW,
    ("POST", f"{_X}/cancel"): P.JOBS_MANAGE,
    ("POST", f"{_X}/retry"): P.JOBS_MANAGE,
    ("GET", "/history"): P.JOBS_VIEW,
    ("GET", "/hosts"): P.HOSTS_VIEW,
    ("GET", "/hosts/{host}"): P.HOSTS_VIEW,
    ("GET", "/workflows"): P.WORKFLOWS_VIEW,
    ("GET", "/workflows/new"): P.WORKFLOWS_MANAGE,
    ("POST", "/workflows"): P.WORKFLOWS_MANAGE,
    ("GET", "/workflows/{workflow}"): P.WORKFLOWS_VIEW,
    ("POST", "/workflows/{workflow}/start"): P.WORKFLOWS_MANAGE,
    ("GET", "/workflow-instances/{instance_id}"): P.WORKFLOWS_VIEW,
    ("GET", "/rollouts"): P.WORKFLOWS_VIEW,
    ("GET", "/rollouts/{rollout_id}"): P.WORKFLOWS_VIEW,
    ("GET", "/rollouts/{rollout_id}/hosts/{rollout_host}"): P.WORKFLOWS_VIEW,
    ("POST", "/workflow-instances/{instance_id}/action"): P.WORKFLOWS_MANAGE,
    ("GET", "/schedules"): P.SCHEDULES_VIEW,
    ("POST", "/schedules"): P.SCHEDULES_MANAGE,
    ("GET", "/schedules/{schedule_id}"): P.SCHEDULES_VIEW,
    ("POST", "/schedules/{schedule_id}/pause"): P.SCHEDULES_MANAGE,
    ("POST", "/schedules/{schedule_id}/resume"): P.SCHEDULES_MANAGE,
    ("POST", "/schedules/{schedule_id}/run-now"): P.SCHEDULES_MANAGE,
    ("POST", "/schedules/{schedule_id}/delete"): P.SCHEDULES_MANAGE,
    ("GET", "/windows"): P.JOBS_VIEW,
    ("POST", "/windows"): P.WINDOWS_MANAGE,
    ("POST", "/windows/{window_id}/delete"): P.WINDOWS_MANAGE,
    ("POST", "/windows/override"): P.WINDOWS_OVERRIDE,
    # operator pages (console-pages); POSTs that audit themselves are in
    # muster.server.permissions, beside the API routes whose records they write
    ("GET", "/dashboard"): P.JOBS_VIEW,
    ("GET", "/approvals"): P.JOBS_VIEW,
    ("GET", "/commands"): P.COMMANDS_RUN,
    ("GET", f"{_X}/log"): P.JOBS_VIEW,
    ("GET", "/hosts/new"): P.HOSTS_MANAGE,
    ("POST", "/hosts"): P.HOSTS_MANAGE,
    ("GET", "/hosts/{host}/edit"): P.HOSTS_MANAGE,
    ("POST", "/hosts/{host}"): P.HOSTS_MANAGE,
    ("POST", "/hosts/{host}/delete"): P.HOSTS_MANAGE,
    ("GET", "/hosts/import"): P.HOSTS_MANAGE,
    ("POST", "/hosts/import"): P.HOSTS_MANAGE,
    ("GET", "/workers"): P.JOBS_VIEW,
    ("GET", "/admin"): "authenticated",
    ("GET", "/admin/users"): P.ADMIN,
    ("GET", "/tokens"): "authenticated",
    ("GET", "/admin/credentials"): P.HOSTS_VIEW,
    ("GET", "/admin/webhooks"): P.ADMIN,
    ("GET", "/admin/webhooks/{webhook_id}"): P.ADMIN,
    ("POST", "/admin/webhooks"): P.ADMIN,
    ("POST", "/admin/webhooks/{webhook_id}/delete"): P.ADMIN,
    ("GET", "/admin/audit"): P.AUDIT_VIEW,
}
