#!/usr/bin/env bash
# The package test that CI runs after the other tests: builds the .deb and the .rpm from the
# dev build the tests already made (packaging/build.sh --fast), installs each into a throw-away
# root (the .deb unpacked with dpkg-deb, the .rpm installed by rpm itself, `rpm --root`, its
# post-install scriptlet run by rpm inside that root), and checks what a user gets: the
# installed binary's --version (with the commit it was built from) and --help, the man pages,
# completions, the ossec-conf/ files, the note and VERSION, file modes, and that the
# post-install script makes the state directory 0700 and leaves ossec.conf alone.
# Installs cargo-deb and cargo-generate-rpm (pinned) the first time, about a minute each, and
# Debian's rpm tools (apt-get) when `rpm` is missing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

cargo_deb_version=3.8.0
if [ "$(cargo deb --version 2>/dev/null)" != "cargo-deb $cargo_deb_version" ]; then
  echo "test-package: installing cargo-deb $cargo_deb_version (one time, about a minute)" >&2
  cargo install cargo-deb --version "$cargo_deb_version" --locked --quiet
fi
cargo_generate_rpm_version=0.21.1
if [ "$(cargo generate-rpm --version 2>/dev/null)" != "cargo-generate-rpm $cargo_generate_rpm_version" ]; then
  echo "test-package: installing cargo-generate-rpm $cargo_generate_rpm_version (one time, about a minute)" >&2
  cargo install cargo-generate-rpm --version "$cargo_generate_rpm_version" --locked --quiet
fi
if ! command -v rpm >/dev/null; then
  echo "test-package: installing Debian's rpm tools (apt-get install rpm)" >&2
  apt-get install -y -qq rpm >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq rpm >/dev/null; }
fi

built=$(bash packaging/build.sh --fast)
deb=$(tail -n 1 <<<"$built")
rpm=$(grep '\.rpm$' <<<"$built")
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
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
version_line="ossec-cloudtrail $version (commit $commit)"
echo "deb: $(basename "$deb"), $(stat -c %s "$deb") bytes"
check "installed binary runs: --version says $version_line" \
  grep -qxF "$version_line" <("$installed" --version)
check "VERSION says the same" grep -qxF "$version_line" "$work/root/usr/share/ossec-cloudtrail/VERSION"
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

# The RPM, installed by rpm into a root of its own. rpm runs the post-install scriptlet
# chrooted into that root with its /bin/sh, as on a real system: the root gets a shell and the
# tools the scriptlet uses (with the libraries they load), and the user and group names chown
# looks up; nothing else of the host.
echo "rpm: $(basename "$rpm"), $(stat -c %s "$rpm") bytes"
rroot="$work/rpmroot"
mkdir -p "$rroot/bin" "$rroot/etc" "$rroot/var/tmp" "$rroot/var/ossec/etc"
for tool in sh mkdir chown chmod; do
  path=$(command -v "$tool")
  cp -L "$path" "$rroot/bin/$tool"
  for lib in $(ldd "$path" | grep -o '/[^ ]*'); do
    mkdir -p "$rroot$(dirname "$lib")"
    cp -L "$lib" "$rroot$lib"
  done
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$rroot/etc/passwd"
echo 'root:x:0:' >"$rroot/etc/group"
printf '<ossec_config>\n</ossec_config>\n' >"$rroot/var/ossec/etc/ossec.conf"
before=$(sha256sum <"$rroot/var/ossec/etc/ossec.conf")
rinstalled="$rroot/usr/bin/ossec-cloudtrail"

check "rpm --initdb makes the root's package database" rpm --root "$rroot" --initdb
# --nodeps: the root has no glibc package to satisfy libc.so.6 and friends.
check "rpm -i installs the package into the root (running its post-install scriptlet)" \
  rpm -i --root "$rroot" --nodeps "$rpm"
check "rpm knows the package: ossec-cloudtrail-$version" \
  bash -c 'rpm -q --root "$1" ossec-cloudtrail | grep -qx "ossec-cloudtrail-$2-1.$(uname -m)"' _ "$rroot" "$version"
check "installed binary runs: --version says $version_line" \
  grep -qxF "$version_line" <("$rinstalled" --version)
check "VERSION says the same" grep -qxF "$version_line" "$rroot/usr/share/ossec-cloudtrail/VERSION"
check "installed binary runs: --help lists the subcommands" \
  bash -c '"$1" --help | grep -q "^  check " && "$1" --help | grep -q "^  state "' _ "$rinstalled"
check "package metadata names the binary's library needs" \
  bash -c 'rpm -qpR "$1" | grep -q "^libc.so.6"' _ "$rpm"
mode() { test "$(stat -c %a "$2")" = "$1"; }
check "the binary is mode 755" mode 755 "$rinstalled"
for page in ossec-cloudtrail ossec-cloudtrail-check ossec-cloudtrail-state-forget ossec-cloudtrail-ossec-conf; do
  check "man page $page.1, mode 644" \
    bash -c 'grep -q "^\.TH" "$1" && test "$(stat -c %a "$1")" = 644' _ "$rroot/usr/share/man/man1/$page.1"
done
for completion in bash-completion/completions/ossec-cloudtrail zsh/site-functions/_ossec-cloudtrail \
                  fish/vendor_completions.d/ossec-cloudtrail.fish; do
  check "completion $completion, mode 644" \
    bash -c 'test -s "$1" && test "$(stat -c %a "$1")" = 644' _ "$rroot/usr/share/$completion"
done
for file in README.md ossec/aws-cloudtrail_decoders.xml ossec/aws-cloudtrail_rules.xml ossec/ossec.conf \
            wazuh/aws-cloudtrail_decoders.xml wazuh/aws-cloudtrail_rules.xml wazuh/agent.conf; do
  check "ossec-conf/$file installed as in the repository, mode 644" \
    bash -c 'cmp "$1" "$2" && test "$(stat -c %a "$2")" = 644' _ "ossec-conf/$file" \
    "$rroot/usr/share/ossec-cloudtrail/ossec-conf/$file"
done
check "the note says what to add to ossec.conf" \
  grep -q "<command>/usr/bin/ossec-cloudtrail" "$rroot/usr/share/ossec-cloudtrail/README"
check "the post-install scriptlet made the state directory with mode 0700, owned by root" \
  test "$(stat -c '%a %U %G' "$rroot/var/lib/ossec-cloudtrail")" = "700 root root"
check "the post-install scriptlet left ossec.conf alone" \
  test "$(sha256sum <"$rroot/var/ossec/etc/ossec.conf")" = "$before"
check "the installed binary can use that state directory" \
  "$rinstalled" state show --bucket any --state "$rroot/var/lib/ossec-cloudtrail"
check "rpm -e removes the package and keeps the state" \
  bash -c 'rpm -e --root "$1" --nodeps ossec-cloudtrail && test ! -e "$1/usr/bin/ossec-cloudtrail" \
           && test -d "$1/var/lib/ossec-cloudtrail"' _ "$rroot"

echo "package test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
