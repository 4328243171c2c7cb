"""Version facts that are not struct offsets (pure data, no construct, no I/O).

Each CPython version module declares one ``Facts``: the bits, formats and
marker values the engine needs besides offsets.  Strategies elsewhere are
picked by looking a fact's value up in a table (a dict from the value to a
function), never by comparing version numbers.  Groups:

* ``type_flags``: ``tp_flags`` bits (``Include/object.h``);
* ``ints``: the digit layout of ``PyLongObject`` (``sys.int_info``) and where the sign lives;
* ``dicts``: the key-table format, the values-array format and where instance attributes live;
* ``stackrefs``: the tagged-pointer rules of ``_PyStackRef`` (3.14+);
* ``chunks``: the data-stack chunk header (3.11+);
* ``frames``: the frame model, frame owner values and the entry-frame marker.
"""
from __future__ import annotations

from .records import dataclass, field, fields, is_dataclass

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Any, Dict, Optional, Tuple


@dataclass(frozen=True)
class TypeFlags:
    """``tp_flags`` bits (unchanged 3.8-3.15 except the two 3.11+/3.13+ additions)."""

    heaptype: int = 1 << 9
    long_subclass: int = 1 << 24
    list_subclass: int = 1 << 25
    tuple_subclass: int = 1 << 26
    bytes_subclass: int = 1 << 27
    unicode_subclass: int = 1 << 28
    dict_subclass: int = 1 << 29
    base_exc_subclass: int = 1 << 30
    type_subclass: int = 1 << 31
    #: Py_TPFLAGS_MANAGED_DICT (3.11+; 0 where the version lacks it).
    managed_dict: int = 0
    #: Py_TPFLAGS_INLINE_VALUES (3.13+; 0 where the version lacks it).
    inline_values: int = 0
    #: Py_TPFLAGS_INT_SUBCLASS (2.7's PyIntObject, beside long; 0 where the version lacks it).
    int_subclass: int = 0


@dataclass(frozen=True)
class IntFacts:
    """``PyLongObject`` digits: ``sys.int_info`` plus where sign and digit count are kept."""

    bits_per_digit: int = 30
    sizeof_digit: int = 4
    #: "ob_size" (signed ob_size: sign and digit count, up to 3.11) or "lv_tag" (3.12+).
    header: str = "ob_size"
    #: lv_tag: sign = 1 - (tag & sign_mask), digit count = tag >> ndigits_shift.
    lv_sign_mask: int = 3
    lv_ndigits_shift: int = 3


@dataclass(frozen=True)
class DictFacts:
    """Dict key tables, split-values arrays and instance attribute storage."""

    #: "dk_size" (3.6-3.10: dk_size, 24-byte entries) or "log2" (3.11+: dk_log2_index_bytes,
    #: dk_kind 0 -> 24-byte general entries, else 16-byte unicode entries), or "open_table"
    #: (2.7: ma_table of ma_mask + 1 PyDictEntry slots, iterated in slot order).
    keys: str = "dk_size"
    #: Values array of a split table: "by_entry" (<= 3.10: values[i] belongs to entry i),
    #: "prefix_order" (3.11/3.12: insertion order bytes before values[], then used, prefix size),
    #: "inline_header" (3.13+: {capacity, size, embedded, valid} then values[], then order bytes).
    values: str = "by_entry"
    #: Where instance attributes live: "dictoffset" (<= 3.10), "pre_header_311" (values at
    #: obj-32, dict at obj-24), "pre_header_312" (one word at obj-24: odd = values+1, else dict),
    #: "inline_values" (3.13+: values after tp_basicsize while valid, else dict at obj-24).
    instance: str = "dictoffset"


@dataclass(frozen=True)
class StringFacts:
    """How text is stored: PEP 393 compact strings (3.3+) or 2.7's str/unicode pair."""

    #: "pep393" (PyASCIIObject state bits) or "py2" (PyUnicodeObject: length + Py_UNICODE *str).
    model: str = "pep393"
    #: Kind of the interpreter's own ``str`` (names, file names, dict keys of namespaces):
    #: "str" (text) or "bytes" (2.7's PyStringObject).
    native_str: str = "str"
    #: Bytes per Py_UNICODE of a "py2" build: 4 (UCS4, "wide") or 2 (UCS2, "narrow"; the
    #: build exports PyUnicodeUCS2_* instead of PyUnicodeUCS4_*, see ``narrow_unicode``).
    unicode_char_size: int = 4


@dataclass(frozen=True)
class StackRefFacts:
    """``_PyStackRef`` tagged pointers (3.14+); all zero where slots hold plain pointers."""

    #: Low bits that are tags, not address (3.14+: Py_TAG_BITS = 3).
    tag_mask: int = 0
    #: ``bits & tag_mask == int_tag`` marks a tagged small int whose value is ``bits >> int_shift``.
    int_tag: int = 0
    int_shift: int = 2


@dataclass(frozen=True)
class ChunkFacts:
    """The data-stack chunk (``_PyStackChunk``, 3.11+) that thread-owned frames are bump-allocated in."""

    #: Smallest chunk CPython allocates (``DATA_STACK_CHUNK_SIZE``), so a first read of this size
    #: usually holds the whole chunk.
    min_size: int = 16 * 1024
    #: Bytes before the first frame (previous, size, top, then ``data[]``).
    header_size: int = 24


@dataclass(frozen=True)
class FrameFacts:
    """How frames are linked, who owns them, and which frame an eval-loop call started with."""

    #: "frame_object" (3.8-3.10: linked PyFrameObjects) or "interpreter_frame" (3.11+).
    model: str
    #: How a thread state points at its innermost frame: "frame", "cframe" or "current_frame".
    tstate_frame: str
    #: Bytes per unit of PyFrameObject.f_lasti (1 up to 3.9, 2 in 3.10).
    lasti_unit: int = 1
    #: Field of _PyInterpreterFrame holding the code object, and the one pointing into the bytecode.
    code_field: str = "f_code"
    instr_field: Optional[str] = None
    #: ``enum _frameowner`` values of this version (name -> value).
    owners: Tuple[Tuple[str, int], ...] = ()
    #: Frames with an owner from this value up are interpreter-internal (shims, base frame): skipped.
    skip_owner_from: Optional[int] = None
    #: How the frame an eval-loop call started with is marked:
    #: "every_frame" (before 3.11 each Python call runs its own eval loop),
    #: "is_entry_field" (3.11: ``_PyInterpreterFrame.is_entry``),
    #: "above_shim" (3.12+: the frame whose ``previous`` is the entry shim the eval loop pushed).
    entry_marker: str = "every_frame"
    #: Owner value of that entry shim: FRAME_OWNED_BY_CSTACK (3) in 3.12/3.13,
    #: FRAME_OWNED_BY_INTERPRETER (3) from 3.14 (where CSTACK became 4, and 3.15 dropped it).
    entry_shim_owner: Optional[int] = None
    #: The eval loop: the native function each run of it is a frame of, its frame argument the
    #: Python frame it runs (where a merged stack puts that frame): ``PyEval_EvalFrameEx`` in 2.7,
    #: ``_PyEval_EvalFrameDefault`` from 3.6 (whose ``PyEval_EvalFrameEx`` is a jump through
    #: ``interp->eval_frame``, not an eval loop: a thread paused on it has not entered the frame yet).
    eval_functions: Tuple[str, ...] = ("_PyEval_EvalFrameDefault",)
    #: Name prefixes of eval-loop functions too (3.14+: the tail-call interpreter's ``_TAIL_CALL_*``).
    eval_prefixes: Tuple[str, ...] = ()


@dataclass(frozen=True)
class AsyncioFacts:
    """Where asyncio keeps its tasks and how a suspended coroutine shows what it awaits."""

    #: Attributes of the ``_asyncio`` module holding every registered task: WeakSets or sets
    #: (``_all_tasks`` up to 3.11; ``_scheduled_tasks`` + ``_eager_tasks`` in 3.12/3.13; none
    #: from 3.14, where native tasks are in per-thread linked lists).
    task_sets: Tuple[str, ...] = ("_all_tasks",)
    #: Static C variables of the ``_asyncio`` extension holding such a WeakSet where the module has
    #: no attribute for it (3.6: ``all_tasks``, a local symbol of the extension's ``.symtab``).
    task_set_statics: Tuple[str, ...] = ()
    #: The static C variable holding the {loop: running task} dict where the module has no
    #: ``_current_tasks`` attribute (3.6: ``current_tasks``), None elsewhere.
    current_tasks_static: Optional[str] = None
    #: ELF section of the ``_asyncio`` debug offsets (3.14+: ``.AsyncioDebug``), None before.
    debug_section: Optional[str] = None
    #: How a suspended generator frame says it is inside ``await``/``yield from``:
    #: "stacktop_lasti" (3.8/3.9: f_stacktop set and the next opcode is YIELD_FROM),
    #: "stackdepth_lasti" (3.10: the next opcode is YIELD_FROM, f_valuestack[f_stackdepth-1]),
    #: "resume_oparg" (3.11/3.12: the next instruction is a RESUME with oparg >= 2, top of stack),
    #: "frame_state" (3.13+: gi_frame_state == yield_from_state, top of stack).
    yield_from: str = "stacktop_lasti"
    #: YIELD_FROM (<= 3.10) or the RESUME opcodes (3.11: RESUME, RESUME_QUICK; 3.12: RESUME,
    #: INSTRUMENTED_RESUME), as measured with ``dis._all_opmap`` / ``opcode.opmap``.
    opcodes: Tuple[int, ...] = (72,)
    #: gi_frame_state values (3.11+): suspended inside yield from, and cleared (no frame).
    yield_from_state: int = -1
    cleared_state: int = 4
    #: Stack slots below the top where the awaited object sits (3.15 keeps a NULL above it: 2).
    awaited_depth: int = 1
    #: ``fut_state`` enum values in order (``Modules/_asynciomodule.c``).
    future_states: Tuple[str, ...] = ("pending", "cancelled", "finished")


@dataclass(frozen=True)
class Facts:
    """Everything about one version that is not an offset."""

    frames: FrameFacts
    #: Line table format: "lnotab" (3.6-3.9), "lnotab_unsigned" (2.7), "linetable" (3.10) or
    #: "locations" (3.11+).
    line_table: str
    type_flags: TypeFlags = field(default_factory=TypeFlags)
    ints: IntFacts = field(default_factory=IntFacts)
    dicts: DictFacts = field(default_factory=DictFacts)
    stackrefs: StackRefFacts = field(default_factory=StackRefFacts)
    chunks: ChunkFacts = field(default_factory=ChunkFacts)
    #: Where the GIL is: "runtime" (3.7-3.11: _PyRuntime.ceval.gil), "interpreter" (3.12+), or
    #: "thread_state_current" (2.7/3.6: the ``_PyThreadState_Current`` variable, NULL when released).
    gil: str = "runtime"
    #: Where the interpreter list starts: "runtime" (3.7+: ``_PyRuntime.interpreters.head``) or
    #: "interp_head" (2.7/3.6: the static ``interp_head`` of pystate.c, the root address itself).
    interpreter_list: str = "runtime"
    #: The static C variable that is the GC's ``collecting`` flag where no struct holds it (2.7/3.6:
    #: ``collecting`` of gcmodule.c, a local symbol only ``.symtab`` names), None elsewhere
    #: (3.7/3.8: ``_PyRuntimeState.gc_collecting``; 3.9+: ``PyInterpreterState.gc_collecting``).
    gc_collecting_static: Optional[str] = None
    #: Module prefix of the builtin exceptions' ``tp_name`` ("exceptions" in 2.7, whose
    #: ``tp_name`` is "exceptions.ValueError" while Python names the type "ValueError").
    builtin_exceptions_module: Optional[str] = None
    #: Where a thread waiting for the GIL sleeps (its futex word) when no struct holds the GIL:
    #: the (symbol, size) of statics, the span from the first to the end of the last (3.6: the
    #: mutexes and conditions of ceval_gil.h, glibc's pthread_mutex_t 40 and pthread_cond_t 48 bytes).
    gil_words: Tuple[Tuple[str, int], ...] = ()
    #: 2.7: the static holding a pointer to the GIL's lock (``interpreter_lock``, a malloc'd
    #: glibc ``sem_t``, 32 bytes, whose first word is the futex); None elsewhere.
    gil_lock_pointer: Optional[str] = None
    gil_lock_size: int = 32
    strings: StringFacts = field(default_factory=StringFacts)
    #: repr() rules: "py3", or "py2" (u'' unicode, L-suffixed longs, str without b, <type 'x'>,
    #: set([...]), functions by __name__, old-style instances).
    reprs: str = "py3"
    #: Name of the builtins module in sys.modules ("__builtin__" in 2.7).
    builtins_module: str = "builtins"
    #: Attribute of threading.Thread holding its name ("_name"; 2.7 mangles ``self.__name``).
    thread_name_attr: str = "_name"
    #: 2.7's classic classes and instances (types "classobj" and "instance").
    old_style_classes: bool = False
    #: The interpreter names OS threads after threading.Thread names (3.14+).
    os_thread_names: bool = False
    #: co_localspluskinds bits: local, cell, free, hidden (0 where the version lacks it).
    fast_local: int = 0x20
    fast_cell: int = 0x40
    fast_free: int = 0x80
    fast_hidden: int = 0
    #: Name of the _Py_DebugOffsets declaration the target carries (3.13+).
    debug_offsets: Optional[str] = None
    #: PyASCIIObject.state bits.
    unicode_kind_shift: int = 2
    unicode_compact_bit: int = 5
    unicode_ascii_bit: int = 6
    free_threaded: bool = False
    asyncio: AsyncioFacts = field(default_factory=AsyncioFacts)

    def narrow_unicode(self) -> "Facts":
        """The same facts for a UCS2 ("narrow") 2.7 build."""
        from .records import replace
        return replace(self, strings=replace(self.strings, unicode_char_size=2))

    def to_data(self) -> Dict[str, Any]:
        return _to_data(self)

    @classmethod
    def from_data(cls, data: Dict[str, Any]) -> "Facts":
        return _from_data(cls, data)


_NESTED = {"frames": FrameFacts, "type_flags": TypeFlags, "ints": IntFacts, "dicts": DictFacts,
           "stackrefs": StackRefFacts, "chunks": ChunkFacts, "strings": StringFacts,
           "asyncio": AsyncioFacts}


def _to_data(value: Any) -> Any:
    if is_dataclass(value):
        return {f.name: _to_data(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, tuple):
        return [_to_data(v) for v in value]
    return value


def _from_data(cls, data: Dict[str, Any]):
    kwargs = {}
    for f in fields(cls):
        if f.name not in data:
            continue
        value = data[f.name]
        if f.name in _NESTED and isinstance(value, dict):
            value = _from_data(_NESTED[f.name], value)
        elif isinstance(value, list):
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        kwargs[f.name] = value
    return cls(**kwargs)


#: ``enum _frameowner`` per version family.
OWNERS_311 = (("THREAD", 0), ("GENERATOR", 1), ("FRAME_OBJECT", 2))
OWNERS_312 = OWNERS_311 + (("CSTACK", 3),)
OWNERS_314 = OWNERS_311 + (("INTERPRETER", 3), ("CSTACK", 4))
OWNERS_315 = OWNERS_311 + (("INTERPRETER", 3),)
