"""Idleness (snapshot/threads.py): a thread waiting for the GIL is active, one blocked elsewhere idle.

Real targets on every interpreter: two spinners contend for the GIL (one holds it, the
other sleeps in ``futex`` on a word inside ``_gil_runtime_state``) beside threads
blocked in ``time.sleep``, ``os.read`` and ``Event.wait``.  Every snapshot, paused or
not, must show both spinners active and the three others idle.
"""
from __future__ import annotations

import json
import os
import time

import pytest

from pythons import Target, target_script
from snapshot import attach
from snapshot.process.base import (SYSCALL_RESTART, SYSCALL_SITE, Registers, syscall_number_before,
                                   syscall_of_registers, syscalls_of)
from snapshot.process.procfs import parse_syscall

SNAPSHOTS = 40


@pytest.fixture(scope="module")
def gil_target(python, tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("gil-waits"))
    truth = os.path.join(workdir, "truth.json")
    t = Target(python.path, target_script("gil_waits.py"), [truth], workdir=workdir)
    try:
        t.wait_for_file(truth, 60)
        with open(truth, encoding="utf-8") as fh:
            t.roles = json.load(fh)["threads"]
        yield t
    finally:
        t.stop()


def _wait_until_blocked(target, roles, timeout=10.0):
    """The sleeper, reader and main thread have reached their blocking calls (not just reported)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = [_state(target.pid, roles[r]) for r in ("sleeper", "reader", "main")]
        if all(s == "S" for s in states):
            return
        time.sleep(0.02)
    raise AssertionError("threads did not block: %s" % states)


def _wait_until_main_waits(pid, main_tid, timeout=30.0):
    """Until a reader of its own sees the main thread's innermost frame in ``Condition.wait``
    (``wait`` on 2.7, which has no qualified names)."""
    probe = attach(pid)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            main = [t for t in probe.snapshot(blocking=False).threads if t.native_id == main_tid]
            if main and main[0].frames and main[0].frames[0].function.split(".")[-1] == "wait":  # 2.7: no class
                return
            time.sleep(0.02)
    finally:
        probe.close()
    raise AssertionError("the main thread did not reach Event.wait")


def _state(pid, tid):
    try:
        with open("/proc/%d/task/%d/stat" % (pid, tid), "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    return chr(data[data.rfind(b")") + 2])


@pytest.mark.parametrize("blocking", [True, False], ids=["paused", "nonblocking"])
def test_gil_waiters_are_active_other_waits_idle(python, gil_target, blocking):
    roles = gil_target.roles
    _wait_until_blocked(gil_target, roles)
    wrong = []
    target = attach(gil_target.pid)
    try:
        for _ in range(SNAPSHOTS):
            snap = target.snapshot(blocking=blocking)
            by_tid = {t.native_id: t for t in snap.threads}
            for role, tid in roles.items():
                thread = by_tid.get(tid)
                assert thread is not None, "thread %s (%d) missing from %s" % (role, tid, sorted(by_tid))
                want_idle = not role.startswith("spin")
                if thread.is_idle != want_idle:
                    wrong.append((role, "idle" if thread.is_idle else "active", thread.holds_gil))
    finally:
        target.close()
    assert not wrong, "%d of %d thread readings wrong, e.g. %s" % (len(wrong), SNAPSHOTS * len(roles),
                                                                   wrong[:6])


def test_threads_new_to_a_nonblocking_sampler_are_judged_too(python, tmp_path):
    """Not pausing, a sample reads the system calls of the threads the last one saw; threads
    started since then are read when their stacks are built, so they are right at once."""
    truth = str(tmp_path / "truth.json")
    late = Target(python.path, target_script("gil_waits.py"), [truth, "late"], workdir=str(tmp_path))
    target = None
    try:
        late.wait_for_file(truth + ".waiting", 60)  # the interpreter is up
        target = attach(late.pid)
        for _ in range(3):
            assert len(target.sample(blocking=False).threads) == 1
        open(truth + ".go", "w").close()
        late.wait_for_file(truth, 60)
        with open(truth, encoding="utf-8") as fh:
            roles = json.load(fh)["threads"]
        _wait_until_blocked(late, roles)
        # After writing the truth, the main thread still runs Python to reach Event.wait, and
        # takes the GIL from the spinners for that: until then it rightly counts as active.
        # A second reader waits for it there, so that the four workers stay new to `target`.
        _wait_until_main_waits(late.pid, roles["main"])
        snap = target.sample(blocking=False)  # the first sample that meets the four workers
        by_tid = {t.native_id: t for t in snap.threads}
        got = {role: by_tid[tid].is_idle for role, tid in roles.items() if tid in by_tid}
        assert got == {role: not role.startswith("spin") for role in roles}, got
    finally:
        if target is not None:
            target.close()
        late.stop()


def test_call_number_read_from_the_code_is_orig_rax(python, gil_target):
    """Where a source has no ``orig_rax`` (lldb), the number is read from glibc's ``mov $N,
    %eax; syscall`` before the pc: on the real stopped target it must be what the kernel says
    for every blocked thread (a wait one of our pauses interrupted resumes as restart_syscall)."""
    from snapshot.process.live import LiveProcess
    roles = gil_target.roles
    _wait_until_blocked(gil_target, roles)
    process = LiveProcess(gil_target.pid)
    seen, codes = {}, {}
    try:
        for _ in range(5):
            with process.paused() as stopped:
                for tid in stopped:
                    regs = process.registers(tid)
                    if regs.orig_rax < 0:
                        continue
                    code = process.read(regs.pc - SYSCALL_SITE, SYSCALL_SITE)
                    got = syscall_number_before(code)
                    assert got in (regs.orig_rax, None) or regs.orig_rax == SYSCALL_RESTART, (
                        "thread %d: kernel says call %d, the code %s says %s" % (tid, regs.orig_rax, code.hex(), got))
                    codes[tid] = code.hex()
                    if got is not None:
                        seen[tid] = got
    finally:
        process.close()
    # Every blocked thread sits right after a ``syscall`` (what lldb's "inside a call" reads).
    # Its number is read on glibc 2.36 (Debian 12's); glibc 2.41 (sid) issues cancellable calls
    # from one site that takes the number in a register, so there it stays unknown.
    blocked = {roles[r] for r in ("sleeper", "reader", "main")}
    assert all(codes.get(tid, "").endswith("0f05") for tid in blocked), codes
    if python.flavour != "sid":
        assert blocked <= set(seen), "blocked threads whose call was not read from the code: %s" % (
            {tid: codes.get(tid) for tid in blocked - set(seen)})
    assert syscall_number_before(b"\xb8\xe6\x00\x00\x00\x0f\x05") == 230
    assert syscall_number_before(b"\x90\x90\x90\x31\xc0\x0f\x05") == 0
    assert syscall_number_before(b"\x89\xc7\x90\x90\x90\x0f\x05") is None     # number not loaded just before
    assert syscall_number_before(b"\xb8\xe6\x00\x00\x00\x90\x90") is None     # not after a syscall


def test_syscall_text_parsed():
    assert parse_syscall(b"running\n") == (-1, ())
    assert parse_syscall(b"-1 0x7ffd3a0 0x7f00123\n") == (-1, ())
    nr, args = parse_syscall(b"202 0x55d0c0de 0x80 0x0 0x0 0x0 0xffffffff 0x7ffc 0x7f12\n")
    assert nr == 202 and args == (0x55d0c0de, 0x80, 0, 0, 0, 0xffffffff)
    assert parse_syscall(b"") is None and parse_syscall(b"garbage") is None


def test_syscalls_derived_from_registers():
    values = {"rdi": 0x1000, "rsi": 0x80, "rdx": 2, "r10": 0, "r8": 0, "r9": 0, "rip": 1, "rsp": 2}
    assert syscall_of_registers(Registers.from_names(dict(values, orig_rax=202))) == (202, (0x1000, 0x80, 2, 0, 0, 0))
    assert syscall_of_registers(Registers.from_names(dict(values, orig_rax=(1 << 64) - 1))) == (-1, ())

    class Source:
        def registers(self, tid):
            if tid == 1:
                return Registers.from_names(dict(values, orig_rax=7))
            raise LookupError(tid)

        def in_syscall(self, tids):
            return {2: True, 3: False}

    calls = syscalls_of(Source(), [1, 2, 3])
    assert calls[1] == (7, (0x1000, 0x80, 2, 0, 0, 0)) and calls[2][0] > 0 and calls[3] == (-1, ())
