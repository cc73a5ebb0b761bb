#!/usr/bin/env python3
"""Overload run against `compressor serve` on loopback (results go in notes, not CI): measures
capacity (closed model, one client per worker, 20 s), then sends an open-rate load of --factor ×
capacity for --seconds with `compressor loadtest --rate`, while probing /health every 20 ms and
sampling the server's RSS; then measures how soon single requests are back to their normal
latency. (The soak, mixed traffic below capacity for half an hour, is scripts/soak.py.)

    scripts/overload.py overload [--factor 10] [--seconds 60]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import loopback

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.environ.get("COMPRESSOR_CORPUS", os.path.join(HERE, "..", "..", "shared", "corpus"))
IMAGES = ["png_real/screenshot/rich__table.png"]


# `compressor loadtest` runs at most this long; longer loads are run as consecutive parts.
LOADTEST_MAX_SECONDS = 600


def loadtest(binary, url, images, extra, seconds):
    """The summary of `compressor loadtest` for `seconds`, summed over its parts."""
    total = None
    while seconds > 0:
        part = min(seconds, LOADTEST_MAX_SECONDS)
        seconds -= part
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            args = [binary, "loadtest", "--url", url, "--duration", f"{part}s", "--json", out.name, "--allow-status", "503", "--allow-status", "429"]
            for image in images:
                args += ["--image", image]
            run = subprocess.run(args + extra, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            if run.returncode != 0 and os.path.getsize(out.name) == 0:
                sys.exit(f"compressor loadtest failed: {run.stderr.strip()}")
            summary = json.load(open(out.name))["summary"]
        if total is None:
            total = summary
            continue
        for key in ("requests", "errors", "rejected_with_retry_after", "bytes_sent", "bytes_received", "duration_s"):
            total[key] += summary[key]
        for status, count in summary["status_counts"].items():
            total["status_counts"][status] = total["status_counts"].get(status, 0) + count
        total["throughput_rps"] = total["requests"] / total["duration_s"]
        total["error_rate"] = total["errors"] / max(1, total["requests"])
        total["passed"] = total["passed"] and summary["passed"]
        total.pop("mean_compression_ratio", None)
    return {"summary": total}


def single_latency(url, body):
    t = time.monotonic()
    with urllib.request.urlopen(urllib.request.Request(f"{url}/v1/compress", data=body, method="POST"), timeout=60) as r:
        r.read()
    return time.monotonic() - t


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["overload"])
    parser.add_argument("--binary", default=os.path.join(HERE, "..", "target", "release", "compressor"))
    parser.add_argument("--factor", type=float)
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--server-log", help="where the server's output goes (default: a temporary file)")
    opts = parser.parse_args()
    factor = opts.factor or 10
    seconds = opts.seconds or 60
    images = [os.path.join(CORPUS, p) for p in IMAGES]
    with loopback.serve(opts.binary, log=opts.server_log) as server:
        url = server.url
        workers = os.cpu_count()
        body = open(images[0], "rb").read()
        normal = statistics.median(single_latency(url, body) for _ in range(10))
        capacity_run = loadtest(opts.binary, url, images, ["--concurrency", str(workers)], 20)
        capacity = capacity_run["summary"]["throughput_rps"]
        rate = max(0.1, round(capacity * factor, 2))
        print(f"capacity {capacity:.1f} req/s with {workers} clients; single-request p50 {normal * 1000:.0f} ms; sending {rate}/s for {seconds:.0f} s")

        stop = threading.Event()
        health, samples = [], []

        def probe():
            while not stop.is_set():
                t = time.monotonic()
                try:
                    with urllib.request.urlopen(f"{url}/health", timeout=5) as r:
                        r.read()
                    health.append(time.monotonic() - t)
                except Exception:  # noqa: BLE001 - a failed probe is recorded as 5 s
                    health.append(5.0)
                samples.append((time.monotonic(), *loopback.rss_and_fds(server.pid)))
                time.sleep(0.02)

        prober = threading.Thread(target=probe)
        prober.start()
        started = time.monotonic()
        result = loadtest(opts.binary, url, images, ["--rate", str(rate), "--max-requests", "10000000", "--timeout", "60s"], seconds)
        stop.set()
        prober.join()
        ended = time.monotonic()
        summary = result["summary"]
        print("statuses:", json.dumps(summary["status_counts"]), f"errors (not 2xx, 429, or 503 with Retry-After): {summary['errors']}")
        print("loadtest summary:", json.dumps({k: v for k, v in summary.items() if not isinstance(v, (list, dict))}))
        h = sorted(health)
        print(f"/health during the load: {len(h)} probes, p50 {h[len(h) // 2] * 1000:.1f} ms, p99 {h[int(len(h) * 0.99)] * 1000:.1f} ms, max {h[-1] * 1000:.1f} ms")
        rss = [s[1] for s in samples]
        fds = [s[2] for s in samples]
        print(f"server RSS: peak {max(rss) / 2**20:.0f} MiB; open fds min {min(fds)} max {max(fds)}")
        # Recovery: how soon a single request is back within 1.5x of its normal latency.
        for _ in range(60):
            latency = single_latency(url, body)
            if latency < normal * 1.5:
                print(f"back to normal ({latency * 1000:.0f} ms) {time.monotonic() - ended:.1f} s after the load stopped")
                break
            time.sleep(0.2)
        else:
            print("not back to normal latency within 60 probes")
        print(f"server still running: {server.running()}")


if __name__ == "__main__":
    sys.exit(main())
