"""The template's releases, from CHANGELOG.md: each `## X.Y.Z - YYYY-MM-DD` heading is a release,
tagged vX.Y.Z by the release workflow (.github/workflows/release.yml); `## X.Y.Z - unreleased`
is the next one, still being written.

    python scripts/release.py next [--notes FILE]
        tag=vX.Y.Z and version=X.Y.Z (for $GITHUB_OUTPUT) when the newest entry is released but
        not yet tagged in this clone, its text to FILE; nothing when there is nothing to tag.
    python scripts/release.py check
        CHANGELOG.md is well formed: PEP 440 versions, newest first, dated or unreleased (only
        the newest); every migration in copier.yml has its version's entry, which says so.

`next` needs only Python and git (it runs on a bare runner); `check` reads copier.yml (PyYAML,
packaging: the template's dev environment).
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADING = re.compile(r"^## (?P<version>\S+) - (?P<date>\d{4}-\d{2}-\d{2}|unreleased)\s*$")
# PEP 440's canonical public versions (no epoch, no local part).
PEP440 = re.compile(r"\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?")


@dataclass
class Entry:
    version: str
    date: str
    text: str

    @property
    def released(self) -> bool:
        return self.date != "unreleased"


def entries(changelog: Path) -> list[Entry]:
    found: list[Entry] = []
    for line in changelog.read_text().splitlines():
        match = HEADING.match(line)
        if match:
            found.append(Entry(match["version"], match["date"], ""))
        elif line.startswith("## "):
            raise SystemExit(f"{changelog.name}: {line!r} is not '## X.Y.Z - YYYY-MM-DD'")
        elif found:
            found[-1].text += line + "\n"
    return found


def next_release(changelog: Path, tags: set[str]) -> Entry | None:
    """The newest entry, when it is released and its tag does not exist yet."""
    found = entries(changelog)
    if not found or not found[0].released or f"v{found[0].version}" in tags:
        return None
    return found[0]


def problems(changelog: Path, copier_yml: Path) -> list[str]:
    import yaml
    from packaging.version import Version

    found = entries(changelog)
    said: list[str] = []
    if not found:
        said.append("no release entry")
    for index, entry in enumerate(found):
        if not PEP440.fullmatch(entry.version):
            said.append(f"{entry.version}: not a PEP 440 version")
        elif index and PEP440.fullmatch(found[index - 1].version):
            if Version(found[index - 1].version) <= Version(entry.version):
                said.append(f"{entry.version}: not older than {found[index - 1].version}")
        if index and not entry.released:
            said.append(f"{entry.version}: only the newest entry can be unreleased")
    by_version = {entry.version: entry for entry in found}
    for migration in yaml.safe_load(copier_yml.read_text()).get("_migrations", []):
        version = str(migration["version"])
        entry = by_version.get(version)
        if entry is None:
            said.append(f"migration {version}: no CHANGELOG entry for {version}")
        elif "migration" not in entry.text.lower():
            said.append(f"migration {version}: its CHANGELOG entry does not describe it")
    return said


def main(argv: list[str]) -> int:
    changelog = ROOT / "CHANGELOG.md"
    if argv[:1] == ["check"]:
        said = problems(changelog, ROOT / "copier.yml")
        for line in said:
            print(f"CHANGELOG.md: {line}", file=sys.stderr)
        return 1 if said else 0
    if argv[:1] == ["next"]:
        listed = subprocess.run(
            ["git", "tag", "--list"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
        entry = next_release(changelog, set(listed.split()))
        if entry is None:
            print("nothing to release: the newest entry is unreleased or tagged", file=sys.stderr)
            return 0
        if "--notes" in argv:
            Path(argv[argv.index("--notes") + 1]).write_text(entry.text.strip() + "\n")
        print(f"tag=v{entry.version}")
        print(f"version={entry.version}")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
