"""Migration to 0.2.0, the layout: `copier update` runs it in a project made before 0.2.0, after
the update (and after v0.2.0.py).

Since 0.2.0 the package shows its parts: contract/, pipeline/, model.py, serving/ and
monitoring/ (CHANGELOG.md lists where each module went). `copier update` writes the new files
and deletes the old ones, edited or not (a file the old template had and the new one has not
is removed), so a user's edits to features.py or train.py would be lost. This carries them
over: for each moved file the user changed, a three-way merge (git merge-file) of the user's
file (at HEAD: `copier update` needs a clean tree), the old template's file (the base, rendered
again here at the version the project came from) and the new template's file, written at the
new path. A merge that conflicts is left marked (<<<<<<< before updating ... >>>>>>> after
updating, as copier marks its own) and registered as unmerged in git's index, so `make update`
and `git status` list it. Each old path is removed from the index too: `git status` shows the
moves. It never fails the update: what it cannot do, it says.

Run with the interpreter that runs copier (it imports copier), from the project's folder:
    python migrations/v0.2.0_layout.py TEMPLATE PACKAGE [ANSWERS_FILE]
VERSION_FROM (set by copier) is the version the project was made from; without it, the
answers' _commit at HEAD.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

# Where each module of the flat package went (a module split in several: its largest part).
MOVED = {
    "schema.py": "contract/schema.py",
    "ingest.py": "contract/adopt.py",
    "sample_data.py": "contract/sample_data.py",
    "prepare.py": "pipeline/prepare.py",
    "features.py": "pipeline/features.py",
    "train.py": "pipeline/train.py",
    "evaluate.py": "pipeline/evaluate.py",
    "charts.py": "pipeline/charts.py",
    "model_card.py": "pipeline/model_card.py",
    "tune.py": "pipeline/tune.py",
    "bundle.py": "model.py",
    "predict.py": "serving/batch.py",
    "service.py": "serving/service.py",
    "prediction_log.py": "serving/prediction_log/writer.py",
    "monitor.py": "monitoring/__main__.py",
}
LABELS = ("before updating", "last update", "after updating")


def git(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], input=stdin, capture_output=True, text=True, check=False)


def at_head(path: str) -> str | None:
    """The file as committed (the user's version), or None when HEAD has no such file."""
    shown = subprocess.run(["git", "show", f"HEAD:{path}"], capture_output=True, check=False)
    return shown.stdout.decode("utf-8") if shown.returncode == 0 else None


def old_answers(answers_file: str) -> tuple[dict[str, object], str]:
    """The answers the project was made (or last updated) with, and the template's version
    then: the committed answers file (copier's VERSION_FROM, where it is set)."""
    answers = yaml.safe_load(at_head(answers_file) or "") or {}
    version = os.environ.get("VERSION_FROM") or str(answers.get("_commit") or "")
    return {key: value for key, value in answers.items() if not key.startswith("_")}, version


def render_old(template: str, answers_file: str, into: Path) -> bool:
    """The old version of the template, rendered with the project's answers into ``into``."""
    import copier

    answers, version = old_answers(answers_file)
    if not version:
        print("  the template's version the project came from is unknown")
        return False
    try:
        copier.run_copy(
            template,
            into,
            data=answers,
            vcs_ref=version,
            defaults=True,
            quiet=True,
            overwrite=True,
            unsafe=True,
            skip_tasks=True,
        )
    except Exception as error:  # the old version cannot be rendered here: say so, go on
        print(f"  could not render the template at {version} ({type(error).__name__}: {error})")
        return False
    return True


def merge(new: Path, mine: str, base: str) -> bool:
    """The user's changes (``base`` -> ``mine``) applied to the new template's file ``new``,
    in place; True when clean. A conflict is marked in the file and registered in git's index
    as copier registers its own: 1 the base, 2 the user's, 3 the template's."""
    with tempfile.TemporaryDirectory() as scratch:
        stages = {stage: Path(scratch, str(stage)) for stage in (1, 2, 3)}
        stages[1].write_text(base, encoding="utf-8")
        stages[2].write_text(mine, encoding="utf-8")
        stages[3].write_text(new.read_text(encoding="utf-8"), encoding="utf-8")
        result = Path(scratch, "merged")
        result.write_text(mine, encoding="utf-8")
        labels = [option for label in LABELS for option in ("-L", label)]
        merged = git("merge-file", *labels, str(result), str(stages[1]), str(stages[3]))
        new.write_text(result.read_text(encoding="utf-8"), encoding="utf-8")
        if merged.returncode == 0:
            git("add", "--", str(new))
            return True
        entries = [
            f"100644 {git('hash-object', '-w', '--', str(path)).stdout.strip()} {stage}\t{new}"
            for stage, path in stages.items()
        ]
        git("update-index", "--index-info", stdin="\n".join(entries) + "\n")
        return False


def move(old: str, new: Path, base_dir: Path | None) -> str:
    """Carry one moved file's edits over; what happened, in a few words."""
    mine = at_head(old)
    if mine is None or not new.is_file():
        return ""
    base_file = base_dir / old if base_dir is not None else None
    base = base_file.read_text(encoding="utf-8") if base_file and base_file.is_file() else None
    git("rm", "--cached", "--quiet", "--ignore-unmatch", "--", old)
    Path(old).unlink(missing_ok=True)
    if mine == base:
        git("add", "--", str(new))
        return f"{old} -> {new}"
    if base is None:
        return (
            f"{old} -> {new}: the old template's version is unknown here, so your changes "
            f"were not merged: compare with `git show HEAD:{old}`"
        )
    if merge(new, mine, base):
        return f"{old} -> {new}, your changes merged"
    return f"{old} -> {new}: CONFLICT, your changes and the template's are marked in it"


def main(template: str, package: str, answers_file: str = ".copier-answers.yml") -> int:
    print("migration 0.2.0: the modules moved to contract/, pipeline/, serving/, monitoring/")
    moves = {f"src/{package}/{old}": Path(f"src/{package}/{new}") for old, new in MOVED.items()}
    moves = {old: new for old, new in moves.items() if at_head(old) is not None}
    if not moves:
        print("  nothing to move: the project has the new layout")
        return 0
    with tempfile.TemporaryDirectory() as rendered:
        base_dir = Path(rendered) if render_old(template, answers_file, Path(rendered)) else None
        for old, new in moves.items():
            try:
                said = move(old, new, base_dir)
            except OSError as error:
                said = f"{old}: not moved ({error}): carry your changes to {new} by hand"
            if said:
                print(f"  {said}")
    print("  a module of yours that imports the old ones: CHANGELOG.md, 0.2.0, has the new names")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
