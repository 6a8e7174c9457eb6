"""cookiecutter's pre-generation hook: before anything is written, check that Copier, which
renders the project (hooks/post_gen_project.py), is installed beside cookiecutter. (Copier
itself enforces copier.yml's _min_copier_version.) Runs with cookiecutter's Python."""

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
