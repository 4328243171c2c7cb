"""pytest plugin: ``--hang-timeout SECONDS`` (implemented with the watch command)."""


def pytest_addoption(parser):
    group = parser.getgroup("pyspy-repl")
    group.addoption("--hang-timeout", type=float, default=None,
                    help="report the stacks of a test that runs longer than SECONDS, from outside")
