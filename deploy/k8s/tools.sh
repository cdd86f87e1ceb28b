#!/usr/bin/env bash
# The one tool deploy/k8s needs on a machine without a cluster: a pinned kustomize,
# built from source with the machine's Go (the Go module proxy serves it; no binary
# is downloaded from anywhere else) into .local/bin/ (ignored by git).
#
# Usage:
#   deploy/k8s/tools.sh kustomize        install if missing (idempotent), print its path
#   deploy/k8s/tools.sh build DIR [...]  kustomize build DIR (installs first if needed)
#   deploy/k8s/tools.sh sync-gateway     copy deploy/nginx/gateway.conf.template and nginx.conf into
#                                        base/gateway/ (kustomize reads no file outside
#                                        its folder; the unit test fails on a stale copy)
#
# The first install takes ~20-60 s (module downloads + compile); afterwards it is a
# version check. tests/unit/test_k8s_manifests.py runs this, so `make test` works on a
# fresh machine. A `kubectl` with built-in kustomize is NOT used here on purpose: its
# embedded kustomize version depends on whatever kubectl the machine happens to have.
set -euo pipefail

KUSTOMIZE_VERSION="v5.8.1"   # sigs.k8s.io/kustomize/kustomize/v5; builds with Go 1.26

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN_DIR="$ROOT/.local/bin"
KUSTOMIZE="$BIN_DIR/kustomize"

have_kustomize() {
  [ -x "$KUSTOMIZE" ] && [ "$("$KUSTOMIZE" version 2>/dev/null)" = "$KUSTOMIZE_VERSION" ]
}

install_kustomize() {
  have_kustomize && return 0
  mkdir -p "$BIN_DIR"
  # Same rule as deploy/local: everything under .local stays out of git.
  [ -f "$ROOT/.local/.gitignore" ] || printf '*\n' >"$ROOT/.local/.gitignore"
  command -v go >/dev/null 2>&1 || {
    echo "tools.sh: Go is needed to build kustomize $KUSTOMIZE_VERSION (none on PATH)" >&2
    return 1
  }
  # One installer at a time (parallel test runs share .local/bin).
  exec 9>"$BIN_DIR/.kustomize.lock"
  flock 9
  have_kustomize && return 0
  echo "tools.sh: building kustomize $KUSTOMIZE_VERSION into $BIN_DIR (once)" >&2
  # GOTOOLCHAIN=local: never fetch another Go toolchain; CGO off: a static binary.
  GOBIN="$BIN_DIR" GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod \
    go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION" >&2
  have_kustomize || { echo "tools.sh: kustomize install failed" >&2; return 1; }
}

case "${1:-}" in
  kustomize)
    install_kustomize
    echo "$KUSTOMIZE"
    ;;
  build)
    shift
    install_kustomize
    exec "$KUSTOMIZE" build "$@"
    ;;
  sync-gateway)
    cp "$ROOT/deploy/nginx/gateway.conf.template" "$ROOT/deploy/k8s/base/gateway/gateway.conf.template"
    cp "$ROOT/deploy/nginx/nginx.conf" "$ROOT/deploy/k8s/base/gateway/nginx.conf"
    ;;
  *)
    echo "usage: $0 kustomize | build DIR | sync-gateway" >&2
    exit 2
    ;;
esac
