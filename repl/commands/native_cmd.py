"""REPL ``native on|all|off`` (snapshots with C frames) and ``disas [ADDRESS|FUNCTION] [N]``.

Both need the threads' registers or code of the target: a live process
(paused for each snapshot), a core file, or a process stopped in a
debugger; a saved snapshot file has neither.
"""
from __future__ import annotations

from .base import Command, CommandError, register


@register
class NativeCommand(Command):
    name = "native"
    help = ("Merge native (C) frames into every snapshot: `native on`, `native all` (also the\n"
            "interpreter's own frames and threads Python never saw), `native off`; no argument: show it.")
    on_core = in_debugger = True
    needs = "the threads' registers"

    def add_arguments(self, parser) -> None:
        parser.add_argument("mode", nargs="?", choices=("on", "all", "off"), help="on, all or off")

    def run(self, session, args) -> int:
        if args.mode is not None:
            if args.mode != "off" and session.target is not None:
                session.target.check_native()
            session.native = args.mode in ("on", "all")
            session.native_all = args.mode == "all"
            if session.pid is not None and not session.exited:
                session.take_snapshot(locals=True)
        mode = "all" if session.native_all else "on" if session.native else "off"
        session.out.write("native frames: %s\n" % mode)
        return 0


@register
class DisasCommand(Command):
    name = "disas"
    aliases = ("disassemble",)
    help = ("Disassemble around ADDRESS (hex, 0x...), from the start of FUNCTION (`qsort_r`, `libc:qsort_r`),\n"
            "or, without either, around the selected native frame's pc (or the thread's innermost\n"
            "native frame); N instructions (default 12).")
    on_core = in_debugger = True
    needs = "the target's code and symbols"

    def add_arguments(self, parser) -> None:
        parser.add_argument("where", nargs="?", metavar="ADDRESS|FUNCTION", help="an address or a function name")
        parser.add_argument("count", nargs="?", type=int, default=12, metavar="N",  # `disas 20`: N alone
                            help="instructions to show (default 12)")

    def run(self, session, args) -> int:
        from snapshot.native import disassemble

        where = args.where
        if where is not None and where.isdigit():
            # `disas 20`: a count (addresses are written 0x...)
            if args.count != 12:
                raise CommandError("give the address in hex (0x...), then N")
            where, args.count = None, int(where)
        if args.count <= 0 or args.count > 10000:
            raise CommandError("N must be in 1..10000")
        target = session.get_target()
        if where is None:
            address = self._frame_address(session)
        else:
            address = _parse_address(where)
        location = address if address is not None else where
        listing = disassemble(target.process, location, args.count)
        if not listing:
            raise CommandError("no code readable at %s" % (where or "%#x" % address))
        out = session.out
        for insn in listing:
            mark = "=> " if insn.is_current else "   "
            place = " <%s>" % insn.location if insn.location else ""
            line = "%s0x%016x%s: %-8s %s" % (mark, insn.address, place, insn.mnemonic, insn.operands)
            out.write((session.style(line, "bold") if insn.is_current else line).rstrip() + "\n")
        return 0

    @staticmethod
    def _frame_address(session) -> int:
        """The selected frame's pc when it is native, else the thread's innermost native frame."""
        def native_frames():
            thread = session.current_thread(required=False)
            return [f for f in thread.frames if f.is_native and f.address] if thread is not None else []

        session.ensure_snapshot(locals=False)
        frames = native_frames()
        if not frames:
            session.take_snapshot(locals=True, native=True)
            frames = native_frames()
        if not frames:
            raise CommandError("the selected thread has no native frames; give an ADDRESS or a FUNCTION")
        frame = session.current_frame(required=False)
        return frame.address if frame is not None and frame.is_native and frame.address else frames[0].address


def _parse_address(text: str):
    """An int for ``0x...`` or decimal text, None for a function name."""
    try:
        return int(text, 0)
    except ValueError:
        return None
