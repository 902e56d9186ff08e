from __future__ import annotations

import pytest

from muster.errors import ValidationError
from muster.security.rbac import (
    ALL_PERMISSIONS,
    BUILTIN_ROLES,
    Permission,
    effective_permissions,
    has_permission,
    parse_permissions,
    permissions_of,
    role_permissions,
    validate_custom_role,
)

P = Permission
VIEWS = {P.JOBS_VIEW, P.SCRIPTS_VIEW, P.WORKFLOWS_VIEW, P.HOSTS_VIEW, P.SCHEDULES_VIEW}
MANAGES = {
    P.JOBS_MANAGE,
    P.SCRIPTS_MANAGE,
    P.WORKFLOWS_MANAGE,
    P.HOSTS_MANAGE,
    P.SCHEDULES_MANAGE,
    P.COMMANDS_RUN,
}


def test_permission_names_are_exactly_the_issue_list() -> None:
    assert {p.value for p in Permission} == {
        "jobs.view",
        "jobs.manage",
        "scripts.view",
        "scripts.manage",
        "workflows.view",
        "workflows.manage",
        "schedules.view",
        "schedules.manage",
        "hosts.view",
        "hosts.manage",
        "hosts.local",
        "commands.run",
        "credentials.manage",
        "approvals.decide",
        "approvals.manage",
        "audit.view",
        # issue 12: maintenance windows are a safety control (admin-only by default)
        "windows.manage",
        "windows.override",
        "admin",
    }


def test_builtin_roles() -> None:
    assert role_permissions("viewer") == VIEWS
    assert role_permissions("operator") == VIEWS | MANAGES
    assert role_permissions("approver") == VIEWS | {P.APPROVALS_DECIDE}
    assert role_permissions("admin") == ALL_PERMISSIONS
    assert set(BUILTIN_ROLES) == {"viewer", "operator", "approver", "admin"}


@pytest.mark.parametrize("role", ["viewer", "operator", "approver"])
def test_only_admin_sees_audit_and_credentials(role: str) -> None:
    assert not has_permission([role], P.AUDIT_VIEW)
    assert not has_permission([role], P.CREDENTIALS_MANAGE)
    assert not has_permission([role], P.ADMIN)


@pytest.mark.parametrize("role", ["viewer", "operator", "approver"])
def test_only_admin_may_use_the_servers_own_machine(role: str) -> None:
    assert not has_permission([role], P.HOSTS_LOCAL)
    assert has_permission(["admin"], P.HOSTS_LOCAL)


@pytest.mark.parametrize("role", ["viewer", "operator", "approver"])
def test_only_admin_may_change_whether_runs_need_approval(role: str) -> None:
    assert not has_permission([role], P.APPROVALS_MANAGE)
    assert has_permission(["admin"], P.APPROVALS_MANAGE)


def test_operator_cannot_decide_approvals() -> None:
    assert not has_permission(["operator"], P.APPROVALS_DECIDE)
    assert has_permission(["operator", "approver"], P.APPROVALS_DECIDE)


def test_admin_permission_implies_every_permission() -> None:
    custom = {"root": frozenset({P.ADMIN})}
    for perm in Permission:
        assert has_permission(["root"], perm, custom)
        assert has_permission(["admin"], perm)


def test_unknown_role_and_no_role_grant_nothing() -> None:
    assert permissions_of([]) == frozenset()
    assert permissions_of(["ghost"]) == frozenset()
    assert not has_permission(["ghost"], P.JOBS_VIEW)


def test_custom_roles_union_with_builtins() -> None:
    custom = {"auditor": validate_custom_role("auditor", ["audit.view", "jobs.view"])}
    assert permissions_of(["auditor", "viewer"], custom) == VIEWS | {P.AUDIT_VIEW}


@pytest.mark.parametrize(
    ("name", "perms", "field"),
    [
        ("admin", ["jobs.view"], "name"),
        ("Bad Name", ["jobs.view"], "name"),
        ("ok", ["jobs.fly"], "permissions"),
    ],
)
def test_custom_role_validation(name: str, perms: list[str], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate_custom_role(name, perms)
    assert info.value.field == field


def test_parse_permissions() -> None:
    assert parse_permissions(["admin", "jobs.view"]) == {P.ADMIN, P.JOBS_VIEW}


@pytest.mark.parametrize(
    ("user_roles", "token_role", "expected"),
    [
        (["admin"], "viewer", VIEWS),
        (["operator"], "admin", VIEWS | MANAGES),
        (["operator"], None, VIEWS | MANAGES),
        (["viewer"], "approver", VIEWS),
        (["approver", "operator"], "approver", VIEWS | {P.APPROVALS_DECIDE}),
        (["operator"], "ghost", set()),
    ],
)
def test_token_role_only_narrows(
    user_roles: list[str], token_role: str | None, expected: set[Permission]
) -> None:
    got = effective_permissions(user_roles, token_role)
    assert got == expected
    assert got <= permissions_of(user_roles)
    for perm in Permission:
        assert has_permission(user_roles, perm, token_role=token_role) == (perm in expected)


def test_principal_can_and_require() -> None:
    from muster.errors import PermissionDeniedError
    from muster.security.rbac import Principal

    who = Principal("1", "ann", ("viewer",), effective_permissions(["viewer"]))
    assert who.can(P.JOBS_VIEW) and not who.can(P.JOBS_MANAGE)
    who.require(P.HOSTS_VIEW)
    with pytest.raises(PermissionDeniedError, match=r"jobs\.manage"):
        who.require(P.JOBS_MANAGE)
