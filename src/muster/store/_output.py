"""Output: chunks up to a per-host-run cap, a bounded tail, resumable reads.

The cap counts stdout and stderr together. When a chunk would pass it, the
part that fits is stored, then a marker chunk on the same stream says so,
and the host run's ``<stream>_truncated`` flag is set: truncation is stated
in the record and in the stream, never silent. Later output still moves the
byte counters and the tail, so the record shows how much there was and how
it ended. Chunk ids increase across the database and are the SSE event ids;
on PostgreSQL an advisory lock per execution makes one execution's ids
commit in order, so a reader resuming "after id N" never skips a row.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy import text as sql

from muster.domain.states import HostRunState
from muster.errors import ValidationError
from muster.store._core import StoreCore
from muster.store._rows import output_chunk
from muster.store.base import OUTPUT_STREAMS, OutputChunk, output_cap_marker
from muster.store.notify import execution_key
from muster.store.tables import host_runs, output_chunks

__all__ = ["STREAMS", "OutputOps", "truncation_marker"]

STREAMS = OUTPUT_STREAMS
truncation_marker = output_cap_marker
_PAGE = 500


def _prefix(data: bytes, room: int) -> str:
    """The longest prefix of ``data`` within ``room`` bytes, cut on a character boundary."""
    return data[: max(room, 0)].decode("utf-8", errors="ignore")


class OutputOps(StoreCore):
    def append_output(
        self,
        run_id: str,
        owner: str,
        epoch: int,
        stream: str,
        text: str,
        *,
        dropped_bytes: int = 0,
    ) -> bool:
        """Store ``text`` for a run we hold; ``dropped_bytes`` were produced but not sent.

        With ``dropped_bytes``, ``text`` is the latest output after a gap: it
        moves the tail and the counters but is not stored as a chunk.

        False means the run is no longer ours (nothing was stored).
        """
        if stream not in STREAMS:
            raise ValidationError(f"unknown stream {stream!r}", field="stream")
        if not text and not dropped_bytes:
            return True
        cap = self.output_cap_bytes
        with self._tx() as tx:
            conn = tx.conn
            row = conn.execute(
                select(
                    host_runs.c.execution_id,
                    host_runs.c.state,
                    host_runs.c.owner,
                    host_runs.c.epoch,
                    host_runs.c.stored_bytes,
                    host_runs.c.chunks,
                    host_runs.c[f"{stream}_tail"],
                    host_runs.c[f"{stream}_truncated"],
                ).where(host_runs.c.id == run_id)
            ).first()
            if (
                row is None
                or row.state != HostRunState.RUNNING.value
                or row.owner != owner
                or row.epoch != epoch
            ):
                return False
            execution_id = row.execution_id
            if self.is_postgres:
                conn.execute(sql("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": execution_id})
            data = text.encode("utf-8")
            room = cap - row.stored_bytes
            pieces: list[str] = []
            already = getattr(row, f"{stream}_truncated")
            if already or dropped_bytes:
                # Stored output stays a prefix: after a gap, text is only counted.
                piece, overflow = "", True
            elif len(data) <= room:
                piece, overflow = text, False
            else:
                piece, overflow = _prefix(data, room), True
            if piece:
                pieces.append(piece)
            stored = len(piece.encode("utf-8"))
            values: dict[str, Any] = {
                f"{stream}_bytes": host_runs.c[f"{stream}_bytes"] + len(data) + dropped_bytes,
                "stored_bytes": host_runs.c.stored_bytes + stored,
                f"{stream}_tail": (getattr(row, f"{stream}_tail") + text)[-self.tail_chars :],
            }
            if overflow and not already:
                pieces.append(truncation_marker(stream, cap))
                values[f"{stream}_truncated"] = True
            values["chunks"] = host_runs.c.chunks + len(pieces)
            won = conn.execute(
                update(host_runs)
                .where(
                    host_runs.c.id == run_id,
                    host_runs.c.state == HostRunState.RUNNING.value,
                    host_runs.c.owner == owner,
                    host_runs.c.epoch == epoch,
                )
                .values(**values)
            ).rowcount
            if not won:
                return False
            if pieces:
                now = self.clock()
                conn.execute(
                    insert(output_chunks),
                    [
                        {
                            "execution_id": execution_id,
                            "host_run_id": run_id,
                            "stream": stream,
                            "seq": row.chunks + i + 1,
                            "data": p,
                            "created_at": now,
                        }
                        for i, p in enumerate(pieces)
                    ],
                )
                tx.notify(execution_key(execution_id))
            return True

    def read_output(
        self,
        *,
        execution_id: str | None = None,
        run_id: str | None = None,
        after_id: int = 0,
        limit: int = 1000,
    ) -> list[OutputChunk]:
        """Chunks with id > ``after_id``, oldest first, of one execution or host run."""
        if (execution_id is None) == (run_id is None):
            raise ValidationError("give exactly one of execution_id and run_id", field="run_id")
        cond = (
            output_chunks.c.execution_id == execution_id
            if execution_id is not None
            else output_chunks.c.host_run_id == run_id
        )
        with self._read() as conn:
            rows = conn.execute(
                select(output_chunks)
                .where(cond, output_chunks.c.id > after_id)
                .order_by(output_chunks.c.id)
                .limit(limit)
            ).mappings()
            return [output_chunk(r) for r in rows]

    def iter_output(self, run_id: str, stream: str | None = None) -> Iterator[OutputChunk]:
        """Every stored chunk of a host run, page by page: memory stays flat."""
        after = 0
        while True:
            conds = [output_chunks.c.host_run_id == run_id, output_chunks.c.id > after]
            if stream is not None:
                conds.append(output_chunks.c.stream == stream)
            with self._read() as conn:
                rows = [
                    output_chunk(r)
                    for r in conn.execute(
                        select(output_chunks)
                        .where(*conds)
                        .order_by(output_chunks.c.id)
                        .limit(_PAGE)
                    ).mappings()
                ]
            yield from rows
            if len(rows) < _PAGE:
                return
            after = rows[-1].id

    def last_output_id(self, execution_id: str) -> int:
        with self._read() as conn:
            value = conn.execute(
                select(func.max(output_chunks.c.id)).where(
                    output_chunks.c.execution_id == execution_id
                )
            ).scalar()
            return int(value or 0)
