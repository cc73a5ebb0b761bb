#!/usr/bin/env bash
# The runtime container image. It needs no base image: FROM scratch, holding the stripped
# `compressor` binary, exactly the shared libraries it links (glibc, libgcc_s, libdav1d; a static
# build is not possible with this toolchain, which has no musl target, and glibc itself is not
# meant to be linked statically), the CA certificates for object stores, and passwd/group entries
# for the numeric user 10001. No shell, no package manager, nothing else.
#
#   scripts/image.sh build [BINARY]      build the image with podman (or docker), tag it
#                                        $IMAGE (default localhost/compressor:latest), print its sizes
#   scripts/image.sh rootfs DIR [BINARY] only assemble the image's filesystem in DIR/rootfs
#                                        (the Dockerfile's build stage runs this too)
#
# BINARY defaults to target/release/compressor (build it first: cargo build --release).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
image="${IMAGE:-localhost/compressor:latest}"

rootfs() {
  local out="$1/rootfs" binary="$2"
  [[ -x "$binary" ]] || { echo "image.sh: no executable at $binary (cargo build --release first)" >&2; exit 1; }
  rm -rf "$out"
  mkdir -p "$out/usr/local/bin" "$out/etc/ssl/certs" "$out/tmp"
  chmod 1777 "$out/tmp"
  # Line tables and symbols are 3/4 of the release binary; the image does not need them.
  strip --strip-all -o "$out/usr/local/bin/compressor" "$binary"
  # Every shared object the dynamic loader resolves for the binary, at the path it loads it from
  # (plus the loader itself, named by the binary's PT_INTERP).
  local libs
  libs=$(ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
  [[ -n "$libs" ]] || { echo "image.sh: ldd found no libraries for $binary" >&2; exit 1; }
  for lib in $libs; do
    mkdir -p "$out$(dirname "$lib")"
    cp -L "$lib" "$out$lib"
  done
  cp -L /etc/ssl/certs/ca-certificates.crt "$out/etc/ssl/certs/ca-certificates.crt"
  printf 'root:x:0:0:root:/nonexistent:/nonexistent\ncompressor:x:10001:10001:compressor:/nonexistent:/nonexistent\n' >"$out/etc/passwd"
  printf 'root:x:0:\ncompressor:x:10001:\n' >"$out/etc/group"
}

container_tool() {
  if command -v podman >/dev/null 2>&1; then echo podman; elif command -v docker >/dev/null 2>&1; then echo docker; else
    echo "image.sh: neither podman nor docker is installed" >&2
    exit 1
  fi
}

build() {
  local binary="$1" tool context
  tool=$(container_tool)
  context=$(mktemp -d)
  trap "rm -rf '$context'" EXIT
  rootfs "$context" "$binary"
  local format=()
  # podman's default OCI format has no HEALTHCHECK; the Docker format keeps it.
  [[ "$tool" == podman ]] && format=(--format docker)
  "$tool" build "${format[@]}" --build-arg ROOTFS=local -f "$repo/Dockerfile" -t "$image" "$context" >&2
  local bytes gzipped
  bytes=$("$tool" image inspect --format '{{.Size}}' "$image")
  gzipped=$("$tool" save "$image" | gzip -9 | wc -c)
  mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
  echo "$image: $(mib "$bytes") MiB uncompressed ($bytes bytes), $(mib "$gzipped") MiB as $tool save | gzip -9 ($gzipped bytes)"
}

case "${1:-}" in
  build) build "${2:-$repo/target/release/compressor}" ;;
  rootfs)
    [[ -n "${2:-}" ]] || { echo "usage: scripts/image.sh rootfs DIR [BINARY]" >&2; exit 2; }
    mkdir -p "$2"
    rootfs "$2" "${3:-$repo/target/release/compressor}"
    ;;
  *)
    echo "usage: scripts/image.sh build [BINARY] | scripts/image.sh rootfs DIR [BINARY]" >&2
    exit 2
    ;;
esac
