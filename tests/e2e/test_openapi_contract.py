"""Both OpenAPI documents are the contract: schemathesis reads each through the gateway,
generates valid and invalid requests from it (boundaries, wrong types, missing headers,
undeclared methods, then chains of calls), and checks every answer against the document
with all its checks: no 5xx, only documented statuses, bodies and content types as
documented, invalid input refused, valid input accepted, `Allow` on every 405."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support import GATEWAY, ROOT

CONFIG = Path(__file__).with_name("schemathesis.toml")
ST = Path(sys.executable).with_name("st")


def issued_cursors(api: httpx.Client, new_user) -> dict[str, str]:
    """A `next_cursor` each service really issued: a user with two tweets, paged by one."""
    user = new_user()
    for text in ("first", "second"):
        response = api.post("/api/v1/tweet", json={"text": text}, headers={"X-User-ID": user})
        assert response.status_code == 201, response.text
    listing = api.get(f"/api/v1/users/{user}/tweets", params={"limit": 1}).json()
    home = api.get("/api/v1/timeline", params={"limit": 1}, headers={"X-User-ID": user}).json()
    assert listing["next_cursor"] and home["next_cursor"], (listing, home)
    return {"CONTRACT_USERS_CURSOR": listing["next_cursor"], "CONTRACT_TIMELINE_CURSOR": home["next_cursor"]}


@pytest.mark.parametrize("service", ["users", "timeline"])
def test_the_service_keeps_its_openapi_document_to_the_letter(
    api: httpx.Client, new_user, service: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        **issued_cursors(api, new_user),
        "SCHEMATHESIS_HOOKS": "tests.e2e.contract_hooks",
        "PYTHONPATH": str(ROOT),
    }
    command = [
        str(ST),
        "--config-file",
        str(CONFIG),
        "run",
        f"{GATEWAY}/api/v1/docs/{service}/openapi.json",
        "--checks",
        "all",
        # Fixed by default, so a run is repeatable; set CONTRACT_SEED to explore others.
        "--seed",
        os.environ.get("CONTRACT_SEED", "20261201"),
        "--max-examples",
        os.environ.get("CONTRACT_MAX_EXAMPLES", "100"),
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path),
    ]
    run = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    print(run.stdout[-4000:])
    assert run.returncode == 0, f"schemathesis found failures on the {service} document:\n{run.stdout[-20000:]}"
