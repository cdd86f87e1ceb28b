"""Every setting is listed in the README (the brief's standard): each environment
variable that the services, the bench or the local stack's scripts read is named in
its configuration table. Offline: reads the source as text."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Read from the environment, and not settings: the interpreter's own, and the fault
# hook with which the growth tests crash a shard move at a named step (tests/shards.py).
NOT_SETTINGS = {"PYTHONPATH", "USERS_SHARDS_CRASH_AT"}

_PYTHON = re.compile(r"""(?:_env|environ\.get|getenv|environ\[)\(?\s*["']([A-Z][A-Z0-9_]+)["']""")
_SHELL = re.compile(r"\$\{([A-Z][A-Z0-9_]+):[-=]")


def _read_by_code() -> dict[str, str]:
    found: dict[str, str] = {}
    python = [*ROOT.glob("*_service/src/**/*.py"), *ROOT.glob("shared_schemas/src/**/*.py"), *ROOT.glob("bench/*.py")]
    for path in python:
        for name in _PYTHON.findall(path.read_text()):
            found.setdefault(name, str(path.relative_to(ROOT)))
    for path in [*ROOT.glob("deploy/local/*.sh"), *ROOT.glob("bench/*.sh")]:
        for name in _SHELL.findall(path.read_text()):
            found.setdefault(name, str(path.relative_to(ROOT)))
    return found


def test_the_scan_finds_the_settings_it_should() -> None:
    # A scan that matched nothing would pass the test below whatever the README says.
    found = _read_by_code()
    for name in ("TIMELINE_CELEBRITY_THRESHOLD", "USERS_RELAY_LINGER_SECONDS", "BENCH_SECONDS", "PG_PORT"):
        assert name in found, name


def test_every_setting_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = {
        name: where for name, where in _read_by_code().items() if name not in NOT_SETTINGS and f"`{name}`" not in readme
    }
    assert not missing, f"read from the environment but not in the README's configuration: {missing}"
