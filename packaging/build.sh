#!/usr/bin/env bash
# Builds the Debian package (and, when cargo-generate-rpm is installed, the RPM):
#   bash packaging/build.sh          # optimized release build: the package to ship
#   bash packaging/build.sh --fast   # the dev build the tests already made: for CI's package test
# Needs cargo-deb (cargo install cargo-deb --version 3.8.0 --locked). Makes the man pages and
# shell completions from the binary itself (`ossec-cloudtrail generate-docs`), so they always
# match its --help. Prints the path of the .deb on its last line.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

profile=release
deb_flags=()
if [ "${1:-}" = "--fast" ]; then
  profile=dev
  deb_flags=(--fast)
fi
profile_dir=$([ "$profile" = dev ] && echo debug || echo release)

if ! cargo deb --version >/dev/null 2>&1; then
  echo "packaging: cargo-deb is missing: cargo install cargo-deb --version 3.8.0 --locked" >&2
  exit 1
fi

cargo build --locked --profile "$profile" --bin ossec-cloudtrail >&2
docs="$root/target/generated-docs"
rm -rf "$docs"
"target/$profile_dir/ossec-cloudtrail" generate-docs --out "$docs" >/dev/null

cargo deb --no-build --locked --profile "$profile" "${deb_flags[@]}" --output target/packages/ >&2
if cargo generate-rpm --version >/dev/null 2>&1 && [ "$profile" = release ]; then
  cargo generate-rpm --output target/packages/ >&2
fi
ls -t target/packages/*.deb | head -n 1
