#!/usr/bin/env bash
# packaging/build-deb.sh [TARGET] — build the Debian package of dagw.
#
#   bash packaging/build-deb.sh                              # this machine's arch (glibc)
#   bash packaging/build-deb.sh x86_64-unknown-linux-musl    # static binary inside
#   bash packaging/build-deb.sh aarch64-unknown-linux-musl   # arm64 switches, linked by rust-lld
#
# 1. builds the stripped release binary (for TARGET when given);
# 2. generates the man pages and completions from the clap definitions and
#    the config key table (`dagw generate-assets`, run from a host debug build
#    with the `assets` feature: the definitions are the same for every target
#    and the shipped binary does not carry the generators), gzipped man pages;
# 3. writes the packaged unit: systemd/dagw.service with /usr/sbin/dagw;
# 4. runs `cargo deb --no-build` (metadata in Cargo.toml). Prints the .deb's path.
#
# Needs cargo-deb (cargo install cargo-deb). Set DEB_SKIP_BUILD=1 to package an
# already built binary.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

target=${1:-}
target_args=()
if [[ -n $target ]]; then
    target_args=(--target "$target")
fi

command -v cargo-deb >/dev/null || {
    echo "build-deb: cargo-deb is missing: cargo install cargo-deb" >&2
    exit 1
}

# A musl target of another CPU links with the toolchain's own rust-lld and the
# target's self-contained musl C library: no cross compiler, no container
# (cross needs docker). Only when nothing else is configured for the target.
if [[ $target == *-unknown-linux-musl && $target != "$(uname -m)"-* ]]; then
    var=CARGO_TARGET_$(tr 'a-z-' 'A-Z_' <<<"$target")
    linker_var=${var}_LINKER
    if [[ -z ${!linker_var:-} ]]; then
        lld="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/rust-lld"
        [[ -x $lld ]] || {
            echo "build-deb: no linker for $target: $lld is missing; set $linker_var" >&2
            exit 1
        }
        export "$linker_var=$lld" "${var}_RUSTFLAGS=-Clinker-flavor=ld.lld"
    fi
fi

if [[ -z ${DEB_SKIP_BUILD:-} ]]; then
    echo "== cargo build --release ${target_args[*]}" >&2
    # Stripped by rustc, so no target-specific strip tool is needed.
    CARGO_PROFILE_RELEASE_STRIP=symbols cargo build --release "${target_args[@]}" >&2
fi

assets=target/assets
rm -rf "$assets"
echo "== generating man pages and completions into $assets" >&2
cargo run --quiet --features assets -- generate-assets "$assets" >/dev/null
gzip -9n "$assets/man/dagw.8" "$assets/man/dagw.toml.5"

mkdir -p "$assets/systemd"
sed 's#/usr/local/bin/dagw#/usr/sbin/dagw#g' systemd/dagw.service >"$assets/systemd/dagw.service"
if grep -q '/usr/local/bin' "$assets/systemd/dagw.service"; then
    echo "build-deb: the packaged unit still names /usr/local/bin" >&2
    exit 1
fi

echo "== cargo deb --no-build ${target_args[*]}" >&2
# cargo deb prints the package's path last.
deb=$(cargo deb --no-build --no-strip "${target_args[@]}" | tail -n 1)
[[ -f $deb ]] || {
    echo "build-deb: cargo deb did not report a package ($deb)" >&2
    exit 1
}
echo "$deb"
