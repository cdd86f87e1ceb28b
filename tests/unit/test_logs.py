"""Every line a process writes is one JSON object (shared_schemas/logs.py), even the
last: what ends it unhandled, and Python's warnings."""

from __future__ import annotations

import json
import subprocess
import sys

DIES = """
import warnings
from shared_schemas import logs
logs.configure()
warnings.warn("deprecated, say")
raise RuntimeError("cannot start: its port is taken")
"""


def test_a_process_that_dies_on_an_error_says_so_in_json_lines() -> None:
    done = subprocess.run([sys.executable, "-c", DIES], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    lines = [json.loads(line) for line in done.stderr.splitlines()]  # each line JSON, or this raises
    assert [(line["level"], line["name"]) for line in lines] == [("WARNING", "py.warnings"), ("CRITICAL", "uncaught")]
    assert "RuntimeError: cannot start: its port is taken" in lines[1]["exc_info"]
