"""The template's own tooling, shared by tests/, benchmarks/ and `make demo`: a generated
project as the tests see it (project.py), a local GitHub Actions runner (gha/), the static
checkers (checkers.py), container builds (containers.py), the READMEs' commands (readme.py),
the answer sets (answers.py) and the demo (demo.py)."""
