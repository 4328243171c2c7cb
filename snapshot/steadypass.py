"""Samples made from the last sample and the few bytes that moved since.

Why: between two passes of a sampler that does not pause, most of a process
stands still.  Threads wait for the GIL, a lock or I/O, and a running thread
changes only its newest frames (instruction pointer, value stack, locals): the
part of its newest data-stack chunk from its current frame on, its *window*.
A pass that re-read the same plan as the last pass, whose bytes outside the
windows are all the same (``unchanged_outside``: a few comparisons in C of the
whole re-read), gives the last pass's threads but for those whose window
changed; only those are decoded again, by the walker and builders every pass
uses.  The interpreter and thread lists, the GIL, the names, the copy step
and every unchanged thread's decode are skipped.

What that relies on: the last pass read nothing but its plan's one re-read
(``pass_was_exact``), so its threads follow from those bytes and from the run
states and system calls, which must be equal too.  At most ``RUN`` such passes
follow one another, then a whole pass does the upkeep that depends on time or
counts (thread names' TTL, the plan's upkeep).  Any read error, stale code
object or other change of state forgets the reference.
"""
from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Dict, List, Optional

    from .model import ThreadStack

#: Passes made from a reference in a row before a whole pass.
RUN = 32


class _Reference:
    """The last pass a next one may start from."""

    __slots__ = ("threads", "copies", "facts", "windows", "slots", "states", "calls", "generation", "token")

    def __init__(self, threads, copies, facts, windows, slots, states, calls, generation, token):
        self.threads = threads    # its ThreadStacks, in order
        self.copies = copies      # the ThreadCopy each was decoded from
        self.facts = facts        # per thread: (gil span, interpreter id, collecting)
        self.windows = windows    # the windows compared apart, ((address, size), offset)
        self.slots = slots        # per window: the index of its thread
        self.states = states
        self.calls = calls
        self.generation = generation  # the walker's: its caches were not dropped since
        self.token = token  # the memory's stand-in for the bytes these threads were made of


def window_of(copy, raw):
    """Where a thread's bytes may move without changing anything below its newest frame: from
    the end of what its remembered tail checks in the newest chunk (the caller's header; the
    caller's value stack above it holds stale words the decode never reads), else from its
    current frame, to the end of the chunk's copy.  None when its frames are not in one."""
    window = copy.window
    if window is None:
        return None
    key, offset = window
    tail = raw.tail
    if tail is not None:
        for segment, address, size, _ in tail.checks:
            if segment == key[0] and address + size - segment < offset:
                offset = address + size - segment
    return key, offset


class SteadyPasses:
    """One Target's reference pass and the passes taken from it."""

    __slots__ = ("target", "ref", "run", "taken")

    def __init__(self, target):
        self.target = target
        self.ref: Optional[_Reference] = None
        self.run = 0
        self.taken = 0  # passes made from a reference (tests and benchmarks count them)

    def forget(self) -> None:
        self.ref = None

    def keep(self, copied, decoded, threads: List["ThreadStack"], states: Dict[int, str], calls,
             token: tuple) -> None:
        """After a whole pass that read only its plan: what the next pass compares with."""
        from .walk.chunks import ThreadCopy, _Copies
        self.run = 0
        self.ref = None
        copies, facts, windows, slots = [], [], [], []
        thread_facts = self.target.thread_facts
        for interp, interp_id, _holder, _tstates, raw_threads, collecting, marks in copied:
            # 3.11+ data-stack copies only: before 3.11 a walk follows frame objects outside any
            # copy, and what it re-checks of them is its own business (``_frame_chains``)
            if marks or any(type(c) is not ThreadCopy or type(c.memory) is not _Copies for c in raw_threads):
                return
            gil = thread_facts.gil_span(interp) if calls else None
            for copy in raw_threads:
                copies.append(copy)
                facts.append((gil, interp_id, collecting))
        if not (len(copies) == len(threads) == len(decoded)):
            return
        for index, (copy, raw) in enumerate(zip(copies, decoded)):
            window = window_of(copy, raw)
            if window is not None:
                windows.append(window)
                slots.append(index)
        self.ref = _Reference(list(threads), copies, facts, windows, slots, dict(states),
                              dict(calls) if calls else calls, self.target.walker.generation, token)

    def take(self, states: Dict[int, str], calls) -> Optional[List["ThreadStack"]]:
        """Inside a pass (its re-read made): this pass's threads from the reference, or None
        when a whole pass is needed."""
        ref = self.ref
        target = self.target
        walker = target.walker
        if (ref is None or self.run >= RUN or ref.generation != walker.generation or ref.states != states
                or ref.calls != calls):
            return None
        process = target.process
        changed = process.unchanged_outside(ref.windows, ref.token)
        if changed is None:
            return None
        if not changed:
            self.run += 1
            self.taken += 1
            return ref.threads
        copies = []
        for i in changed:
            (address, size), _ = ref.windows[i]
            copies.append(walker.copy_again(ref.copies[ref.slots[i]], process.read(address, size)))
        raw_threads = walker.decode_threads(copies, False, some=True)
        if walker.generation != ref.generation:
            self.ref = None  # a stale code object: the unchanged threads' frames may name it
            return None
        target.thread_facts.fill_native_ids(raw_threads)
        self.run += 1
        self.taken += 1
        threads = list(ref.threads)
        windows = None
        for i, copy, raw in zip(changed, copies, raw_threads):
            index = ref.slots[i]
            old = threads[index]
            gil, interp_id, collecting = ref.facts[index]
            frames = target._frames_of(raw, None, False, 0, 0)
            threads[index] = target._stack_of(raw, frames, copy.raw, old.holds_gil, old.name, states, calls,
                                              gil, interp_id, collecting, False)
            ref.copies[index] = copy
            window = window_of(copy, raw)  # never None: ``copy_again`` keeps the copy's window
            if window != ref.windows[i]:
                if windows is None:
                    windows = list(ref.windows)
                windows[i] = window
        ref.threads = threads
        if windows is not None:
            ref.windows = windows
        return threads


__all__ = ["RUN", "SteadyPasses", "window_of"]
