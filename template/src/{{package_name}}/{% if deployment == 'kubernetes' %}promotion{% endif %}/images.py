"""The image of a model version in the registry, by digest.

CD pushes every tagged commit's image as ``IMAGE:sha-<commit>`` (the version tag's run, and
the stage tag's own run, which may still be building it: so this waits for it). The digest
is read with ``docker buildx imagetools inspect`` (preinstalled on GitHub's runners; logged
in to ghcr.io by the workflow), which reads the registry without pulling the image.
"""

from __future__ import annotations

import logging
import re
import subprocess
import time

from ..settings import UserError

log = logging.getLogger(__name__)

DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def inspect_digest(reference: str) -> str | None:
    """The manifest digest of ``reference`` (IMAGE:TAG), or None when the registry has none.
    From the command's summary (its ``Digest:`` line: the manifest, or the index of a
    multi-platform image, which is what a pull by digest takes)."""
    done = subprocess.run(
        ["docker", "buildx", "imagetools", "inspect", reference],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        log.info("%s: not in the registry (%s)", reference, done.stderr.strip()[-200:])
        return None
    found = re.search(r"^Digest:\s+(sha256:[0-9a-f]{64})\s*$", done.stdout, re.MULTILINE)
    if found is None:
        raise UserError(f"docker buildx imagetools inspect {reference}: no digest in its answer")
    return found.group(1)


def wait_for_digest(image: str, commit: str, wait: float, every: float = 30) -> str:
    """The digest of ``IMAGE:sha-<commit>``, waiting up to ``wait`` seconds for CD to push it."""
    reference = f"{image.lower()}:sha-{commit}"
    deadline = time.monotonic() + wait
    while (digest := inspect_digest(reference)) is None:
        if time.monotonic() + every > deadline:
            raise UserError(
                f"no image {reference} after {wait:.0f} s: CD builds it on the commit's tags "
                "(see its run); run this workflow again once it has pushed the image"
            )
        log.info("waiting %.0f s for CD to push %s", every, reference)
        time.sleep(every)
    log.info("%s is %s", reference, digest)
    return digest
