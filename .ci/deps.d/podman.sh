#!/usr/bin/env bash
# Podman and Buildah build and run the generated project's container image in the e2e tests
# (tests/e2e/test_container.py); debootstrap makes the Debian base image with Python that
# stands in for python:*-slim, since no image registry is reachable from CI.
set -euo pipefail

missing=()
command -v podman >/dev/null 2>&1 || missing+=(podman)
command -v buildah >/dev/null 2>&1 || missing+=(buildah)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${missing[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  if ! { apt-get update -qq && apt-get install -y -qq podman buildah debootstrap >/dev/null; }; then
    echo "could not install ${missing[*]}: the container tests will skip (fail under CI=true)" >&2
  fi
else
  echo "missing: ${missing[*]} (install them as root with apt-get); the container tests will skip" >&2
fi
exit 0
