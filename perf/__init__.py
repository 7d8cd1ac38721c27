"""Cachet's benchmarks as a Python package: ./perf/run <subcommand> (perf/cli.py has the list).
The benchmarks share the integration tests' harness (tests/integration/harness.py: process start
and stop by pid, free ports; hugepages.py: hugepage reservation), put on the path here."""

import os
import sys

_HARNESS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests",
                        "integration")
if _HARNESS not in sys.path:
    sys.path.insert(0, _HARNESS)
