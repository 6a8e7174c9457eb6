"""cookiecutter's pre-prompt hook (cookiecutter 2.4 or newer): before any question, check that
Copier, which renders the project (hooks/post_gen_project.py), is installed beside cookiecutter.
Without it, cookiecutter would stop at loading cookiecutter.json's Jinja extension (which copier
brings) with a message that says nothing of copier. Runs with cookiecutter's Python, in a
temporary copy of the template; copier itself enforces copier.yml's _min_copier_version."""

from __future__ import annotations

import importlib.util
import sys

if importlib.util.find_spec("copier") is None:
    print(
        "error: this template renders with Copier, which is not installed beside cookiecutter: "
        "run `uvx --with copier cookiecutter ...` or `pipx inject cookiecutter copier`",
        file=sys.stderr,
    )
    sys.exit(1)
