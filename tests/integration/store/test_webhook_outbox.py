"""The webhook outbox's contract, on SQLite, PostgreSQL and the in-memory store: an
event is written once per webhook, a delivery is held by one claimer at a time,
a late claimer's finish loses, and the delivery id never changes."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from muster.domain.states import HostRunState
from muster.errors import NotFoundError
from muster.store.outbox import DeliveryState, WebhookEvent

from .conftest import make_hosts, script_execution

SECRET = "whsec-0123456789"


def _event(n: int, name: str = "execution.succeeded") -> WebhookEvent:
    return WebhookEvent(f"{name}:e{n}:1", name, f'{{"event":"{name}","n":{n}}}')


def test_webhooks_are_registered_listed_and_deleted(store, clock):
    a = store.create_webhook("https://a.example/hook", SECRET, ["*"])
    clock.advance(1)  # listed oldest first
    b = store.create_webhook("https://b.example/hook", SECRET, ["host_run"])
    assert [w.id for w in store.list_webhooks()] == [a.id, b.id]
    assert store.get_webhook(b.id).events == ("host_run",)
    store.delete_webhook(a.id)
    assert [w.id for w in store.list_webhooks()] == [b.id]
    with pytest.raises(NotFoundError):
        store.delete_webhook(a.id)
    with pytest.raises(NotFoundError):
        store.get_webhook(a.id)


def test_an_event_is_written_once_per_webhook_that_wants_it(store):
    every = store.create_webhook("https://a.example/hook", SECRET, ["*"])
    runs = store.create_webhook("https://b.example/hook", SECRET, ["host_run"])
    events = [_event(1), _event(2, "host_run.succeeded")]
    assert store.enqueue_webhook_events(events) == 3
    # The same changes seen again (a restart, a second server): nothing new.
    assert store.enqueue_webhook_events(events) == 0
    assert store.enqueue_webhook_events([events[1], _event(3)]) == 1
    assert {d.event for d in store.list_webhook_deliveries(runs.id)} == {"host_run.succeeded"}
    got = store.list_webhook_deliveries(every.id)
    assert len(got) == 3 and {d.state for d in got} == {DeliveryState.PENDING}
    assert all(d.attempts == 0 and d.next_attempt_at is not None for d in got)


def test_a_claim_holds_a_delivery_for_its_lease_and_counts_the_attempt(store, clock):
    hook = store.create_webhook("https://a.example/hook", SECRET, ["*"])
    store.enqueue_webhook_events([_event(1)])
    [first] = store.claim_webhook_deliveries("p1", 10, 30)
    assert first.attempt == 1 and first.target.secret == SECRET
    assert first.target.url == "https://a.example/hook" and first.event == "execution.succeeded"
    assert first.body == '{"event":"execution.succeeded","n":1}'
    assert store.claim_webhook_deliveries("p2", 10, 30) == []
    clock.advance(31)  # p1 died holding it: due again, the same delivery
    [again] = store.claim_webhook_deliveries("p2", 10, 30)
    assert (again.id, again.attempt, again.body) == (first.id, 2, first.body)
    # p1's late answer loses; p2's counts.
    assert not store.finish_webhook_delivery(first.id, "p1", 1, delivered=True, status_code=204)
    assert store.finish_webhook_delivery(again.id, "p2", 2, delivered=True, status_code=204)
    [done] = store.list_webhook_deliveries(hook.id)
    assert done.id == first.id and done.delivered and done.attempts == 2
    assert done.finished_at == clock.now and done.next_attempt_at is None
    assert store.claim_webhook_deliveries("p3", 10, 30) == []
    assert not store.finish_webhook_delivery(again.id, "p2", 2, delivered=True)


def test_a_failed_attempt_waits_for_its_retry_and_the_last_one_gives_up(store, clock):
    hook = store.create_webhook("https://a.example/hook", SECRET, ["*"])
    store.enqueue_webhook_events([_event(1)])
    [c] = store.claim_webhook_deliveries("p", 10, 30)
    retry_at = clock.now + dt.timedelta(seconds=5)
    assert store.finish_webhook_delivery(
        c.id, "p", c.attempt, delivered=False, status_code=503, error="HTTP 503", retry_at=retry_at
    )
    [d] = store.list_webhook_deliveries(hook.id)
    assert (d.state, d.status_code, d.last_error, d.next_attempt_at) == (
        DeliveryState.PENDING,
        503,
        "HTTP 503",
        retry_at,
    )
    assert store.claim_webhook_deliveries("p", 10, 30) == []
    clock.advance(5)
    [c2] = store.claim_webhook_deliveries("p", 10, 30)
    assert c2.id == c.id and c2.attempt == 2
    assert store.finish_webhook_delivery(c2.id, "p", 2, delivered=False, error="timed out")
    [d] = store.list_webhook_deliveries(hook.id)
    assert d.state is DeliveryState.FAILED and d.last_error == "timed out"
    assert store.claim_webhook_deliveries("p", 10, 30) == []


def test_deleting_a_webhook_drops_its_deliveries(store):
    hook = store.create_webhook("https://a.example/hook", SECRET, ["*"])
    keep = store.create_webhook("https://b.example/hook", SECRET, ["*"])
    store.enqueue_webhook_events([_event(1), _event(2)])
    store.delete_webhook(hook.id)
    claimed = store.claim_webhook_deliveries("p", 10, 30)
    assert {c.target.id for c in claimed} == {keep.id} and len(claimed) == 2
    # Registered again, the same event is new to the new webhook.
    again = store.create_webhook("https://a.example/hook", SECRET, ["*"])
    assert store.enqueue_webhook_events([_event(1)]) == 1
    assert [d.event_key for d in store.list_webhook_deliveries(again.id)] == [_event(1).key]


def test_prune_forgets_only_finished_deliveries(store, clock):
    hook = store.create_webhook("https://a.example/hook", SECRET, ["*"])
    store.enqueue_webhook_events([_event(1), _event(2)])
    [first] = store.claim_webhook_deliveries("p", 1, 30)
    store.finish_webhook_delivery(first.id, "p", 1, delivered=True)
    clock.advance(60)
    assert store.prune_webhook_deliveries(clock.now) == 1
    assert [d.state for d in store.list_webhook_deliveries(hook.id)] == [DeliveryState.PENDING]


def test_concurrent_claimers_never_hold_the_same_delivery(store, peers):
    store.create_webhook("https://a.example/hook", SECRET, ["*"])
    store.enqueue_webhook_events([_event(n) for n in range(120)])
    stores = [store, *peers(3)]
    got: list[list[str]] = [[] for _ in stores]
    barrier = threading.Barrier(len(stores))

    def claim(i: int) -> None:
        barrier.wait()
        while batch := stores[i].claim_webhook_deliveries(f"p{i}", 7, 30):
            got[i].extend(c.id for c in batch)

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    everything = [i for ids in got for i in ids]
    assert len(everything) == len(set(everything)) == 120


def test_finished_executions_are_read_in_order_after_a_position(store, clock):
    hosts = make_hosts(store, 3)
    done = []
    for i in range(3):
        ex = script_execution(store, hosts[i : i + 1], name=f"s{i}")
        [c] = store.claim_host_runs("w", 1, 30)
        store.mark_started(c.id, "w", c.epoch)
        store.finish_host_run(c.id, "w", c.epoch, HostRunState.SUCCEEDED, exit_code=0)
        done.append((store.get_execution(ex.id).finished_at, ex.id))
        clock.advance(1)
    script_execution(store, hosts[:1], name="unfinished")
    start = done[0][0] - dt.timedelta(seconds=1)
    assert store.executions_finished_since(start) == done
    assert store.executions_finished_since(start, limit=2) == done[:2]
    assert store.executions_finished_since(done[1][0], after_id=done[1][1]) == done[2:]
    assert store.executions_finished_since(done[1][0], after_id="") == done[1:]


def test_the_watermark_only_moves_forward(store, clock):
    assert store.webhook_watermark() is None
    store.advance_webhook_watermark(clock.now)
    store.advance_webhook_watermark(clock.now - dt.timedelta(seconds=10))
    assert store.webhook_watermark() == clock.now
    later = clock.advance(5)
    store.advance_webhook_watermark(later)
    assert store.webhook_watermark() == later
