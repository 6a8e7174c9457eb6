#!/usr/bin/env bash
# Post-generation set-up of a copier-mlops project, run by `make setup` (copier itself runs
# no code, so `copier copy` needs no --trust). Idempotent: safe to run again at any time.
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
# With dataset=file, the first run adopts the answered file (ingest checks it before it
# writes anything: data/raw/, schema.yaml, the test fixture, examples/request.json).
if [ -f data/dataset.yml ] && [ ! -f schema.yaml ]; then
  "$UV" run --no-sync python -m "${PACKAGE}.ingest" --config data/dataset.yml
fi
raw="$("$UV" run --no-sync python -c "from ${PACKAGE}.settings import load_params; print(load_params('data')['raw'])")"
files=("$raw")
sample=false
if [ -f "src/${PACKAGE}/sample_data.py" ] && [ "$raw" = data/raw/customers.csv ]; then
  sample=true
  # An assignment, so that a failure here stops the script (set -e skips a for's word list);
  # read line by line, as macOS's bash 3.2 has no mapfile.
  bundled="$("$UV" run --no-sync python -m "${PACKAGE}.sample_data" --list)"
  files=()
  while IFS= read -r file; do
    [ -z "$file" ] || files+=("$file")
  done <<<"$bundled"
fi
for file in "${files[@]}"; do
  if [ -f "$file" ]; then
    echo "$file: present"
  elif [ -f "$file.dvc" ]; then
    echo "$file: tracked by DVC but not here: pulling it"
    "$UV" run --no-sync dvc pull "$file.dvc" || {
      echo "error: could not pull $file from the DVC remote; check 'dvc remote list' (in .venv)" >&2
      exit 1
    }
  elif [ "$sample" = true ]; then
    "$UV" run --no-sync python -m "${PACKAGE}.sample_data" "$file" --bundled
    "$UV" run --no-sync dvc add --quiet "$file"
  else
    echo "error: $file (data.raw in params.yaml) is missing and not tracked by DVC:" >&2
    echo "adopt a data file with: make adopt-data FILE=path/to/table.csv TARGET=column" >&2
    exit 1
  fi
done
if [ ! -f tests/fixtures/data.csv ]; then
  # The small sample the tests run on, committed, so `make test` needs no DVC remote.
  "$UV" run --no-sync python -m "${PACKAGE}.ingest" --fixture
fi

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
