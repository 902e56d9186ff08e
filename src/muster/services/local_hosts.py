"""The server's own machine: who may write or target a host on the local transport.

A host on the local transport runs its plans on the machine the server runs
on, beside the database and the vault key. Creating one, turning a host into
one, changing or deleting one, and running anything on one (directly, through
a selector such as ``*``, or by retrying a run) need ``hosts.local``, which no
built-in role but ``admin`` holds. A refusal is a 403 that names the hosts, so
a selector that happens to include the server is refused visibly instead of
being quietly narrowed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from muster.domain.hosts import TransportKind
from muster.errors import NotFoundError, PermissionDeniedError
from muster.security.rbac import Permission
from muster.store.base import ExecutionRecord, Store

__all__ = [
    "execution_local_hosts",
    "local_names",
    "require_local_permission",
    "require_retry_permission",
    "written_local_hosts",
]


class _Caller(Protocol):
    """An :class:`~muster.services.actor.Actor` or a ``Principal``: a name and permissions."""

    @property
    def name(self) -> str: ...
    def can(self, perm: Permission) -> bool: ...


class _Named(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def transport(self) -> TransportKind: ...


def local_names(hosts: Iterable[_Named]) -> list[str]:
    """Names of the hosts on the local transport, in order, each once."""
    seen: dict[str, None] = {}
    for host in hosts:
        if TransportKind(host.transport) is TransportKind.LOCAL:
            seen.setdefault(host.name)
    return list(seen)


def require_local_permission(who: _Caller | None, names: Iterable[str], *, doing: str) -> None:
    """Refuse ``doing`` on the local hosts ``names`` unless ``who`` holds ``hosts.local``.

    No caller (``who`` is None) is refused too: this check fails closed.
    """
    hosts = list(dict.fromkeys(names))
    if not hosts or (who is not None and who.can(Permission.HOSTS_LOCAL)):
        return
    caller = who.name if who is not None else "an unidentified caller"
    raise PermissionDeniedError(
        f"{caller} lacks permission {Permission.HOSTS_LOCAL.value}, needed to {doing} "
        f"the server's own machine (local transport): {', '.join(hosts)}"
    )


def execution_local_hosts(store: Store, execution: ExecutionRecord) -> list[str]:
    """The execution's hosts that are (now) on the local transport; deleted ones are gone."""
    found: list[str] = []
    for run in execution.host_runs:
        if run.host_id is None:
            continue
        try:
            record = store.get_host(run.host_id)
        except NotFoundError:
            continue
        found.extend(local_names([record]))
    return list(dict.fromkeys(found))


def require_retry_permission(store: Store, execution_id: str, who: _Caller | None) -> None:
    """A retry runs again on the execution's hosts: the same rule as submitting it."""
    names = execution_local_hosts(store, store.get_execution(execution_id))
    require_local_permission(who, names, doing="retry runs on")


def written_local_hosts(store: Store, hosts: Iterable[_Named]) -> list[str]:
    """Hosts an import would write that are, or would replace, a local-transport host."""
    incoming = list(hosts)
    existing = {r.name: r for r in store.list_hosts()}
    replaced = [existing[h.name] for h in incoming if h.name in existing]
    return list(dict.fromkeys([*local_names(incoming), *local_names(replaced)]))
