"""The template's own tooling, shared by tests/, benchmarks/ and `make demo`: a generated
project as the tests see it (project.py), a local GitHub Actions runner (gha/), the static
checkers (checkers.py), container builds (containers.py), a Dockerfile as the tests read it
(dockerfile.py), the READMEs' commands (readme.py), the answer sets (answers.py), the code's
shape (code_shape.py) and the demo (demo.py)."""
