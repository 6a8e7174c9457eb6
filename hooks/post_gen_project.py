"""cookiecutter's post-generation hook: the project is rendered by Copier, from template/.

`cookiecutter <this template>` asks the questions of cookiecutter.json (derived from copier.yml)
and makes the project's folder; this hook then runs `copier copy` into it with those answers,
so both engines give the same project from one source, validated by the same rules with the
same messages, and the project can later be updated with `copier update` (its
.copier-answers.yml records the template as cookiecutter was given it).

cookiecutter first writes its own view of the template, the folder at the template's root
named after the private variable `__project_slug`: only a link to template/.dvcignore (git
keeps no empty folder). Copier then writes every file of the project, that one included.

cookiecutter renders this file before running it: the answers arrive as the JSON below. It
runs with cookiecutter's Python, in the new project's folder.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

CONTEXT = r"""
{{ cookiecutter | jsonify }}
"""

# What copier reads as a repository address rather than a folder (cookiecutter's own rule).
_URL = re.compile(r"^((((git|hg)\+)?(git|ssh|file|https?):(//)?)|(\w+@[\w.]+)|(gh|gl|bb):)")


def template_source(context: dict[str, Any]) -> str:
    """The template as `copier copy` would be given it: the address, or the folder's absolute
    path (a relative one is relative to where cookiecutter ran: the shell's folder, or -o)."""
    template = str(context["_template"])
    if _URL.match(template):
        return template
    path = Path(template).expanduser()
    candidates = [path] if path.is_absolute() else []
    # cruft, which drives cookiecutter itself, gives no _output_dir: the project's parent then.
    output = context.get("_output_dir") or Path.cwd().parent
    candidates += [Path(os.environ.get("PWD", ".")) / path, Path(output) / path]
    for candidate in candidates:
        if (candidate / "copier.yml").is_file():
            return str(candidate.resolve())
    raise SystemExit(f"error: cannot find the template {template!r} from {candidates}")


def where_cookiecutter_ran(project: Path) -> Path:
    """The shell's folder (PWD), where relative paths were typed and where copier's closing
    message is read; the project's parent when PWD is unset or gone (cruft, a script)."""
    shell = os.environ.get("PWD", "")
    return Path(shell) if os.path.isabs(shell) and os.path.isdir(shell) else project.parent


def answers(context: dict[str, Any], here: Path, folder: str) -> dict[str, str]:
    """The questions' answers; cookiecutter's own keys and private variables (`_`) left out.

    A relative dataset_path means from where cookiecutter ran. Copier writes it relative to the
    project when the project's path from there goes down only; otherwise it is made absolute."""
    data = {key: value for key, value in context.items() if not key.startswith("_")}
    path = str(data.get("dataset_path") or "").strip()
    relative = path and not (os.path.isabs(path) or path.startswith("~"))
    if relative and ".." in Path(folder).parts:
        data["dataset_path"] = os.path.normpath(here / path)
    return data


def main() -> int:
    import copier  # hooks/pre_prompt.py checked it is there
    from copier.errors import UserMessageError

    context = json.loads(CONTEXT)
    project = Path.cwd()
    # As `copier copy TEMPLATE <folder>` typed where cookiecutter ran (with -o, the folder is
    # below it, or beside it): copier's `cd <folder>` then works from there.
    here = where_cookiecutter_ran(project)
    folder = os.path.relpath(project, os.path.realpath(here))  # PWD may name a symlink
    template = template_source(context)
    os.chdir(here)
    try:
        copier.run_copy(
            template,
            folder,
            data=answers(context, here, folder),
            vcs_ref=context.get("_checkout") or None,
            defaults=True,
            overwrite=True,
            unsafe=False,
        )
    except (ValueError, UserMessageError) as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
