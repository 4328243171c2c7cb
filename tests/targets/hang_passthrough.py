"""Finishes in time: echoes stdin to stdout, writes to stderr, exits with the status given.

    python hang_passthrough.py STATUS
"""
import sys

data = sys.stdin.read()
sys.stdout.write("stdout:" + data.upper())
sys.stdout.flush()
sys.stderr.write("stderr line\n")
sys.exit(int(sys.argv[1]))
