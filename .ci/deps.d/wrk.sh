#!/usr/bin/env bash
# wrk generates HTTP load for benchmarks/serving_throughput.py (`make bench`).
set -euo pipefail
command -v wrk >/dev/null 2>&1 && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing wrk (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq wrk >/dev/null \
    || echo "could not install wrk: benchmarks/serving_throughput.py will not run" >&2
else
  echo "missing: wrk (apt-get install wrk); benchmarks/serving_throughput.py needs it" >&2
fi
exit 0
