# shellcheck shell=bash
# copy PATH... copies paths of the chroot $root to $dest, symlinks with
# their targets; copy_bin adds the shared libraries binaries load. Sourced
# by initrd.sh and machine.sh (prepended to them when the Go code runs
# them).
copy() {
  local p real
  for p in "$@"; do
    [ -e "$dest$p" ] || [ -L "$dest$p" ] && continue
    mkdir -p "$dest$(dirname "$p")"
    if [ -L "$root$p" ]; then
      cp -P "$root$p" "$dest$p"
      real=$(chroot "$root" readlink -f "$p")
      copy "$real"
    else
      cp -a "$root$p" "$dest$p"
    fi
  done
}
copy_bin() {
  local b lib
  for b in "$@"; do
    copy "$b"
    for lib in $(chroot "$root" ldd "$b" 2>/dev/null | grep -o '/[^ ]*' || true); do
      copy "$lib"
    done
  done
}
