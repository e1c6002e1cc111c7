#!/usr/bin/env bash
# Runs every test: installs the local S3 server the integration tests talk to (moto, in
# .venv-s3/, once), then `cargo test`: unit tests, and end-to-end runs of the real binary
# against that server on 127.0.0.1. Extra arguments go to cargo test.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
MOTO_SERVER=$(bash scripts/setup-s3.sh | tail -n 1)
export MOTO_SERVER
cargo test "$@"
