#!/usr/bin/env python3
"""Slow clients against `compressor serve` on loopback: N connections that send their request
headers (half of them) or an upload body (the other half) one byte at a time, while a normal
client keeps compressing a small image. Reports how long the slow connections were kept before
the server cut them off, and the normal client's latency before and during the attack.

    scripts/slow-clients.py [--binary target/release/compressor] [--connections 500] [--seconds 60]
"""

import argparse
import asyncio
import os
import statistics
import sys
import time
import urllib.request

import loopback

CORPUS = os.environ.get("COMPRESSOR_CORPUS", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "corpus"))
SMALL = os.path.join(CORPUS, "png_real", "screenshot", "rich__hello_world.png")


async def slow(port, kind, interval, give_up):
    """One slow connection; returns seconds until the server closed it (or give_up)."""
    started = time.monotonic()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return 0.0
    if kind == "headers":
        payload = b"POST /v1/compress HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\nX-Pad: " + b"a" * 100000
    else:
        writer.write(b"POST /v1/compress HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 100000\r\n\r\n")
        payload = b"\x89PNG" + b"\0" * 99996
    try:
        for byte in payload:
            writer.write(bytes([byte]))
            await writer.drain()
            if reader.at_eof():
                break
            try:
                data = await asyncio.wait_for(reader.read(1024), timeout=interval)
                if data == b"" or data:
                    break  # closed, or answered (408/413/504...) and about to close
            except asyncio.TimeoutError:
                pass
            if time.monotonic() - started > give_up:
                break
    except (ConnectionError, OSError):
        pass
    writer.close()
    return time.monotonic() - started


def normal_latencies(port, body, seconds):
    out = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t = time.monotonic()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/compress", data=body, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                response.read()
                out.append((response.status, time.monotonic() - t))
        except Exception as e:  # noqa: BLE001 - any failure is a result here
            out.append((getattr(e, "code", 0), time.monotonic() - t))
    return out


def summary(name, results):
    ok = [t for s, t in results if s == 200]
    p = lambda q: sorted(ok)[min(len(ok) - 1, int(q * len(ok)))] * 1000 if ok else float("nan")
    print(f"{name}: {len(results)} requests, {len(ok)} ok, p50 {p(0.5):.0f} ms, p99 {p(0.99):.0f} ms")


async def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=os.path.join(os.path.dirname(__file__), "..", "target", "release", "compressor"))
    parser.add_argument("--connections", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=60, help="longest a slow connection is kept trying")
    opts = parser.parse_args()
    with loopback.serve(opts.binary) as server:
        port = server.port
        body = open(SMALL, "rb").read()
        loop = asyncio.get_running_loop()
        summary("normal client before", await loop.run_in_executor(None, normal_latencies, port, body, 5))
        fds_before = len(os.listdir(f"/proc/{server.pid}/fd"))
        tasks = [asyncio.create_task(slow(port, "headers" if i % 2 == 0 else "body", 1.0, opts.seconds)) for i in range(opts.connections)]
        await asyncio.sleep(2)
        during = loop.run_in_executor(None, normal_latencies, port, body, 10)
        await asyncio.sleep(1)
        fds_during = len(os.listdir(f"/proc/{server.pid}/fd"))
        summary("normal client during", await during)
        held = await asyncio.gather(*tasks)
        for kind, values in (("headers", held[0::2]), ("body", held[1::2])):
            print(f"slow {kind}: {len(values)} connections kept median {statistics.median(values):.1f} s, max {max(values):.1f} s (gave up at {opts.seconds:.0f} s)")
        await asyncio.sleep(1)
        fds_after = len(os.listdir(f"/proc/{server.pid}/fd"))
        print(f"server file descriptors: {fds_before} before, {fds_during} during, {fds_after} after")
        print(f"server still running: {server.running()}")


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
