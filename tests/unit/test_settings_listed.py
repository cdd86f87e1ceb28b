"""Every setting is listed in the README (the brief's standard): each environment
variable that the services, the bench or the local stack's scripts read is named in
its configuration table. Offline: reads the source as text."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Read from the environment, and not settings: the interpreter's own, the fault hook
# with which the growth tests crash a shard move at a named step (tests/shards.py), and
# /etc/os-release's fields, which the image scripts source.
NOT_SETTINGS = {"PYTHONPATH", "USERS_SHARDS_CRASH_AT", "ID", "VERSION_CODENAME"}

_ENVIRON = r"environ\.get|getenv|environ\["
# A module's own readers: `def _int(name: str, ...)` and the like in settings modules.
_HELPER = re.compile(r"^def (\w+)\(name\b", re.MULTILINE)
_SHELL = re.compile(r"\$\{([A-Z][A-Z0-9_]+):[-=]")


def _read_in_python(text: str) -> list[str]:
    readers = "|".join([_ENVIRON, *(re.escape(name) for name in _HELPER.findall(text))])
    return re.findall(rf"""(?:{readers})\(?\s*["']([A-Z][A-Z0-9_]+)["']""", text)


def _read_by_code() -> dict[str, str]:
    found: dict[str, str] = {}
    python = [*ROOT.glob("*_service/src/**/*.py"), *ROOT.glob("shared_schemas/src/**/*.py"), *ROOT.glob("bench/*.py")]
    for path in python:
        for name in _read_in_python(path.read_text()):
            found.setdefault(name, str(path.relative_to(ROOT)))
    for path in [*ROOT.glob("deploy/local/*.sh"), *ROOT.glob("deploy/images/*.sh"), *ROOT.glob("bench/*.sh")]:
        for name in _SHELL.findall(path.read_text()):
            found.setdefault(name, str(path.relative_to(ROOT)))
    return found


def test_the_scan_finds_the_settings_it_should() -> None:
    # A scan that matched nothing would pass the test below whatever the README says.
    found = _read_by_code()
    for name in (
        "TIMELINE_CELEBRITY_THRESHOLD",  # timeline settings: _env
        "USERS_RELAY_LINGER_SECONDS",  # users settings: os.environ.get
        "USERS_SHARD_DSNS",  # users settings: _list
        "BENCH_CONNECTIONS",  # the bench's config: _int
        "BENCH_SECONDS",
        "PG_PORT",  # the local stack's env.sh
        "IMAGE_TAG",  # the image scripts
    ):
        assert name in found, name


def test_every_setting_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = {
        name: where for name, where in _read_by_code().items() if name not in NOT_SETTINGS and f"`{name}`" not in readme
    }
    assert not missing, f"read from the environment but not in the README's configuration: {missing}"
