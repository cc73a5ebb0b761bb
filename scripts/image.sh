#!/usr/bin/env bash
# The runtime container image. It needs no base image: FROM scratch, holding the stripped
# `compressor` binary, exactly the shared libraries it links (glibc, libgcc_s, libdav1d, libheif
# with the codecs Debian's 1.15 links into it: libde265, libx265, libaom; it loads no plugins, so
# nothing is dlopen'ed that ldd would not name; a static
# build is not possible with this toolchain, which has no musl target, and glibc itself is not
# meant to be linked statically), the CA certificates for object stores, and passwd/group entries
# for the numeric user 10001. No shell, no package manager, nothing else. It runs the image
# service (COMPRESSOR_SERVICES=images).
#
# The video image (`build-video`) adds the host's ffmpeg and ffprobe with every library they
# link (Debian's ffmpeg links about 210, some 240 MB: the price of its codecs; it is a separate
# image so that image instances stay small) and runs both services.
#
#   scripts/image.sh build [BINARY]       build the image with podman (or docker), tag it
#                                         $IMAGE (default localhost/compressor:latest), print its sizes
#   scripts/image.sh build-video [BINARY] the same with ffmpeg; $IMAGE defaults to
#                                         localhost/compressor-video:latest
#   scripts/image.sh rootfs DIR [BINARY]  only assemble the image's filesystem in DIR/rootfs
#                                         (the Dockerfile's build stage runs this too; VIDEO=1 adds ffmpeg)
#
# BINARY defaults to target/release/compressor (build it first: cargo build --release).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Copies every shared object the dynamic loader resolves for an executable into the root, at the
# path it loads it from (plus the loader itself, named by the binary's PT_INTERP).
copy_libraries() {
  local out="$1" executable="$2" libs
  libs=$(ldd "$executable" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
  [[ -n "$libs" ]] || { echo "image.sh: ldd found no libraries for $executable" >&2; exit 1; }
  for lib in $libs; do
    [[ -e "$out$lib" ]] && continue
    mkdir -p "$out$(dirname "$lib")"
    cp -L "$lib" "$out$lib"
  done
}

rootfs() {
  local out="$1/rootfs" binary="$2" video="${3:-0}"
  [[ -x "$binary" ]] || { echo "image.sh: no executable at $binary (cargo build --release first)" >&2; exit 1; }
  rm -rf "$out"
  mkdir -p "$out/usr/local/bin" "$out/etc/ssl/certs" "$out/tmp"
  chmod 1777 "$out/tmp"
  # Line tables and symbols are 3/4 of the release binary; the image does not need them.
  strip --strip-all -o "$out/usr/local/bin/compressor" "$binary"
  copy_libraries "$out" "$binary"
  if [[ "$video" == 1 ]]; then
    local tool
    mkdir -p "$out/usr/bin"
    for tool in ffmpeg ffprobe; do
      command -v "$tool" >/dev/null || { echo "image.sh: $tool is not installed (Debian package ffmpeg)" >&2; exit 1; }
      cp -L "$(command -v "$tool")" "$out/usr/bin/$tool"
      copy_libraries "$out" "$(command -v "$tool")"
    done
  fi
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
  local binary="$1" video="$2" image="$3" tool context services=images
  [[ "$video" == 1 ]] && services=images,video
  tool=$(container_tool)
  context=$(mktemp -d)
  trap "rm -rf '$context'" EXIT
  rootfs "$context" "$binary" "$video"
  local format=()
  # podman's default OCI format has no HEALTHCHECK; the Docker format keeps it.
  [[ "$tool" == podman ]] && format=(--format docker)
  "$tool" build "${format[@]}" --build-arg ROOTFS=local --build-arg SERVICES="$services" -f "$repo/Dockerfile" -t "$image" "$context" >&2
  local bytes gzipped
  bytes=$("$tool" image inspect --format '{{.Size}}' "$image")
  gzipped=$("$tool" save "$image" | gzip -9 | wc -c)
  mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
  echo "$image: $(mib "$bytes") MiB uncompressed ($bytes bytes), $(mib "$gzipped") MiB as $tool save | gzip -9 ($gzipped bytes)"
}

case "${1:-}" in
  build) build "${2:-$repo/target/release/compressor}" 0 "${IMAGE:-localhost/compressor:latest}" ;;
  build-video) build "${2:-$repo/target/release/compressor}" 1 "${IMAGE:-localhost/compressor-video:latest}" ;;
  rootfs)
    [[ -n "${2:-}" ]] || { echo "usage: scripts/image.sh rootfs DIR [BINARY]" >&2; exit 2; }
    mkdir -p "$2"
    rootfs "$2" "${3:-$repo/target/release/compressor}" "${VIDEO:-0}"
    ;;
  *)
    echo "usage: scripts/image.sh build|build-video [BINARY] | scripts/image.sh rootfs DIR [BINARY]" >&2
    exit 2
    ;;
esac
