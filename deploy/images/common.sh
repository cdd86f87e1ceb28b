# shellcheck shell=bash disable=SC2034  # the variables are for the scripts that source this
# Settings and helpers of deploy/images/ (the images built and run without Docker).
# It brings in deploy/local/env.sh and lib.sh first, so the stack in force (its
# STACK_DIR, ports and connection strings) is the one the images are checked against.
_IMAGES_HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../local/env.sh
source "$_IMAGES_HERE/../local/env.sh"
# shellcheck source=../local/lib.sh
source "$_IMAGES_HERE/../local/lib.sh"

# The two images, by the names docker-compose.yml gives them (buildah spells a name
# without a registry as localhost/NAME).
: "${IMAGE_TAG:=dev}"; export IMAGE_TAG
USERS_IMAGE="localhost/timeline/users-service:$IMAGE_TAG"
TIMELINE_IMAGE="localhost/timeline/timeline-service:$IMAGE_TAG"

# What lasts between runs and between checkouts: the base image's root file system and
# the wheels, keyed by what they are made from, so neither is fetched twice. /var/tmp
# survives a reboot; a fresh machine starts with an empty one and fills it.
: "${IMAGES_CACHE:=/var/tmp/timeline-images}"; export IMAGES_CACHE
# This stack's build and check logs, image ids and the check's pid files.
IMAGES_DIR="$STACK_DIR/images"

# The check's own ports: beside both local stacks' (env.sh, test-env.sh), below 32768.
: "${IMAGES_USERS_API_PORT:=28001}"; export IMAGES_USERS_API_PORT
: "${IMAGES_TIMELINE_API_PORT:=28002}"; export IMAGES_TIMELINE_API_PORT
: "${IMAGES_RELAY_METRICS_PORT:=29101}"; export IMAGES_RELAY_METRICS_PORT
: "${IMAGES_WORKER_METRICS_PORT:=29111}"; export IMAGES_WORKER_METRICS_PORT

# Progress lines say where they come from (lib.sh's helpers print through this too).
say() {
  printf '%s [images] %s\n' "$(date '+%H:%M:%S')" "$*" >&2
}

# buildah builds and runs with chroot isolation: it needs root, but no container
# runtime, no daemon and no network namespace of its own (this kind of machine can give
# a container runtime none of its limits: `podman run` fails on setrlimit).
need_root() {
  [ "$(id -u)" = 0 ] || die "buildah (chroot isolation) and debootstrap need root"
}

# ensure_packages CMD=PACKAGE...: apt-get install the package of each missing command.
ensure_packages() {
  local pair missing=()
  for pair in "$@"; do
    command -v "${pair%%=*}" >/dev/null 2>&1 || missing+=("${pair#*=}")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  need_root
  local apt_opts=(-o DPkg::Lock::Timeout=300 -o Acquire::Retries=3)
  say "apt-get install ${missing[*]}"
  apt-get "${apt_opts[@]}" update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y -q "${missing[@]}" >/dev/null
}

# image_label IMAGE NAME: a label of a local image, empty if the image is not there.
image_label() {
  buildah inspect --type image --format "{{index .OCIv1.Config.Labels \"$2\"}}" "$1" 2>/dev/null || true
}
