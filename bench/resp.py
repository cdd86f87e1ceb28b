"""Mass insertion into Redis: the RESP protocol written in bulk and fed to
`redis-cli --pipe` (Redis's own mass-insertion mode), so millions of list entries load
in seconds instead of one client round trip per command."""

from __future__ import annotations

import re
import subprocess

import numpy as np


def command(*args: bytes | str | int) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        raw = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(parts)


def bulk16(ids: np.ndarray) -> np.ndarray:
    """(k, 16) uint8 ids -> (k, 23) uint8 RESP bulk strings `$16\\r\\n<16 bytes>\\r\\n`."""
    out = np.empty((len(ids), 23), dtype=np.uint8)
    out[:, :5] = np.frombuffer(b"$16\r\n", dtype=np.uint8)
    out[:, 5:21] = ids
    out[:, 21:] = np.frombuffer(b"\r\n", dtype=np.uint8)
    return out


class Pipe:
    """A `redis-cli --pipe` process: write() commands, close() checks every reply."""

    def __init__(self, host: str, port: int, db: int) -> None:
        self.proc = subprocess.Popen(
            ["redis-cli", "-h", host, "-p", str(port), "-n", str(db), "--pipe"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.pending: list[bytes] = []
        self.size = 0

    def write(self, data: bytes) -> None:
        self.pending.append(data)
        self.size += len(data)
        if self.size > 8 << 20:
            self.flush()

    def flush(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"".join(self.pending))
        self.pending, self.size = [], 0

    def close(self) -> int:
        """Number of replies; raises if any command failed."""
        self.flush()
        out, _ = self.proc.communicate()
        text = out.decode(errors="replace")
        found = re.search(r"errors: (\d+), replies: (\d+)", text)
        if self.proc.returncode != 0 or not found or found.group(1) != "0":
            raise RuntimeError(f"redis-cli --pipe failed: {text[-500:]}")
        return int(found.group(2))
