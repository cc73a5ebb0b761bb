#!/usr/bin/env bash
# Installs the peer tools that `compressor bench` compares against (run as root on Debian).
# Idempotent: what is already installed is skipped. Tools that cannot be installed are reported
# by the benchmark as skipped, so a partial install still gives a (partial) benchmark.
#
#   scripts/install-bench-tools.sh                # the peers of every category (what CI runs)
#   scripts/install-bench-tools.sh --rust-peers   # also caesiumclt and rimage (rd-* categories)
#
# `--rust-peers` (or BENCH_RUST_PEERS=1) adds the two crates.io image optimisers of the
# rate–distortion categories, built with `cargo install --locked` as a user would: each compiles
# its C codecs (mozjpeg, libwebp, ...) and takes 5-15 minutes, which is why it is not the default.
# rimage is built with its default codecs; where its AVIF codec cannot be built (dav1d-sys needs
# libdav1d >= 1.3, and Debian bookworm has 1.0), it is built without it and the benchmark skips
# rimage in rd-avif.
set -euo pipefail

rust_peers="${BENCH_RUST_PEERS:-0}"
for arg in "$@"; do
  case "$arg" in
    --rust-peers) rust_peers=1 ;;
    *) echo "install-bench-tools: unknown argument $arg (only --rust-peers)" >&2; exit 2 ;;
  esac
done

packages=(
  pngquant              # lossy PNG (what the old Go server shelled out to)
  optipng               # lossless PNG
  libjpeg-turbo-progs   # jpegtran, cjpeg, djpeg
  webp                  # cwebp
  golang-go             # builds bench/go-png, the old server's lossless re-encode
  libavif-bin           # avifenc (may be missing on older releases; then AVIF is skipped)
  libvips-tools         # vipsthumbnail (resize peer) and vips (the reference downscales the resize scores use)
  gifsicle              # animated GIF peer (gifsicle -O3) of the gif-mp4 video category
)
# node runs sharp (bench/sharp); a machine that already has node (with its npm) keeps it.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  packages+=(nodejs npm)
fi

export DEBIAN_FRONTEND=noninteractive
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  apt-get update -qq
  available=()
  for p in "${missing[@]}"; do
    if apt-cache show "$p" >/dev/null 2>&1; then available+=("$p"); else echo "install-bench-tools: no Debian package $p; skipping" >&2; fi
  done
  if ((${#available[@]})); then
    apt-get install -y -qq --no-install-recommends "${available[@]}"
  fi
fi

# oxipng: not packaged in Debian bookworm; built from crates.io (takes a few minutes), from the
# home folder so that this project's .cargo/config.toml (target-cpu=x86-64-v3) does not apply: the
# peer is measured as `cargo install oxipng` gives it to anyone.
if ! command -v oxipng >/dev/null 2>&1; then
  (cd "$HOME" && cargo install oxipng --locked)
fi

# The Go-style lossless re-encoder (image/png at BestCompression), built next to its source.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if command -v go >/dev/null 2>&1; then
  (cd "$root/bench/go-png" && GOFLAGS=-mod=mod GO111MODULE=on CGO_ENABLED=0 go build -o go-png .)
  echo "install-bench-tools: built $root/bench/go-png/go-png"
fi

# sharp (libvips, with its own prebuilt libvips from the npm registry) at the version
# bench/sharp/package-lock.json pins; `npm ci` only when what is installed differs from the lock.
sharp_dir="$root/bench/sharp"
if command -v npm >/dev/null 2>&1; then
  if ! (cd "$sharp_dir" && node -e "require('sharp')" >/dev/null 2>&1 && npm ls --depth=0 >/dev/null 2>&1); then
    (cd "$sharp_dir" && npm ci --no-audit --no-fund --loglevel=error) ||
      echo "install-bench-tools: npm ci in $sharp_dir failed; the benchmark will skip sharp" >&2
  fi
fi


# caesiumclt and rimage, only when asked (see the top). From the home folder, like oxipng.
if [ "$rust_peers" = 1 ]; then
  if ! command -v caesiumclt >/dev/null 2>&1; then
    (cd "$HOME" && cargo install --locked caesiumclt)
  fi
  if ! command -v rimage >/dev/null 2>&1; then
    # The binary needs the `build-binary` feature; the fallback drops `avif` (dav1d) and `svg`.
    (cd "$HOME" && cargo install --locked rimage --features build-binary) ||
      (cd "$HOME" && cargo install --locked rimage --no-default-features \
        --features build-binary,resize,quantization,mozjpeg,oxipng,webp,tiff,threads,metadata)
  fi
fi
