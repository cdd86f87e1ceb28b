"""Print the command docker-compose.yml runs for a service, one argument per line, or
nothing when the service runs its image's own CMD. deploy/images/check.sh runs exactly
these, so the check starts what compose (and, by tests/unit/test_same_everywhere.py,
Kubernetes) starts.

    python deploy/images/commands.py SERVICE
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import yaml

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def command(service: str) -> list[str]:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    if service not in services:
        raise SystemExit(f"docker-compose.yml has no service {service!r}")
    cmd = services[service].get("command") or []
    return shlex.split(cmd) if isinstance(cmd, str) else [str(arg) for arg in cmd]


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    for arg in command(sys.argv[1]):
        print(arg)
