#!/usr/bin/env bash
# `make template-sync`, which the template-sync workflow runs every week: copier update to the
# template's newest version (TEMPLATE_VERSION=vX.Y.Z for another), uv.lock brought in step with
# pyproject.toml, and what happened written as Markdown to OUT (the pull request's body).
#
# Conflicts do not stop it: copier leaves both versions in the file between <<<<<<< and >>>>>>>
# lines, this lists the files, and the pull request shows them (its lint job fails on them, so
# it cannot be merged unresolved). Nothing is ever committed here: the workflow's pull request,
# or you, commit after a review. TRUST=0 refuses the template's migrations (see below).
#
# In the workflow (GitHub Actions):
#   SYNC_BRANCH=template-sync   the pull request's branch. Commits a person pushed there (say,
#                  resolving conflicts) that the default branch lacks are never overwritten:
#                  nothing is updated, the job summary says why, and the output open=false.
#                  Files with conflicts are staged (git add), markers and all, for the commit.
#   TEMPLATE_SYNC_TOKEN_SET=false   the built-in GITHUB_TOKEN opens the pull request, and it may
#                  not push a change to .github/workflows/: such an update stops here (exit 1)
#                  with a job summary naming the secret that allows it.
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

# The bot's commits (create-pull-request's committer); any other committer is a person.
BOT_EMAIL="41898282+github-actions[bot]@users.noreply.github.com"
summary_of_run() {
  [ -z "${GITHUB_STEP_SUMMARY:-}" ] || printf '%s\n' "$@" >>"$GITHUB_STEP_SUMMARY"
}
outputs() { [ -z "${GITHUB_OUTPUT:-}" ] || printf '%s\n' "$@" >>"$GITHUB_OUTPUT"; }

# A person's commits on the branch, not yet in the default branch: the pull request is theirs.
branch="${SYNC_BRANCH:-}"
if [ -n "$branch" ] && git rev-parse --verify --quiet "refs/remotes/origin/$branch" >/dev/null; then
  theirs="$(git log --format='%ce%x09%h %an: %s' "HEAD..origin/$branch" |
    awk -F '\t' -v bot="$BOT_EMAIL" '$1 != bot { print $2 }')"
  merged="$(git merge-tree --write-tree HEAD "origin/$branch" 2>/dev/null || true)"
  if [ -n "$theirs" ] && [ "$merged" != "$(git rev-parse 'HEAD^{tree}')" ]; then
    echo "origin/$branch has commits a person pushed, not yet in $(git rev-parse --abbrev-ref HEAD):"
    echo "$theirs"
    echo "Left as it is: merge (or close) its pull request; the next run proposes what is new."
    summary_of_run "### Template sync: the branch \`$branch\` is yours now" "" \
      "It has commits a person pushed (below), so this run changed nothing: an update would" \
      "overwrite them. Merge its pull request when it is ready (or close it and delete the" \
      "branch); the next run then proposes whatever the template has added since." "" \
      "$(sed 's/^/- /' <<<"$theirs")"
    outputs "open=false" "conflicts=false" "title="
    exit 0
  fi
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

# GITHUB_TOKEN may not push a change to .github/workflows/: say so, name the secret, stop.
workflows="$(git status --porcelain -- .github/workflows | cut -c4-)"
if [ "${TEMPLATE_SYNC_TOKEN_SET:-true}" = false ] && [ -n "$workflows" ]; then
  message="This update ($before -> $after) changes workflow files, which the built-in \
GITHUB_TOKEN may not push. Set the repository secret TEMPLATE_SYNC_TOKEN (a fine-grained token \
with contents, pull requests and workflows: write; README, 'Updating from the template') and run \
this workflow again, or run make template-sync on your machine and push a branch."
  echo "error: $message" >&2
  echo "$workflows" | sed 's/^/  /' >&2
  echo "::error title=Template sync needs TEMPLATE_SYNC_TOKEN::$message"
  summary_of_run "### Template sync needs the secret \`TEMPLATE_SYNC_TOKEN\`" "" "$message" "" \
    "$(sed 's/^/- `/; s/$/`/' <<<"$workflows")"
  exit 1
fi

conflicts="$(git diff --name-only --diff-filter=U)"
rejects="$(git ls-files --others --exclude-standard -- '*.rej')"
# For the pull request: a file git holds as unmerged stops create-pull-request at its first
# `git checkout` ("you need to resolve your current index first"), so stage them, markers and
# all (the pull request's lint job fails on the markers until they are resolved).
if [ -n "$branch" ] && [ -n "$conflicts" ]; then
  while IFS= read -r file; do git add -- "$file"; done <<<"$conflicts"
fi
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
outputs "title=$title" "conflicts=$([ -n "$conflicts$rejects" ] && echo true || echo false)" \
  "open=true"
