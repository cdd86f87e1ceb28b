#!/usr/bin/env bash
# The Python base image of an offline build: what python:3.11-slim is to the Dockerfiles
# (Debian, python3 of the same minor, venv and pip, `python` on PATH), made with
# debootstrap from Debian's own packages, since the official image (Docker Hub) cannot
# be pulled here. Same Debian release as this machine: its apt sources and keyring are
# the ones that verify the download.
#
#   deploy/images/base.sh      make the image if it is missing; print its name
#
# Cached twice: the image in buildah's store (a second run takes a second), and the root
# file system as a tar in $IMAGES_CACHE (another checkout, or a pruned store, imports it
# in seconds instead of a minute of debootstrap). Both are keyed by the recipe below.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh
source "$HERE/common.sh"  # the stack in force (deploy/local/env.sh, lib.sh) and the images' settings

need_root
ensure_packages buildah=buildah debootstrap=debootstrap

# shellcheck source=/dev/null
release="$(. /etc/os-release && [ "${ID:-}" = debian ] && echo "${VERSION_CODENAME:-}")" \
  || die "not Debian: the base image is debootstrapped from this machine's Debian release"
[ -n "$release" ] || die "no VERSION_CODENAME in /etc/os-release"
# The Python minor of the official image the Dockerfiles name (python:3.11-slim -> 3.11):
# the base must have the same one, or the offline build would test another Python.
python_minor="$(sed -n 's/^ARG PYTHON_IMAGE=python:\([0-9]*\.[0-9]*\).*/\1/p' "$ROOT/users_service/Dockerfile")"
[ -n "$python_minor" ] || die "no 'ARG PYTHON_IMAGE=python:X.Y...' in users_service/Dockerfile"
# The archive this machine's apt installs that release from (its sources and keyring).
if [ -z "${IMAGES_DEBIAN_MIRROR:-}" ]; then
  # shellcheck disable=SC2016  # $(REPO_URI) is apt's placeholder, not the shell's
  IMAGES_DEBIAN_MIRROR="$(apt-get indextargets --format '$(REPO_URI)' "Release: $release" "Identifier: Packages" \
    | sort -u | head -n 1)"
  [ -n "$IMAGES_DEBIAN_MIRROR" ] || die "no apt source for Debian $release here: set IMAGES_DEBIAN_MIRROR"
fi

# What the official slim image has that the images use: python3 with venv (ensurepip),
# CA certificates, /etc/services and friends (netbase), time zones.
packages="python3,python3-venv,ca-certificates,netbase,tzdata"
# Change the trailing number when the steps below change what the image holds.
recipe="debian=$release python=$python_minor packages=$packages steps=1"
key="$(printf '%s' "$recipe" | sha256sum | cut -c1-12)"
image="localhost/timeline/python-base:$python_minor-$release"

if [ "$(image_label "$image" timeline.base.recipe)" = "$key" ]; then
  say "base image $image is there (recipe $key)"
  echo "$image"
  exit 0
fi

mkdir -p "$IMAGES_CACHE" "$IMAGES_DIR/logs"
tarball="$IMAGES_CACHE/python-base-$python_minor-$release-$key.tar"
if [ -s "$tarball" ]; then
  say "base root file system cached: $tarball"
else
  started=$(date +%s)
  rootfs="$IMAGES_CACHE/rootfs.$$"
  # An interrupted debootstrap leaves its root file system behind, perhaps with /proc
  # and /sys still mounted in it: unmount those (never delete through a mount), remove it.
  cleanup_rootfs() {
    local mnt
    awk -v r="$rootfs/" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r \
      | while read -r mnt; do umount -l "$mnt" || true; done
    rm -rf --one-file-system "$rootfs" "$tarball.$$"
  }
  trap cleanup_rootfs EXIT
  log="$IMAGES_DIR/logs/debootstrap.log"
  say "debootstrap $release ($packages) from $IMAGES_DEBIAN_MIRROR: about a minute (log $log)"
  if ! debootstrap --variant=minbase --include="$packages" "$release" "$rootfs" "$IMAGES_DEBIAN_MIRROR" 2>&1 \
      | tee "$log" \
      | { grep -E --line-buffered '^I: (Checking Release|Resolving|Installing core|Base system)' || true; } \
      | sed -u 's/^I: /    debootstrap: /' >&2; then
    tail -n 30 "$log" >&2
    die "debootstrap failed (log $log)"
  fi
  [ -x "$rootfs/usr/bin/python$python_minor" ] \
    || die "Debian $release's python3 is not $python_minor (the Dockerfiles' python:$python_minor-slim)"
  # `python -m venv` as in the official image, whose python lives in /usr/local/bin.
  ln -sf "/usr/bin/python$python_minor" "$rootfs/usr/local/bin/python"
  # Downloaded packages and indexes are of no use in an image; device nodes are the
  # runtime's to make.
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
  tar --numeric-owner --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' \
    -C "$rootfs" -cf "$tarball.$$" .
  mv "$tarball.$$" "$tarball"
  cleanup_rootfs
  trap - EXIT
  say "base root file system made in $(( $(date +%s) - started ))s: $tarball ($(du -h "$tarball" | cut -f1))"
fi

say "importing it as $image"
ctr="$(buildah from scratch)"
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
buildah add "$ctr" "$tarball" / >/dev/null
# The official image's settings that the Dockerfiles rely on: PATH with /usr/local/bin
# first, a UTF-8 locale, python as the default command.
buildah config \
  --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --env LANG=C.UTF-8 \
  --cmd python3 \
  --label timeline.base.recipe="$key" \
  --label org.opencontainers.image.description="Debian $release with python$python_minor and venv (deploy/images/base.sh)" \
  "$ctr"
buildah commit --quiet --rm "$ctr" "$image" >/dev/null
trap - EXIT
say "base image $image made (recipe $key)"
echo "$image"
