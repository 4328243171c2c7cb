"""Holding the tool's own interrupts while a target is paused.

Why: a Ctrl-C, SIGTERM or Ctrl-Z that lands between PTRACE_SEIZE and
PTRACE_DETACH can leave a target thread stopped for as long as the tool lives
(or is suspended).  For the whole pause window these signals are blocked in
the pausing thread (``pthread_sigmask``), and when the tool runs other
threads, the main thread's Python-level handlers are swapped for one that only
remembers them (a signal the kernel hands to another thread of the tool still
runs its Python handler in the main thread).  After the detach the handlers come back, the mask is
restored (pending signals are delivered then) and remembered ones are raised
again, so the tool acts on each exactly as it would have, only later.

``_signal`` (the C module under ``signal``) and a class rather than
``contextlib.contextmanager``: ``signal`` builds its enums with ``enum``, and the
two modules were about a tenth of a one-shot dump's start-up.  Handlers and masks
are plain ints here (``signal`` would wrap them in enums; the values are the same).
"""
from __future__ import annotations

import _signal as signal
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import List


#: Signals whose action must wait until every thread of the target runs again.
DEFERRED = tuple(getattr(signal, name) for name in
                 ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGTSTP", "SIGTTIN", "SIGTTOU")
                 if hasattr(signal, name))


class deferred_signals:
    """Block and remember ``DEFERRED`` signals for the duration of the ``with`` block."""

    def __enter__(self) -> None:
        caught: List[int] = []
        self._caught = caught

        def remember(signum, _frame):
            caught.append(signum)

        try:
            self._old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, DEFERRED)
        except (OSError, ValueError):
            self._old_mask = None
        self._old_handlers = old_handlers = {}
        # With one thread the mask alone holds them (a process-directed signal waits
        # for a thread that does not block it); the handler swap costs ~14 system calls.
        # A tool that never imported ``threading`` started no thread (a one-shot dump does not pay
        # for the module to learn that).
        threading = sys.modules.get("threading")
        if threading is not None and threading.current_thread() is threading.main_thread() \
                and threading.active_count() > 1:
            for sig in DEFERRED:
                try:
                    current = signal.getsignal(sig)
                    if current is None or current == signal.SIG_IGN:
                        continue  # installed outside Python (cannot be restored) or ignored anyway
                    old_handlers[sig] = signal.signal(sig, remember)
                except (OSError, ValueError, TypeError):
                    continue

    def __exit__(self, *exc) -> bool:
        for sig, handler in self._old_handlers.items():
            try:
                signal.signal(sig, handler)
            except (OSError, ValueError, TypeError):
                pass
        if self._old_mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, self._old_mask)  # pending ones arrive here
        for sig in dict.fromkeys(self._caught):
            signal.raise_signal(sig)
        return False
