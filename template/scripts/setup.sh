#!/usr/bin/env bash
# Post-generation set-up of a copier-mlops project, run by `make setup` (copier itself runs
# no code, so `copier copy` needs no --trust). Idempotent: safe to run again at any time.
# Only what must be shell is here (git, uv, the hooks); the data is set up by Python
# (python -m <package>.contract.ingest ensure). Bash 3.2 (macOS's own) runs it too.
#
# With --ci (`make ci-setup`, the first step of the CI jobs): a project pushed straight after
# `copier copy` has no uv.lock, .dvc files or test fixture yet. Then CI runs this set-up itself
# (without the git hooks) and says so once in the job summary, so the first push is green.
# With your own data file, which is not in the repository, there is nothing to set up from: it
# says what to do and sets the step output ready=false, so the steps that need data are skipped.
# A project that was set up (uv.lock committed) is left as it is.
set -euo pipefail

UV="${UV:-uv}"
step() { printf '\n==> %s\n' "$*"; }

if [ "${1:-}" = --ci ]; then
  ready() { [ -z "${GITHUB_OUTPUT:-}" ] || echo "ready=$1" >>"$GITHUB_OUTPUT"; }
  notice() {  # the title must hold no ':' or ',' (GitHub's workflow command syntax)
    echo "::notice title=$1::$2"
    [ -z "${GITHUB_STEP_SUMMARY:-}" ] || printf '### %s\n\n%s\n' "$1" "$2" >>"$GITHUB_STEP_SUMMARY"
  }
  if [ -f uv.lock ]; then
    echo "uv.lock is committed: the project was set up (make setup)"
    ready true
    exit 0
  fi
  export UV_LOCKED=0 SETUP_HOOKS=false  # no lock to keep yet; CI runs the hooks with make lint
  if [ -f data/dataset.yml ] && [ ! -f schema.yaml ]; then
    notice "Not set up yet" "This repository was pushed before \
\`make setup\`, which adopts your data file (it is not in the repository) and writes \
schema.yaml, uv.lock and tests/fixtures/data.csv: without them only the lint can run. Run \
\`make setup\` on your machine, commit what it wrote and push."
    "$UV" lock  # the environment alone, for the lint
    ready false
    exit 0
  fi
  notice "Set up by CI" "This repository was pushed before \
\`make setup\`, so this job ran it: the dependencies were resolved now (no uv.lock) and the \
bundled sample data was rebuilt. Run \`make setup\` on your machine and commit uv.lock, the \
.dvc files and tests/fixtures/data.csv, so that CI tests what you locked."
  ready true
fi

step "git repository"
# A project generated inside a folder that another repository ignores (or outside any
# repository) gets its own; one generated into a tracked folder of a monorepo does not.
if [ "$(git rev-parse --show-toplevel 2>/dev/null)" = "$(pwd -P)" ]; then
  echo "already a git repository"
elif git rev-parse --is-inside-work-tree >/dev/null 2>&1 && ! git check-ignore -q .; then
  echo "inside the git repository at $(git rev-parse --show-toplevel): using it"
else
  git init --quiet --initial-branch=main
  echo "initialised a git repository (branch main)"
fi

step "Python environment (uv sync: writes uv.lock on first run)"
"$UV" sync

step "data (DVC-tracked)"
# One Python command: with your own file, the first run adopts the answered file (it checks
# it before it writes anything); then every data file is here (present, pulled from the DVC
# remote, or the bundled sample generated and tracked), and the test fixture is drawn.
"$UV" run --no-sync python -m "${PACKAGE}.contract.ingest" ensure

step "pre-commit hooks"
if [ "${SETUP_HOOKS:-true}" = false ]; then
  echo "skipped (SETUP_HOOKS=false: CI runs the hooks with make lint)"
elif [ "$(git rev-parse --show-toplevel 2>/dev/null)" = "$(pwd -P)" ]; then
  "$UV" run --no-sync pre-commit install
  "$UV" run --no-sync pre-commit install-hooks
else
  echo "not the top of its git repository: install hooks from the top with 'pre-commit install'"
fi

echo
echo "Ready. Next: make pipeline, make test, make serve (make help lists every target)."
echo "The project's tools (dvc, pytest, ...) are in .venv: source .venv/bin/activate"
