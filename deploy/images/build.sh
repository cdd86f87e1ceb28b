#!/usr/bin/env bash
# Build both images from their Dockerfiles without a Docker engine: buildah, chroot
# isolation, offline (a Debian-made Python base instead of python:3.11-slim, and pip on
# downloaded wheels instead of PyPI). The Dockerfiles are the ones `docker build` runs;
# only their build arguments differ (see the top of either Dockerfile).
#
#   deploy/images/build.sh     tags localhost/timeline/users-service:$IMAGE_TAG and
#                              localhost/timeline/timeline-service:$IMAGE_TAG (dev)
#
# buildah keeps every step's layer (--layers): a build whose inputs did not change takes
# seconds. Logs: $STACK_DIR/images/logs/build-*.log.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh
source "$HERE/common.sh"  # the stack in force (deploy/local/env.sh, lib.sh) and the images' settings

need_root
started=$(date +%s)
base="$(bash "$HERE/base.sh")"
wheels="$(bash "$HERE/wheels.sh")"
mkdir -p "$IMAGES_DIR/logs"

build() {  # IMAGE DOCKERFILE
  local image="$1" dockerfile="$2" name t0 old new
  name="$(basename "${image%:*}")"
  local log="$IMAGES_DIR/logs/build-$name.log"
  t0=$(date +%s)
  old="$(buildah images --noheading --quiet --no-trunc "$image" 2>/dev/null || true)"
  say "building $image from $dockerfile (log $log)"
  # Progress: one line per Dockerfile step; the whole output goes to the log.
  if ! buildah build --isolation chroot --layers --pull=never \
      --build-arg PYTHON_IMAGE="$base" \
      --build-context wheels="$wheels" \
      --build-arg PIP_INSTALL_OPTIONS="--no-index --find-links=/wheels" \
      --iidfile "$IMAGES_DIR/$name.iid" \
      --file "$ROOT/$dockerfile" --tag "$image" "$ROOT" 2>&1 \
      | tee "$log" \
      | { grep -E --line-buffered '^(\[[0-9]+/[0-9]+\] )?STEP [0-9]+/[0-9]+: (FROM|COPY|RUN)' || true; } \
      | cut -c1-150 | sed -u "s/^/    $name: /" >&2; then
    tail -n 40 "$log" >&2
    die "building $image failed (log $log)"
  fi
  new="$(cat "$IMAGES_DIR/$name.iid")"
  # The image this build replaced under the tag: drop it, or each source change would
  # leave a full image behind (its layers stay while a newer image still uses them).
  if [ -n "$old" ] && [ "$old" != "$new" ]; then
    buildah rmi "$old" >/dev/null 2>&1 || true
  fi
  say "built $image (${new#sha256:}) in $(( $(date +%s) - t0 ))s"
}

build "$USERS_IMAGE" users_service/Dockerfile
build "$TIMELINE_IMAGE" timeline_service/Dockerfile
say "both images built in $(( $(date +%s) - started ))s"
