#!/usr/bin/env bash
# `make ci-data`: the DVC-tracked data on a machine that has only the git repository, such
# as a CI runner.
#   DVC_PULL=true  dvc pull everything (the workflows set it once the remote's credentials
#                  are configured), then dvc status.
#   otherwise      rebuild the bundled sample data (deterministic: same rows, same hash) and
#                  check, file by file, that the committed .dvc files track exactly that
#                  sample. A project whose .dvc files track other data fails here with what
#                  to do, instead of silently training on the sample. Files already present
#                  are never overwritten.
# Your own data (data.raw in params.yaml is not the sample) without the remote's credentials:
# nothing to train on. With CI_DATA_OPTIONAL=true (the CI workflow's pipeline job, the monitor)
# it says so in the job summary (CI_DATA_STEPS names what is skipped, the pipeline by default)
# and sets the step output available=false, so the later steps are skipped and the run stays
# green; otherwise it fails with what to configure.
# Bash 3.2 (macOS's own) runs it too: no mapfile, no associative arrays.
set -euo pipefail

UV="${UV:-uv}"
PACKAGE="${PACKAGE:?run through make (make ci-data)}"
step() { printf '\n==> %s\n' "$*"; }

available() { [ -z "${GITHUB_OUTPUT:-}" ] || echo "available=$1" >>"$GITHUB_OUTPUT"; }

if [ "${DVC_PULL:-false}" = true ]; then
  step "dvc pull (the DVC remote's credentials are configured)"
  "$UV" run dvc pull
  "$UV" run dvc status
  available true
  exit 0
fi

raw="$("$UV" run python -c "from ${PACKAGE}.settings import load_params; print(load_params('data')['raw'])")"
if [ ! -f "src/${PACKAGE}/sample_data.py" ] || [ "$raw" != data/raw/customers.csv ]; then
  if [ -f "$raw" ]; then
    echo "$raw: present, left as it is"
    available true
    exit 0
  fi
  message="The training data ($raw) lives in the DVC remote, which this run cannot reach: no \
credentials are configured (DVC_PULL is not true)."
  [ -n "${CI_DATA_STEPS:-}" ] || message="$message The tests ran on tests/fixtures/data.csv."
  message="$message To run it here too, use a cloud DVC remote and give the workflows its \
credentials (README, section 'CI/CD')."
  if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
    printf '### %s not run: no access to the data\n\n%s\n' "${CI_DATA_STEPS:-Pipeline}" \
      "$message" >>"$GITHUB_STEP_SUMMARY"
  fi
  if [ "${CI_DATA_OPTIONAL:-false}" = true ]; then
    echo "::notice title=${CI_DATA_STEPS:-Pipeline} not run::$message"
    available false
    exit 0
  fi
  echo "error: $message" >&2
  exit 1
fi

step "no DVC remote credentials here: rebuilding the bundled sample data"
# The same files, with the same options, as `make setup` writes (sample_data.BUNDLED). An
# assignment, so that a failure here stops the script; read line by line (bash 3.2: no mapfile).
listed="$("$UV" run python -m "${PACKAGE}.sample_data" --list)"
samples=()
while IFS= read -r file; do
  [ -z "$file" ] || samples+=("$file")
done <<<"$listed"

fail() {
  echo "error: $*" >&2
  echo "CI can rebuild only the bundled sample. For your own data, give CI the DVC remote:" >&2
  echo "see the README, section 'CI/CD' (a cloud remote, its credentials through OIDC)." >&2
  exit 1
}

sample_files=()
for file in "${samples[@]}"; do sample_files+=("$file.dvc"); done
while IFS= read -r tracked; do
  [[ " ${sample_files[*]} " == *" $tracked "* ]] || fail "$tracked is not part of the bundled sample"
done < <(git ls-files -- '*.dvc')

for file in "${samples[@]}"; do
  [ -f "$file.dvc" ] || fail "$file.dvc is not committed (run make setup, then commit the .dvc files)"
  made=false
  if [ -e "$file" ]; then
    echo "$file: present, left as it is"
  else
    "$UV" run python -m "${PACKAGE}.sample_data" "$file" --bundled
    made=true
  fi
  # The content hash the .dvc file records (DVC 3: the file's plain md5) against the file's.
  expected="$(sed -n 's/^- md5: *\([0-9a-f]*\)$/\1/p' "$file.dvc" | head -n 1)"
  actual="$("$UV" run python -c 'import hashlib, sys; print(hashlib.md5(open(sys.argv[1], "rb").read()).hexdigest())' "$file")"
  if [ "$actual" != "$expected" ]; then
    [ "$made" = true ] && rm -f "$file"
    fail "$file.dvc does not track the bundled sample (md5 $expected, the sample's is $actual)"
  fi
  # Into DVC's cache, so dvc status is clean; the .dvc file is unchanged (same hash).
  "$UV" run dvc commit --force --quiet "$file.dvc"
  echo "$file: matches $file.dvc"
done
available true
