"""The bench's load generator (wrk with bench/loadgen.py's script) sends each of its
threads through the request list from its own place, evenly apart: two threads that
started together read the same users in step, and a cold start's reads, each meant to
rebuild a home nobody had read, rebuilt half as many (docs/benchmarks.md, session 21)."""

from __future__ import annotations

import http.server
import itertools
import threading
from dataclasses import replace
from typing import ClassVar

import pytest

from bench import config, loadgen

pytestmark = pytest.mark.stack  # wrk comes with the stack's install script

USERS = 100_000  # far more than the threads get through in a second: no lap


class _Recorder(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: ClassVar[list[int]] = []

    def do_GET(self) -> None:
        self.seen.append(int(self.headers["X-User-ID"]))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(autouse=True)
def _nothing_seen_yet() -> None:
    _Recorder.seen = []


LINES = [f"{user}\t/timeline" for user in range(USERS)]


def _run_at_the_recorder(tmp_path) -> loadgen.Result:
    """A second of wrk (two threads, a connection each) over LINES at a _Recorder."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        cfg = replace(config.load(), stack_dir=tmp_path, connections=2)
        return loadgen.run(cfg, f"http://127.0.0.1:{server.server_address[1]}", LINES, seconds=1, name="rotation")
    finally:
        server.shutdown()


def test_each_thread_reads_its_own_stretch_of_the_list(tmp_path) -> None:
    _run_at_the_recorder(tmp_path)
    seen = sorted(_Recorder.seen)
    assert len(seen) == len(set(seen)), "a user was asked twice"
    # Two runs of consecutive users, one from the list's start and one from its middle
    # (wrk may take a thread's first request before it connects: a place off by one).
    starts = [seen[0]] + [b for a, b in itertools.pairwise(seen) if b != a + 1]
    assert len(starts) == 2 and starts[0] <= 1 and abs(starts[1] - USERS // 2) <= 1, starts


def test_the_lines_a_run_read_are_the_ones_it_reports(tmp_path) -> None:
    """`loadgen.lines_read`, which bench/cold_reads.py reads again warm: every user wrk
    asked for, and no other but those a connection had on its way when wrk stopped
    (its threads' counts differ, by far at times: a split by the total missed
    thousands)."""
    result = _run_at_the_recorder(tmp_path)
    seen = {str(user) for user in _Recorder.seen}
    reported = {line.split("\t", 1)[0] for line in loadgen.lines_read(LINES, result)}
    assert seen <= reported, sorted(seen - reported)[:10]
    assert len(reported - seen) <= 2 * 2, (len(reported), len(seen))  # (in flight when wrk stopped: a connection's)
