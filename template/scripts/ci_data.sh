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
set -euo pipefail

UV="${UV:-uv}"
PACKAGE="${PACKAGE:?run through make (make ci-data)}"
step() { printf '\n==> %s\n' "$*"; }

if [ "${DVC_PULL:-false}" = true ]; then
  step "dvc pull (the DVC remote's credentials are configured)"
  "$UV" run dvc pull
  "$UV" run dvc status
  exit 0
fi

step "no DVC remote credentials here: rebuilding the bundled sample data"
# The same files, with the same options, as `make setup` writes (sample_data.BUNDLED).
mapfile -t samples < <("$UV" run python -m "${PACKAGE}.sample_data" --list)

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
