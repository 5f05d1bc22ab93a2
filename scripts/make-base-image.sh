#!/usr/bin/env bash
# Make the container base image debian:bookworm-slim available locally.
#
# When a registry answers, the image is pulled. On an air-gapped machine it
# is built with `debootstrap --variant=minbase bookworm` from the Debian
# mirror this machine's apt uses (/etc/apt/sources.list and
# /etc/apt/sources.list.d/), trimmed the way Debian's slim images are (no
# documentation, man pages, info pages, locales other than C, apt caches or
# package lists), and imported under the name debian:bookworm-slim, so the
# Dockerfile stays standard. Does nothing when the image already exists.
#
# Usage: scripts/make-base-image.sh [--force] [--no-pull] [--tool docker|podman]
#   --force    rebuild even when the image exists
#   --no-pull  do not try the registry; build with debootstrap straight away
#   --tool T   container tool to use (default: docker when a Docker engine
#              answers `docker info`, else podman)
# Environment:
#   DW_DEBIAN_MIRROR           mirror for bookworm and bookworm-updates
#   DW_DEBIAN_SECURITY_MIRROR  mirror for bookworm-security
#   (both default to what apt on this machine is configured with)
# Needs root (debootstrap) and the packages debootstrap and podman (or a
# Docker engine); scripts/install-deps.sh --docker installs them.
set -euo pipefail

image=docker.io/library/debian:bookworm-slim
suite=bookworm
force=0
pull=1
tool=""

while [ $# -gt 0 ]; do
  case "$1" in
    --force) force=1 ;;
    --no-pull) pull=0 ;;
    --tool) tool="${2:?--tool needs docker or podman}"; shift ;;
    -h|--help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "make-base-image: unknown option '$1'" >&2; exit 2 ;;
  esac
  shift
done

say() { echo "make-base-image: $*"; }
die() { echo "make-base-image: $*" >&2; exit 1; }

if [ -z "$tool" ]; then
  if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    tool=docker
  elif command -v podman >/dev/null 2>&1; then
    tool=podman
  else
    die "neither a Docker engine nor podman is available (scripts/install-deps.sh --docker installs podman)"
  fi
fi

if [ "$force" = 0 ] && "$tool" image inspect "$image" >/dev/null 2>&1; then
  say "$image already present ($tool), nothing to do"
  exit 0
fi

if [ "$pull" = 1 ]; then
  say "trying to pull $image"
  if timeout 120 "$tool" pull "$image" >/dev/null 2>&1; then
    say "pulled $image"
    exit 0
  fi
  say "cannot pull $image; building it locally with debootstrap"
fi

[ "$(id -u)" -eq 0 ] || die "debootstrap needs root; run this script as root"
command -v debootstrap >/dev/null 2>&1 ||
  die "debootstrap is not installed (scripts/install-deps.sh --docker installs it)"

# --- Which mirror does apt on this machine use? -----------------------------
# Prints "URI SUITE" for every enabled deb entry, from one-line .list files
# and deb822 .sources files alike.
apt_entries() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk '
      /^[[:space:]]*deb[[:space:]]/ {
        sub(/#.*/, "")
        n = 0
        for (i = 2; i <= NF; i++) {
          if ($i ~ /^\[/) { while ($i !~ /\]$/ && i < NF) i++; continue }
          w[++n] = $i
        }
        if (n >= 2) print w[1], w[2]
      }' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk '
      function flush() {
        if (types ~ /(^|[[:space:]])deb($|[[:space:]])/ && enabled !~ /^(no|false|0)$/) {
          nu = split(uris, u, /[[:space:]]+/); ns = split(suites, s, /[[:space:]]+/)
          for (i = 1; i <= nu; i++) for (j = 1; j <= ns; j++)
            if (u[i] != "" && s[j] != "") print u[i], s[j]
        }
        types = uris = suites = enabled = ""
      }
      /^[[:space:]]*#/ { next }
      /^[[:space:]]*$/ { flush(); next }
      tolower($1) == "types:"   { $1 = ""; types = $0 }
      tolower($1) == "uris:"    { $1 = ""; uris = $0 }
      tolower($1) == "suites:"  { $1 = ""; suites = $0 }
      tolower($1) == "enabled:" { enabled = tolower($2) }
      END { flush() }' "$f"
  done
}

entries="$(apt_entries)"
mirror_for() { # SUITE-PATTERN: first URI whose suite matches
  awk -v pat="$1" '$2 ~ pat { sub(/\/+$/, "", $1); print $1; exit }' <<<"$entries"
}
mirror="${DW_DEBIAN_MIRROR:-$(mirror_for "^${suite}\$")}"
# A host on another Debian release still names its mirror: take its main suite.
[ -n "$mirror" ] || mirror="$(mirror_for '^[a-z]+$')"
security="${DW_DEBIAN_SECURITY_MIRROR:-$(mirror_for '-security$')}"
if [ -z "$mirror" ]; then
  mirror=http://deb.debian.org/debian
  say "no Debian mirror found in /etc/apt; using $mirror (set DW_DEBIAN_MIRROR to change)"
fi
say "mirror: $mirror${security:+, security: $security}"

# apt settings of this machine that the image's apt needs to reach the same
# mirror the same way (a proxy, or a snapshot mirror whose Release files
# have expired).
apt_settings=""
if command -v apt-config >/dev/null 2>&1; then
  apt_settings="$(apt-config dump 2>/dev/null | awk '
    $1 == "Acquire::http::Proxy" || $1 == "Acquire::https::Proxy" ||
    $1 == "Acquire::Check-Valid-Until" || $1 == "Acquire::Check-Date"' || true)"
fi

# --- Build the root file system --------------------------------------------
work="$(mktemp -d /var/tmp/devwire-base.XXXXXX)"
rootfs="$work/rootfs"
cleanup() {
  # debootstrap mounts /proc, /sys and sometimes /dev inside the target:
  # unmount anything left there before deleting, deepest first.
  awk -v r="$rootfs" '$2 == r || index($2, r "/") == 1 { print $2 }' /proc/mounts |
    sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT

keyring=()
[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] &&
  keyring=(--keyring=/usr/share/keyrings/debian-archive-keyring.gpg)

say "debootstrap --variant=minbase $suite from $mirror (a few minutes)"
if ! debootstrap --variant=minbase "${keyring[@]}" "$suite" "$rootfs" "$mirror" \
     >"$work/debootstrap.log" 2>&1; then
  tail -n 30 "$work/debootstrap.log" >&2
  [ -f "$rootfs/debootstrap/debootstrap.log" ] && tail -n 30 "$rootfs/debootstrap/debootstrap.log" >&2
  die "debootstrap failed (log above)"
fi

# --- Trim it the way Debian's slim images are ------------------------------
say "trimming to a slim image"
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
# This is the "slim" variant of the Debian base image.
# Files that are normally unnecessary in containers are excluded, and this
# configuration keeps them excluded for packages installed later.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
EOF
find "$rootfs/usr/share/doc" -mindepth 1 -not -type d -not -name copyright -delete
find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
for d in groff info linda lintian/overrides locale man; do
  [ -d "$rootfs/usr/share/$d" ] && find "$rootfs/usr/share/$d" -mindepth 1 -delete
done
# Locales: only C (C.utf8 is part of libc).
if [ -d "$rootfs/usr/lib/locale" ]; then
  find "$rootfs/usr/lib/locale" -mindepth 1 -maxdepth 1 -not -name 'C.*' -exec rm -rf {} +
fi

# The apt and dpkg settings Debian's container images carry.
cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
// Keep no package caches in image layers.
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
cat >"$rootfs/etc/apt/apt.conf.d/docker-autoremove-suggests" <<'EOF'
Apt::AutoRemove::SuggestsImportant "false";
EOF
cat >"$rootfs/etc/apt/apt.conf.d/docker-gzip-indexes" <<'EOF'
Acquire::GzipIndexes "true";
EOF
cat >"$rootfs/etc/apt/apt.conf.d/docker-no-languages" <<'EOF'
Acquire::Languages "none";
EOF
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-apt-speedup" <<'EOF'
force-unsafe-io
EOF
printf '#!/bin/sh\n# No services start inside image builds.\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
chmod 755 "$rootfs/usr/sbin/policy-rc.d"

# apt in the image reaches the mirror this machine uses.
rm -f "$rootfs/etc/apt/sources.list"
{
  printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\n' "$mirror" "$suite" "$suite"
  printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
  if [ -n "$security" ]; then
    printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\n' "$security" "$suite"
    printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
  fi
} >"$rootfs/etc/apt/sources.list.d/debian.sources"
if [ -n "$apt_settings" ]; then
  { echo "// Settings of the machine this image was built on, to reach its mirror."
    printf '%s\n' "$apt_settings"; } >"$rootfs/etc/apt/apt.conf.d/90mirror"
fi

# No caches, lists, logs or host identity in the image.
rm -rf "$rootfs/debootstrap"
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
mkdir -p "$rootfs/var/lib/apt/lists/partial"
rm -f "$rootfs"/var/cache/debconf/*-old "$rootfs"/var/lib/dpkg/*-old
find "$rootfs/var/log" -type f -delete
rm -rf "$rootfs"/tmp/* "$rootfs"/var/tmp/* "$rootfs"/root/.cache
: >"$rootfs/etc/machine-id"
rm -f "$rootfs/var/lib/dbus/machine-id"
: >"$rootfs/etc/resolv.conf"
echo localhost >"$rootfs/etc/hostname"

# --- Import ------------------------------------------------------------------
say "importing as $image"
if ! tar -C "$rootfs" --numeric-owner --xattrs -cf - . |
     "$tool" import --change 'CMD ["bash"]' - "$image" >"$work/import.log" 2>&1; then
  cat "$work/import.log" >&2
  die "import into $tool failed"
fi
size="$("$tool" image inspect --format '{{.Size}}' "$image")"
say "made $image ($((size / 1000000)) MB)"
