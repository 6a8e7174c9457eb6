"""A `gh` that only records its calls (and the notes file it is given): for the template's own
workflows whose GitHub CLI calls a test checks rather than models (the release, the upstream
report). harness/gha/gh_stand_in.py is the modelled one, for the generated project's workflows.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

FAKE_GH = """#!/usr/bin/env python3
# A stand-in for the GitHub CLI: records each call and the notes file it is given.
import json, os, sys
args = sys.argv[1:]
notes = open(args[args.index("--notes-file") + 1]).read() if "--notes-file" in args else None
with open(os.environ["FAKE_GH_LOG"], "a") as log:
    log.write(json.dumps({"args": args, "notes": notes, "repo": os.environ.get("GH_REPO")}) + "\\n")
if args[:2] == ["issue", "list"]:
    print(os.environ.get("FAKE_GH_OPEN_ISSUE", ""))
"""


def fake_gh(folder: Path, script: str = FAKE_GH) -> tuple[Path, Path]:
    """A `gh` on PATH that logs its calls to the returned file (``script``: one that also
    answers some calls, logging them the same way)."""
    bin_dir = folder / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    gh = bin_dir / "gh"
    gh.write_text(script)
    gh.chmod(gh.stat().st_mode | stat.S_IEXEC)
    return bin_dir, folder / "gh.jsonl"


def gh_calls(log: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
