#!/bin/sh
# Set up the emulated arm64 device: a Debian bookworm arm64 root file system with Python 3.11 and the
# pinned aarch64 TVM wheels, run under QEMU user mode (qemu-aarch64-static). Used by `make arm64-device`.
#
#   tools/arm64-device.sh DEVICE_DIR HOST_PYTHON REQUIREMENTS
#
# Root file system: `debootstrap --foreign` downloads and unpacks the arm64 packages; the second
# stage (maintainer scripts run under emulation) is not needed to run Python, so instead of it the
# included packages are unpacked with `dpkg-deb -x`. That needs no binfmt_misc registration and no
# chroot, and works as root in a container. Python packages: pip, for the aarch64 platform.
# Whatever cannot be done here (no root, no apt-get, no network) prints ONE line and exits 0: the
# tests that need the device skip with the reason (deploycc.fleet.emulator.unavailable()).
set -u
DIR=$1; PY=$2; REQ=$3
SUITE=bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PACKAGES=python3.11-minimal,libpython3.11-stdlib,libstdc++6
WANT="$SUITE $PACKAGES $(grep -v '^#' "$REQ" | tr '\n' ' ')"

note() { echo "note: emulated arm64 device not set up ($1); its tests will skip"; exit 0; }

[ -x "$PY" ] || PY=python3
if [ -f "$DIR/ready" ] && [ "$(cat "$DIR/ready")" = "$WANT" ]; then exit 0; fi
if ! command -v qemu-aarch64-static >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 || note "qemu-user-static and debootstrap need root and apt-get"
  apt-get install -y -q qemu-user-static debootstrap >/dev/null 2>&1 || \
    { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q qemu-user-static debootstrap >/dev/null 2>&1; } || \
    note "apt-get install qemu-user-static debootstrap failed"
fi
[ "$(id -u)" = 0 ] || note "debootstrap needs root"
WORK="$DIR.partial"
rm -rf "$WORK" && mkdir -p "$WORK" || note "cannot write $WORK"
echo "setting up the emulated arm64 device in $DIR (Debian $SUITE arm64 + TVM wheels; a few minutes)"
debootstrap --arch=arm64 --variant=minbase --foreign --include="$PACKAGES" "$SUITE" "$WORK/root" "$MIRROR" \
  >"$WORK/debootstrap.log" 2>&1 || note "debootstrap failed, see $WORK/debootstrap.log"
for deb in "$WORK"/root/var/cache/apt/archives/*.deb; do
  dpkg-deb -x "$deb" "$WORK/root" || note "dpkg-deb -x $deb failed"
done
rm -f "$WORK"/root/var/cache/apt/archives/*.deb
"$PY" -m pip install -q --disable-pip-version-check --no-deps --target "$WORK/site" --python-version 3.11 \
  --implementation cp --only-binary=:all: --platform manylinux2014_aarch64 --platform manylinux_2_27_aarch64 \
  --platform manylinux_2_28_aarch64 -r "$REQ" >"$WORK/pip.log" 2>&1 || note "pip (aarch64 wheels) failed, see $WORK/pip.log"
PYTHONPATH="$WORK/site" TVM_USE_RUNTIME_LIB=1 qemu-aarch64-static -L "$WORK/root" "$WORK/root/usr/bin/python3.11" \
  -c "import platform, tvm; assert platform.machine() == 'aarch64'" >"$WORK/check.log" 2>&1 || \
  note "the arm64 Python does not start under qemu-aarch64-static, see $WORK/check.log"
echo "$WANT" >"$WORK/ready"
rm -rf "$DIR" && mv "$WORK" "$DIR" && echo "emulated arm64 device ready in $DIR"
