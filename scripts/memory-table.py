#!/usr/bin/env python3
"""The memory budget's estimate against the real peak RSS, for each path of the engine.

Makes inputs of a few sizes from corpus images (with libvips and the compressor itself), runs
`compressor compress` on each path as a child and reads its peak RSS from wait4, asks
`compressor inspect --json` for the estimate the budget admits by, and prints a Markdown table.
The estimate must stay above the measured peak (ratio > 1) for the budget to keep its promise.

    scripts/memory-table.py [--binary target/release/compressor] [--sizes 1.5,6,24]
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

CORPUS = os.environ.get("COMPRESSOR_CORPUS", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "corpus"))
PHOTO = os.path.join(CORPUS, "photos_jpeg", "image-rs__examples_scaledown_test.jpg")  # 4032x3024
SHOT = os.path.join(CORPUS, "png_real", "screenshot", "rich__features.png")  # 1988x2228 RGBA

# (name, input kind, compress arguments)
PATHS = [
    ("PNG lossy (screenshot)", "shot.png", []),
    ("PNG lossy (photo)", "photo.png", []),
    ("PNG lossless (photo)", "photo.png", ["-m", "lossless"]),
    ("JPEG lossy", "photo.jpg", []),
    ("JPEG lossless", "photo.jpg", ["-m", "lossless"]),
    ("JPEG to WebP", "photo.jpg", ["-f", "webp"]),
    ("WebP lossy", "photo.webp", []),
    ("JPEG to AVIF", "photo.jpg", ["-f", "avif"]),
    ("AVIF lossy", "photo.avif", []),
    ("GIF lossy", "shot.gif", []),
    ("GIF lossless", "shot.gif", ["-m", "lossless"]),
    ("JPEG auto", "photo.jpg", ["-f", "auto"]),
    ("JPEG lossy + score", "photo.jpg", ["--score"]),
]


def run(cmd):
    """Runs cmd, returns (exit status, peak RSS in bytes)."""
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    err = child.stderr.read().decode(errors="replace")
    child.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.stderr.write(f"{' '.join(cmd)}: exit {code}\n{err}\n")
    return code, usage.ru_maxrss * 1024


def make_inputs(binary, folder, megapixels):
    made = {}
    for kind, source, (w, h) in (("photo", PHOTO, (4032, 3024)), ("shot", SHOT, (1988, 2228))):
        scale = math.sqrt(megapixels * 1e6 / (w * h))
        kernel = [] if kind == "photo" else ["--kernel", "nearest"]
        png = os.path.join(folder, f"{kind}.png")
        subprocess.run(["vips", "resize", source, png, str(scale), *kernel], check=True)
        made[f"{kind}.png"] = png
    for name, target in (("photo.jpg", "[Q=90]"), ("photo.webp", "[Q=85]")):
        made[name] = os.path.join(folder, name)
        subprocess.run(["vips", "copy", made["photo.png"], made[name] + target], check=True)
    made["shot.gif"] = os.path.join(folder, "shot.gif")
    subprocess.run(["vips", "copy", made["shot.png"], made["shot.gif"]], check=True)
    made["photo.avif"] = os.path.join(folder, "photo.avif")
    subprocess.run([binary, "compress", made["photo.jpg"], "-f", "avif", "-o", made["photo.avif"]], check=True, stderr=subprocess.DEVNULL)
    return made


def estimate(binary, path, args):
    out = subprocess.run([binary, "inspect", "--json", path, *args], check=True, capture_output=True, text=True).stdout
    return json.loads(out)["memory_estimate_bytes"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=os.path.join(os.path.dirname(__file__), "..", "target", "release", "compressor"))
    parser.add_argument("--sizes", default="1.5,6,24", help="megapixels, comma-separated")
    parser.add_argument("--paths", default="", help="only paths whose name contains this")
    opts = parser.parse_args()
    baseline = run([opts.binary, "--version"])[1]
    print(f"process baseline (compressor --version): {baseline / 2**20:.0f} MiB\n")
    print("| path | MP | peak RSS MiB | RSS − baseline MiB | estimate MiB | estimate / (RSS − baseline) |")
    print("|---|---:|---:|---:|---:|---:|")
    worst = math.inf
    for mp in [float(s) for s in opts.sizes.split(",")]:
        with tempfile.TemporaryDirectory() as folder:
            inputs = make_inputs(opts.binary, folder, mp)
            for name, kind, args in PATHS:
                if opts.paths and opts.paths not in name:
                    continue
                code, rss = run([opts.binary, "compress", inputs[kind], *args, "-o", os.path.join(folder, "out.bin")])
                if code != 0:
                    continue
                est = estimate(opts.binary, inputs[kind], args)
                used = max(rss - baseline, 1)
                worst = min(worst, est / used)
                print(f"| {name} | {mp:g} | {rss / 2**20:.0f} | {used / 2**20:.0f} | {est / 2**20:.0f} | {est / used:.2f} |", flush=True)
    print(f"\nlowest estimate / measured: {worst:.2f}")


if __name__ == "__main__":
    main()
