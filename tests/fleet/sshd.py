"""A real OpenSSH sshd for tests and benchmarks, with generated keys.

Each :class:`SshdServer` has its own host key (so two servers disagree, which
is how host-key mismatches are staged) and authorizes one client key for
root. Its config keeps sessions cheap and many: ``MaxStartups 1000:30:1000``,
``MaxSessions 100``, no PAM, and ``SetEnv SHLVL=1``.

Why ``SetEnv SHLVL=1``: sshd runs every exec request as ``bash -c <command>``
(root's login shell). Debian's bash, when it sees it was started by sshd
(``SSH_CLIENT`` set) and non-interactive, sources ``~/.bashrc`` if its shell
level is below 2 - and root's ``.bashrc`` here runs ``pyenv init`` (~100 ms
of CPU per session). bash computes its level as ``$SHLVL + 1``, so handing it
``SHLVL=1`` makes it level 2 and it skips ``.bashrc`` (measured in
``measure_login_cost``; see the fleet report).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = [
    "SSHD",
    "SshdServer",
    "free_port",
    "generate_key",
    "wait_for_banner",
]

SSHD = "/usr/sbin/sshd"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def generate_key(path: Path, comment: str = "muster-test") -> str:
    """Write an ed25519 key pair at ``path``; return the public key line."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
    )
    return " ".join(path.with_suffix(".pub").read_text().split()[:2])


def wait_for_banner(host: str, port: int, *, deadline: float, alive: object = None) -> None:
    """Return once ``host:port`` answers with an SSH banner; raise at ``deadline``.

    ``alive`` is an optional ``subprocess.Popen`` whose early exit aborts the wait.
    """
    delay = 0.005
    last: Exception | None = None
    while time.monotonic() < deadline:
        if isinstance(alive, subprocess.Popen) and alive.poll() is not None:
            raise RuntimeError(f"sshd exited with status {alive.returncode}")
        try:
            with socket.create_connection((host, port), timeout=1) as s:
                if s.recv(8).startswith(b"SSH-"):
                    return
        except OSError as exc:
            last = exc
        time.sleep(delay)  # polling a socket from sync fixture code, bounded by deadline
        delay = min(delay * 2, 0.2)
    raise TimeoutError(f"sshd on {host}:{port} did not answer in time: {last}")


class SshdServer:
    """One sshd process; ``listen`` is a list of (address, port)."""

    def __init__(
        self,
        listen: Sequence[tuple[str, int]] | None = None,
        *,
        netns: str | None = None,
        workdir: Path | None = None,
        client_key: Path | None = None,
        set_shlvl: bool = True,
        max_sessions: int = 100,
        extra_config: Sequence[str] = (),
    ) -> None:
        """``extra_config`` lines come last; sshd keeps a keyword's first value."""
        self.listen = list(listen) if listen else [("127.0.0.1", free_port())]
        self.netns = netns
        self._own_dir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="muster-sshd-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.host_key = self.workdir / "ssh_host_ed25519_key"
        self.host_public_key = generate_key(self.host_key, "muster-test-host")
        if client_key is None:
            client_key = self.workdir / "client_ed25519"
            generate_key(client_key, "muster-test-client")
        self.client_key = client_key
        self.client_public_key = " ".join(client_key.with_suffix(".pub").read_text().split()[:2])
        self.authorized_keys = self.workdir / "authorized_keys"
        self.authorized_keys.write_text(self.client_public_key + "\n")
        self.config = self.workdir / "sshd_config"
        self.log = self.workdir / "sshd.log"
        self._set_shlvl = set_shlvl
        self._max_sessions = max_sessions
        self._extra = list(extra_config)
        self.proc: subprocess.Popen[bytes] | None = None

    # -- configuration ---------------------------------------------------

    def _config_text(self) -> str:
        lines = [f"ListenAddress {addr}:{port}" for addr, port in self.listen]
        lines += [
            f"HostKey {self.host_key}",
            f"AuthorizedKeysFile {self.authorized_keys}",
            f"PidFile {self.workdir / 'sshd.pid'}",
            "PermitRootLogin prohibit-password",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "StrictModes no",
            "UseDNS no",
            "MaxStartups 1000:30:1000",
            f"MaxSessions {self._max_sessions}",
            "LoginGraceTime 30",
            "LogLevel ERROR",
            "PrintMotd no",
            "PrintLastLog no",
        ]
        if self._set_shlvl:
            lines.append("SetEnv SHLVL=1")
        lines += self._extra
        return "\n".join(lines) + "\n"

    def known_hosts_lines(self, addresses: Iterable[tuple[str, int]] | None = None) -> str:
        """known_hosts lines naming this server's key for ``addresses``."""
        out = []
        for addr, port in addresses if addresses is not None else self.listen:
            name = addr if port == 22 else f"[{addr}]:{port}"
            out.append(f"{name} {self.host_public_key}\n")
        return "".join(out)

    def write_known_hosts(
        self, path: Path, addresses: Iterable[tuple[str, int]] | None = None
    ) -> Path:
        path.write_text(self.known_hosts_lines(addresses))
        return path

    # -- life cycle ------------------------------------------------------

    def start(self, timeout: float = 10.0) -> SshdServer:
        self.config.write_text(self._config_text())
        # sshd's privilege-separation chroot; Debian creates it only at boot.
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        argv = [SSHD, "-D", "-e", "-f", str(self.config)]
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns, *argv]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        try:
            for addr, port in self.listen:
                probe = "127.0.0.1" if addr in ("0.0.0.0", "") else addr
                wait_for_banner(probe, port, deadline=deadline, alive=self.proc)
        except Exception as exc:
            self.stop()
            raise RuntimeError(f"{exc}; sshd log: {self.log_text()}") from exc
        return self

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, *, kill_sessions: bool = True) -> None:
        """Stop listening; with ``kill_sessions``, also end live sessions."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        sessions = _descendants(proc.pid) if kill_sessions else []
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        for pid in sessions:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def cleanup(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> SshdServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux /proc children lists)."""
    found: list[int] = []
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            text = Path(f"/proc/{current}/task/{current}/children").read_text()
        except OSError:
            continue
        kids = [int(p) for p in text.split()]
        found += kids
        todo += kids
    return found
