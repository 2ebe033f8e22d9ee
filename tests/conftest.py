"""Shared test setup."""

import importlib.util
import sys

# The gRPC server tests need the usage store (entitle.server.store), which has not landed
# yet (issue 4 is open): until it does, those files are not collected, and we say so.
collect_ignore_glob: list[str] = []
if importlib.util.find_spec("entitle.server.store") is None:
    collect_ignore_glob.append("test_server*.py")
    print("NOTICE: entitle.server.store is missing: tests/test_server*.py not collected",
          file=sys.stderr)
