#!/usr/bin/env bash
# tools/deps.sh — set up a Debian 12 (bookworm) machine to build and test Ferry.
#
# Idempotent: every step is skipped when already satisfied, and nothing touches apt when
# everything is present. Run as root on a fresh machine (`make deps`). As another user it
# does the rustup steps, then prints the root commands still needed and exits non-zero.
# Downloads only from Debian's archive (apt) and the Rust toolchain server (rustup).
set -euo pipefail

QEMU_MIN=9.2
BACKPORTS_LIST=/etc/apt/sources.list.d/bookworm-backports.list
BACKPORTS_LINE="deb http://deb.debian.org/debian bookworm-backports main"
RUST_TARGETS=(aarch64-unknown-none aarch64-unknown-none-softfloat)

say() { echo "deps: $*"; }
die() { echo "deps: error: $*" >&2; exit 1; }

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# ---- Rust (per user, no root needed) -------------------------------------------------
command -v rustup >/dev/null 2>&1 ||
    die "rustup not found: install Rust with rustup first (https://rustup.rs), then rerun make deps"

installed_targets=$(rustup target list --installed)
for t in "${RUST_TARGETS[@]}"; do
    if grep -qx "$t" <<<"$installed_targets"; then
        say "rust target $t: present"
    else
        say "rust target $t: adding"
        rustup target add "$t"
    fi
done
# Listed as llvm-tools-<host triple> (older toolchains: llvm-tools-preview-<host>).
if grep -Eq '^llvm-tools(-preview)?(-|$)' <<<"$(rustup component list --installed)"; then
    say "rust component llvm-tools: present"
else
    say "rust component llvm-tools: adding"
    rustup component add llvm-tools
fi

# ---- Debian packages -----------------------------------------------------------------
need_backports=0   # the bookworm-backports source is missing
need_arch=0        # dpkg does not know arm64 yet
need_update=0      # apt lists must be refreshed
install_bpo=()     # packages from bookworm-backports
install_main=()    # packages from the default suites

if [ -r /etc/os-release ]; then
    # shellcheck disable=SC1091
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    [ "$codename" = bookworm ] ||
        say "warning: this is '${codename:-unknown}', not Debian 12 (bookworm); the apt steps assume bookworm"
fi
command -v apt-get >/dev/null 2>&1 || die "apt-get not found: make deps supports Debian 12 only"

has_backports_source() {
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] && grep -E '^[^#]*bookworm-backports' "$f" >/dev/null && return 0
    done
    return 1
}
has_backports_source || { need_backports=1; need_update=1; }

qemu_version() {
    local out
    out=$(qemu-system-aarch64 --version 2>/dev/null) || return 0
    sed -n 's/^QEMU emulator version \([0-9][0-9.]*\).*/\1/p' <<<"$out" | head -n1
}
version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }

qv=$(qemu_version || true)
if [ -n "$qv" ] && version_ge "$qv" "$QEMU_MIN"; then
    say "qemu-system-aarch64 $qv: present (>= $QEMU_MIN)"
else
    say "qemu-system-aarch64: ${qv:-missing}, need >= $QEMU_MIN from bookworm-backports"
    install_bpo+=(qemu-system-arm)
    need_update=1
fi

# QEMU's virt machine has a default virtio-net NIC whose option ROM (efi-virtio.rom) comes
# from ipxe-qemu, only a Recommends of qemu-system-arm: without it QEMU refuses to start.
if [ "$(dpkg-query -W -f='${Status}' ipxe-qemu 2>/dev/null || true)" = "install ok installed" ]; then
    say "ipxe-qemu (QEMU NIC option ROMs): present"
else
    say "ipxe-qemu (QEMU NIC option ROMs): missing"
    install_main+=(ipxe-qemu)
fi

if command -v dtc >/dev/null 2>&1; then
    say "dtc: present"
else
    say "dtc: missing"
    install_main+=(device-tree-compiler)
fi

# tools/mkinitramfs (the Linux test initramfs of `make guests`) is a python3 script.
if command -v python3 >/dev/null 2>&1; then
    say "python3 (tools/mkinitramfs): present"
else
    say "python3 (tools/mkinitramfs): missing"
    install_main+=(python3)
fi

# The disk scenarios (linux-disk*: docs/linux.md, "Disks") make ext4 images with mkfs.ext4 -d
# and check them with fsck.ext4: e2fsprogs, whose tools are in /sbin (not on a user's PATH).
has_e2fsprogs() {
    PATH="$PATH:/usr/sbin:/sbin" command -v mkfs.ext4 >/dev/null 2>&1 &&
        PATH="$PATH:/usr/sbin:/sbin" command -v fsck.ext4 >/dev/null 2>&1
}
if has_e2fsprogs; then
    say "e2fsprogs (mkfs.ext4, fsck.ext4): present"
else
    say "e2fsprogs (mkfs.ext4, fsck.ext4): missing"
    install_main+=(e2fsprogs)
fi

if command -v cc >/dev/null 2>&1; then
    say "cc (host linker for cargo): present"
else
    say "cc (host linker for cargo): missing"
    install_main+=(gcc libc6-dev)
fi
[ ${#install_main[@]} -gt 0 ] && ! apt-cache show "${install_main[0]}" >/dev/null 2>&1 && need_update=1

# arm64 packages (guest kernels, busybox) are downloaded, never installed: tools/fetch-guest.
# (Output captured before grep -q: under pipefail, grep -q quitting early fails the pipe.)
has_arm64_lists() {
    grep -q bookworm-backports <<<"$(apt-cache madison linux-image-arm64:arm64 2>/dev/null)"
}
if grep -qx arm64 <<<"$(dpkg --print-foreign-architectures)"; then
    if has_arm64_lists; then
        say "arm64 package lists (bookworm-backports): present"
    else
        say "arm64 package lists: not fetched yet"
        need_update=1
    fi
else
    say "dpkg architecture arm64: missing"
    need_arch=1
    need_update=1
fi

# ---- Carry out (root) or explain (not root) ------------------------------------------
cmds=()
[ $need_backports = 1 ] && cmds+=("echo '$BACKPORTS_LINE' > $BACKPORTS_LIST")
[ $need_arch = 1 ] && cmds+=("dpkg --add-architecture arm64")
[ $need_update = 1 ] && cmds+=("apt-get update")
[ ${#install_bpo[@]} -gt 0 ] &&
    cmds+=("apt-get install -y --no-install-recommends -t bookworm-backports ${install_bpo[*]}")
[ ${#install_main[@]} -gt 0 ] &&
    cmds+=("apt-get install -y --no-install-recommends ${install_main[*]}")

if [ ${#cmds[@]} -eq 0 ]; then
    say "all present"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    {
        echo "deps: error: system packages are missing and installing them needs root."
        echo "deps: run these as root, then run make deps again:"
        for c in "${cmds[@]}"; do echo "    $c"; done
    } >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
for c in "${cmds[@]}"; do
    say "+ $c"
    bash -c "$c" </dev/null
done

# ---- Verify --------------------------------------------------------------------------
qv=$(qemu_version || true)
[ -n "$qv" ] && version_ge "$qv" "$QEMU_MIN" ||
    die "qemu-system-aarch64 is ${qv:-missing} after installing; need >= $QEMU_MIN"
command -v dtc >/dev/null 2>&1 || die "dtc still missing after installing device-tree-compiler"
command -v python3 >/dev/null 2>&1 || die "python3 still missing after installing it"
has_e2fsprogs || die "mkfs.ext4 or fsck.ext4 still missing after installing e2fsprogs"
[ "$(dpkg-query -W -f='${Status}' ipxe-qemu 2>/dev/null || true)" = "install ok installed" ] ||
    die "ipxe-qemu still missing after installing it"
has_arm64_lists ||
    die "linux-image-arm64:arm64 not found in bookworm-backports after apt-get update"
say "done (qemu-system-aarch64 $qv)"
