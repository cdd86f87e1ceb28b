"""Both images, built from their Dockerfiles without a Docker engine and offline
(deploy/images/build.sh: buildah, a Debian-made Python base, downloaded wheels), run
every process of theirs against the stack in force (deploy/images/check.sh): under
`make test` the test stack. The scripts print their progress as they go: a cold build
takes minutes."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.support import ROOT

pytestmark = [pytest.mark.stack, pytest.mark.images]


def _cannot_build() -> str | None:
    """Why buildah cannot work on this machine at all, if it cannot (anything else that
    goes wrong is a failure: the scripts install buildah and debootstrap themselves)."""
    if os.geteuid() != 0:
        return f"buildah's chroot isolation and debootstrap need root; the tests run as uid {os.geteuid()}"
    return None


@pytest.mark.skipif(_cannot_build() is not None, reason=_cannot_build() or "")
def test_both_images_build_and_every_process_of_them_works(capfd: pytest.CaptureFixture[str]) -> None:
    # One test, two steps in order: a failed build must not go on to check older images.
    for script in ("build.sh", "check.sh"):
        with capfd.disabled():  # the progress lines, live
            print(f"\n--- deploy/images/{script}", flush=True)
            result = subprocess.run(["bash", str(ROOT / "deploy" / "images" / script)], check=False)
        assert result.returncode == 0, (
            f"deploy/images/{script} failed with status {result.returncode} (its output is above)"
        )
