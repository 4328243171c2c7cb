"""The console scripts' entry point: the first of our code to run, so Ctrl-C is held from here on.

Why: a Ctrl-C between Python's start-up and the handler of ``repl.cli._run_console``
(our imports, the generated script's own ``re.sub`` after importing us) printed a
raw ``KeyboardInterrupt`` traceback.  The first statement here replaces Python's
default SIGINT handler with one that only remembers the interrupt; it imports
nothing (``_signal`` is built in, ``signal`` would import ``enum``).
``_run_console`` then takes over inside its handler and acts on a remembered
Ctrl-C there: one ``interrupted`` line and status 130.  What runs before this
module (interpreter start-up, ``site`` and its ``.pth`` files) is outside our
reach: a Ctrl-C there is Python's own ("Failed to import the site module").
"""
import _signal

seen = False


def remember(signum, frame):
    """Only note the Ctrl-C: ``repl.interrupts.install`` turns it into a KeyboardInterrupt
    where it is handled."""
    global seen
    seen = True


if _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler:  # an ignored SIGINT stays ignored
    _signal.signal(_signal.SIGINT, remember)


def console_main() -> None:
    from .cli import console_main as main
    main()


def snapshot_console_main() -> None:
    from .cli import snapshot_console_main as main
    main()
