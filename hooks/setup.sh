#!/usr/bin/env bash
# Post-generation set-up of a copier-mlops project, run by `make setup` (copier itself runs
# no code, so `copier copy` needs no --trust). Idempotent: safe to run again at any time.
set -euo pipefail

UV="${UV:-uv}"
step() { printf '\n==> %s\n' "$*"; }

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
  # An assignment, so that a failure here stops the script (set -e skips a for's word list).
  bundled="$("$UV" run --no-sync python -m "${PACKAGE}.sample_data" --list)"
  mapfile -t files <<<"$bundled"
fi
for file in "${files[@]}"; do
  if [ -f "$file" ]; then
    echo "$file: present"
  elif [ -f "$file.dvc" ]; then
    echo "$file: tracked by DVC but not here: pulling it"
    "$UV" run --no-sync dvc pull "$file.dvc" || {
      echo "error: could not pull $file from the DVC remote; check 'uv run dvc remote list'" >&2
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
if [ "$(git rev-parse --show-toplevel 2>/dev/null)" = "$(pwd -P)" ]; then
  "$UV" run --no-sync pre-commit install
  "$UV" run --no-sync pre-commit install-hooks
else
  echo "not the top of its git repository: install hooks from the top with 'pre-commit install'"
fi

printf '\nReady. Next: make pipeline, make test, make serve (see make help).\n'
