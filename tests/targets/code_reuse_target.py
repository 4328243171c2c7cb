"""Creates and frees code objects in a loop, so their addresses get reused.

Step i execs a fresh module-sized code object defining ``f_i`` (first line
i + 1), calls it, and ``f_i`` reports ``i`` on stdout then blocks reading a
line from stdin; the test snapshots the stack at each step and checks that
the tool names ``f_i``, not a stale code object that lived at that address.
"""
import sys

STEPS = int(sys.argv[1]) if len(sys.argv) > 1 else 40

for i in range(STEPS):
    source = "\n" * i + "def f_%d(step):\n    print(step, flush=True); sys.stdin.readline()\nf_%d(%d)\n" % (i, i, i)
    exec(compile(source, "<generated-%d>" % (i % 3), "exec"), {"sys": sys})
print("done", flush=True)
