#!/usr/bin/env bash
# The package test that CI runs after the other tests: builds the .deb from the dev build the
# tests already made (packaging/build.sh --fast), unpacks it into a throw-away root, and checks
# what a user gets: the installed binary's --version and --help, the man pages, completions,
# the ossec-conf/ files and the note, and that the post-install script makes the state
# directory 0700 and leaves ossec.conf alone.
# Installs cargo-deb (pinned) the first time: about a minute.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

cargo_deb_version=3.8.0
if [ "$(cargo deb --version 2>/dev/null)" != "cargo-deb $cargo_deb_version" ]; then
  echo "test-package: installing cargo-deb $cargo_deb_version (one time, about a minute)" >&2
  cargo install cargo-deb --version "$cargo_deb_version" --locked --quiet
fi

deb=$(bash packaging/build.sh --fast | tail -n 1)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dpkg-deb -x "$deb" "$work/root"
dpkg-deb -e "$deb" "$work/control"

passed=0
failed=0
check() {
  local what=$1
  shift
  if "$@" >"$work/out" 2>&1; then
    passed=$((passed + 1))
    echo "ok    $what"
  else
    failed=$((failed + 1))
    echo "FAIL  $what"
    sed 's/^/      /' "$work/out"
  fi
}

installed="$work/root/usr/bin/ossec-cloudtrail"
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
check "installed binary runs: --version says $version" \
  grep -qx "ossec-cloudtrail $version" <("$installed" --version)
check "installed binary runs: --help lists the subcommands" \
  bash -c '"$1" --help | grep -q "^  check " && "$1" --help | grep -q "^  state "' _ "$installed"
check "package metadata names the binary's library needs" \
  bash -c 'dpkg-deb -f "$1" Depends | grep -q libc6' _ "$deb"

for page in ossec-cloudtrail ossec-cloudtrail-check ossec-cloudtrail-state-forget ossec-cloudtrail-ossec-conf; do
  check "man page $page.1" \
    bash -c 'gzip -dc "$1" | grep -q "^\.TH"' _ "$work/root/usr/share/man/man1/$page.1.gz"
done
check "bash completion" test -s "$work/root/usr/share/bash-completion/completions/ossec-cloudtrail"
check "zsh completion" test -s "$work/root/usr/share/zsh/vendor-completions/_ossec-cloudtrail"
check "fish completion" test -s "$work/root/usr/share/fish/vendor_completions.d/ossec-cloudtrail.fish"
for file in README.md ossec/aws-cloudtrail_decoders.xml ossec/aws-cloudtrail_rules.xml ossec/ossec.conf \
            wazuh/aws-cloudtrail_decoders.xml wazuh/aws-cloudtrail_rules.xml wazuh/agent.conf; do
  check "ossec-conf/$file installed as in the repository" \
    cmp "ossec-conf/$file" "$work/root/usr/share/ossec-cloudtrail/ossec-conf/$file"
done
check "the note says what to add to ossec.conf" \
  grep -q "<command>/usr/bin/ossec-cloudtrail" "$work/root/usr/share/ossec-cloudtrail/README"

# The post-install script, as dpkg runs it for a root of its own (DPKG_ROOT), beside an
# agent's ossec.conf that it must not touch.
mkdir -p "$work/root/var/ossec/etc"
printf '<ossec_config>\n</ossec_config>\n' >"$work/root/var/ossec/etc/ossec.conf"
before=$(sha256sum <"$work/root/var/ossec/etc/ossec.conf")
check "postinst configure succeeds" env DPKG_ROOT="$work/root" sh "$work/control/postinst" configure
check "postinst makes the state directory with mode 0700" \
  test "$(stat -c %a "$work/root/var/lib/ossec-cloudtrail")" = 700
check "postinst leaves ossec.conf alone" \
  test "$(sha256sum <"$work/root/var/ossec/etc/ossec.conf")" = "$before"
check "the installed binary can use that state directory" \
  "$installed" state show --bucket any --state "$work/root/var/lib/ossec-cloudtrail"
check "postrm purge removes the state" \
  bash -c 'DPKG_ROOT="$1" sh "$2" purge && test ! -e "$1/var/lib/ossec-cloudtrail"' _ "$work/root" "$work/control/postrm"

echo "package $(basename "$deb"), $(stat -c %s "$deb") bytes"
echo "package test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
