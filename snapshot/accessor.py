"""A static variable's address, read out of the exported function that returns it.

2.7 and 3.6 keep the interpreter list in ``static PyInterpreterState
*interp_head`` (pystate.c): a local symbol that only ``.symtab`` names, so a
stripped build (Debian's ``python2.7``) loses it.  The exported accessor
``PyInterpreterState_Head`` survives, and its code is one RIP-relative load
(``mov rax, qword ptr [rip + X]; ret``): the address of the first
``[rip + disp]`` operand within its first few instructions is the static.
capstone is imported only here, and only for binaries without the symbol.
"""
from __future__ import annotations

import re

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Optional


#: Instructions decoded at most (the accessors are 2-3 instructions long).
MAX_INSTRUCTIONS = 4
_RIP = re.compile(r"\[rip ([+-]) (0x[0-9a-f]+|\d+)\]")


def rip_load_target(code: bytes, address: int, limit: int = MAX_INSTRUCTIONS) -> Optional[int]:
    """``insn.address + insn.size + disp`` of the first ``[rip + disp]`` operand, or None."""
    import capstone
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    for count, (insn_addr, size, mnemonic, op_str) in enumerate(md.disasm_lite(code, address)):
        if count >= limit:
            break
        match = _RIP.search(op_str)
        if match:
            disp = int(match.group(2), 0)
            return insn_addr + size + (disp if match.group(1) == "+" else -disp)
        if mnemonic in ("ret", "jmp", "call"):
            break
    return None
