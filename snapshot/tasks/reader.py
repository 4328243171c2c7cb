"""Every asyncio task of a target, read from memory while it is paused.

Where the tasks are (``layout.facts.asyncio``):

* before 3.14, the ``_asyncio`` module's registries in ``sys.modules``:
  ``_all_tasks`` (a WeakSet, 3.7 to 3.11) or ``_scheduled_tasks`` (WeakSet) +
  ``_eager_tasks`` (set) in 3.12/3.13; in 3.6 the same WeakSet is a static C
  variable of the extension (``all_tasks``, found by its ``.symtab`` symbol);
* from 3.14, the ``_asyncio`` debug table (ELF section ``.AsyncioDebug``) gives
  the offsets of the per-thread circular task lists (and the interpreter's list
  of tasks left by finished threads), of each thread's running task, and of
  ``awaited_by`` inside a task.

Awaited-by edges are read as recorded from 3.14; before, they are inferred:
a task whose ``_fut_waiter`` is another task awaits it; one waiting on a
``_GatheringFuture`` awaits its ``_children``; one inside
``TaskGroup.__aexit__`` awaits the group's ``_tasks``.  Other waits (an inner
task of 3.6-3.11 ``wait_for``, ``shield``) are not inferred.

Tasks have names from 3.8; a 3.6/3.7 task (no name field) is named after its
coroutine as CPython's task repr shows it, ``coro=<QUALNAME()>`` (``coro=<main()>``).
"""
from __future__ import annotations

import struct

from ..errors import CorruptDataError, SnapshotError
from ..model import AsyncTask
from .coroutines import CoroutineReader
from .registries import find_debug_table, find_static

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Dict, List, Optional, Sequence, Tuple


_U64 = struct.Struct("<Q")
_I32 = struct.Struct("<i")
#: Most tasks read (CPython's own reader caps a list walk at 2 << 15 nodes).
MAX_TASKS = 1 << 17
#: Longest tp_base chain followed when checking that an object is a Task.
MAX_BASES = 64

_ERRORS = (SnapshotError, UnicodeDecodeError, struct.error, ValueError)


class TaskReader:
    """Reads tasks for one target; the debug table and type addresses are cached."""

    def __init__(self, process, layout, walker, objects, frame_builder, interpreter):
        self.process = process
        self.layout = layout
        self.walker = walker
        self.objects = objects
        self.frame_builder = frame_builder
        self.interpreter = interpreter
        self.facts = layout.facts.asyncio
        self.coroutines = CoroutineReader(process, layout, walker, objects)
        task = layout.TaskObj
        self.task_size = task.size
        self.off = {name: task.get(name) for name in ("task_loop", "task_state", "task_fut_waiter", "task_coro",
                                                      "task_name", "task_awaited_by", "task_awaited_by_is_set",
                                                      "task_node")}
        self._debug: Optional[Dict[str, int]] = None
        self._debug_looked = 0   # 0: not yet; 1: looked at attach; 2: looked again after _asyncio came
        self._task_types: Dict[int, bool] = {}   # type address -> is Task or a subclass
        self._current_dicts: Dict[int, int] = {}  # interpreter -> its _asyncio._current_tasks dict
        self._name_cache: Dict[Tuple[int, int], str] = {}  # (task, name object) -> name
        self._statics: Dict[str, Optional[int]] = {}   # _asyncio static variable -> its address
        self.modules_field = ("imports_modules" if "imports_modules" in layout.PyInterpreterState
                              else "modules")

    # -- entry point --------------------------------------------------------------------
    def read(self, interps: Sequence[Tuple[int, int, List[Tuple[int, bytes]]]], raw_threads_by_interp,
             with_locals: bool, max_repr: int, max_depth: int) -> Tuple[AsyncTask, ...]:
        """Tasks of every interpreter: ``interps`` are (address, id, thread states)."""
        out: List[AsyncTask] = []
        for (interp, interp_id, tstates), raw_threads in zip(interps, raw_threads_by_interp):
            try:
                out.extend(self._interpreter_tasks(interp, interp_id, tstates, raw_threads, with_locals,
                                                   max_repr, max_depth))
            except _ERRORS:
                continue
            finally:
                self.frame_builder.known_types = {}
        return tuple(out)

    def _interpreter_tasks(self, interp, interp_id, tstates, raw_threads, with_locals, max_repr, max_depth):
        module = self._asyncio_module(interp)
        owners: Dict[int, Optional[int]] = {}      # task -> thread id (from the list it is on)
        running: Dict[int, int] = {}               # task -> thread id (3.14+: tstate's running task)
        raws: Dict[int, bytes] = {}                # task -> its struct, when the list walk read it
        if self.facts.debug_section:
            table = self._debug_table(interp)
            if table is None:
                return []
            self._apply_table(table)
            for tstate, raw in tstates:
                thread_id = _U64.unpack_from(raw, self.walker.ts_thread_id)[0]
                for task in self._list(tstate + table["tstate_asyncio_tasks_head"], raws):
                    owners.setdefault(task, thread_id)
                current = _U64.unpack(self.process.read(tstate + table["tstate_asyncio_running_task"], 8))[0]
                if current:
                    running[current] = thread_id
            for task in self._list(interp + table["interp_asyncio_tasks_head"], raws):
                owners.setdefault(task, None)
        elif module:
            task_type = self.objects.getattr(module, "Task")
            members: List[int] = []
            for name in self.facts.task_sets:
                members.extend(self._set_members(self.objects.getattr(module, name)))
            for name in self.facts.task_set_statics:
                members.extend(self._set_members(self._static_value(name)))
            for task in self._tasks_among(members, task_type):
                owners.setdefault(task, None)
        else:
            return []
        if not owners:
            return []
        return self._build(list(owners)[:MAX_TASKS], owners, running, raw_threads, interp_id,
                           with_locals, max_repr, max_depth, raws)

    # -- running tasks, for async-aware sampling ------------------------------------------
    def running_marks(self, interp: int, tstates: Sequence[Tuple[int, bytes]]) -> Dict[int, str]:
        """Each running task's coroutine frame address -> the task's name (cheap enough per sample).

        3.14+: every thread state's running task (the debug table's offset);
        before, the ``_asyncio._current_tasks`` dict {loop: task}.  The frame
        address tells which thread runs the task and where its coroutine starts
        in that thread's stack.
        """
        try:
            tasks = self._running_tasks(interp, tstates)
            if not tasks:
                return {}
            raws = self.process.read_many([(t, self.task_size) for t in tasks])
            off = self.off
            found = [(t, _U64.unpack_from(r, off["task_coro"])[0], self._name_field(r))
                     for t, r in zip(tasks, raws) if r is not None]
            coros = self.coroutines
            if coros.frame_objects:
                pointers = self.process.read_many([(c + coros.gi_frame, 8) if c else (0, 0) for _, c, _ in found])
                frames = [_U64.unpack(p)[0] if p else 0 for p in pointers]
            else:
                frames = [c + coros.gi_iframe if c else 0 for _, c, _ in found]
            marks = {}
            for (task, coro, name_addr), frame in zip(found, frames):
                if frame:
                    marks[frame] = (self._cached_name(task, name_addr) if name_addr is not None
                                    else self._cached_coroutine_name(task, coro))
            return marks
        except _ERRORS:
            self._current_dicts.pop(interp, None)
            return {}

    def _running_tasks(self, interp: int, tstates) -> List[int]:
        if self.facts.debug_section:
            table = self._debug_table(interp)
            if table is None:
                return []
            self._apply_table(table)
            off = table["tstate_asyncio_running_task"]
            values = self.process.read_many([(t + off, 8) for t, _ in tstates])
            return [v for v in (_U64.unpack(x)[0] if x else 0 for x in values) if v]
        current = self._current_dicts.get(interp)
        if current is None:
            module = self._asyncio_module(interp)
            current = self.objects.getattr(module, "_current_tasks") if module else 0
            if not current and module and self.facts.current_tasks_static:
                current = self._static_value(self.facts.current_tasks_static)
            if not current:
                return []
            if len(self._current_dicts) > 64:
                self._current_dicts.clear()
            self._current_dicts[interp] = current
        return [task for _, task in self.objects.dict_items(current, 4096) if task]

    def _cached_name(self, task: int, name_addr: int) -> str:
        key = (task, name_addr)
        name = self._name_cache.get(key)
        if name is None:
            name = self._name(name_addr)
            if len(self._name_cache) > 65536:
                self._name_cache.clear()
            self._name_cache[key] = name
        return name

    # -- where the tasks are ------------------------------------------------------------
    def _asyncio_module(self, interp: int) -> Optional[int]:
        offset = self.layout.PyInterpreterState.fields[self.modules_field].offset
        modules = _U64.unpack(self.process.read(interp + offset, 8))[0]
        if not modules:
            return None
        return self.objects.dict_get(modules, "_asyncio")

    def _set_members(self, holder: Optional[int]) -> List[int]:
        """Members of a set, or the live referents of a WeakSet (its ``data`` set of weakrefs)."""
        if not holder:
            return []
        kind = self.objects.kind(holder)
        if kind in ("set", "frozenset"):
            return self.objects.set_items(holder, MAX_TASKS)
        data = self.objects.getattr(holder, "data")
        if not data or self.objects.kind(data) != "set":
            return []
        refs = self.objects.set_items(data, MAX_TASKS)
        off = self.layout.PyWeakReference.wr_object
        values = self.process.read_many([(r + off, 8) for r in refs])
        none = self.interpreter.symbol("_Py_NoneStruct")
        return [_U64.unpack(v)[0] for v in values if v and _U64.unpack(v)[0] not in (0, none)]

    def _tasks_among(self, addrs: List[int], task_type: Optional[int]) -> List[int]:
        """The objects that are instances of ``_asyncio.Task`` or a subclass (the C layout applies).

        Their types are read in one batched call; whether a type is a Task type is
        cached by type address (types outlive their instances).
        """
        if not task_type or not addrs:
            return []
        off = self.layout.PyObject.ob_type
        datas = self.process.read_many([(a, off + 8) for a in addrs])
        out = []
        for addr, data in zip(addrs, datas):
            if data is not None and self._is_task_type(_U64.unpack_from(data, off)[0], task_type):
                out.append(addr)
        return out

    def _is_task_type(self, type_addr: int, task_type: int) -> bool:
        known = self._task_types.get(type_addr)
        if known is not None:
            return known
        found = False
        try:
            base_off = self.layout.PyTypeObject.tp_base
            current = type_addr
            for _ in range(MAX_BASES):
                if current == task_type:
                    found = True
                    break
                if not current:
                    break
                current = _U64.unpack(self.process.read(current + base_off, 8))[0]
        except _ERRORS:
            found = False
        if len(self._task_types) > 4096:
            self._task_types.clear()
        self._task_types[type_addr] = found
        return found

    def _debug_table(self, interp: Optional[int] = None) -> Optional[Dict[str, int]]:
        """The target's asyncio debug table, looked for again while it is missing once the
        interpreter has imported ``_asyncio`` (a process sampled from its start imports it late;
        its extension is then mapped: the mappings are read again)."""
        if self._debug is None and not self._debug_looked:
            self._debug_looked = 1
            self._debug = find_debug_table(self.process, self.facts.debug_section)
        elif self._debug is None and self._debug_looked == 1 and interp is not None and self._asyncio_module(interp):
            self._debug_looked = 2       # once: a table still missing then is not in this build
            self.process.maps(refresh=True)
            self._debug = find_debug_table(self.process, self.facts.debug_section)
        return self._debug

    def _apply_table(self, table: Dict[str, int]) -> None:
        if table["task_size"] != self.task_size:
            raise CorruptDataError("the target's asyncio debug table has a %d-byte Task, the layout %d"
                                   % (table["task_size"], self.task_size))
        for name in ("task_name", "task_awaited_by", "task_awaited_by_is_set", "task_coro", "task_node"):
            self.off[name] = table[name]

    def _list(self, head: int, raws: Dict[int, bytes]) -> List[int]:
        """Tasks on one circular ``llist`` (3.14+), bounded.

        A node is inside its task, so each step reads the whole task struct: the
        link to the next node and the fields ``_build`` needs come in one read.
        """
        node_off = self.off["task_node"]
        size = self.task_size
        out = []
        node = _U64.unpack(self.process.read(head, 8))[0]
        seen = set()
        while node and node != head and node not in seen and len(out) < MAX_TASKS:
            seen.add(node)
            task = node - node_off
            raw = self.process.read(task, size)
            raws[task] = raw
            out.append(task)
            node = _U64.unpack_from(raw, node_off)[0]
        return out

    # -- building the model ----------------------------------------------------------------
    def _build(self, tasks, owners, running, raw_threads, interp_id, with_locals, max_repr, max_depth, known):
        off = self.off
        missing = [t for t in tasks if t not in known]
        fetched = dict(zip(missing, self.process.read_many([(t, self.task_size) for t in missing])))
        raws = [known[t] if t in known else fetched[t] for t in tasks]
        coros = [_U64.unpack_from(raw, off["task_coro"])[0] if raw is not None else 0 for raw in raws]
        chains = self.coroutines.chains(coros, with_locals)
        if off["task_name"] is None:
            names = self._coroutine_names(coros)
        else:
            names = self._names([_U64.unpack_from(raw, off["task_name"])[0] if raw is not None else 0
                                 for raw in raws])
        waiters = self._waiter_types(raws, set(tasks))
        task_set = set(tasks)
        frames_at: Dict[int, Tuple[object, int]] = {}
        for thread in raw_threads:
            for index, frame in enumerate(thread.frames):
                frames_at.setdefault(frame.frame_addr, (thread, index))
        loop_threads: Dict[int, Optional[int]] = {}
        self._prefetch_self_types(chains)
        build = self.frame_builder.frame
        states = self.facts.future_states
        result = []
        edges: Dict[int, List[int]] = {}     # awaiter -> tasks it awaits
        inferred = not self.facts.debug_section
        for task, raw, chain, name, waiter_type in zip(tasks, raws, chains, names, waiters):
            if raw is None:
                continue
            state_value = _I32.unpack_from(raw, off["task_state"])[0]
            state = states[state_value] if 0 <= state_value < len(states) else "pending"
            state = {"finished": "done"}.get(state, state)
            thread_id = owners.get(task)
            frames_raw = [c.raw for c in reversed(chain)]
            if chain and chain[0].raw.frame_addr in frames_at:
                # Running: the thread's frames from the innermost down to the task's coroutine frame.
                thread, index = frames_at[chain[0].raw.frame_addr]
                state, thread_id = "running", thread.thread_id
                frames_raw = thread.frames[:index + 1]
            elif task in running:
                state, thread_id = "running", running[task]
            if thread_id is None:
                loop = _U64.unpack_from(raw, off["task_loop"])[0]
                if loop not in loop_threads:
                    loop_threads[loop] = self._loop_thread(loop)
                thread_id = loop_threads[loop]
            frames = tuple(build(f, with_locals, max_repr, max_depth) for f in frames_raw)
            awaits, waiting_on = self._awaits(raw, chain, task_set, waiter_type)
            edges[task] = awaits
            result.append([task, name, state, thread_id, frames, waiting_on])
        self.frame_builder.known_types = {}
        awaited_by: Dict[int, List[int]] = {t: [] for t in tasks}
        if inferred:
            for awaiter, awaited in edges.items():
                for t in awaited:
                    awaited_by.setdefault(t, []).append(awaiter)
        else:
            for task, raw in zip(tasks, raws):
                if raw is not None:
                    awaited_by[task] = [a for a in self._recorded_awaiters(raw) if a in task_set]
            edges = {t: [] for t in tasks}
            for task, awaiters in awaited_by.items():
                for a in awaiters:
                    edges.setdefault(a, []).append(task)
        return [AsyncTask(task, name, state, thread_id, frames, tuple(_unique(edges.get(task, ()))),
                          tuple(_unique(awaited_by.get(task, ()))), inferred, waiting_on, interp_id)
                for task, name, state, thread_id, frames, waiting_on in result]

    def _prefetch_self_types(self, chains) -> None:
        """Before 3.11 methods are named from ``self``'s type: read all those types in one batch."""
        selves = sorted({link.raw.localsplus[0] for chain in chains for link in chain
                         if link.raw.code.needs_first_local and link.raw.localsplus
                         and link.raw.code.slot_names[0] == "self" and link.raw.localsplus[0]})
        if not selves:
            return
        off = self.layout.PyObject.ob_type
        self.frame_builder.known_types = {
            a: _U64.unpack_from(d, off)[0]
            for a, d in zip(selves, self.process.read_many([(a, off + 8) for a in selves])) if d is not None}

    def _cached_coroutine_name(self, task: int, coro: int) -> str:
        """An unnamed task's name, cached like ``_cached_name`` (by task and coroutine object)."""
        key = (task, coro)
        name = self._name_cache.get(key)
        if name is None:
            name = self._coroutine_names([coro])[0]
            if len(self._name_cache) > 65536:
                self._name_cache.clear()
            self._name_cache[key] = name
        return name

    def _name_field(self, raw: bytes) -> Optional[int]:
        """The task's name object (None: the version's tasks have no name)."""
        offset = self.off["task_name"]
        return None if offset is None else _U64.unpack_from(raw, offset)[0]

    def _coroutine_names(self, coros: List[int]) -> List[str]:
        """Names of unnamed (3.6/3.7) tasks: ``coro=<QUALNAME()>`` of each task's coroutine
        (``gi_qualname``, read in one batch)."""
        off = self.layout.PyGenObject.gi_qualname
        values = self.process.read_many([(c + off, 8) if c else (0, 0) for c in coros])
        addrs = [_U64.unpack(v)[0] if v else 0 for v in values]
        try:
            texts = self.objects.strings(addrs, 1024)
        except _ERRORS:
            texts = [None] * len(addrs)
        return ["coro=<%s()>" % text if text is not None else "coro=<?>" for text in texts]

    def _static_value(self, name: str) -> Optional[int]:
        """The object a static ``PyObject *`` variable of the ``_asyncio`` extension points at (3.6),
        found through the extension's ``.symtab`` (None when it is stripped or not loaded)."""
        if name not in self._statics:
            self._statics[name] = find_static(self.process, "_asyncio", name)
        address = self._statics[name]
        if not address:
            return None
        return _U64.unpack(self.process.read(address, 8))[0] or None

    def _names(self, addrs: List[int]) -> List[str]:
        """Task names: the str ones read in one batch, the rest (ints, odd objects) one by one."""
        try:
            quick = self.objects.strings(addrs, 1024)
        except _ERRORS:
            quick = [None] * len(addrs)
        return [text if text is not None else self._name(addr) for addr, text in zip(addrs, quick)]

    def _waiter_types(self, raws, task_set) -> List[str]:
        """Type names of what each task's ``_fut_waiter`` is, when it is not a task (one batched read)."""
        off = self.off["task_fut_waiter"]
        waiters = [_U64.unpack_from(raw, off)[0] if raw is not None else 0 for raw in raws]
        wanted = [w if w and w not in task_set else 0 for w in waiters]
        return self.coroutines.type_names(wanted)

    def _name(self, addr: int) -> str:
        if not addr:
            return ""
        try:
            kind = self.objects.kind(addr)
            if kind == "str":
                return self.objects.string(addr, 1024)
            if kind == "int":
                return "Task-%d" % self.objects.int_value(addr)
            return self.objects.repr(addr, 200, 1)
        except _ERRORS as e:
            return "<unreadable name: %s>" % e

    def _loop_thread(self, loop: int) -> Optional[int]:
        """The thread running a loop: ``BaseEventLoop._thread_id`` (None when it is not running)."""
        if not loop:
            return None
        try:
            value = self.objects.getattr(loop, "_thread_id")
            if value and self.objects.kind(value) == "int":
                return self.objects.int_value(value)
        except _ERRORS:
            pass
        return None

    def _awaits(self, raw: bytes, chain, task_set, type_name: str) -> Tuple[List[int], Optional[str]]:
        """Tasks this task waits on, inferred from what it is suspended on (before 3.14), and a label."""
        waiter = _U64.unpack_from(raw, self.off["task_fut_waiter"])[0]
        awaits: List[int] = []
        label = None
        try:
            if waiter:
                if waiter in task_set:
                    awaits.append(waiter)
                else:
                    label = "%s at 0x%x" % (type_name.rsplit(".", 1)[-1], waiter)
                    if type_name.endswith("_GatheringFuture"):
                        awaits.extend(self._gathered(waiter, task_set))
            for link in chain:
                code = link.raw.code
                if code.name == "__aexit__" and code.filename.endswith("taskgroups.py"):
                    group = self.coroutines.first_slot(link.raw)
                    members = self.objects.getattr(group, "_tasks") if group else None
                    if members and self.objects.kind(members) == "set":
                        awaits.extend(t for t in self.objects.set_items(members) if t in task_set)
        except _ERRORS:
            pass
        return awaits, label

    def _gathered(self, gathering: int, task_set, depth: int = 0) -> List[int]:
        """Tasks a ``_GatheringFuture`` waits for (its ``_children``; nested gathers followed, bounded)."""
        children = self.objects.getattr(gathering, "_children")
        if not children or self.objects.kind(children) not in ("list", "tuple"):
            return []
        out = []
        for child in self.objects.sequence_items(children):
            if child in task_set:
                out.append(child)
            elif depth < 16 and self.coroutines.type_name(self.objects.type_addr(child)).endswith("_GatheringFuture"):
                out.extend(self._gathered(child, task_set, depth + 1))
        return out

    def _recorded_awaiters(self, raw: bytes) -> List[int]:
        """3.14+: ``awaited_by``, one future/task or a set of them."""
        value = _U64.unpack_from(raw, self.off["task_awaited_by"])[0]
        if not value:
            return []
        if raw[self.off["task_awaited_by_is_set"]]:
            try:
                return self.objects.set_items(value, MAX_TASKS)
            except _ERRORS:
                return []
        return [value]


def _unique(values) -> List[int]:
    seen = set()
    out = []
    for v in values:
        if v not in seen:
            seen.add(v)
            out.append(v)
    return out
