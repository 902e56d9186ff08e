"""The status the database computes equals ``rollup()`` for every mix of states."""

from __future__ import annotations

import itertools

from sqlalchemy import literal, select

from muster.domain.states import HostRunState, rollup
from muster.store._ledger import status_case
from muster.store.tables import STATE_COUNTERS


def test_sql_status_matches_rollup_for_every_combination(engine):
    combos = list(itertools.product((0, 1, 2), repeat=len(STATE_COUNTERS)))
    # Every presence pattern (0 or 1 of each state) plus counts of 2 on a sample.
    picked = [c for c in combos if max(c) <= 1] + combos[:: len(combos) // 500]
    with engine.connect() as conn:
        for i in range(0, len(picked), 200):
            chunk = picked[i : i + 200]
            exprs = [
                status_case({s: literal(n) for s, n in zip(STATE_COUNTERS, combo, strict=True)})
                for combo in chunk
            ]
            got = conn.execute(select(*exprs)).one()
            for combo, value in zip(chunk, got, strict=True):
                states = [
                    HostRunState(s)
                    for s, n in zip(STATE_COUNTERS, combo, strict=True)
                    for _ in range(n)
                ]
                assert value == rollup(states).value, combo
