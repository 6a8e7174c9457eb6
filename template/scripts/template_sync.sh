#!/usr/bin/env bash
# `make template-sync`, which the template-sync workflow runs every week: copier update to the
# template's newest version (TEMPLATE_VERSION=vX.Y.Z for another), uv.lock brought in step with
# pyproject.toml, and what happened written as Markdown to OUT (the pull request's body).
#
# Conflicts do not stop it: copier leaves both versions in the file between <<<<<<< and >>>>>>>
# lines, this lists the files, and the pull request shows them (its lint job fails on them, so
# it cannot be merged unresolved). Nothing is ever committed here: the workflow's pull request,
# or you, commit after a review. TRUST=0 refuses the template's migrations (see below).
set -euo pipefail

UV="${UV:-uv}"
OUT="${OUT:-}"
answers=.copier-answers.yml

# copier refuses a dirty tree too; this says which files and why.
if [ -n "$(git status --porcelain)" ]; then
  echo "error: the working tree has uncommitted changes: commit or stash them first, so that" >&2
  echo "the update stays one change to review (and to undo with git). Changed:" >&2
  git status --short >&2
  exit 2
fi

version() { sed -n 's/^_commit: *//p' "$answers"; }
before="$(version)"
args=(update --defaults --conflict inline)
if [ -n "${TEMPLATE_VERSION:-}" ]; then
  args+=(--vcs-ref "$TEMPLATE_VERSION")
fi
# A migration (the template's copier.yml, _migrations; each one in its CHANGELOG.md) runs code
# in this project when an update crosses its version, so copier asks for --trust.
if [ "${TRUST:-1}" != 0 ]; then
  args+=(--trust)
fi
"$UV" tool run --from 'copier>=9.4,<10' copier "${args[@]}"
after="$(version)"

# CI installs with UV_LOCKED=1: a changed pyproject.toml needs its lock in the same change.
if ! git diff --quiet -- pyproject.toml; then
  "$UV" lock
fi

conflicts="$(git diff --name-only --diff-filter=U)"
rejects="$(git ls-files --others --exclude-standard -- '*.rej')"
changed="$(git status --porcelain | wc -l | tr -d ' ')"

if [ "$before" = "$after" ] && [ "$changed" = 0 ]; then
  title="Template: already at $after"
else
  title="Update from the template: $before -> $after"
fi
if [ -n "$conflicts$rejects" ]; then
  title="$title (conflicts to resolve)"
fi

summary() {
  echo "## $title"
  echo
  if [ "$changed" = 0 ]; then
    echo "Nothing to change: this project is at the template's version $after."
    return
  fi
  echo "\`copier update\` from the template's $before to $after: $changed file(s) changed."
  echo "Your answers (\`.copier-answers.yml\`) and your own changes are kept; the template's"
  echo "CHANGELOG.md says what each version brings, and the steps a version asks for."
  if [ -n "$conflicts$rejects" ]; then
    echo
    echo "### Conflicts to resolve before merging"
    echo
    echo "The template and this project changed the same lines. Each file below holds both"
    echo "versions between \`<<<<<<< before updating\` and \`>>>>>>> after updating\`: keep what you"
    echo "want, delete the marker lines, commit to this branch. The lint job fails until then."
    echo
    while IFS= read -r file; do
      [ -n "$file" ] && echo "- \`$file\`"
    done <<<"$conflicts"
    while IFS= read -r file; do
      [ -n "$file" ] && echo "- \`$file\`: a change that did not apply; apply it by hand, delete the file"
    done <<<"$rejects"
  fi
  echo
  echo "Then, locally: \`make setup\` (dependencies may have changed), \`make test\`."
}

summary
if [ -n "$OUT" ]; then
  mkdir -p "$(dirname "$OUT")"
  summary >"$OUT"
fi
if [ -n "${GITHUB_OUTPUT:-}" ]; then
  {
    echo "title=$title"
    echo "conflicts=$([ -n "$conflicts$rejects" ] && echo true || echo false)"
  } >>"$GITHUB_OUTPUT"
fi
