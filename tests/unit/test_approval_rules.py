"""How the approval rules combine: any requiring rule holds the run; the most specific
decides who approves; the strictest decides whether a retry needs approval again."""

from __future__ import annotations

import datetime as dt

from muster.domain.approval_rules import (
    ApprovalNeed,
    ApprovalRule,
    ApprovalScope,
    approval_need,
    approval_policy,
)
from muster.domain.approvals import ApprovalPolicy

SCRIPT = ApprovalRule(ApprovalScope.SCRIPT, "s-1", required=True, label="deploy")
DB = ApprovalRule(
    ApprovalScope.GROUP,
    "db",
    required=True,
    policy=ApprovalPolicy.TWO_OF_MANY,
    approvers=("role:dba",),
    retry_needs_approval=False,
)
WEB_OFF = ApprovalRule(ApprovalScope.GROUP, "web", required=False)
COMMANDS = ApprovalRule(ApprovalScope.COMMAND, "command", required=True)
HOSTS = {"db1": ("db",), "db2": ("db", "web"), "web1": ("web",)}


def test_nothing_required_needs_nothing() -> None:
    off = ApprovalRule(ApprovalScope.SCRIPT, "s-1", required=False)
    assert approval_need() is None
    assert approval_need(script=off, groups={"web": WEB_OFF}, host_groups=HOSTS) is None
    assert approval_policy(None) == {}


def test_a_group_rule_applies_only_when_a_member_is_targeted() -> None:
    assert approval_need(groups={"db": DB}, host_groups={"web1": ("web",)}) is None
    need = approval_need(groups={"db": DB, "web": WEB_OFF}, host_groups=HOSTS)
    assert need is not None
    assert need.reasons == ("host group 'db' requires approval (db1, db2)",)
    assert need.decider == DB and need.group_hosts == {"db": ("db1", "db2")}
    assert not need.retry_needs_approval


def test_the_script_decides_who_approves_and_the_strictest_rule_decides_retries() -> None:
    need = approval_need(script=SCRIPT, groups={"db": DB}, host_groups=HOSTS)
    assert need is not None
    assert need.decider == SCRIPT
    assert need.reasons == (
        "script 'deploy' requires approval",
        "host group 'db' requires approval (db1, db2)",
    )
    assert need.retry_needs_approval  # the script's rule wants it, the group's waiver is outvoted


def test_commands_and_jobs_have_their_own_rule_after_the_groups() -> None:
    need = approval_need(kind=COMMANDS, groups={"db": DB}, host_groups={"db1": ("db",)})
    assert need is not None and need.decider == DB
    assert need.reasons[-1] == "server policy: ad-hoc commands require approval"
    only = approval_need(kind=ApprovalRule(ApprovalScope.JOB, "job", required=True))
    assert only is not None and only.reasons == ("server policy: built-in jobs require approval",)


def test_many_hosts_are_summarised_in_the_reason() -> None:
    hosts = {f"db{i:02d}": ("db",) for i in range(8)}
    need = approval_need(groups={"db": DB}, host_groups=hosts)
    assert need is not None
    assert need.reasons[0].endswith("(db00, db01, db02, db03, db04 and 3 more)")


def test_the_recorded_need_reads_back_as_the_same_rule() -> None:
    rule = ApprovalRule(
        ApprovalScope.GROUP,
        "db",
        required=True,
        policy=ApprovalPolicy.SINGULAR,
        approvers=("user:amy",),
        deadline=dt.timedelta(minutes=90),
        retry_needs_approval=False,
    )
    need = approval_need(groups={"db": rule}, host_groups={"db1": ("db",)})
    assert need is not None
    recorded = approval_policy(need)["approval"]
    back = ApprovalNeed.from_json(recorded)
    assert back is not None
    assert back.decider == rule and back.reasons == need.reasons
    assert not back.retry_needs_approval
    assert ApprovalNeed.from_json({}) is None
    no_deadline = approval_need(
        groups={"db": ApprovalRule(ApprovalScope.GROUP, "db", required=True, deadline=None)},
        host_groups={"db1": ("db",)},
    )
    assert no_deadline is not None
    again = ApprovalNeed.from_json(no_deadline.to_json())
    assert again is not None and again.decider.deadline is None
