"""Load from a separate process: wrk at a fixed number of connections, its requests
rotating over a sample of users (each with its own X-User-ID, path and cursor), and
its latency distribution (p50, p99, p99.9) read through wrk's Lua `done` hook."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass

from bench import cpu
from bench.config import Config

_SCRIPT = r"""
local requests = {}
local position = 0
local threads_made = 0
local threads = {}

-- In the main state, once a thread: its number, for init to place it in the list.
function setup(thread)
  thread:set("thread_number", threads_made)
  threads_made = threads_made + 1
  threads[#threads + 1] = thread
end

function init(args)
  local file = assert(io.open(args[1], "r"))
  local method = args[2]
  for line in file:lines() do
    local user, path, body = line:match("^([^\t]*)\t([^\t]*)\t?(.*)$")
    local headers = { ["X-User-ID"] = user }
    if body ~= nil and body ~= "" then
      headers["Content-Type"] = "application/json"
    else
      body = nil
    end
    requests[#requests + 1] = wrk.format(method, path, headers, body)
  end
  file:close()
  -- Each thread (its own Lua state) starts at its own place in the list, the threads
  -- evenly apart: no user is asked by two threads at once until each has read its
  -- share. (Places drawn at random could fall together, and did: two threads reading
  -- the same users in step halved a cold start's rebuilds, docs/benchmarks.md,
  -- session 21.)
  local count = tonumber(args[3]) or 1
  position = math.floor(#requests * (thread_number or 0) / count)
  -- Where this thread began and how many it asked for, read by done (globals: a
  -- thread's locals are out of the main state's reach): the users a run went through.
  first, sent = position, 0
end

function request()
  position = position % #requests + 1
  sent = sent + 1
  return requests[position]
end

function done(summary, latency, requests_)
  local e = summary.errors
  local stretches = {}
  for i, thread in ipairs(threads) do
    stretches[i] = string.format("[%d,%d]", thread:get("first") or 0, thread:get("sent") or 0)
  end
  io.write(string.format(
    "WRKJSON {\"requests\":%d,\"duration_us\":%d,\"bytes\":%d,\"connect\":%d,\"read\":%d,\"write\":%d," ..
    "\"status\":%d,\"timeout\":%d,\"p50_us\":%d,\"p90_us\":%d,\"p99_us\":%d,\"p999_us\":%d,\"max_us\":%d," ..
    "\"mean_us\":%.1f,\"stretches\":[%s]}\n",
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean, table.concat(stretches, ",")))
end
"""


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    p999_ms: float
    requests: int
    mean_ms: float
    errors: int  # connect/read/write/timeouts and non-2xx/3xx answers
    cpu_us: dict[str, float] | None = None  # CPU per request by process kind (bench/cpu.py)
    seconds: float = 0.0  # how long wrk ran
    stretches: tuple[tuple[int, int], ...] = ()  # each thread's first line (from 0) and how many it asked for

    def as_dict(self) -> dict:
        return {
            "rps": round(self.rps, 1),
            "p50_ms": round(self.p50_ms, 2),
            "p99_ms": round(self.p99_ms, 2),
            "p999_ms": round(self.p999_ms, 2),
            "mean_ms": round(self.mean_ms, 2),
            "requests": self.requests,
            "errors": self.errors,
            "cpu_us_per_request": self.cpu_us,
            "seconds": round(self.seconds, 2),
        }


def wrk_path() -> str:
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is not installed: run deploy/local/install.sh (or apt-get install wrk)")
    return found


def lines_read(lines: list[str], result: Result) -> list[str]:
    """The lines of `lines` that a run asked for (each thread's stretch of the list,
    from where it began: _SCRIPT), once each, to read the same users again."""
    went = (lines[(first + i) % len(lines)] for first, sent in result.stretches for i in range(min(sent, len(lines))))
    return list(dict.fromkeys(went))


def run(
    cfg: Config,
    base_url: str,
    lines: list[str],
    method: str = "GET",
    seconds: float | None = None,
    connections: int | None = None,
    name: str = "load",
) -> Result:
    """`lines`: "user<TAB>path[<TAB>body]" each; wrk sends them round-robin."""
    work = cfg.work_dir
    script, data = work / "rotate.lua", work / f"{name}.requests"
    script.write_text(_SCRIPT)
    data.write_text("\n".join(lines) + "\n")
    connections = connections or cfg.connections
    threads = min(2, connections)
    duration = max(1, round(seconds if seconds is not None else cfg.seconds))
    before = cpu.snapshot()
    out = subprocess.run(
        [
            wrk_path(),
            "-t",
            str(threads),
            "-c",
            str(connections),
            "-d",
            f"{duration}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            base_url,
            "--",
            str(data),
            method,
            str(threads),
        ],
        capture_output=True,
        text=True,
        timeout=duration + 60,
    )
    for line in out.stdout.splitlines():
        if line.startswith("WRKJSON "):
            raw = json.loads(line[len("WRKJSON ") :])
            used = cpu.per_request(before, cpu.snapshot(), raw["requests"])
            seconds_run = raw["duration_us"] / 1e6
            errors = raw["connect"] + raw["read"] + raw["write"] + raw["status"] + raw["timeout"]
            return Result(
                rps=raw["requests"] / seconds_run if seconds_run else 0.0,
                p50_ms=raw["p50_us"] / 1000,
                p99_ms=raw["p99_us"] / 1000,
                p999_ms=raw["p999_us"] / 1000,
                requests=raw["requests"],
                mean_ms=raw["mean_us"] / 1000,
                errors=errors,
                cpu_us=used,
                seconds=seconds_run,
                stretches=tuple((first, sent) for first, sent in raw["stretches"]),
            )
    raise RuntimeError(f"wrk gave no result (exit {out.returncode}): {out.stdout[-800:]} {out.stderr[-800:]}")
