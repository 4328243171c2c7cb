"""The full-screen ``top``: a prompt_toolkit application over the table the sampler fills.

Why its own module: prompt_toolkit takes a noticeable part of start-up to import, and a
pipe or a ``--duration`` run into a file never draws a screen, so ``top`` imports this only
when stdout is a terminal.

Threads: the sampler keeps the main thread, as in every other command, so its pause
windows defer the tool's own signals there (``snapshot/process/signals.py``) and the
target is never left stopped by a Ctrl-C or SIGTERM.  The application runs in a thread of
its own: it reads keys and redraws on each key and whenever an interval ended (every
``delay`` seconds the sampler's ``on_pass`` makes the interval being sampled the one shown),
reading the shared ``TopStats`` under the lock the sampler's sink holds while it writes them.  Whichever side ends first ends the
other: a quit key stops the sampler, and the end of sampling (duration, target exit,
signal, error) closes the application, which gives the terminal back before the summary
line is printed.
"""
from __future__ import annotations

import asyncio
import contextlib
import threading
import time

from prompt_toolkit.application import Application
from prompt_toolkit.filters import Condition
from prompt_toolkit.input import DummyInput, create_input
from prompt_toolkit.key_binding import KeyBindings
from prompt_toolkit.keys import Keys
from prompt_toolkit.layout import (ConditionalContainer, Float, FloatContainer, HSplit, Layout, Window)
from prompt_toolkit.layout.controls import FormattedTextControl
from prompt_toolkit.output import create_output
from prompt_toolkit.widgets import Frame

from .topview import HELP, TopView

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Callable, List, Optional


#: How often the application looks whether sampling ended.
POLL = 0.2
#: How long the end of sampling waits for the application to give the terminal back.
CLOSE_TIMEOUT = 10.0
STATUS = " Press ? for help, q to quit"


class NoKeys(DummyInput):
    """An input that never has a key and never ends (``DummyInput`` ends the application at once)."""

    @property
    def closed(self) -> bool:
        return False

    def attach(self, input_ready_callback):
        return contextlib.nullcontext()


class TopScreen:
    """The application, its key bindings and its end; ``run_beside`` runs it next to a sampler."""

    def __init__(self, view: TopView, lock, sampler_stats: Callable[[], object], delay: float,
                 on_quit: Callable[[], None], out=None, keys=None, input=None, output=None):
        self.view = view
        self.lock = lock
        self.sampler_stats = sampler_stats
        self.delay = delay
        self.on_quit = on_quit
        self.finished = threading.Event()  # sampling ended: close the application
        self._next_at = time.monotonic() + delay
        if input is None:
            if keys is not None:
                input = create_input(keys)
            else:
                input = NoKeys()  # no terminal to read: a screen without keys (Ctrl-C is a signal)
        self.input = input
        if output is None:
            output = create_output(stdout=out)
        help_window = Window(FormattedTextControl(self._help_fragments), height=len(HELP),
                             width=max(len(line) for line in HELP) + 1)
        body = HSplit([
            Window(FormattedTextControl(self._table_fragments), wrap_lines=False, always_hide_cursor=True),
            Window(FormattedTextControl(self._status_fragments), height=1, style="reverse"),
        ])
        root = FloatContainer(content=body, floats=[Float(ConditionalContainer(
            Frame(help_window, title="top keys"), filter=Condition(lambda: self.view.show_help)))])
        self.app = Application(layout=Layout(root), key_bindings=self._bindings(), full_screen=True,
                               input=input, output=output, mouse_support=False)

    # ------------------------------------------------------------------ keys
    def _bindings(self) -> KeyBindings:
        bindings = KeyBindings()

        @bindings.add(Keys.Any)
        @bindings.add("c-c")
        @bindings.add("escape", eager=True)
        def _key(event) -> None:
            data = event.key_sequence[0].data if event.key_sequence else ""
            self.press(data, event.app)

        return bindings

    def press(self, key: str, app=None) -> Optional[str]:
        """One key through ``TopView.handle_key``, under the lock the sampler writes with."""
        with self.lock:
            action = self.view.handle_key(key, self.sampler_stats())
        if action == "quit":
            self.on_quit()
            self._exit(app or self.app)
        elif action == "redraw":
            (app or self.app).invalidate()
        return action

    # -------------------------------------------------------------- drawing
    def _table_fragments(self):
        size = self.app.output.get_size()
        with self.lock:
            lines = self.view.lines(self.sampler_stats(), size.columns, max(1, size.rows - 1))
        fragments: List[tuple] = []
        for index, line in enumerate(lines):
            if index == 0:
                fragments.append(("bold", line))
            elif index == 3:  # the column heads, as a bar
                fragments.append(("reverse", line.ljust(size.columns)))
            else:
                fragments.append(("", line))
            fragments.append(("", "\n"))
        return fragments[:-1]

    def _status_fragments(self):
        mode = "by line" if self.view.stats.line_numbers else "by function"
        return [("", "%s | aggregated %s" % (STATUS, mode))]

    def _help_fragments(self):
        return [("", "\n".join(HELP))]

    # ------------------------------------------------------------- running
    def on_pass(self, sampler) -> None:
        """The sampler's ``on_pass`` (its thread, between two passes): every ``delay`` seconds the
        interval being sampled becomes the one shown.  Between passes, so the counts of one pass
        never fall on both sides of an interval's end."""
        now = time.monotonic()
        if now >= self._next_at:
            self._next_at = max(self._next_at + self.delay, now)
            with self.lock:
                self.view.next_interval(sampler.stats)
            try:
                self.app.invalidate()  # thread-safe: the redraw is scheduled on the application's loop
            except RuntimeError:
                pass  # the loop closed meanwhile: the application is gone

    async def _timer(self) -> None:
        """Closes the application when sampling ended (however it ended)."""
        while True:
            await asyncio.sleep(POLL)
            if self.finished.is_set():
                self._exit(self.app)
                return

    def _exit(self, app) -> None:
        try:
            app.exit()
        except Exception:
            pass  # already leaving (a quit key and the end of sampling at once)

    def run(self) -> None:
        """Run the application in this thread until a quit key or ``finished``."""
        loop = asyncio.new_event_loop()
        try:
            asyncio.set_event_loop(loop)

            def start() -> None:
                self.app.create_background_task(self._timer())

            loop.run_until_complete(self.app.run_async(pre_run=start, handle_sigint=False))
        finally:
            asyncio.set_event_loop(None)
            loop.close()

    def run_beside(self, sampler) -> str:
        """Sample in this thread while the application runs in another; the sampler's stop reason."""
        failed: List[BaseException] = []

        def display() -> None:
            try:
                self.run()
            except BaseException as error:  # the display broke: stop sampling, report it after
                failed.append(error)
                sampler.stop("display failed")

        ui = threading.Thread(target=display, name="pyspy-top-screen", daemon=True)
        ui.start()
        try:
            reason = sampler.run()
        finally:
            self.finished.set()
            ui.join(CLOSE_TIMEOUT)
        if failed:
            raise failed[0]
        return reason


__all__ = ["TopScreen"]
