"""Check the workspace against the dvc.lock committed at HEAD, after `make pipeline`.

``check``  (make check-lock, in CI after dvc repro): fails when reproducing the commit changed
           dvc.lock, a .dvc file or a pipeline output git keeps (metrics, plots), naming the
           stages whose lock entry changed: the commit's dvc.lock and metrics are stale.
           A stage whose outputs differ on every run by design says so in dvc.yaml
           (``meta: {reproducible: false}``): their hashes are not compared, what the
           stages after it make from them is.
``model PATH``  (make verify-model, in CD): fails unless PATH is byte for byte the file the
           committed dvc.lock records (its md5), so an image never ships another model than
           the tagged commit's, e.g. one retrained differently on the runner.
``keep``  (make keep-lock, in the retrain workflow): after `make pipeline`, when nothing
           changed but those outputs, puts the committed dvc.lock back, so that a retraining
           on the same data proposes nothing.
``new-data``  (make new-data, in the monitor workflow): prints ``new_data=true|false``: has
           the data committed at HEAD (the .dvc files) changed since the model's training run
           (what HEAD's dvc.lock records the pipeline read)? Only then is retraining worth a
           run: on the same data it would learn the same model.

Run with the project's environment (`uv run python`): it needs PyYAML, which DVC brings.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
from collections.abc import Collection
from pathlib import Path
from typing import Any

import yaml

LOCK = "dvc.lock"
PIPELINE = "dvc.yaml"
HASH_KEYS = ("md5", "hash", "size", "nfiles")


def error(text: str) -> None:
    sys.stderr.write(text + "\n")


def say(text: str) -> None:
    sys.stdout.write(text + "\n")


def git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=False)


def committed_lock() -> dict[str, Any] | None:
    """dvc.lock as HEAD has it; None when HEAD has none."""
    shown = git("show", f"HEAD:{LOCK}")
    return (yaml.safe_load(shown.stdout) or {}) if shown.returncode == 0 else None


def stages(lock: dict[str, Any] | None) -> dict[str, Any]:
    return dict((lock or {}).get("stages") or {})


def unreproducible_outputs() -> set[str]:
    """The outputs of the stages dvc.yaml marks ``meta: {reproducible: false}``."""
    pipeline = yaml.safe_load(Path(PIPELINE).read_text()) if Path(PIPELINE).is_file() else {}
    found = set()
    for stage in ((pipeline or {}).get("stages") or {}).values():
        if ((stage or {}).get("meta") or {}).get("reproducible") is False:
            for out in stage.get("outs") or []:
                found |= set(out) if isinstance(out, dict) else {out}
    return found


def _comparable(stage: Any, unhashed: Collection[str]) -> Any:
    """A lock entry without the hashes of ``unhashed`` paths (as outputs or as inputs)."""
    if not isinstance(stage, dict):
        return stage
    entry = dict(stage)
    for key in ("deps", "outs"):
        entry[key] = [
            {k: v for k, v in item.items() if k not in HASH_KEYS}
            if isinstance(item, dict) and item.get("path") in unhashed
            else item
            for item in stage.get(key) or []
        ]
    return entry


def changed_stages(
    before: dict[str, Any] | None, after: dict[str, Any] | None, unhashed: Collection[str] = ()
) -> list[str]:
    old, new = stages(before), stages(after)
    return sorted(
        name
        for name in old.keys() | new.keys()
        if _comparable(old.get(name), unhashed) != _comparable(new.get(name), unhashed)
    )


def differences(before: dict[str, Any]) -> tuple[list[str], list[str], set[str]]:
    """What reproducing HEAD changed: the stages whose lock entry differs, the files git keeps
    that differ (.dvc files, the pipeline's outputs in git: metrics, plots; untracked files do
    not count), and the outputs not compared (``reproducible: false``)."""
    after = yaml.safe_load(Path(LOCK).read_text()) if Path(LOCK).is_file() else None
    unhashed = unreproducible_outputs()
    names = changed_stages(before, after, unhashed)
    outs = {
        out["path"]
        for lock in (before, after)
        for stage in stages(lock).values()
        for out in stage.get("outs") or []
        if out.get("path")
    }
    paths = [":(glob)**/*.dvc", *sorted(outs - unhashed)]
    changed = git("diff", "--name-only", "HEAD", "--", *paths).stdout.split()
    return names, ([LOCK, *changed] if names else changed), unhashed


def check() -> int:
    before = committed_lock()
    if before is None:
        error(
            f"warning: HEAD has no {LOCK}: nothing to compare with. Run `make pipeline` and "
            f"commit {LOCK} and the metrics, so that CI checks them."
        )
        return 0
    names, changed, unhashed = differences(before)
    if not names and not changed:
        said = f"{LOCK} and the pipeline's committed outputs match this run."
        if unhashed:
            said += (
                f" Not compared byte for byte (different on every run, {PIPELINE} says):"
                f" {', '.join(sorted(unhashed))}."
            )
        say(said)
        return 0
    error(
        "error: this commit's dvc.lock or metrics are stale: reproducing it (make pipeline) "
        "changed them."
    )
    if names:
        error(f"  stages whose {LOCK} entry changed: {', '.join(names)}")
    if changed:
        error(f"  files changed: {', '.join(changed)}")
    error(
        f"Run `make pipeline` locally and commit {LOCK}, the .dvc files and metrics/ and plots/ "
        "(then `dvc push`), so the commit records what its code and data produce."
    )
    return 1


def keep() -> int:
    """After a retraining run: when nothing changed but the outputs that differ on every run,
    put the committed dvc.lock back (their new hashes are all it would change), so that
    nothing is proposed; otherwise leave the workspace as the run left it."""
    before = committed_lock()
    if before is None:
        say(f"HEAD has no {LOCK}: the new one stays.")
        return 0
    names, changed, unhashed = differences(before)
    if names or changed:
        say(f"changed by this run: {', '.join(names + changed)}: {LOCK} stays as the run left it.")
        return 0
    if git("diff", "--quiet", "HEAD", "--", LOCK).returncode != 0:
        git("checkout", "HEAD", "--", LOCK)
        say(
            f"only outputs that differ on every run changed ({', '.join(sorted(unhashed))}): "
            f"{LOCK} kept as committed."
        )
    else:
        say(f"{LOCK} is as committed.")
    return 0


def md5(path: Path) -> str:
    digest = hashlib.md5()  # DVC's content hash, not a security measure
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_model(path: str) -> int:
    lock = committed_lock()
    recorded = [
        (name, out.get("md5"))
        for name, stage in stages(lock).items()
        for out in stage.get("outs") or []
        if out.get("path") == path
    ]
    if not recorded:
        error(
            f"error: the {LOCK} committed at HEAD records no output {path}: there is no model "
            f"to ship. Run `make pipeline`, commit {LOCK}, `dvc push`, and tag that commit."
        )
        return 1
    (stage, expected), *_ = recorded
    if not Path(path).is_file():
        error(f"error: {path} is missing: `make pipeline` (or dvc pull) first.")
        return 1
    actual = md5(Path(path))
    if actual != expected:
        error(
            f"error: {path} (md5 {actual}) is not the model the committed {LOCK} records for "
            f"stage {stage} (md5 {expected}). It was not pulled from the DVC remote and "
            "rebuilding it here gave another model. Push the tagged model from where it was "
            f"trained (`dvc push`), or fix the commit (`make pipeline`, commit {LOCK}) and tag "
            "again: an image never ships a model other than the one the tag records."
        )
        return 1
    say(f"{path}: md5 {actual}, as {LOCK} records for stage {stage}.")
    return 0


def tracked_data() -> dict[str, str]:
    """Every DVC-tracked path at HEAD (from its .dvc file) and its md5."""
    out = {}
    for name in git("ls-files", "--", ":(glob)**/*.dvc").stdout.split():
        shown = git("show", f"HEAD:{name}")
        if shown.returncode != 0:
            continue
        folder = Path(name).parent
        for entry in (yaml.safe_load(shown.stdout) or {}).get("outs") or []:
            if entry.get("path") and entry.get("md5"):
                out[(folder / entry["path"]).as_posix()] = entry["md5"]
    return out


def new_data() -> int:
    """Print new_data=true|false (a step output); what changed, or why not, to stderr."""
    lock = committed_lock()
    tracked = tracked_data()
    if lock is None:
        error(f"HEAD has no {LOCK}: no model was trained yet, so any data is new.")
        say("new_data=true")
        return 0
    read = {
        dep["path"]: dep.get("md5")
        for stage in stages(lock).values()
        for dep in stage.get("deps") or []
        if dep.get("path") in tracked
    }
    changed = sorted(path for path, md5 in read.items() if md5 != tracked[path])
    if changed:
        error(f"new data since the model's training run ({LOCK}): {', '.join(changed)}")
    elif read:
        error(
            f"no new data: {', '.join(sorted(read))} at HEAD is what {LOCK} records the model "
            "was trained on."
        )
    else:
        error(f"no DVC-tracked data is a dependency of the pipeline in {LOCK}.")
    say(f"new_data={'true' if changed else 'false'}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("check", help="fail when make pipeline changed the committed lock")
    model = commands.add_parser("model", help="fail unless PATH is the file dvc.lock records")
    model.add_argument("path")
    commands.add_parser("new-data", help="print new_data=true|false: data changed since training?")
    commands.add_parser("keep", help="restore dvc.lock when only unreproducible outputs changed")
    args = parser.parse_args()
    if args.command == "new-data":
        return new_data()
    if args.command == "keep":
        return keep()
    return check() if args.command == "check" else verify_model(args.path)


if __name__ == "__main__":
    sys.exit(main())
