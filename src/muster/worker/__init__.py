"""The life of a claimed run: claim, heartbeat, run via a transport, finish, recover."""

from muster.worker.runner import Worker, default_worker_id

__all__ = ["Worker", "default_worker_id"]
