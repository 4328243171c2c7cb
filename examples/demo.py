"""Start the example service, dump it from outside with pyspy-repl, and stop it.

    python3 examples/demo.py            # text dump with locals
    python3 examples/demo.py --json     # the same as py-spy-compatible JSON
"""
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main() -> int:
    service = subprocess.Popen([sys.executable, os.path.join(HERE, "busy_service.py"), "60"],
                               stdout=subprocess.PIPE, text=True)
    try:
        service.stdout.readline()  # "ready": all threads are running
        tool = shutil.which("pyspy-repl")
        command = [tool] if tool else [sys.executable, "-m", "repl.cli"]
        command += ["dump", "--locals", "--pid", str(service.pid)] + sys.argv[1:]
        print("$ " + " ".join(["pyspy-repl"] + command[1 if tool else 3:]), flush=True)
        return subprocess.call(command)
    finally:
        service.kill()
        service.wait()


if __name__ == "__main__":
    sys.exit(main())
