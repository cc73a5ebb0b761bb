#!/usr/bin/env python3
"""The old server's own requests, on this machine, in one run: `compressor serve` against the work
the old Go server did per request, `pngquant --quality=60-80` as a subprocess.

  service: POST /compress-image (multipart `image_files`, as its clients send it) from the built-in
           load runner, CONCURRENCY clients for DURATION, then one client; POST /v1/compress
           (default options: no score) at one client.
  peer:    pngquant --quality=60-80 on the same images, CONCURRENCY processes at a time (the old
           server started one per request, with pngquant's default threads), then one at a time.

Prints throughput and latency side by side, the ratios, and the speed issue's service goals as
MET or MISSED. It reports; it does not fail on a missed goal (exit 1 only when something broke).

Usage: scripts/loadtest-compare.py [--concurrency 16] [--duration 30s] [--runs 3]
                                   [--compressor target/release/compressor] [IMAGE.png ...]
Without images: the PNGs of 1 MP or more under $COMPRESSOR_CORPUS/png_real (default
../shared/corpus), screenshots and photos.
"""

import argparse
import concurrent.futures
import json
import math
import os
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import loopback

ROOT = Path(__file__).resolve().parent.parent


def pixels(path):
    with open(path, "rb") as f:
        head = f.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        return 0
    width, height = struct.unpack(">II", head[16:24])
    return width * height


def default_images():
    corpus = Path(os.environ.get("COMPRESSOR_CORPUS", ROOT.parent / "shared" / "corpus"))
    found = []
    for kind in ("screenshot", "photo"):
        found += sorted(p for p in (corpus / "png_real" / kind).rglob("*.png") if pixels(p) >= 1_000_000)
    return found


def percentile(values, q):
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def loadtest(compressor, url, route, images, concurrency, duration, max_requests=None):
    """Runs `compressor loadtest`; returns its JSON summary."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run.json"
        cmd = [compressor, "loadtest", "--url", url, "--route", route, "--concurrency", str(concurrency),
               "--duration", duration, "--json", str(out), "--max-error-rate", "0"]
        if max_requests:
            cmd += ["--max-requests", str(max_requests)]
        for image in images:
            cmd += ["--image", str(image)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if not out.exists():
            sys.exit(f"loadtest failed: {done.stderr}")
        report = json.loads(out.read_text())
        summary = report["summary"]
        if summary["errors"]:
            sys.exit(f"loadtest saw {summary['errors']} failed requests: {summary['status_counts']}")
        # Latencies per image (an upload is known by its size; the multipart overhead is constant).
        summary["by_size"] = {}
        for sample in report["samples"]:
            summary["by_size"].setdefault(sample["bytes_sent"], []).append(sample["latency_ms"])
        return summary


def per_image(summary, images):
    """Each image's latencies in a one-client run, in the order of `images`."""
    by_size = summary["by_size"]
    return [by_size.get(os.path.getsize(image), []) for image in images]


def geomean(values):
    return math.exp(sum(math.log(v) for v in values) / len(values))


def pngquant_once(image):
    """One pngquant run as the old server made it; its wall time in ms."""
    with open(image, "rb") as stdin:
        start = time.perf_counter()
        done = subprocess.run(["pngquant", "--quality=60-80", "-"], stdin=stdin, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
        elapsed = (time.perf_counter() - start) * 1000
    if done.returncode not in (0, 99):  # 99: quality not reachable, the old server kept the input
        sys.exit(f"pngquant failed on {image}: {done.stderr.decode(errors='replace')}")
    return elapsed


def pngquant_concurrent(images, concurrency, seconds):
    """Runs the images round-robin, `concurrency` processes at a time, for about `seconds`
    (whole rounds over the image list); images per second."""
    start = time.perf_counter()
    done = 0
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        while True:
            batch = [images[(done + i) % len(images)] for i in range(max(concurrency, len(images)))]
            list(pool.map(pngquant_once, batch))
            done += len(batch)
            if time.perf_counter() - start >= seconds:
                break
    return done / (time.perf_counter() - start), done


def seconds(duration):
    units = {"ms": 0.001, "s": 1, "m": 60}
    for unit in ("ms", "s", "m"):
        if duration.endswith(unit) and duration[: -len(unit)].replace(".", "", 1).isdigit():
            return float(duration[: -len(unit)]) * units[unit]
    sys.exit(f"duration {duration!r} is not like 30s, 2m or 500ms")


def verdict(ok):
    return "MET" if ok else "MISSED"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", nargs="*", type=Path)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--duration", default="30s", help="per service measurement (and about that long for pngquant)")
    parser.add_argument("--runs", type=int, default=3, help="sequential pngquant runs per image")
    parser.add_argument("--compressor", default=str(ROOT / "target" / "release" / "compressor"))
    args = parser.parse_args()
    images = args.images or default_images()
    if not images:
        sys.exit("no images: pass some, or set COMPRESSOR_CORPUS")

    with loopback.serve(args.compressor) as server:
        url = server.url
        workers = os.environ.get("COMPRESSOR_WORKERS", os.cpu_count())
        print(f"{len(images)} images, {sum(pixels(i) for i in images) / len(images) / 1e6:.1f} MP on average; "
              f"{os.cpu_count()} CPUs; service workers {workers}; {args.concurrency} clients / processes")
        # Warm-up: every image once, not counted.
        loadtest(args.compressor, url, "legacy", images, 1, "10m", max_requests=len(images))
        many = loadtest(args.compressor, url, "legacy", images, args.concurrency, args.duration)
        one = loadtest(args.compressor, url, "legacy", images, 1, args.duration)
        v1 = loadtest(args.compressor, url, "v1", images, 1, args.duration)

    peer_rate, peer_runs = pngquant_concurrent(images, args.concurrency, seconds(args.duration))
    single = [[pngquant_once(image) for _ in range(args.runs)] for image in images]

    # Latency is compared image by image (medians), then summarised over the images.
    legacy, modern = per_image(one, images), per_image(v1, images)
    measured = [i for i in range(len(images)) if legacy[i] and modern[i]]
    if not measured:
        sys.exit("no image was sent in the one-client runs: raise --duration")
    print(f"\n| image | MP | legacy p50 ms | v1 p50 ms | pngquant p50 ms | legacy/pngquant | legacy p99/p50 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for i in measured:
        mine, theirs = percentile(legacy[i], 50), percentile(single[i], 50)
        print(f"| {images[i].name} | {pixels(images[i]) / 1e6:.1f} | {mine:.0f} | {percentile(modern[i], 50):.0f} | {theirs:.0f} "
              f"| {mine / theirs:.3f} | {percentile(legacy[i], 99) / mine:.2f} |")
    p50 = geomean([percentile(legacy[i], 50) / percentile(single[i], 50) for i in measured])
    v1_p50 = geomean([percentile(modern[i], 50) / percentile(single[i], 50) for i in measured])
    spread = max(percentile(legacy[i], 99) / percentile(legacy[i], 50) for i in measured)
    throughput = many["throughput_rps"] / peer_rate
    print(f"\n| measure | compressor | pngquant --quality=60-80 | ours/pngquant |\n|---|---:|---:|---:|")
    print(f"| throughput, {args.concurrency} at a time (images/s) | {many['throughput_rps']:.2f} | {peer_rate:.2f} | {throughput:.3f} |")
    print(f"\n(service: {many['requests']} + {one['requests']} + {v1['requests']} requests; "
          f"pngquant: {peer_runs} concurrent + {sum(map(len, single))} sequential runs)")

    print("\n| goal | result | number |\n|---|---|---:|")
    print(f"| legacy route throughput at {args.concurrency} clients >= 2 x {args.concurrency} pngquant processes "
          f"| {verdict(throughput >= 2)} | {throughput:.2f} x |")
    print(f"| legacy route 1-client p50 <= 0.5 x one pngquant run (geomean over images) | {verdict(p50 <= 0.5)} | {p50:.3f} x |")
    print(f"| legacy route 1-client p99 <= 1.5 x its p50 (worst image) | {verdict(spread <= 1.5)} | {spread:.3f} x |")
    print(f"| POST /v1/compress 1-client p50 <= 0.6 x one pngquant run (geomean) | {verdict(v1_p50 <= 0.6)} | {v1_p50:.3f} x |")


if __name__ == "__main__":
    main()
