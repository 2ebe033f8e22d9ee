#!/usr/bin/env bash
# Service benchmarks (docs/benchmarks.md): installs h2load when missing (Debian package
# nghttp2-client), then runs bench/grpc_bench.py ("gRPC service") with any arguments given:
# each backend's table ends with the storage's own admission limit on the same database
# (bench/storage_limit.py) and entitle's ratio to it. With --http first it runs
# bench/http_bench.py instead ("HTTP face": HTTP/JSON against HTTP Ping and gRPC).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup dev
if ! command -v h2load >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then apt-get update -qq && apt-get install -y -qq nghttp2-client
  else sudo apt-get update -qq && sudo apt-get install -y -qq nghttp2-client; fi
fi
bench=bench/grpc_bench.py
if [ "${1:-}" = --http ]; then bench=bench/http_bench.py; shift; fi
exec .venv/bin/python "$bench" "$@"
