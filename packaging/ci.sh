#!/usr/bin/env bash
# packaging/ci.sh — the release artifacts, checked (CI step after the tests;
# root on Debian). Installs what it needs when missing, then:
#
#   1. contrib/prometheus: promtool check rules + promtool test rules;
#   2. the `assets` feature (man pages / completions generator): clippy, tests;
#   3. the static x86_64 musl binary (packaging/build-deb.sh builds it once,
#      stripped, and packages it): `file` and `ldd` show it static, < 5 MB,
#      the contract smoke (../shared/tools/contract-smoke, when present) and
#      the lab demo (DAGW=..., about 45 s; ARTIFACTS_DEMO=0 skips it) pass on it;
#   4. the .deb: `dpkg-deb -c` holds the binary, unit, conffile, both man pages
#      and three completions; the conffile passes `dagw check`; lintian reports
#      no error (its overrides, each explained, ship in the package:
#      packaging/lintian-overrides);
#      `man -l` renders both pages without warnings;
#   5. the same for arm64 (aarch64 musl, linked by rust-lld; ARTIFACTS_ARM64=0
#      skips it), its binary run under qemu-aarch64 when installed.
#
# Prints one line per check and the time taken; exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
start=$SECONDS
target=x86_64-unknown-linux-musl

ok() { printf 'ok    %s\n' "$*"; }
die() { printf 'FAIL  %s\n' "$*" >&2; exit 1; }

need=()
command -v promtool >/dev/null || need+=(prometheus)
command -v lintian >/dev/null || need+=(lintian)
command -v file >/dev/null || need+=(file)
command -v man >/dev/null || need+=(man-db)
command -v qemu-aarch64 >/dev/null || need+=(qemu-user)
if [[ ${#need[@]} -gt 0 ]]; then
    echo "== installing: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" </dev/null >/dev/null
fi
if ! command -v cargo-deb >/dev/null; then
    echo "== cargo install cargo-deb"
    cargo install --locked cargo-deb
fi
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx "$target"; then
    echo "== rustup target add $target"
    timeout 300 rustup target add "$target"
fi

echo "== 1. alert rules"
promtool check rules contrib/prometheus/dagw.rules.yml >/dev/null
ok "promtool check rules"
promtool test rules contrib/prometheus/dagw.rules.test.yml >/dev/null
ok "promtool test rules ($(grep -c 'alertname:' contrib/prometheus/dagw.rules.test.yml) alert checks)"

echo "== 2. assets feature"
cargo clippy --quiet --lib --bins --features assets -- -D warnings
RUST_TEST_THREADS=2 cargo test --quiet --features assets --lib assets:: >/dev/null
ok "clippy and tests with --features assets"

echo "== 3. static binary ($target)"
deb=$(bash packaging/build-deb.sh "$target")
bin=target/$target/release/dagw
file -b "$bin" | grep -Eq 'static(-pie)? linked' || die "not static: $(file -b "$bin")"
if ldd "$bin" 2>&1 | grep -q '=>'; then die "ldd lists shared libraries: $(ldd "$bin" 2>&1)"; fi
ok "static: $(file -b "$bin" | sed 's/, BuildID[^,]*//'); ldd: $(ldd "$bin" 2>&1 | head -n1 | xargs)"
size=$(stat -c %s "$bin")
((size < 5 * 1024 * 1024)) || die "binary is $size bytes (limit 5 MB)"
ok "size $size bytes"
"$bin" --version >/dev/null
if [[ -x ../shared/tools/contract-smoke ]]; then
    DAGW=$PWD/$bin ../shared/tools/contract-smoke >target/contract-smoke.log 2>&1 ||
        { tail -n 20 target/contract-smoke.log >&2; die "contract smoke on the static binary"; }
    ok "contract smoke: $(tail -n 1 target/contract-smoke.log)"
else
    echo "SKIPPED contract smoke: ../shared/tools/contract-smoke not present"
fi
if [[ ${ARTIFACTS_DEMO:-1} != 1 ]]; then
    echo "SKIPPED lab demo on the static binary (ARTIFACTS_DEMO=0)"
elif [[ $(id -u) != 0 ]]; then
    echo "SKIPPED lab demo on the static binary: needs root (namespaces)"
else
    DAGW=$PWD/$bin TRAFFIC_SECONDS=5 bash lab/demo.sh >target/demo-static.log 2>&1 ||
        { tail -n 20 target/demo-static.log >&2; die "lab demo on the static binary"; }
    ok "lab demo on the static binary: $(grep -m1 'IPv4 192.0.2.1:' target/demo-static.log | xargs)"
fi

# check_deb DEB ARCH [RUNNER]: contents, conffile, unit, maintainer scripts,
# lintian; RUNNER runs the packaged binary (qemu-aarch64 for arm64).
check_deb() {
    local deb=$1 arch=$2 runner=${3:-}
    local contents root lint path
    contents=$(dpkg-deb -c "$deb")
    for path in ./usr/sbin/dagw ./usr/lib/systemd/system/dagw.service ./etc/dagw/dagw.toml \
        ./usr/share/man/man8/dagw.8.gz ./usr/share/man/man5/dagw.toml.5.gz \
        ./usr/share/bash-completion/completions/dagw ./usr/share/zsh/vendor-completions/_dagw \
        ./usr/share/fish/vendor_completions.d/dagw.fish; do
        grep -q " $path\$" <<<"$contents" || die "$path not in $deb"
    done
    ok "dpkg-deb -c: binary, unit, conffile, 2 man pages, 3 completions"
    [[ $(dpkg-deb -f "$deb" Architecture) == "$arch" ]] || die "architecture $(dpkg-deb -f "$deb" Architecture), wanted $arch"
    root=$(mktemp -d)
    dpkg-deb -x "$deb" "$root"
    dpkg-deb -e "$deb" "$root/DEBIAN"
    grep -qx /etc/dagw/dagw.toml "$root/DEBIAN/conffiles" || die "dagw.toml is not a conffile"
    grep -q 'ExecStart=/usr/sbin/dagw run' "$root/usr/lib/systemd/system/dagw.service" || die "unit's ExecStart"
    # Never started on install: the only invoke is a try-restart on upgrade,
    # the only enable re-creates links of a unit that was enabled before.
    if grep -E 'deb-systemd-invoke' "$root/DEBIAN/postinst" | grep -qv 'try-restart'; then
        die "postinst starts the service"
    fi
    if grep -E 'deb-systemd-helper enable' "$root/DEBIAN/postinst" >/dev/null &&
        ! grep -q 'was-enabled' "$root/DEBIAN/postinst"; then
        die "postinst enables the service"
    fi
    grep -q 'daemon-reload' "$root/DEBIAN/postinst" || die "postinst does not reload systemd"
    ok "architecture $arch, conffile, unit path, postinst reloads systemd and never starts dagw"
    if [[ $arch == "$(dpkg --print-architecture)" || -n $runner ]]; then
        $runner "$root/usr/sbin/dagw" check -c "$root/etc/dagw/dagw.toml" >/dev/null 2>&1 ||
            die "dagw check refuses the conffile"
        ok "dagw check accepts the conffile ${runner:+(under $runner)}"
    fi
    lint=$(lintian "$deb" 2>&1 | grep -v 'running with root privileges' || true)
    if grep -q '^E:' <<<"$lint"; then
        echo "$lint" >&2
        die "lintian errors"
    fi
    ok "lintian: $(grep -c '^E:' <<<"$lint" || true) errors, $(grep -c '^W:' <<<"$lint" || true) warnings"
    [[ -z $lint ]] || echo "$lint" | sed 's/^/      /'
    for page in usr/share/man/man8/dagw.8.gz usr/share/man/man5/dagw.toml.5.gz; do
        warnings=$(MANWIDTH=80 man --warnings -l "$root/$page" 2>&1 >/dev/null)
        [[ -z $warnings ]] || die "man -l $page: $warnings"
        lines=$(MANWIDTH=80 man -l "$root/$page" 2>/dev/null | wc -l)
        ((lines > 20)) || die "man -l $page rendered $lines lines"
        ok "man -l $page: $lines lines"
    done
    rm -rf "$root"
}

echo "== 4. Debian package $deb"
check_deb "$deb" amd64

if [[ ${ARTIFACTS_ARM64:-1} == 1 ]]; then
    arm=aarch64-unknown-linux-musl
    echo "== 5. arm64: static $arm binary and package (linked by rust-lld)"
    if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx "$arm"; then
        timeout 300 rustup target add "$arm"
    fi
    armdeb=$(bash packaging/build-deb.sh "$arm")
    armbin=target/$arm/release/dagw
    file -b "$armbin" | grep -q 'ARM aarch64.*statically linked' || die "not a static aarch64 binary: $(file -b "$armbin")"
    size=$(stat -c %s "$armbin")
    ((size < 5 * 1024 * 1024)) || die "arm64 binary is $size bytes (limit 5 MB)"
    ok "static aarch64, $size bytes"
    runner=""
    command -v qemu-aarch64 >/dev/null && runner=qemu-aarch64
    check_deb "$armdeb" arm64 "$runner"
fi

echo "release artifacts: ok in $((SECONDS - start)) s"
