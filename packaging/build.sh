#!/usr/bin/env bash
# Builds the Debian package (and, when cargo-generate-rpm is installed, the RPM):
#   bash packaging/build.sh          # optimized release build: the packages to ship
#   bash packaging/build.sh --fast   # the dev build the tests already made: for CI's package test
# Needs cargo-deb (cargo install cargo-deb --version 3.8.0 --locked) and, for the RPM,
# cargo-generate-rpm (cargo install cargo-generate-rpm --version 0.21.1 --locked). Makes the
# man pages and shell completions from the binary itself (`ossec-cloudtrail generate-docs`),
# so they always match its --help, and VERSION from its --version (the version and the git
# commit it was built from). Prints the path of the .rpm, when it made one, then the path of
# the .deb on its last line.
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
"target/$profile_dir/ossec-cloudtrail" --version >"$docs/VERSION"

cargo deb --no-build --locked --profile "$profile" "${deb_flags[@]}" --output target/packages/ >&2
if cargo generate-rpm --version >/dev/null 2>&1; then
  version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
  rpm="target/packages/ossec-cloudtrail-$version-1.$(uname -m).rpm"
  rm -f "$rpm"
  # The dev build is large and only tested: compress it fast.
  compress=$([ "$profile" = dev ] && echo gzip || echo zstd)
  cargo generate-rpm --profile "$profile" --payload-compress "$compress" --output "$rpm" >&2
  echo "$rpm"
else
  echo "packaging: cargo-generate-rpm is missing, so no RPM: cargo install cargo-generate-rpm --version 0.21.1 --locked" >&2
fi
ls -t target/packages/*.deb | head -n 1
