#!/usr/bin/env bash
# The wheels of an offline build: every pin of requirements.txt plus the build backend
# of the project's own packages (their pyproject.toml's build-system requires), for the
# images' platform and Python, not this machine's. The build then runs pip with
# --no-index --find-links on them.
#
#   deploy/images/wheels.sh    download them if they are not cached; print the folder
#
# Cached in $IMAGES_CACHE, keyed by requirements.txt, the build requirement and the
# target, so the same pins are downloaded once per machine.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh
source "$HERE/common.sh"  # the stack in force (deploy/local/env.sh, lib.sh) and the images' settings

PY="$ROOT/.venv/bin/python"
[ -x "$PY" ] || die "no $PY: run make venv"

# The images' Python (the Dockerfiles' python:X.Y-slim) and platform: Debian's glibc is
# new enough for any manylinux wheel up to its own version. Binary wheels only: an
# sdist would need a compiler and its build dependencies in the image.
python_minor="$(sed -n 's/^ARG PYTHON_IMAGE=python:\([0-9]*\.[0-9]*\).*/\1/p' "$ROOT/users_service/Dockerfile")"
[ -n "$python_minor" ] || die "no 'ARG PYTHON_IMAGE=python:X.Y...' in users_service/Dockerfile"
arch="$(uname -m)"
glibc_minor="$(getconf GNU_LIBC_VERSION | sed -n 's/^glibc 2\.\([0-9]*\)$/\1/p')"
[ -n "$glibc_minor" ] || die "cannot tell this machine's glibc version (getconf GNU_LIBC_VERSION)"
# pip takes the platform tags literally: list every manylinux it may use, newest first.
platforms=()
for minor in $(seq "$glibc_minor" -1 17); do platforms+=(--platform "manylinux_2_${minor}_$arch"); done
platforms+=(--platform "manylinux2014_$arch")
abi="cp${python_minor/./}"

# The build backend the three pyproject.toml files ask for (one requirement, the same).
backend="$(sed -n 's/^requires = \["\(.*\)"\]$/\1/p' "$ROOT"/shared_schemas/pyproject.toml \
  "$ROOT"/users_service/pyproject.toml "$ROOT"/timeline_service/pyproject.toml | sort -u)"
if [ -z "$backend" ] || [ "$(printf '%s\n' "$backend" | wc -l)" != 1 ]; then
  die "expected one build requirement in the pyproject.toml files, found: $backend"
fi

key="$({ cat "$ROOT/requirements.txt"; echo "$backend $abi ${platforms[*]}"; } | sha256sum | cut -c1-12)"
dir="$IMAGES_CACHE/wheels-$abi-$arch-$key"
if [ -f "$dir/.complete" ]; then
  say "wheels cached: $dir ($(find "$dir" -name '*.whl' | wc -l) wheels)"
  echo "$dir"
  exit 0
fi

mkdir -p "$IMAGES_CACHE"
tmp="$dir.$$"
trap 'rm -rf "$tmp"' EXIT
say "downloading the wheels of requirements.txt and $backend for CPython $python_minor, $arch"
"$PY" -m pip download --quiet --disable-pip-version-check --dest "$tmp" \
  --only-binary=:all: --implementation cp --python-version "$python_minor" --abi "$abi" "${platforms[@]}" \
  -r "$ROOT/requirements.txt" "$backend" >&2 \
  || die "pip download failed"
touch "$tmp/.complete"
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
say "wheels downloaded: $dir ($(find "$dir" -name '*.whl' | wc -l) wheels, $(du -sh "$dir" | cut -f1))"
echo "$dir"
