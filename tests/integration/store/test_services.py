"""The services that need the SQL store's approval, audit and credential areas, on real
SQLite and PostgreSQL, without HTTP: the approval gate and lifecycle as the server,
the worker and the CLI use them, and master-key rotation.

(Submission's refusals and the reaper loop alone are in ``tests/unit/test_services.py``
on the in-memory store.)
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from muster.domain.approval_rules import ApprovalRule, ApprovalScope
from muster.domain.approvals import ApprovalPolicy, ApprovalStatus
from muster.domain.hosts import Host
from muster.domain.scripts import ScriptVersion
from muster.domain.secret import Secret
from muster.domain.states import ExecutionStatus, HostRunState
from muster.errors import NotFoundError, PermissionDeniedError, ValidationError, VaultError
from muster.security.audit import AuditKeys
from muster.security.rbac import Permission
from muster.security.vault import Vault, generate_key, load_keyring, write_key_file
from muster.services.actor import Actor
from muster.services.approvals import Approvals
from muster.services.keys import OldKeysNeeded, reseal_under, rotate_key_file
from muster.services.reaper import Reaper
from muster.services.submission import Submission, submit_script
from muster.store.audit_store import use_audit_keys
from muster.store.sqlalchemy_store import SqlStore
from muster.testing import FakeClock

S = HostRunState
OLGA = Actor("olga", roles=("operator",), address="192.0.2.7")
AMY = Actor("amy", roles=("approver",), address="192.0.2.8")
ADA = Actor(
    "ada",
    roles=("admin",),
    permissions=frozenset({Permission.APPROVALS_MANAGE}),
    address="192.0.2.9",
)


@pytest.fixture
def sql(engine: Engine, clock: FakeClock, vault: Vault) -> Iterator[SqlStore]:
    """Every area on one real database, keyed for the audit chain as ``open_store`` does."""
    use_audit_keys(engine, AuditKeys(os.urandom(32)))
    s = SqlStore(engine, vault=vault, clock=clock)
    s.create_user("olga", roles=["operator"])
    s.create_user("amy", roles=["approver"])
    s.create_user("ada", roles=["admin"])
    s.create_host(Host(name="web1", address="192.0.2.1", groups=("web",)))
    s.create_host(Host(name="db1", address="192.0.2.2", groups=("db",)))
    yield s
    s.notifier.close()


@pytest.fixture
def approvals(sql: SqlStore) -> Approvals:
    return Approvals(sql, book=sql, rules=sql, users=sql, audit=sql, clock=sql.clock)


@pytest.fixture
def watched() -> list[str]:
    return []


@pytest.fixture
def submission(sql: SqlStore, approvals: Approvals, watched: list[str]) -> Submission:
    return Submission(sql, approvals, sql, watch=watched.append)


def _script(sql: SqlStore, name: str = "reboot"):  # type: ignore[no-untyped-def]
    return sql.save_script(ScriptVersion(name=name, shell="bash", body="echo hi")).version


def _audit(sql: SqlStore, action: str):  # type: ignore[no-untyped-def]
    return sql.list_audit(action=action).items


def test_the_gate_reads_todays_rules_not_the_version(sql: SqlStore, approvals: Approvals) -> None:
    version = _script(sql)
    web1, db1 = (sql.get_host(n).to_host() for n in ("web1", "db1"))
    assert approvals.need_for("script", [web1, db1], version.script_id) is None
    approvals.change_rule(ADA, ApprovalScope.SCRIPT, version.script_id, {"required": True})
    need = approvals.need_for("script", [web1], version.script_id)
    assert need is not None and need.reasons == ("script 'reboot' requires approval",)
    assert approvals.scripts_requiring([version.script_id, "other"]) == {version.script_id}
    approvals.change_rule(ADA, ApprovalScope.GROUP, "db", {"required": True})
    approvals.change_rule(ADA, ApprovalScope.COMMAND, "command", {"required": True})
    assert approvals.need_for("job", [web1], None) is None
    assert approvals.need_for("job", [db1], None) is not None
    command = approvals.need_for("command", [web1], None)
    assert command is not None and command.decider.scope is ApprovalScope.COMMAND


def test_submission_opens_the_request_and_audits_the_caller(
    sql: SqlStore, approvals: Approvals, submission: Submission, watched: list[str]
) -> None:
    version = _script(sql)
    approvals.change_rule(ADA, ApprovalScope.SCRIPT, version.script_id, {"required": True})
    execution = submission.script(OLGA, version, ["web1"], {})
    assert execution.status is ExecutionStatus.PENDING_APPROVAL
    assert watched == [execution.id]
    request = sql.approval_for_execution(execution.id)
    assert request is not None and request.request.requester == "olga"
    assert request.content_hash == version.content_hash
    [created] = _audit(sql, "execution.create")
    assert (created.actor, created.address) == ("olga", "192.0.2.7")
    assert created.details["approval_id"] == request.id
    assert created.details["content_hash"] == version.content_hash
    # the requester may not approve; another approver's vote queues the run
    with pytest.raises(PermissionDeniedError, match="own request"):
        approvals.decide(OLGA, request.id, "approve")
    with pytest.raises(ValidationError):
        approvals.decide(AMY, request.id, "maybe")
    decided = approvals.decide(AMY, request.id, "approve", "looks fine")
    assert decided.request.status is ApprovalStatus.APPROVED
    assert sql.get_execution(execution.id).status is ExecutionStatus.QUEUED
    [vote] = _audit(sql, "approval.approve")
    assert (vote.actor, vote.address, vote.details["reason"]) == ("amy", "192.0.2.8", "looks fine")


def test_a_request_nobody_else_can_approve_refuses_the_run(
    sql: SqlStore, approvals: Approvals, submission: Submission
) -> None:
    version = _script(sql)
    approvals.change_rule(
        ADA,
        ApprovalScope.SCRIPT,
        version.script_id,
        {"required": True, "approvers": ("user:olga",)},
    )
    execution = submission.script(OLGA, version, ["web1"], {})
    assert execution.status is ExecutionStatus.REJECTED
    assert "approval request not possible" in (execution.host_runs[0].message or "")
    assert sql.approval_for_execution(execution.id) is None
    [created] = _audit(sql, "execution.create")
    assert created.details["status"] == "rejected" and created.details["approval_id"] is None


def test_the_reaper_passes_a_deadline_into_rejection(
    sql: SqlStore, approvals: Approvals, submission: Submission, clock: FakeClock
) -> None:
    version = _script(sql)
    rule = {"required": True, "deadline": dt.timedelta(minutes=1)}
    approvals.change_rule(ADA, ApprovalScope.SCRIPT, version.script_id, rule)
    execution = submission.script(OLGA, version, ["web1"], {})
    reaper = Reaper(sql, interval=5, approvals=approvals)
    reaper.tick()
    assert sql.get_execution(execution.id).status is ExecutionStatus.PENDING_APPROVAL
    clock.advance(61)
    reaper.tick()
    assert sql.get_execution(execution.id).status is ExecutionStatus.REJECTED
    request = sql.approval_for_execution(execution.id)
    assert request is not None and request.request.status is ApprovalStatus.EXPIRED


def test_sync_opens_a_request_the_submitter_never_opened(
    sql: SqlStore, approvals: Approvals
) -> None:
    version = _script(sql)
    approvals.change_rule(
        ADA, ApprovalScope.SCRIPT, version.script_id, {"policy": ApprovalPolicy.TWO_OF_MANY}
    )
    approvals.change_rule(ADA, ApprovalScope.GROUP, "db", {"required": True})
    sql.create_user("ann", roles=["approver"])
    # stored by a face that crashed before opening the request
    ex_id = submit_script(sql, version, ["db1"], {}, requested_by="olga", gate=approvals.need_for)
    assert sql.approval_for_execution(ex_id) is None
    assert approvals.sync() == 1
    opened = sql.approval_for_execution(ex_id)
    assert opened is not None and opened.request.requester == "olga"
    # the group rule decided it, not the script's (one_of_many, not two_of_many)
    assert opened.request.policy is ApprovalPolicy.ONE_OF_MANY
    assert approvals.sync() == 0  # idempotent
    assert [r.id for r in approvals.page(status=ApprovalStatus.PENDING).items] == [opened.id]


def _fail_everything(sql: SqlStore, n: int) -> None:
    for claim in sql.claim_host_runs("w1", n, lease_seconds=30):
        assert sql.mark_started(claim.id, "w1", claim.epoch)
        assert sql.finish_host_run(claim.id, "w1", claim.epoch, S.FAILED, exit_code=1)


def test_a_retry_waits_for_its_own_approval(
    sql: SqlStore, approvals: Approvals, submission: Submission
) -> None:
    version = _script(sql)
    approvals.change_rule(ADA, ApprovalScope.SCRIPT, version.script_id, {"required": True})
    execution = submission.script(OLGA, version, ["web1"], {})
    first = sql.approval_for_execution(execution.id)
    assert first is not None
    approvals.decide(AMY, first.id, "approve")
    _fail_everything(sql, 1)
    retried = approvals.retry(OLGA, execution.id)
    assert retried.status is ExecutionStatus.PENDING_APPROVAL
    second = sql.approval_for_execution(execution.id)
    assert second is not None and second.id != first.id
    approvals.settle(sql.get_approval(first.id))  # the earlier approval promotes nothing
    assert sql.get_execution(execution.id).status is ExecutionStatus.PENDING_APPROVAL
    [audited] = _audit(sql, "execution.retry")
    assert audited.details["approval_id"] == second.id and audited.address == "192.0.2.7"
    approvals.decide(AMY, second.id, "approve")
    assert sql.get_execution(execution.id).status is ExecutionStatus.QUEUED
    # a rule that lets retries run at once: no new request
    approvals.change_rule(
        ADA, ApprovalScope.SCRIPT, version.script_id, {"retry_needs_approval": False}
    )
    _fail_everything(sql, 1)
    assert approvals.retry(OLGA, execution.id).status is ExecutionStatus.QUEUED
    assert sql.approval_for_execution(execution.id) == sql.get_approval(second.id)


def test_rule_changes_keep_unnamed_fields_and_are_audited(
    sql: SqlStore, approvals: Approvals
) -> None:
    approvals.change_rule(ADA, ApprovalScope.GROUP, "db", {"required": True})
    saved = approvals.change_rule(ADA, ApprovalScope.GROUP, "db", {"approvers": ("user:amy",)})
    assert saved.rule.required and saved.rule.approvers == ("user:amy",)
    assert saved.updated_by == "ada"
    with pytest.raises(ValidationError, match="not a field of an approval rule: colour"):
        approvals.change_rule(ADA, ApprovalScope.GROUP, "db", {"colour": "red"})
    records = _audit(sql, "group.approval_policy")
    assert [r.details["after"]["approvers"] for r in records] == [
        ["user:amy"],
        ["role:approver", "role:admin"],
    ]
    assert records[0].details["before"]["required"] is True
    approvals.delete_rule(ADA, ApprovalScope.GROUP, "db")
    assert approvals.rule(ApprovalScope.GROUP, "db") is None
    with pytest.raises(NotFoundError, match="group 'db' has no approval rule"):
        approvals.delete_rule(ADA, ApprovalScope.GROUP, "db")
    assert len(_audit(sql, "group.approval_policy")) == 3


def test_saved_content_turns_the_script_rule_on_only_for_approval_managers(
    sql: SqlStore, approvals: Approvals
) -> None:
    sid = _script(sql).script_id
    assert not approvals.request_script_rule(OLGA, sid, asked=True)
    assert not approvals.request_script_rule(None, sid, asked=True)
    assert not approvals.request_script_rule(ADA, sid, asked=False)
    assert approvals.rule(ApprovalScope.SCRIPT, sid) is None
    assert approvals.request_script_rule(ADA, sid, asked=True)
    [audited] = _audit(sql, "script.approval_policy")
    assert audited.details["via"] == "requires_approval in the saved content"
    # never turned off by content that does not ask
    assert approvals.request_script_rule(ADA, sid, asked=False)
    stored = approvals.rule(ApprovalScope.SCRIPT, sid)
    assert stored is not None and stored.rule == ApprovalRule(
        ApprovalScope.SCRIPT, sid, required=True
    )


# -- master-key rotation --------------------------------------------------------------


class PausingStore(SqlStore):
    """A real store that runs ``when_done`` once, the first time a re-seal pass finds
    nothing left: the moment another server may still seal with the old key."""

    when_done: Callable[[], None] | None = None

    def rekey(self, batch: int = 200) -> int:
        moved = super().rekey(batch)
        if not moved and self.when_done is not None:
            hook, self.when_done = self.when_done, None
            hook()
        return moved


def test_rotating_the_key_file_reseals_everything_even_what_is_sealed_meanwhile(
    sql: SqlStore, engine: Engine, tmp_path: Path, clock: FakeClock
) -> None:
    key_file = tmp_path / "secret.key"
    write_key_file(key_file, [generate_key()])
    current, older = load_keyring("", key_file, create=False)
    old_vault = Vault(current, older)
    writer = SqlStore(engine, vault=old_vault, clock=clock)  # a server still on the old key
    for i in range(3):
        writer.create_credential(f"c{i}", "password", Secret(f"pw-{i}"))
    rotating = PausingStore(engine, clock=clock)
    rotating.when_done = lambda: writer.create_credential("late", "password", Secret("pw-late"))
    seen: list[int] = []
    done = rotate_key_file(rotating, key_file, current, older, batch=1, progress=seen.append)
    new_current, new_older = load_keyring("", key_file, create=False)
    assert new_older == [] and Vault(new_current).key_id == done.key_id != old_vault.key_id
    assert done.moved == 4 and seen == [1, 2, 3, 1]  # the second pass found the late one
    assert rotating.sealed_key_ids() == {done.key_id}
    reader = SqlStore(engine, vault=Vault(new_current), clock=clock)
    assert reader.open_credential("late").secret.reveal() == "pw-late"
    assert reader.open_credential("c2").secret.reveal() == "pw-2"
    for s in (writer, rotating, reader):
        s.notifier.close()


def test_keys_kept_outside_need_the_old_key_named(
    sql: SqlStore, engine: Engine, clock: FakeClock
) -> None:
    old_key, new_key = os.urandom(32), os.urandom(32)
    writer = SqlStore(engine, vault=Vault(old_key), clock=clock)
    writer.create_credential("db", "password", Secret("pw"))
    old_id = Vault(old_key).key_id
    rotating = SqlStore(engine, clock=clock)
    with pytest.raises(OldKeysNeeded):
        reseal_under(rotating, new_key, [])
    assert rotating.sealed_key_ids() == {old_id}  # nothing moved
    with pytest.raises(VaultError):
        reseal_under(rotating, new_key, [os.urandom(32)])  # not the key that sealed it
    done = reseal_under(rotating, new_key, [old_key])
    assert done.moved == 1 and rotating.sealed_key_ids() == {done.key_id} != {old_id}
    assert rotating.open_credential("db").secret.reveal() == "pw"
    for s in (writer, rotating):
        s.notifier.close()


def test_rotation_reseals_workflow_instance_secrets(
    sql: SqlStore, engine: Engine, clock: FakeClock
) -> None:
    """A workflow instance's secret parameters are opened at each of its steps: after a
    rotation drops the old key they must still open."""
    from muster.domain.workflows import InstanceState, load_workflow_text

    old_key, new_key = os.urandom(32), os.urandom(32)
    writer = SqlStore(engine, vault=Vault(old_key), clock=clock)
    definition = load_workflow_text(
        "name: rotate\nparameters:\n  - {name: token, type: secret}\n"
        "steps:\n  - id: only\n    command: 'true'\n"
    )
    record, _ = writer.save_workflow(definition)
    inst = writer.create_instance(
        record, InstanceState.new(["only"]), params={"token": Secret("wf-secret")}
    )
    old_id = Vault(old_key).key_id
    assert old_id in writer.sealed_key_ids()
    rotating = SqlStore(engine, clock=clock)
    done = reseal_under(rotating, new_key, [old_key])
    assert done.moved == 1 and rotating.sealed_key_ids() == {done.key_id}
    reader = SqlStore(engine, vault=Vault(new_key), clock=clock)
    assert reader.open_instance_secrets(inst.id)["token"].reveal() == "wf-secret"
    for s in (writer, rotating, reader):
        s.notifier.close()
