"""Run plans over SSH with asyncssh: agentless, pooled, one round trip per plan.

Host keys are verified against known_hosts once, when a connection is made:
``strict`` refuses unknown and changed keys; ``accept-new`` records the key of
a host known_hosts does not name yet, and still refuses a changed one. Auth
uses the given client keys, else the SSH agent and the default keys
(``Host.key_file`` overrides per host); ``use_agent=False`` keeps the agent's
keys out even beside client keys, ``agent_path`` names another agent socket.
Connections are kept in a bounded pool (idle timeout, least recently used idle
connection evicted first) and shared by concurrent plans on the same host;
concurrent first uses of a host wait on one handshake. A connection leaves the
pool the moment it dies, so no plan is handed one known to be dead; a plan
whose pooled connection turns out dead when it opens its channel gets one
retry on a new connection. ``close()`` during a handshake ends the plans
waiting on it as cancelled (not started).

Every plan is one exec request: either its only command (fast path) or the
fixed ``sh -s`` fed a generated driver on stdin (see :mod:`ssh_driver`).
A timeout or cancel always ends the channel; the driver then also kills what
it started (stdin EOF), while a fast-path command is only sent TERM - which
OpenSSH ignores for root logins. ``fast_path=False`` sends every plan through
the driver when remote cleanup must be guaranteed.
Output goes to the sink chunk by chunk, decoded per stream. No per-host
failure is raised: it comes back as a :class:`TransportOutcome` whose reason
comes from the one table in :mod:`ssh_errors`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncssh

from muster.domain.hosts import Host
from muster.domain.plans import Plan
from muster.domain.secret import Secret
from muster.domain.states import FailureReason, HostRunState
from muster.errors import TransportError
from muster.transports.base import OutputSink, TransportOutcome
from muster.transports.ssh_credentials import CredentialSource, ssh_auth_options
from muster.transports.ssh_driver import (
    DRIVER_COMMAND,
    TIMEOUT_EXIT,
    build_driver,
    driver_deadline,
    fast_path_command,
)
from muster.transports.ssh_errors import (
    connect_failure_reason,
    describe,
    running_failure_reason,
)
from muster.transports.ssh_known_hosts import KnownHostsFile
from muster.transports.ssh_policy import HostKeyPolicy
from muster.transports.ssh_session import PlanSession, stop_channel

__all__ = ["HostKeyPolicy", "SshTransport"]

_PoolKey = tuple[str | None, str, int, str | None]


@dataclass(slots=True, eq=False)
class _Pooled:
    key: _PoolKey
    #: Set once the handshake succeeded; the entry exists before so that the
    #: connection can report its own death (see :class:`_PoolClient`).
    conn: asyncssh.SSHClientConnection = field(init=False)
    users: int = 0
    idle_timer: asyncio.TimerHandle | None = field(default=None, repr=False)


class _PoolClient(asyncssh.SSHClient):
    """Takes its connection out of the pool the moment it dies.

    asyncssh calls ``connection_lost`` just before ``is_closed()`` turns true,
    so the pool never holds a connection known to be closed.
    """

    def __init__(self, forget: Callable[[_Pooled], None], entry: _Pooled) -> None:
        self._forget = forget
        self._entry = entry

    def connection_lost(self, exc: Exception | None) -> None:
        self._forget(self._entry)


class SshTransport:
    """The ``ssh`` transport; see the module docstring for its guarantees."""

    def __init__(
        self,
        *,
        known_hosts: str | None = "~/.ssh/known_hosts",
        host_key_policy: HostKeyPolicy = HostKeyPolicy.STRICT,
        connect_timeout: float = 10.0,
        keepalive_interval: float = 15.0,
        keepalive_count_max: int = 3,
        client_keys: Sequence[str] | None = None,
        username: str | None = None,
        pool: bool = True,
        idle_timeout: float = 60.0,
        max_pool: int = 1024,
        deadline_grace: float = 10.0,
        fast_path: bool = True,
        credentials: CredentialSource | None = None,
        use_agent: bool = True,
        agent_path: str | None = None,
        passphrase: Secret | None = None,
    ) -> None:
        self.credentials = credentials
        #: () lets asyncssh pick the agent (``SSH_AUTH_SOCK``); None turns it off.
        self._agent: str | tuple[()] | None = (agent_path or ()) if use_agent else None
        self._passphrase = passphrase
        self._known = KnownHostsFile(known_hosts or "~/.ssh/known_hosts")
        self._policy = HostKeyPolicy(host_key_policy)
        self._connect_timeout = connect_timeout
        self._keepalive = (keepalive_interval, keepalive_count_max)
        self._client_keys = list(client_keys) if client_keys else None
        self._username = username
        self._pool_enabled = pool
        self._idle_timeout = idle_timeout
        self._max_pool = max(0, max_pool)
        self._deadline_grace = deadline_grace
        self._fast_path = fast_path
        self._pool: dict[_PoolKey, _Pooled] = {}
        self._idle: OrderedDict[_PoolKey, _Pooled] = OrderedDict()
        self._connecting: dict[_PoolKey, asyncio.Task[_Pooled]] = {}
        self._options: dict[str | None, asyncssh.SSHClientConnectionOptions] = {}
        #: Handshakes completed (host keys checked); for tests and metrics.
        self.connections_opened = 0

    @property
    def pooled_connections(self) -> int:
        return len(self._pool)

    # -- running a plan --------------------------------------------------

    async def run_plan(self, host: Host, plan: Plan, sink: OutputSink) -> TransportOutcome:
        fast = fast_path_command(plan) if self._fast_path else None
        if fast is not None:
            command, stdin = fast, None
            # No remote ``timeout`` wrapper here: the controller's clock rules.
            deadline = plan.commands[0].timeout
        else:
            try:
                stdin = build_driver(plan).encode("utf-8")
            except ValueError as exc:
                return _failed(FailureReason.TRANSPORT_ERROR, f"invalid plan: {exc}", False)
            command, deadline = DRIVER_COMMAND, driver_deadline(plan, self._deadline_grace)
        key = self._pool_key(host)
        first, overflow = True, False
        while True:
            try:
                if overflow:
                    # The pooled connection refused another channel (MaxSessions):
                    # this plan gets a connection of its own, closed after it.
                    entry, reused = await self._connect(key, host), False
                    entry.users = 1
                else:
                    entry, reused = await self._acquire(key, host)
            except (OSError, asyncssh.Error, TransportError) as exc:
                return self._connect_failed(host, exc)
            try:
                try:
                    chan, session, done = await self._open(entry.conn, command, sink)
                except (OSError, asyncssh.Error) as exc:
                    alive = not entry.conn.is_closed()
                    # One retry: on a new connection when the pooled one was dead,
                    # on one of the plan's own when a live one refused the channel.
                    if first and (reused or alive):
                        first, overflow = False, alive
                        continue
                    return _failed(running_failure_reason(exc), describe(exc), False)
                if stdin is None:
                    chan.write_eof()
                else:
                    # stdin stays open: its EOF is the driver's signal to stop.
                    chan.write(stdin)
                return await self._finish(chan, session, done, deadline, driver=stdin is not None)
            finally:
                self._release(entry)

    async def _open(
        self, conn: asyncssh.SSHClientConnection, command: str, sink: OutputSink
    ) -> tuple[Any, PlanSession, asyncio.Future[BaseException | None]]:
        done: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
        chan, session = await conn.create_session(
            lambda: PlanSession(sink, done), command, encoding=None
        )
        assert isinstance(session, PlanSession)
        return chan, session, done

    async def _finish(
        self,
        chan: Any,
        session: PlanSession,
        done: asyncio.Future[BaseException | None],
        deadline: float,
        *,
        driver: bool,
    ) -> TransportOutcome:
        try:
            async with asyncio.timeout(deadline):
                exc = await asyncio.shield(done)
        except TimeoutError:
            stop_channel(chan)
            return TransportOutcome(
                HostRunState.TIMED_OUT,
                reason=FailureReason.TIMED_OUT,
                message=f"no result within {deadline:g}s; channel closed",
            )
        except asyncio.CancelledError:
            stop_channel(chan)
            raise
        status = session.exit_status
        if status is None:
            if exc is not None:
                return _failed(running_failure_reason(exc), describe(exc), True)
            if session.exit_signal is not None:
                return TransportOutcome(
                    HostRunState.FAILED,
                    reason=FailureReason.COMMAND_FAILED,
                    message=f"killed by signal {session.exit_signal}",
                )
            return _failed(
                FailureReason.CONNECTION_LOST, "channel closed without an exit status", True
            )
        if status == 0:
            return TransportOutcome(HostRunState.SUCCEEDED, exit_code=0)
        if driver and status == TIMEOUT_EXIT:
            return TransportOutcome(
                HostRunState.TIMED_OUT,
                reason=FailureReason.TIMED_OUT,
                message="a command ran past its timeout and was killed",
            )
        return TransportOutcome(
            HostRunState.FAILED,
            exit_code=status,
            reason=FailureReason.COMMAND_FAILED,
            message=f"exit code {status}",
        )

    # -- connections -----------------------------------------------------

    def _pool_key(self, host: Host) -> _PoolKey:
        auth = host.key_file
        if self.credentials is not None:
            # A host's credential (or its groups', which name it) decides how it logs in.
            auth = f"{host.key_file}|{host.credential_ref}|{','.join(host.groups)}"
        return (host.user or self._username, host.hostname, host.port, auth)

    def use_credentials(self, source: CredentialSource | None) -> None:
        """Log in with vault credentials from ``source`` (hosts naming none keep key files)."""
        self.credentials = source

    async def _acquire(self, key: _PoolKey, host: Host) -> tuple[_Pooled, bool]:
        """A connection for ``host`` with one more user; True when it was reused."""
        entry = self._pool.get(key)
        if entry is not None:
            self._claim(entry)
            return entry, True
        task = self._connecting.get(key)
        if task is None:
            task = asyncio.ensure_future(self._connect_into_pool(key, host))
            self._connecting[key] = task
            task.add_done_callback(lambda t: self._connected(key, t))
        # Not awaited directly: one waiter's cancellation must not abort the
        # others' handshake, and close() cancelling it must not look like ours.
        await asyncio.wait((task,))
        if task.cancelled():
            raise TransportError(
                "the transport was closed while connecting", reason=FailureReason.CANCELLED
            )
        entry = task.result()
        # It may have died since (then it is out of the pool and the channel
        # open fails): claimed all the same, so that its release closes it.
        self._claim(entry)
        return entry, False

    def _connected(self, key: _PoolKey, task: asyncio.Task[_Pooled]) -> None:
        self._connecting.pop(key, None)
        if not task.cancelled():
            task.exception()  # retrieved here: every waiter may have been cancelled

    async def _connect_into_pool(self, key: _PoolKey, host: Host) -> _Pooled:
        entry = await self._connect(key, host)
        self._pool[key] = entry
        # Not yet in the idle order, so no eviction can take it before its
        # waiters claim it; the timer closes it if every waiter was cancelled.
        entry.idle_timer = asyncio.get_running_loop().call_later(
            self._idle_timeout, self._discard, entry
        )
        return entry

    async def _connect(self, key: _PoolKey, host: Host) -> _Pooled:
        """A new connection for ``host``, in an entry the pool does not hold yet."""
        hostname, port = host.hostname, host.port
        known: Any = self._known.current()
        record = False
        if self._policy is HostKeyPolicy.ACCEPT_NEW and not self._known.is_known(hostname, port):
            known, record = None, True
        cred = None
        if self.credentials is not None and not host.key_file:
            cred = await self.credentials.ssh_credential(host)
        extra: dict[str, Any] = ssh_auth_options(cred) if cred is not None else {}
        user = host.user or (cred.username if cred is not None else None) or self._username
        entry = _Pooled(key)
        client = _PoolClient(self._forget, entry)
        conn = await asyncssh.connect(
            hostname,
            port,
            options=self._options_for(host.key_file),
            username=user or (),
            known_hosts=known,
            config=None,
            client_factory=lambda: client,
            **extra,
        )
        if record:
            server_key = conn.get_server_host_key()
            # Only a GSS key exchange names no host key, and it is turned off.
            assert server_key is not None
            try:
                self._known.record(hostname, port, server_key)
            except OSError as exc:
                conn.close()
                raise TransportError(
                    f"cannot record the host key in {self._known.path}: {exc}",
                    reason=FailureReason.TRANSPORT_ERROR,
                ) from exc
        entry.conn = conn
        self.connections_opened += 1
        return entry

    def _options_for(self, key_file: str | None) -> asyncssh.SSHClientConnectionOptions:
        """Connection options built once per key choice (keys are read once)."""
        options = self._options.get(key_file)
        if options is None:
            paths = [key_file] if key_file else self._client_keys
            kwargs: dict[str, Any] = {"agent_path": self._agent}
            if paths:
                kwargs["client_keys"] = asyncssh.load_keypairs(
                    [os.path.expanduser(p) for p in paths],
                    self._passphrase.reveal() if self._passphrase is not None else None,
                )
            options = asyncssh.SSHClientConnectionOptions(
                config=None,
                # GSS key exchange would trust a host by Kerberos instead of known_hosts.
                gss_kex=False,
                connect_timeout=self._connect_timeout,
                keepalive_interval=self._keepalive[0],
                keepalive_count_max=self._keepalive[1],
                **kwargs,
            )
            self._options[key_file] = options
        return options

    def _connect_failed(self, host: Host, exc: BaseException) -> TransportOutcome:
        known = False
        if isinstance(exc, asyncssh.HostKeyNotVerifiable):
            with contextlib.suppress(TransportError):
                known = self._known.is_known(host.hostname, host.port)
        reason = connect_failure_reason(exc, host_known=known)
        message = f"{host.hostname}:{host.port}: {describe(exc)}"
        if reason is FailureReason.CANCELLED:
            return TransportOutcome(
                HostRunState.CANCELLED, reason=reason, message=message, started=False
            )
        return _failed(reason, message, False)

    # -- pool bookkeeping (event-loop thread only, O(1) per call) ---------

    # Invariants: an entry in ``_idle`` is the pool's entry for its key and
    # has no users; an entry with users has no idle timer (claiming cancels
    # it), so a timer that fires always finds its entry unused.

    def _claim(self, entry: _Pooled) -> None:
        entry.users += 1
        if entry.idle_timer is not None:
            entry.idle_timer.cancel()
            entry.idle_timer = None
        self._idle.pop(entry.key, None)

    def _release(self, entry: _Pooled) -> None:
        entry.users -= 1
        if entry.users > 0:
            return
        # Not the pool's (any more): an overflow connection, or one that died.
        if self._pool_enabled and self._pool.get(entry.key) is entry:
            self._park(entry)
        else:
            self._discard(entry)

    def _park(self, entry: _Pooled) -> None:
        """Mark an unused connection idle; evict the oldest idle over the bound."""
        loop = asyncio.get_running_loop()
        entry.idle_timer = loop.call_later(self._idle_timeout, self._discard, entry)
        self._idle[entry.key] = entry
        while len(self._pool) > self._max_pool and self._idle:
            _key, oldest = self._idle.popitem(last=False)
            self._discard(oldest)

    def _forget(self, entry: _Pooled) -> None:
        """Take ``entry`` out of the pool, leaving its connection as it is."""
        if entry.idle_timer is not None:
            entry.idle_timer.cancel()
            entry.idle_timer = None
        if self._pool.get(entry.key) is entry:
            del self._pool[entry.key]
            self._idle.pop(entry.key, None)

    def _discard(self, entry: _Pooled) -> None:
        """Take an unused ``entry`` out of the pool and close its connection."""
        self._forget(entry)
        entry.conn.close()

    async def close(self) -> None:
        """Close every pooled connection and wait for them to go.

        Handshakes in progress are abandoned (asyncssh closes their sockets);
        the plans waiting on them end as cancelled.
        """
        connecting = list(self._connecting.values())
        for task in connecting:
            task.cancel()
        entries = list(self._pool.values())
        self._pool.clear()
        self._idle.clear()
        for entry in entries:
            if entry.idle_timer is not None:
                entry.idle_timer.cancel()
            entry.conn.close()
        await asyncio.gather(*connecting, return_exceptions=True)
        for entry in entries:
            with contextlib.suppress(Exception):
                await entry.conn.wait_closed()


def _failed(reason: FailureReason, message: str, started: bool) -> TransportOutcome:
    return TransportOutcome(HostRunState.FAILED, reason=reason, message=message, started=started)
