"""Every line a process writes is one JSON object (shared_schemas/logs.py), even the
last: what ends it unhandled, and Python's warnings."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta

DIES = """
import warnings
from shared_schemas import logs
logs.configure()
warnings.warn("deprecated, say")
raise RuntimeError("cannot start: its port is taken")
"""


def test_a_process_that_dies_on_an_error_says_so_in_json_lines() -> None:
    # A host far from UTC: the lines' times are UTC all the same.
    env = {**os.environ, "TZ": "Asia/Tokyo"}
    done = subprocess.run([sys.executable, "-c", DIES], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 1
    lines = [json.loads(line) for line in done.stderr.splitlines()]  # each line JSON, or this raises
    assert [(line["level"], line["name"]) for line in lines] == [("WARNING", "py.warnings"), ("CRITICAL", "uncaught")]
    assert "RuntimeError: cannot start: its port is taken" in lines[1]["exc_info"]
    now = datetime.now(UTC)
    for line in lines:  # ISO 8601, UTC, milliseconds, Z: as the API's times and the gateway's lines
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"]), line["time"]
        assert abs(datetime.fromisoformat(line["time"]) - now) < timedelta(hours=1)
