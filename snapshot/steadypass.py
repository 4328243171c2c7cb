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
and every unchanged thread's decode are skipped.  A thread whose window moved
but whose newest frame reads as it read in an earlier pass of the same run
(its code, previous frame, instruction, entry byte and first local: the
walker's ``newest_frame_key``) gets the ThreadStack that pass built: with the
frames below it and every other fact unchanged, the same key gives the same
stack.  Only its code object is checked again (``Walker.codes_hold``).  Those
stacks by key outlive a reference while the thread is the same in every other
respect (its thread and native ids, GIL request, current frame, window,
tail, name, GIL, run state and system call, and the walker's generation); they are kept by
all of these, for a thread that comes back to a frame or takes the GIL again.  For the same
reason a few earlier references are kept: a loop that calls a function moves its thread's
current frame back and forth, outside the windows of either, and a pass then starts from
the reference whose bytes it matches instead of being taken whole.

What that relies on: the last pass read nothing but its plan's one re-read
(``pass_was_exact``), so its threads follow from those bytes and from the run
states and system calls, which must be equal too.  Such passes follow one another
until there were ``RUN`` of them and ``RUN_SECONDS`` went by (at a high rate the
whole passes stay a small share), then a whole pass does the upkeep that depends
on time or counts (thread names' TTL, the plan's upkeep).  Any read error, stale
code object or other change of state forgets the reference.
"""
from __future__ import annotations

from time import monotonic

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Dict, List, Optional

    from .model import ThreadStack

#: Passes made from a reference in a row before a whole pass.
RUN = 32
#: ... and for at least this long (seconds): a rename is seen within the thread names' TTL
#: (``threads.NAME_TTL``, 1 s) and this.  At 1 kHz a whole pass costs ten steady ones or more,
#: and 0.1 s made whole passes half of all those a steady leaf needed.
RUN_SECONDS = 0.25
#: Newest-frame keys kept per thread and frame (a running leaf visits a few dozen instructions),
#: and (thread, current frame) places kept.
MAX_KEYS = 64
MAX_PLACES = 256
#: References kept besides the last one: a leaf that goes back and forth between two frames (a loop
#: calling a function) changes its thread's current frame, outside every window of the other.
OTHERS = 6


class _Reference:
    """The last pass a next one may start from."""

    __slots__ = ("threads", "copies", "facts", "windows", "slots", "states", "calls", "generation", "token",
                 "bases", "tails", "stacks", "names")

    def __init__(self, threads, copies, facts, windows, slots, states, calls, generation, token, bases, tails,
                 stacks, names):
        self.threads = threads    # its ThreadStacks, in order
        self.copies = copies      # the ThreadCopy each was decoded from
        self.facts = facts        # per thread: (gil span, interpreter id, collecting)
        self.windows = windows    # the windows compared apart, ((address, size), offset)
        self.slots = slots        # per window: the index of its thread
        self.states = states
        self.calls = calls
        self.generation = generation  # the walker's: its caches were not dropped since
        self.token = token  # the memory's stand-in for the bytes these threads were made of
        self.bases = bases  # per window: where its thread's current frame is in the window's read
        self.tails = tails  # per window: the tail below its thread's newest frame (its window ends it)
        self.stacks = stacks  # per window: newest-frame key -> the ThreadStack it gave over that tail (or None)
        self.names = names  # (thread id, name) per thread: a reference kept aside must still name them so


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

    __slots__ = ("target", "ref", "others", "run", "since", "taken", "by_key", "from_others", "rereads", "known")

    def __init__(self, target):
        self.target = target
        self.ref: Optional[_Reference] = None
        #: earlier references, newest first, a pass may start from when the current one does not fit
        self.others: List[_Reference] = []
        self.run = 0
        self.since = 0.0  # time.monotonic() of the last whole pass kept
        self.taken = 0  # passes made from a reference (tests and benchmarks count them)
        self.by_key = 0  # threads of those passes given a stack kept by key
        self.from_others = 0  # passes that started from a reference kept aside
        self.rereads = 0  # passes whose plan was read again (the first read matched no reference)
        #: (thread state address, current frame, what else its stacks by key depend on) -> (its tail, those stacks)
        self.known: Dict[tuple, tuple] = {}

    def forget(self) -> None:
        self.ref = None
        self.others = []
        self.known = {}

    def keep(self, copied, decoded, threads: List["ThreadStack"], states: Dict[int, str], calls,
             token: tuple) -> None:
        """After a whole pass that read only its plan: what the next pass compares with."""
        from .walk.chunks import ThreadCopy, _Copies
        self.run = 0
        self.since = monotonic()
        previous, self.ref = self.ref, None
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
        walker = self.target.walker
        bases, tails, stacks = [], [], []
        known, self.known = self.known, {}
        status = self.target.thread_status
        for index, (copy, raw) in enumerate(zip(copies, decoded)):
            window = window_of(copy, raw)
            if window is not None:
                windows.append(window)
                slots.append(index)
                start = window[0][0]
                bases.append(copy.frame - start)
                tails.append(raw.tail)
                # stacks by key only for a thread whose frames below the newest are a checked tail
                found = copy.memory.find(copy.frame, walker.frame_header) if raw.tail is not None else None
                key = walker.newest_frame_key(found[0], found[1]) if found and found[2] == start else None
                if key is None:
                    stacks.append(None)
                    continue
                thread = threads[index]
                native_id = thread.native_id
                depends = (walker.generation, window, thread.thread_id, native_id, thread.holds_gil, thread.name,
                           status.gil_requested(copy.raw), states.get(native_id),
                           calls.get(native_id) if calls else None, facts[index])
                place = (copy.tstate_addr, copy.frame, depends)
                last = known.get(place)
                by_key = last[1] if last is not None and last[0] is raw.tail else {}
                if len(by_key) >= MAX_KEYS:
                    by_key.clear()
                by_key[key] = thread
                stacks.append(by_key)
                self.known[place] = (raw.tail, by_key)
        if len(known) + len(self.known) <= MAX_PLACES:
            generation = walker.generation
            for place, entry in known.items():
                if place[2][0] == generation:
                    self.known.setdefault(place, entry)  # (a thread's other frames and facts, for when it is back)
        names = tuple((t.thread_id, t.name) for t in threads)
        self.ref = _Reference(list(threads), copies, facts, windows, slots, dict(states),
                              dict(calls) if calls else calls, walker.generation, token, bases, tails, stacks,
                              names)
        # The earlier references stay while their plan and every thread's name are this pass's (their
        # bytes then still stand for their threads whole), but for one this pass stands for as well.
        earlier = self.others if previous is None else [previous] + self.others
        self.others = []
        same_outside = self.target.process.same_outside
        for other in earlier:
            if (len(self.others) < OTHERS and other.token[0] is token[0] and other.names == names
                    and other.generation == walker.generation
                    and not (other.states == states and other.calls == calls
                             and same_outside(other.windows, other.token))):
                self.others.append(other)

    def serves(self) -> bool:
        """Whether a next pass may be made from the reference: there is one, and no whole pass is due."""
        return self.ref is not None and (self.run < RUN or monotonic() - self.since < RUN_SECONDS)

    def _match(self, process, generation: int, states: Dict[int, str], calls) -> Optional[List[int]]:
        """The windows changed since the reference whose bytes outside them this pass's re-read
        holds (the last pass, else one kept aside: the state the process is back in, a leaf
        between two frames; it becomes the reference), or None when none does."""
        ref = self.ref
        if ref.generation == generation and ref.states == states and ref.calls == calls:
            changed = process.unchanged_outside(ref.windows, ref.token)
            if changed is not None:
                return changed
        others = self.others
        for j, other in enumerate(others):
            if other.generation == generation and other.states == states and other.calls == calls:
                changed = process.unchanged_outside(other.windows, other.token)
                if changed is not None:
                    others[j], self.ref = ref, other
                    self.from_others += 1
                    return changed
        return None

    def take(self, states: Dict[int, str], calls) -> Optional[List["ThreadStack"]]:
        """Inside a pass (its re-read made) that ``serves``: this pass's threads from the
        reference, or None when a whole pass is needed."""
        target = self.target
        walker = target.walker
        process = target.process
        changed = self._match(process, walker.generation, states, calls)
        if changed is None:
            # Mostly a torn re-read: a leaf that calls a function every few microseconds is met
            # half in one frame, half in the other, by one call's ranges read one after another.
            # Read once more: that costs a system call; a whole pass costs a walk.
            if not process.read_plan_again():
                return None
            self.rereads += 1
            changed = self._match(process, walker.generation, states, calls)
            if changed is None:
                return None
        ref = self.ref
        if not changed:
            self.run += 1
            self.taken += 1
            return ref.threads
        threads = list(ref.threads)
        misses, codes = [], []
        for i in changed:
            (address, size), _ = ref.windows[i]
            data = process.read(address, size)
            known = ref.stacks[i]
            key = walker.newest_frame_key(data, ref.bases[i]) if known is not None else None
            stack = known.get(key) if key is not None else None
            if stack is None:
                misses.append((i, data, key))
            else:
                threads[ref.slots[i]] = stack
                codes.append(key[0])
        if codes:
            if not walker.codes_hold(codes):
                self.forget()
                return None
            self.by_key += len(codes)
        windows = None
        if misses:
            copies = [walker.copy_again(ref.copies[ref.slots[i]], data) for i, data, _ in misses]
            raw_threads = walker.decode_threads(copies, False, some=True)
            if walker.generation != ref.generation:
                self.ref = None  # a stale code object: the unchanged threads' frames may name it
                return None
            target.thread_facts.fill_native_ids(raw_threads)
            for (i, _, key), copy, raw in zip(misses, copies, raw_threads):
                index = ref.slots[i]
                old = threads[index]
                gil, interp_id, collecting = ref.facts[index]
                frames = target._frames_of(raw, None, False, 0, 0)
                stack = threads[index] = target._stack_of(raw, frames, copy.raw, old.holds_gil, old.name, states,
                                                          calls, gil, interp_id, collecting, False)
                ref.copies[index] = copy
                window = window_of(copy, raw)  # never None: ``copy_again`` keeps the copy's window
                if window != ref.windows[i]:
                    if windows is None:
                        windows = list(ref.windows)
                    windows[i] = window
                    ref.stacks[i] = None  # another tail below: what was kept by key no longer holds
                elif key is not None and raw.tail is not None and raw.tail is ref.tails[i]:
                    # over the very tail the window was cut above: same key, same stack
                    known = ref.stacks[i]
                    if known is not None:
                        if len(known) >= MAX_KEYS:
                            known.clear()
                        known[key] = stack
        self.run += 1
        self.taken += 1
        ref.threads = threads
        if windows is not None:
            ref.windows = windows
        return threads


__all__ = ["MAX_KEYS", "OTHERS", "RUN", "RUN_SECONDS", "SteadyPasses", "window_of"]
