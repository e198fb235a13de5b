package facts

// script prints raw host data in sections, each introduced by a line
// "==> NAME [ARG]". It is POSIX sh that only reads: it runs on OVH rescue
// (Debian), NixOS installers, installed NixOS and busybox systems, so every
// probe tolerates a missing tool and falls back to /proc and /sys. Single-line
// files are read with the `read` builtin to keep forks, and so time, down.
const script = `export LC_ALL=C
PATH="${PATH:+$PATH:}/usr/local/sbin:/usr/sbin:/sbin:/usr/local/bin:/usr/bin:/bin:/run/current-system/sw/bin"
h() { printf '\n==> %s\n' "$*"; }
has() { command -v "$1" >/dev/null 2>&1; }
one() { v=; [ -r "$1" ] && read -r v <"$1"; printf '%s\n' "$v"; }
kv() { v=; [ -r "$2" ] && read -r v <"$2"; printf '%s=%s\n' "$1" "$v"; }
h hostname; one /proc/sys/kernel/hostname
h os-release; cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release 2>/dev/null
h kernel; uname -r
h arch; uname -m
h boot_id; one /proc/sys/kernel/random/boot_id
h firmware; if [ -d /sys/firmware/efi ]; then echo uefi; else echo bios; fi
h memtotal_kb; while read -r k v rest; do [ "$k" = MemTotal: ] && echo "$v" && break; done </proc/meminfo
h cpus; nproc 2>/dev/null || grep -c '^processor' /proc/cpuinfo
U=; has udevadm && U=1
for d in /sys/class/net/*; do
  [ -d "$d" ] || continue
  n=${d##*/}
  h iface "$n"
  kv address "$d/address"; kv operstate "$d/operstate"; kv flags "$d/flags"
  [ -e "$d/device/driver" ] && printf 'driver=%s\n' "$(readlink "$d/device/driver")"
  [ -n "$U" ] && [ "$n" != lo ] && [ -e "$d/device" ] && udevadm test-builtin net_id "$d" 2>/dev/null
done
if has ip; then
  h ip-addr; ip -o addr show 2>/dev/null
  h ip-route4; ip -4 route show default 2>/dev/null
  h ip-route6; ip -6 route show default 2>/dev/null
else
  h proc-net-route; cat /proc/net/route 2>/dev/null
  h proc-fib-trie; cat /proc/net/fib_trie 2>/dev/null
  h proc-if-inet6; cat /proc/net/if_inet6 2>/dev/null
  h proc-ipv6-route; cat /proc/net/ipv6_route 2>/dev/null
fi
h resolv; cat /etc/resolv.conf 2>/dev/null
L=
if has lsblk; then
  L=$(lsblk -J -b -o NAME,PATH,SIZE,MODEL,ROTA,TRAN,TYPE,FSTYPE,LABEL,PARTLABEL,UUID,MOUNTPOINT,PTTYPE 2>/dev/null) ||
  L=$(lsblk -J -b -o NAME,SIZE,MODEL,ROTA,TRAN,TYPE,FSTYPE,LABEL,PARTLABEL,UUID,MOUNTPOINT,PTTYPE 2>/dev/null) || L=
fi
if [ -n "$L" ]; then
  h lsblk; printf '%s\n' "$L"
else
  h sysblock
  for b in /sys/block/*; do
    [ -d "$b" ] || continue
    n=${b##*/}; s=; r=; m=
    [ -r "$b/size" ] && read -r s <"$b/size"
    [ -r "$b/queue/rotational" ] && read -r r <"$b/queue/rotational"
    [ -r "$b/device/model" ] && read -r m <"$b/device/model"
    printf 'disk %s %s %s %s\n' "$n" "${s:-0}" "${r:-0}" "$m"
    for p in "$b/$n"*; do
      [ -r "$p/partition" ] || continue
      pn=; s=; read -r pn <"$p/partition"; [ -r "$p/size" ] && read -r s <"$p/size"
      printf 'part %s %s %s\n' "${p##*/}" "$pn" "${s:-0}"
    done
  done
fi
h by-id; [ -d /dev/disk/by-id ] && ls -l /dev/disk/by-id 2>/dev/null
h disk-drivers
for b in /sys/block/*; do
  [ -e "$b/device" ] || continue
  d=$(readlink -f "$b/device" 2>/dev/null) || continue
  while [ -n "$d" ] && [ "$d" != /sys ] && [ "$d" != / ]; do
    if [ -L "$d/driver" ]; then
      v=$(readlink "$d/driver")
      case "$v" in */bus/pci/drivers/*) printf '%s %s\n' "${b##*/}" "${v##*/}"; break ;; esac
    fi
    d=${d%/*}
  done
done
h dev-links; ls -l /dev/sd* /dev/vd* /dev/xvd* /dev/hd* /dev/nvme* 2>/dev/null
h mounts; cat /proc/mounts 2>/dev/null
exit 0
`

// Script is the POSIX sh program that gathers facts in one round trip. Run it
// as `sh -c SCRIPT` and hand its standard output to Parse.
func Script() string { return script }
