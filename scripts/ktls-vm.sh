#!/usr/bin/env bash
# Runs one program inside a small QEMU virtual machine whose kernel has kernel TLS, and exits
# with the program's exit code. For testing ringcast's kTLS path on machines whose own kernel
# has CONFIG_TLS off.
#
#   scripts/ktls-vm.sh BINARY [ARGS...]
#
# The VM boots Debian's linux-image-6.1.0-*-amd64 (CONFIG_TLS=m), fetched once with `apt-get
# download` and unpacked (not installed) into target/ktls-vm/, under TCG (no KVM needed), to a
# busybox initramfs that loads virtio/9p, tls and the AEAD modules, brings `lo` up, mounts the
# host's / read-only over 9p and runs BINARY chrooted into it (so it finds the host's loader
# and libraries), in the current directory, with RINGCAST_KTLS_VM=1, a tmpfs on /tmp and
# /proc, /sys and /dev mounted. The VM has no network device and cannot write to the host.
#
# Output: the VM's console on stdout. Exit: BINARY's status; 124 if the VM ran past
# KTLS_VM_TIMEOUT seconds (default 600); 125 if the VM could not be had (no qemu, no busybox,
# no kernel package, no 9p in the VM); 1 if the VM ended without reporting a status (a kernel
# panic, say); 2 for a usage error.
# Needs: qemu-system-x86, busybox-static (scripts/install-test-deps.sh), apt-get, dpkg-deb.
# Environment: KTLS_VM_TIMEOUT, KTLS_VM_KERNEL (package name), KTLS_VM_CACHE (directory).
set -euo pipefail

if [ $# -lt 1 ]; then
  echo "usage: $0 BINARY [ARGS...]" >&2
  exit 2
fi

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${KTLS_VM_CACHE:-$root/target/ktls-vm}
timeout_s=${KTLS_VM_TIMEOUT:-600}
if [ ! -x "$1" ] || [ -d "$1" ]; then
  echo "ktls-vm: $1 is not an executable" >&2
  exit 2
fi
binary=$(realpath "$1")
shift

unavailable() {
  echo "ktls-vm: unavailable: $*" >&2
  exit 125
}

command -v qemu-system-x86_64 >/dev/null || unavailable "qemu-system-x86_64 not found (apt-get install qemu-system-x86)"
busybox=$(command -v busybox || true)
[ -n "$busybox" ] || unavailable "busybox not found (apt-get install busybox-static)"
# The initramfs has no libraries: busybox must be the static build.
if ! "$busybox" true 2>/dev/null || ldd "$busybox" >/dev/null 2>&1; then
  unavailable "$busybox is not a static busybox (apt-get install busybox-static)"
fi

# The kernel: the 6.1 image bookworm's linux-image-amd64 points at, or the newest 6.1 known.
pkg=${KTLS_VM_KERNEL:-}
if [ -z "$pkg" ]; then
  pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
    awk '!found && $1 == "Depends:" && $2 ~ /^linux-image-6\.1\.0-[0-9]+-amd64$/ { print $2; found = 1 }')
fi
if [ -z "$pkg" ]; then
  pkg=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64$' 2>/dev/null |
    awk '{ print $1 }' | sort -V | tail -n 1)
fi
[ -n "$pkg" ] || unavailable "no linux-image-6.1.0-*-amd64 package known to apt (apt-get update?)"
kdir=$cache/$pkg
kver=${pkg#linux-image-}

# The kernel image and the modules the VM loads are kept in $kdir (about 12 MB; the package's
# other 390 MB of modules are dropped): virtio + 9p to reach the host, tls, and every crypto
# module (the AEADs are put together from templates the crypto API loads by alias). busybox
# modprobe in the VM resolves dependencies and aliases from the index files depmod wrote.
mkdir -p "$cache"
if [ ! -f "$kdir/.ready" ]; then
  echo "ktls-vm: fetching $pkg into $kdir" >&2
  dl=$(mktemp -d "$cache/download.XXXXXX")
  # apt-get download writes to the current directory; as root it warns that the _apt user
  # cannot write there, which is harmless.
  (cd "$dl" && apt-get download -q "$pkg" >/dev/null 2>&1) || {
    rm -rf "$dl"
    unavailable "apt-get download $pkg failed"
  }
  dpkg-deb -x "$dl"/"$pkg"_*.deb "$dl/x"
  [ -f "$dl/x/boot/vmlinuz-$kver" ] || unavailable "$pkg has no boot/vmlinuz-$kver"
  "$busybox" depmod -b "$dl/x" "$kver"
  rm -rf "$kdir"
  mkdir -p "$kdir/modules/$kver"
  cp "$dl/x/boot/vmlinuz-$kver" "$kdir/vmlinuz"
  (
    cd "$dl/x/lib/modules/$kver"
    {
      awk -F: '$1 ~ /\/(virtio_pci|9pnet_virtio|9p|tls)\.ko$/ { print $1; n = split($2, d, " "); for (i = 1; i <= n; i++) print d[i] }' modules.dep
      find kernel/crypto kernel/arch/x86/crypto kernel/lib/crypto -name '*.ko'
    } | sort -u | while read -r m; do
      mkdir -p "$kdir/modules/$kver/$(dirname "$m")"
      cp "$m" "$kdir/modules/$kver/$m"
    done
    cp modules.dep modules.alias modules.symbols modules.builtin modules.order "$kdir/modules/$kver/"
  )
  rm -rf "$dl"
  touch "$kdir/.ready"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/ktls-vm.XXXXXX")
trap 'rm -rf "$work"' EXIT
ird=$work/initramfs
mkdir -p "$ird"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,host,hosttmp,lib}
cp "$busybox" "$ird/bin/busybox"
cp -a "$kdir/modules" "$ird/lib/modules"

# The command run in the chroot, each word single-quoted.
quote() { printf "'%s' " "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
{
  printf 'export RINGCAST_KTLS_VM=1 HOME=/tmp PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  for v in RUST_BACKTRACE RUST_LOG RUST_TEST_THREADS; do
    if [ -n "${!v:-}" ]; then printf ' %s=%s' "$v" "$(quote "${!v}")"; fi
  done
  printf '\ncd %s || exit 125\nexec ' "$(quote "$PWD")"
  quote "$binary"
  for a in "$@"; do quote "$a"; done
  printf '\n'
} >"$ird/cmd"

# The chroot gets a fresh tmpfs on /tmp. Host folders under /tmp that the command needs (the
# working directory and the binary's, as when the checkout itself lives under /tmp) stay
# visible: their top folder under /tmp is bound back over the tmpfs.
for p in "$PWD" "$(dirname "$binary")"; do
  case $p in /tmp/?*) rel=${p#/tmp/}; printf '%s\n' "${rel%%/*}" ;; esac
done | sort -u >"$ird/keep"

cat >"$ird/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s
mount -t devtmpfs dev /dev
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sys /sys
echo /sbin/modprobe >/proc/sys/kernel/modprobe
fail() { echo "ktls-vm: $*"; echo "ktls-vm: exit=125"; poweroff -f; }
for m in virtio_pci 9pnet_virtio 9p; do modprobe "$m" || fail "modprobe $m"; done
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose hostroot /host ||
  fail "mount of the host root over 9p"
# tls and the AEADs its ciphers use; the crypto API would load the rest on demand.
for m in tls gcm ghash_clmulni_intel ghash_generic aesni_intel ctr chacha20poly1305 \
  chacha_x86_64 chacha_generic poly1305_x86_64 poly1305_generic; do
  modprobe "$m" 2>/dev/null || echo "ktls-vm: note: modprobe $m failed"
done
ip link set lo up || fail "lo up"
mount -t proc proc /host/proc && mount -t sysfs sys /host/sys && mount -o bind /dev /host/dev &&
  mount -o bind /host/tmp /hosttmp && mount -t tmpfs -o size=512m tmp /host/tmp ||
  fail "mounts in the host root"
while read -r top; do
  mkdir -p "/host/tmp/$top" && mount -o bind "/hosttmp/$top" "/host/tmp/$top" ||
    fail "bind of /tmp/$top"
done </keep
echo "ktls-vm: $(uname -r) up after $(cut -d' ' -f1 /proc/uptime) s"
chroot /host /bin/sh -c "$(cat /cmd)"
echo "ktls-vm: exit=$?"
poweroff -f
EOF
chmod +x "$ird/init"
(cd "$ird" && find . | "$busybox" cpio -o -H newc 2>/dev/null) >"$work/initrd"

log=$work/console.log
set +e
timeout -k 10 "$timeout_s" qemu-system-x86_64 \
  -accel tcg -cpu max -smp 2 -m 1024 \
  -kernel "$kdir/vmlinuz" -initrd "$work/initrd" \
  -append "console=ttyS0 panic=-1 quiet loglevel=4" \
  -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
  -nic none -display none -monitor none -serial stdio -no-reboot </dev/null |
  tee "$log"
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" -eq 124 ]; then
  echo "ktls-vm: timed out after $timeout_s s" >&2
  exit 124
fi
status=$(tr -d '\r' <"$log" | sed -n 's/^ktls-vm: exit=\([0-9]*\)$/\1/p' | tail -n 1)
if [ -z "$status" ]; then
  echo "ktls-vm: the VM ended (qemu status $rc) without reporting an exit status" >&2
  exit 1
fi
exit "$status"
