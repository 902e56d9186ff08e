"""Store operations the console's administration pages added: a test delivery to one
webhook, a credential's value replaced in place, the audit log filtered by target."""

from __future__ import annotations

import os

import pytest

from muster.domain.credentials import CredentialKind
from muster.domain.secret import Secret
from muster.errors import NotFoundError, ValidationError
from muster.security.audit import AuditKeys
from muster.store.audit_store import use_audit_keys
from muster.store.outbox import WebhookEvent
from muster.store.sqlalchemy_store import SqlStore


def test_a_test_event_goes_to_the_one_webhook_named_whatever_it_wants(store) -> None:
    runs_only = store.create_webhook("https://a.example/h", "secret-one", ["host_run"])
    everything = store.create_webhook("https://b.example/h", "secret-two", ["*"])
    ping = WebhookEvent("ping:1", "ping", '{"event":"ping"}')
    assert store.enqueue_webhook_events([ping], webhook_id=runs_only.id) == 1
    assert [d.event for d in store.list_webhook_deliveries(runs_only.id)] == ["ping"]
    assert store.list_webhook_deliveries(everything.id) == []
    # written once per key, as any event
    assert store.enqueue_webhook_events([ping], webhook_id=runs_only.id) == 0
    assert store.enqueue_webhook_events([ping], webhook_id="no-such-hook") == 0


@pytest.fixture
def sql(store, db_url) -> SqlStore:  # type: ignore[no-untyped-def]
    """The SQL store alone (credentials and the audit log live only there)."""
    assert isinstance(store, SqlStore)
    return store


def test_a_credential_value_is_replaced_in_place(sql: SqlStore, clock) -> None:
    made = sql.create_credential(
        "deploy", CredentialKind.PASSWORD, Secret("old-value"), username="dep"
    )
    clock.advance(5)
    info = sql.replace_credential("deploy", Secret("new-value"))
    assert (info.id, info.name, info.username) == (made.id, "deploy", "dep")
    assert info.updated_at == clock.now and info.updated_at > made.updated_at
    assert sql.open_credential(made.id).secret.reveal() == "new-value"
    info = sql.replace_credential(made.id, Secret("third"), username="other")
    assert info.username == "other"
    with pytest.raises(ValidationError):
        sql.replace_credential("deploy", Secret(""))
    with pytest.raises(NotFoundError):
        sql.replace_credential("nobody", Secret("x"))
    assert sql.open_credential("deploy").secret.reveal() == "third"


def test_the_audit_log_filters_by_target_exactly_or_by_prefix(sql: SqlStore, engine) -> None:
    use_audit_keys(engine, AuditKeys(os.urandom(32)))
    for actor, action, target in (
        ("ops", "user.create", "user:ann"),
        ("ops", "user.update", "user:ann"),
        ("ops", "user.create", "user:annette"),
        ("ops", "credential.create", "credential:ann"),
    ):
        sql.record_audit(actor=actor, action=action, target=target, address=None, details={})
    exact = sql.list_audit(target="user:ann")
    assert exact.total == 2 and {r.target for r in exact.items} == {"user:ann"}
    prefix = sql.list_audit(target="user:*")
    assert prefix.total == 3
    both = sql.list_audit(target="user:ann*", action="user.create")
    assert {r.target for r in both.items} == {"user:ann", "user:annette"}
