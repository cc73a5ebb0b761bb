#!/usr/bin/env bash
# Regenerates the AVIF fixtures in this folder with Debian's avifenc (package libavif-bin, 0.11.1,
# aom encoder). Not run by the tests or CI: the .avif files are committed. The source pattern is the
# one `common::pattern` in ../common/mod.rs computes, so the tests can compare against it.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 - "$tmp" <<'PY'
import struct, sys, zlib
def px(w, h, x, y):
    return (x * 255 // (w - 1), y * 255 // (h - 1), 255 - (x + y) * 255 // (w + h - 2), 255 - x * 191 // (w - 1))
def write(path, w, h, alpha):
    rows = b"".join(b"\0" + b"".join(bytes(px(w, h, x, y) if alpha else px(w, h, x, y)[:3]) for x in range(w)) for y in range(h))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 6 if alpha else 2, 0, 0, 0)
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
out = sys.argv[1]
write(out + "/src_alpha.png", 45, 27, True)
write(out + "/src.png", 45, 27, False)
write(out + "/src_grid.png", 128, 128, False)
PY
q=(--min 0 --max 8 --minalpha 0 --maxalpha 8 -s 6 -j 1)
avifenc "${q[@]}" -y 420 -d 8 --cicp 1/13/1 -r limited "$tmp/src_alpha.png" yuv420_8bit_bt709_limited_alpha.avif
avifenc "${q[@]}" -y 422 -d 10 --cicp 9/14/9 -r full "$tmp/src.png" yuv422_10bit_bt2020_full.avif
avifenc "${q[@]}" -y 444 -d 12 --cicp 1/13/6 -r limited "$tmp/src_alpha.png" yuv444_12bit_bt601_limited_alpha.avif
avifenc "${q[@]}" -y 400 -d 8 --cicp 1/13/6 -r full "$tmp/src.png" yuv400_8bit_full.avif
avifenc "${q[@]}" -y 400 -d 10 --cicp 1/13/6 -r limited "$tmp/src.png" yuv400_10bit_limited.avif
avifenc "${q[@]}" -y 444 -d 8 -p "$tmp/src_alpha.png" premultiplied_alpha.avif
avifenc "${q[@]}" -y 444 -d 8 --cicp 1/13/8 "$tmp/src.png" ycgco_444.avif
avifenc "${q[@]}" -y 444 -d 8 --cicp 1/13/0 "$tmp/src.png" identity_444.avif
avifenc "${q[@]}" -y 420 -d 8 --irot 1 --imir 0 "$tmp/src.png" irot1_imir0.avif
avifenc "${q[@]}" -y 420 -d 8 --irot 3 "$tmp/src.png" irot3.avif
avifenc "${q[@]}" -y 420 -d 8 --imir 1 "$tmp/src.png" imir1.avif
avifenc --min 20 --max 40 -s 8 -j 1 -y 420 -g 2x2 "$tmp/src_grid.png" grid_2x2.avif
