"""Pause, resume, abort and roll back an in-process rollout from the keyboard or by signal.

``muster workflow run`` (a definition with ``rollout:``) and ``muster run
--waves`` run the rollout in the command's own process, so the operator steers
it the way Ansible's and Rundeck's users expect to steer a long run:

* on a terminal, the first Ctrl-C **pauses** at the next safe point (no host
  and no wave starts; hosts already running finish their current step) and
  asks ``[r]esume, [a]bort without rollback, roll[b]ack``; a second Ctrl-C
  while paused aborts; a third ends the process at once;
* without a terminal (a pipeline, CI, a test), SIGINT and SIGTERM **abort**
  without rollback, as ``abort`` means everywhere in muster (auto-rollback is
  for a rollout that *failed*; a stop someone asked for changes nothing more);
* anywhere, SIGUSR1 pauses and SIGUSR2 resumes, so a script can hold a rollout
  (``kill -USR1 PID``) and let it go.

This module only translates: every decision is one of
:class:`~muster.engine.rollout.RolloutEngine`'s controls (``pause``,
``resume``, ``abort``, ``rollback``), which keep the rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from rich.console import Console

from muster.engine.rollout import RolloutEngine
from muster.engine.rollout_result import RolloutRun, RolloutStatus
from muster.errors import ConflictError

__all__ = ["PROMPT", "RolloutControl"]

PROMPT = "[r]esume, [a]bort without rollback, roll[b]ack? "
_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)


class RolloutControl:
    """Installed on the running loop for the length of one rollout.

    ``interactive`` (stdin is a terminal) chooses what the first Ctrl-C means:
    pause and ask, or abort. ``observe`` must hear the engine's notifications
    (it says where a paused rollout is held).
    """

    def __init__(self, engine: RolloutEngine, console: Console, *, interactive: bool) -> None:
        self.engine = engine
        self.console = console
        self.interactive = interactive
        #: The operator chose roll[b]ack: :meth:`finish` rolls back the aborted run.
        self.rollback_requested = False
        self._aborting = False
        self._held = ""
        self._reading = False
        self._pause_asked = False
        self._question: asyncio.Future[str | None] | None = None
        self._question_prompt = ""
        self._turn = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- wiring -----------------------------------------------------------------------

    def install(self) -> None:
        self._loop = asyncio.get_running_loop()
        handlers: dict[signal.Signals, Callable[[], None]] = {
            signal.SIGINT: self._on_interrupt,
            signal.SIGTERM: self._on_terminate,
            signal.SIGUSR1: lambda: self._spawn(self._pause("SIGUSR1")),
            signal.SIGUSR2: lambda: self._spawn(self._resume("SIGUSR2")),
        }
        for sig, handler in handlers.items():
            self._loop.add_signal_handler(sig, handler)

    def uninstall(self) -> None:
        if self._loop is None:
            return
        for sig in _SIGNALS:
            self._loop.remove_signal_handler(sig)
        self._stop_reading()

    def observe(self, run: RolloutRun) -> None:
        """Say once where a paused rollout is held (the safe point it reached)."""
        held = self.engine.holding
        if held and held != self._held:
            self.console.print(f"[bold yellow]paused {held}[/]: {self._how_to_go_on()}")
        self._held = held

    async def finish(self, run: RolloutRun) -> RolloutRun:
        """After the run: roll back when the operator asked to."""
        if self.rollback_requested and run.status is RolloutStatus.ABORTED:
            self.console.print("[yellow]rolling back the hosts already changed, newest wave first")
            return await self.engine.rollback()
        return run

    # -- signals ----------------------------------------------------------------------

    def _on_interrupt(self) -> None:
        if self._aborting:  # the last resort: stop waiting for a clean abort
            assert self._loop is not None
            self._loop.remove_signal_handler(signal.SIGINT)
            raise KeyboardInterrupt
        state = self.engine.run_state
        paused = state is not None and state.status is RolloutStatus.PAUSED
        if paused:
            self._spawn(self._abort("second Ctrl-C" if self.interactive else "interrupted"))
        elif self.interactive:
            self._spawn(self._pause("Ctrl-C", ask=True))
        else:
            self._spawn(self._abort("interrupted"))

    def _on_terminate(self) -> None:
        if not self._aborting:
            self._spawn(self._abort("terminated (SIGTERM)"))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        assert self._loop is not None
        task = self._loop.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- the controls -------------------------------------------------------------------

    async def _pause(self, why: str, *, ask: bool = False) -> None:
        if self._aborting:
            return
        try:
            await self.engine.pause()
        except ConflictError as exc:
            # Nothing to pause (the waves are over; a rollback may be running):
            # the next Ctrl-C must still be able to end the process.
            self._aborting = ask
            then = "; Ctrl-C again ends the process at once" if ask else ""
            self.console.print(f"{why}: cannot pause: {exc}{then}")
            return
        self.console.print(
            f"[bold yellow]{why}: pausing[/]: no new host or wave starts; "
            "hosts already running finish their current step"
        )
        if ask:
            self._ask()

    async def _resume(self, why: str) -> None:
        if self._aborting:
            return
        try:
            await self.engine.resume()
        except ConflictError as exc:
            self.console.print(f"{why}: cannot resume: {exc}")
            return
        self._pause_asked = False
        self.console.print(f"[bold green]{why}: resumed")
        if self._question is not None:  # a question asked before the pause still waits
            self.console.print(self._question_prompt, end="", markup=False)

    async def _abort(self, why: str, *, rollback: bool = False) -> None:
        if self._aborting:
            return
        self._aborting = True
        self._pause_asked = False
        self._answer_question(None)
        self.rollback_requested = rollback
        then = "then rolling back" if rollback else "no rollback"
        self.console.print(f"[bold red]{why}:[/] aborting the rollout ({then})")
        with contextlib.suppress(ConflictError):
            await self.engine.abort()

    def _how_to_go_on(self) -> str:
        if self._pause_asked:
            return "answer r, a or b (Ctrl-C again aborts)"
        return "SIGUSR2 (kill -USR2 PID) resumes, Ctrl-C or SIGINT aborts"

    # -- the terminal -------------------------------------------------------------------

    async def ask(self, prompt: str) -> str | None:
        """One line typed at the terminal in answer to ``prompt``: None without a
        terminal, at its end, or when the rollout is aborted meanwhile. Questions
        take turns; the pause prompt, when shown, gets the lines first."""
        if not self.interactive or self._loop is None or self._aborting:
            return None
        async with self._turn:
            self._question = self._loop.create_future()
            self._question_prompt = prompt
            self.console.print(prompt, end="", markup=False)
            self._start_reading()
            try:
                return await self._question
            finally:
                self._question = None

    def _answer_question(self, line: str | None) -> None:
        if self._question is not None and not self._question.done():
            self._question.set_result(line)

    def _ask(self) -> None:
        self._pause_asked = True
        self.console.print(PROMPT, end="", markup=False)
        self._start_reading()

    def _start_reading(self) -> None:
        if not self._reading and self._loop is not None:
            self._reading = True
            self._loop.add_reader(sys.stdin.fileno(), self._on_line)

    def _stop_reading(self) -> None:
        if self._reading and self._loop is not None:
            self._loop.remove_reader(sys.stdin.fileno())
            self._reading = False

    def _on_line(self) -> None:
        line = sys.stdin.readline()
        if not line:  # end of input: nobody can answer; a paused run waits for a signal
            self._stop_reading()
            self._answer_question(None)
            return
        if not self._pause_asked:
            self._answer_question(line.strip())
            return
        answer = line.strip().lower()[:1]
        if answer == "r":
            self._spawn(self._resume("resume"))
        elif answer == "a":
            self._spawn(self._abort("abort"))
        elif answer == "b":
            self._spawn(self._abort("rollback", rollback=True))
        else:
            self.console.print(PROMPT, end="", markup=False)
