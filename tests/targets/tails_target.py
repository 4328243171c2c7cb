"""Stacks that differ only below the innermost frame, at the same addresses, for remembered tails.

Step k (read from stdin) runs one of a few call chains and blocks in ``wait``
reading the next step; ``outer_a`` and ``outer_b`` have the same frame size,
so ``middle`` and ``wait`` sit at the same addresses with the same headers in
both, and only a frame further down differs: its code (``a``/``b``), a local
(``a`` with another argument), the depth (``deep``), or a C call in between
(``map``, an eval-loop entry).  Before blocking it prints ``STEP FUNCTIONS``
(innermost first) as the truth for that step.
"""
import sys

SHAPES = ["a", "b", "a2", "deep", "map", "a", "b"]


def wait(chain):
    print(" ".join(["wait"] + chain), flush=True)
    return sys.stdin.readline()


def middle(chain):
    return wait(["middle"] + chain)


def outer_a(value, chain):
    spare = value * 2
    line = middle(["outer_a"] + chain)
    return line if spare else line


def outer_b(value, chain):
    spare = value * 3
    line = middle(["outer_b"] + chain)
    return line if spare else line


def deep(n, chain):
    if n:
        return deep(n - 1, ["deep"] + chain)
    return outer_a(1, ["deep"] + chain)


def run(shape, chain):
    chain = ["run"] + chain
    if shape == "a":
        return outer_a(1, chain)
    if shape == "a2":
        return outer_a(7, chain)
    if shape == "b":
        return outer_b(1, chain)
    if shape == "deep":
        return deep(3, chain)
    return list(map(lambda v: outer_a(v, ["<lambda>"] + chain), [1]))[0]


step = 0
while True:
    line = run(SHAPES[step % len(SHAPES)], ["<module>"])
    if not line or line.strip() == "quit":
        break
    step += 1
