"""A command under a pseudo-terminal, and the screen a VT100-like terminal would show for it.

Why: a full-screen program (prompt_toolkit) redraws only what changed, with cursor moves,
so its byte stream does not contain the screen's text in order; tests read the screen
instead.  ``Screen`` understands what such programs send (cursor positioning and moves,
erasing, the alternate screen, SGR and modes ignored, cursor position reports answered);
``PtyCommand`` runs a command on a pty of a given size, feeds a ``Screen`` from a reader
thread and lets a test send keys and wait for screen conditions.
"""
from __future__ import annotations

import codecs
import fcntl
import os
import re
import signal
import struct
import subprocess
import termios
import threading
import time
from typing import Callable, List, Optional

_CSI = re.compile(r"\x1b\[([?>=]?)([\d;]*)([ -/]*)([@-~])")
_OSC = re.compile(r"\x1b\][^\x07\x1b]*(\x07|\x1b\\)")


class Screen:
    def __init__(self, rows: int, cols: int, reply: Optional[Callable[[bytes], None]] = None):
        self.rows, self.cols = rows, cols
        self.reply = reply
        self.main = self._blank()
        self.alternate = None
        self.row = self.col = 0
        self.saved = (0, 0)
        self.autowrap = True
        self.entered_alternate = self.left_alternate = False
        self.last_alternate = ""  # the alternate screen's text when it was left
        self._pending = ""
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def resize(self, rows: int, cols: int) -> None:
        """A new, blank size (what the program draws next fills it)."""
        self.rows, self.cols = rows, cols
        self.main = self._blank()
        if self.alternate is not None:
            self.alternate = self._blank()
        self.row, self.col = min(self.row, rows - 1), min(self.col, cols - 1)

    def _blank(self) -> List[List[str]]:
        return [[" "] * self.cols for _ in range(self.rows)]

    @property
    def grid(self) -> List[List[str]]:
        return self.alternate if self.alternate is not None else self.main

    def text(self) -> str:
        return "\n".join("".join(row).rstrip() for row in self.grid)

    def feed(self, data: bytes) -> None:
        text = self._pending + self._decoder.decode(data)
        self._pending = ""
        i, n = 0, len(text)
        while i < n:
            ch = text[i]
            if ch == "\x1b":
                if i + 1 >= n:
                    self._pending = text[i:]
                    return
                nxt = text[i + 1]
                if nxt == "[":
                    m = _CSI.match(text, i)
                    if m is None:
                        if re.match(r"\x1b\[[?>=]?[\d;]*[ -/]*$", text[i:]):
                            self._pending = text[i:]  # split in the middle: wait for the rest
                            return
                        i += 2
                        continue
                    self._csi(m.group(1), m.group(2), m.group(4))
                    i = m.end()
                elif nxt == "]":
                    m = _OSC.match(text, i)
                    if m is None:
                        self._pending = text[i:]
                        return
                    i = m.end()
                elif nxt in "()*+":
                    if i + 2 >= n:
                        self._pending = text[i:]
                        return
                    i += 3  # character set selection
                elif nxt == "7":
                    self.saved = (self.row, self.col)
                    i += 2
                elif nxt == "8":
                    self.row, self.col = self.saved
                    i += 2
                else:
                    i += 2  # ESC = / ESC > and the like
                continue
            if ch == "\r":
                self.col = 0
            elif ch == "\n":
                self._line_feed()
            elif ch == "\b":
                self.col = max(0, self.col - 1)
            elif ch == "\t":
                self.col = min(self.cols - 1, (self.col // 8 + 1) * 8)
            elif ch >= " ":
                self._put(ch)
            i += 1

    def _line_feed(self) -> None:
        if self.row == self.rows - 1:
            grid = self.grid
            del grid[0]
            grid.append([" "] * self.cols)
        else:
            self.row += 1

    def _put(self, ch: str) -> None:
        if self.col >= self.cols:
            if self.autowrap:
                self.col = 0
                self._line_feed()
            else:
                self.col = self.cols - 1
        self.grid[self.row][self.col] = ch
        self.col += 1

    def _csi(self, private: str, params: str, final: str) -> None:
        args = [int(p) if p else 0 for p in params.split(";")] if params else []

        def arg(index: int, default: int) -> int:
            return args[index] if len(args) > index and args[index] else default

        grid = self.grid
        if private == "?":
            modes = set(args)
            if final in "hl":
                on = final == "h"
                if 7 in modes:
                    self.autowrap = on
                if modes & {47, 1047, 1049}:
                    if on and self.alternate is None:
                        self.alternate = self._blank()
                        self.entered_alternate = True
                    elif not on and self.alternate is not None:
                        self.last_alternate = self.text()
                        self.alternate = None
                        self.left_alternate = True
            return
        if final in "Hf":
            self.row = min(self.rows - 1, arg(0, 1) - 1)
            self.col = min(self.cols - 1, arg(1, 1) - 1)
        elif final == "A":
            self.row = max(0, self.row - arg(0, 1))
        elif final == "B":
            self.row = min(self.rows - 1, self.row + arg(0, 1))
        elif final == "C":
            self.col = min(self.cols - 1, self.col + arg(0, 1))
        elif final == "D":
            self.col = max(0, min(self.col, self.cols - 1) - arg(0, 1))
        elif final == "G":
            self.col = min(self.cols - 1, arg(0, 1) - 1)
        elif final == "d":
            self.row = min(self.rows - 1, arg(0, 1) - 1)
        elif final == "K":
            mode, row, col = arg(0, 0), grid[self.row], min(self.col, self.cols)
            span = range(col, self.cols) if mode == 0 else range(0, col + 1) if mode == 1 else range(self.cols)
            for c in span:
                if c < self.cols:
                    row[c] = " "
        elif final == "J":
            mode = arg(0, 0)
            if mode == 0:
                self._csi("", "", "K")
                rows = range(self.row + 1, self.rows)
            elif mode == 1:
                self._csi("", "1", "K")
                rows = range(0, self.row)
            else:
                rows = range(self.rows)
            for r in rows:
                grid[r] = [" "] * self.cols
        elif final == "X":
            for c in range(self.col, min(self.cols, self.col + arg(0, 1))):
                grid[self.row][c] = " "
        elif final == "n" and arg(0, 0) == 6 and self.reply is not None:
            self.reply(("\x1b[%d;%dR" % (self.row + 1, min(self.col, self.cols - 1) + 1)).encode())
        # SGR (m), scroll regions (r), cursor style (q) and the rest draw no text


class PtyCommand:
    """``argv`` with stdin and stdout on a new pty of ``rows`` x ``cols``; stderr to a pipe."""

    def __init__(self, argv, rows: int = 30, cols: int = 140, **popen):
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.lock = threading.Lock()
        self.screen = Screen(rows, cols, reply=self.send_bytes)
        self.raw = bytearray()
        try:
            self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=subprocess.PIPE,
                                         start_new_session=True, **popen)
        finally:
            os.close(slave)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def resize(self, rows: int, cols: int) -> None:
        """Resize the terminal, as a window manager does (the program polls or gets SIGWINCH)."""
        with self.lock:
            self.screen.resize(rows, cols)
            fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        try:
            os.kill(self.proc.pid, signal.SIGWINCH)
        except OSError:
            pass

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return  # EIO: every holder of the pty's other end closed it
            if not data:
                return
            with self.lock:
                self.raw += data
                self.screen.feed(data)

    def send_bytes(self, data: bytes) -> None:
        try:
            os.write(self.master, data)
        except OSError:
            pass

    def send(self, text: str) -> None:
        self.send_bytes(text.encode("utf-8"))

    def text(self) -> str:
        with self.lock:
            return self.screen.text()

    def wait(self, condition: Callable[[str], object], timeout: float = 60.0, what: str = "a screen"):
        """The first truthy ``condition(screen_text)``; fails with the last screen after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.text()
            found = condition(text)
            if found:
                return found
            if self.proc.poll() is not None:
                self.reader.join(2)
                text = self.text()
                found = condition(text)
                if found:
                    return found
                raise AssertionError("the command exited (%s) before %s:\n%s\nstderr: %s"
                                     % (self.proc.returncode, what, text, self.proc.stderr.read().decode()))
            if time.monotonic() > deadline:
                raise AssertionError("no %s within %ss; the screen:\n%s" % (what, timeout, text))
            time.sleep(0.05)

    def finish(self, timeout: float = 60.0, stacks: Optional[Callable[[int], str]] = None):
        """Wait for the exit; (returncode, stderr).  Past ``timeout`` it fails with the screen and,
        when ``stacks`` is given, what ``stacks(pid)`` says about the command (its Python stacks)."""
        try:
            _, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            where = stacks(self.proc.pid) if stacks is not None else ""
            raise AssertionError("the command did not exit within %ss; the screen:\n%s\n%s"
                                 % (timeout, self.text(), where)) from None
        self.reader.join(5)
        return self.proc.returncode, err.decode("utf-8", "replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.reader.join(5)
        try:
            os.close(self.master)
        except OSError:
            pass
