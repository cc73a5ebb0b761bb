#!/usr/bin/env python3
"""Soak: --minutes of mixed traffic at --factor × measured capacity against `compressor serve` on
its defaults (loopback), checking that nothing is answered wrongly and nothing grows.

The traffic, sent at a steady rate by an open model (arrivals do not wait for answers):
  images    real corpus files of every format and many sizes, raw to /v1/compress (with a few
            option sets) and as a form to the old /compress-image route;
  hostile   about 5 %: corpus files truncated or with flipped bytes, the corpus's broken files,
            and PNG headers claiming huge dimensions (decompression bombs);
  video     about 1 %: a small MP4 made with ffmpeg at the start, to /v1/video/compress.
Beside it, at their own pace: slow uploaders (some above the server's minimum upload rate, some
below it, which must get 408), clients that hang up mid-upload or mid-response, and a /health
probe every 50 ms. Capacity is measured first with the same mix by a closed model (2 clients per
worker for --capacity-seconds).

Expected answers: 200; 4xx with a JSON body; 503 with Retry-After. Anything else (5xx, 504
included; a 4xx without JSON; a reset or timeout on a client that did not hang up itself) is
unexpected. Every minute: requests by status and p50/p99 per route, /health p99, the server's
RSS, open fds and temporary files (sampled every 5 s). At the end: the slopes of RSS, fds and
temporary files after --warmup-minutes (least squares over 30 s floors, see `leak_verdict`), and
the server idle again (see `idle_verdict`). Exits 1 on an unexpected answer, a growth trend, fds
or files held after the load, or the server dying; --json writes the summary and every sample.

    scripts/soak.py [--binary target/release/compressor] [--minutes 30] [--factor 0.7] [--json out.json]
"""

import argparse
import collections
import concurrent.futures
import http.client
import json
import os
import random
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zlib

import loopback

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.environ.get("COMPRESSOR_CORPUS", os.path.join(HERE, "..", "..", "shared", "corpus"))

V1, LEGACY, VIDEO, HEALTH = "/v1/compress", "/compress-image", "/v1/video/compress", "/health"
# Option sets for /v1/compress: the default, a format change, a resize, a quality.
V1_QUERIES = ["", "?format=webp", "?width=640", "?quality=70", "?mode=lossless"]
# Valid images per format (folder globs under the corpus), and how many to take from each, spread
# over the format's sizes from smallest to largest.
IMAGE_SETS = {
    "png": (["png_real", "pngsuite"], (".png",), 10),
    "jpeg": (["photos_jpeg"], (".jpg", ".jpeg"), 10),
    "webp": (["other/webp"], (".webp",), 4),
    "gif": (["other/gif"], (".gif",), 4),
    "avif": (["other/avif"], (".avif",), 3),
    "tiff/bmp": (["other/tiff", "other/bmp"], (".tif", ".tiff", ".bmp"), 4),
    "heic": (["heic"], (".heic", ".heif"), 2),
}
# Shares of the main traffic (the rest is valid images, 2/3 to /v1 and 1/3 to the old route).
HOSTILE_SHARE, VIDEO_SHARE = 0.05, 0.01
LEGACY_SHARE_OF_IMAGES = 1 / 3
# An image of this many bytes is drawn half as often as a tiny one (see `Mix`).
IMAGE_WEIGHT_BYTES = 64 * 1024
# Answers slower than this count as a timeout (unexpected): far above the server's own 60 s.
CLIENT_TIMEOUT = 90


def pick_images(seed):
    """Paths of valid corpus images: per format, files evenly spread over its size ranking."""
    chosen = []
    for _, (folders, suffixes, count) in IMAGE_SETS.items():
        files = []
        for folder in folders:
            for root, _, names in os.walk(os.path.join(CORPUS, folder)):
                # PngSuite's x* files are corrupt on purpose: they are hostile inputs, not images.
                files += [os.path.join(root, n) for n in names if n.lower().endswith(suffixes) and not (folder == "pngsuite" and n.startswith("x"))]
        files.sort(key=lambda p: (os.path.getsize(p), p))
        if len(files) <= count:
            chosen += files
        else:
            chosen += [files[round(i * (len(files) - 1) / (count - 1))] for i in range(count)]
    return chosen


def png_bomb(width, height):
    """A PNG whose header claims width × height pixels, with one small IDAT of zeros."""

    def chunk(kind, data):
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 6, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 65536)) + chunk(b"IEND", b"")


def hostile_inputs(images, rng):
    """(name, bytes) of corrupt and hostile uploads: mutations of real images, the corpus's broken
    files, and bomb headers."""
    out = []
    for path in rng.sample(images, min(12, len(images))):
        data = open(path, "rb").read()
        name = os.path.basename(path)
        out.append((f"truncated-half:{name}", data[: len(data) // 2]))
        out.append((f"truncated-header:{name}", data[:40]))
        flipped = bytearray(data)
        for _ in range(max(1, len(data) // 500)):
            flipped[rng.randrange(len(flipped))] ^= 0xFF
        out.append((f"flipped:{name}", bytes(flipped)))
    bad = []
    for root, _, names in os.walk(os.path.join(CORPUS, "bad")):
        bad += [os.path.join(root, n) for n in names if not n.endswith(".txt")]
    bad += [os.path.join(root, n) for root, _, names in os.walk(os.path.join(CORPUS, "pngsuite")) for n in names if n.startswith("x") and n.endswith(".png")]
    bad.sort()
    for path in rng.sample(bad, min(40, len(bad))):
        out.append((f"corpus-bad:{os.path.relpath(path, CORPUS)}", open(path, "rb").read()))
    for width, height in ((100000, 100000), (2**31 - 1, 2**31 - 1), (60000, 1), (30000, 30000)):
        out.append((f"png-bomb:{width}x{height}", png_bomb(width, height)))
    out.append(("empty", b""))
    out.append(("text", b"this is not an image\n" * 100))
    return out


def make_video(directory):
    """A 2-second 320x240 H.264 MP4 with sound, made with ffmpeg's test sources."""
    path = os.path.join(directory, "soak.mp4")
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=duration=2:size=320x240:rate=25", "-f", "lavfi", "-i", "sine=frequency=440:duration=2",
         "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", path],
        check=True,
    )
    return open(path, "rb").read()


def multipart(field, filename, data):
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


class Request:
    """One request to send: route (for the report), path with query, body, content type."""

    def __init__(self, route, path, body, content_type, label):
        self.route, self.path, self.body, self.content_type, self.label = route, path, body, content_type, label


class Mix:
    """Draws the main traffic's requests."""

    def __init__(self, images, hostile, video, rng):
        self.images = [(os.path.basename(p), open(p, "rb").read()) for p in images]
        # Small images are common and large ones rare, as on a web site: a 3 MB photo is drawn
        # about a fiftieth as often as an icon (its CPU share stays about that of the small ones).
        self.weights = [1 / (1 + len(data) / IMAGE_WEIGHT_BYTES) for _, data in self.images]
        self.hostile, self.video, self.rng = hostile, video, rng
        self.lock = threading.Lock()

    def draw(self):
        with self.lock:
            r = self.rng.random()
            if r < VIDEO_SHARE:
                return Request(VIDEO, VIDEO, self.video, "video/mp4", "video")
            if r < VIDEO_SHARE + HOSTILE_SHARE:
                name, data = self.rng.choice(self.hostile)
                legacy = self.rng.random() < LEGACY_SHARE_OF_IMAGES
            else:
                name, data = self.rng.choices(self.images, self.weights)[0]
                legacy = self.rng.random() < LEGACY_SHARE_OF_IMAGES
            if legacy:
                body, content_type = multipart("image_files", "upload.png", data)
                return Request(LEGACY, LEGACY, body, content_type, name)
            return Request(V1, V1 + self.rng.choice(V1_QUERIES), data, "application/octet-stream", name)


class Recorder:
    """Every answer, and every unexpected one, with the time it ended."""

    def __init__(self):
        self.lock = threading.Lock()
        self.answers = []  # (ended, route, status or "conn-error"/"hung-up", seconds)
        self.unexpected = []  # (ended, route, label, what)

    def add(self, route, status, seconds, problem=None, label=""):
        ended = time.monotonic()
        with self.lock:
            self.answers.append((ended, route, status, seconds))
            if problem:
                self.unexpected.append((ended, route, label, problem))
                print(f"UNEXPECTED {route} {label}: {problem}", flush=True)


def judge(status, headers, body):
    """None for an expected answer, else what is wrong with it."""
    if status == 200:
        return None
    if 400 <= status < 500:
        try:
            json.loads(body)
            return None
        except ValueError:
            return f"{status} without a JSON body: {body[:200]!r}"
    if status == 503 and headers.get("retry-after"):
        return None
    return f"{status}: {body[:300]!r}"


def send(port, request, timeout=CLIENT_TIMEOUT):
    """Sends a request; (status, headers, body). A refusal written while the body is still being
    sent is read as the answer, as curl does, rather than reported as the broken pipe."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": request.content_type} if request.content_type else {}
        try:
            conn.request("POST" if request.body is not None else "GET", request.path, body=request.body, headers=headers)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the answer, if the server wrote one, is still to be read
        response = conn.getresponse()
        body = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body
    finally:
        conn.close()


def main_request(port, request, recorder):
    started = time.monotonic()
    try:
        status, headers, body = send(port, request)
    except (OSError, http.client.HTTPException) as e:
        recorder.add(request.route, "conn-error", time.monotonic() - started, f"{type(e).__name__}: {e}", request.label)
        return
    recorder.add(request.route, status, time.monotonic() - started, judge(status, headers, body), request.label)


def health_probe(port, recorder, stop):
    while not stop.is_set():
        main_request(port, Request(HEALTH, HEALTH, None, None, "probe"), recorder)
        stop.wait(0.05)


def slow_client(port, images, recorder, stop, rng):
    """Uploads a 100-400 KB image slowly: 3 in 4 at 24-48 KiB/s (above the server's 16 KiB/s
    minimum: served), 1 in 4 at 2 KiB/s (below it: must get 408 after the 10 s grace, or 503 if
    the server was full when it started)."""
    candidates = [(n, d) for n, d in images if 100_000 <= len(d) <= 400_000] or images
    while not stop.is_set():
        name, data = rng.choice(candidates)
        too_slow = rng.random() < 0.25
        rate = 2048 if too_slow else rng.randint(24, 48) * 1024
        route = "slow-upload(too slow)" if too_slow else "slow-upload"
        started = time.monotonic()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=CLIENT_TIMEOUT) as s:
                s.sendall(f"POST {V1} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode())
                chunk = max(1, rate // 10)
                try:
                    for offset in range(0, len(data), chunk):
                        s.sendall(data[offset : offset + chunk])
                        # An answer before the end of the upload (408) is read at once, as a
                        # browser or curl does; the server reads and drops the rest meanwhile.
                        if select.select([s], [], [], 0.1)[0] or stop.is_set():
                            break
                except (BrokenPipeError, ConnectionResetError):
                    pass  # answered early: read it below
                if stop.is_set():
                    continue
                status, headers, body = read_response(s)
            problem = judge(status, headers, body)
            if too_slow and status not in (408, 503):
                problem = problem or f"an upload at 2 KiB/s got {status}, not 408 (or 503 before it started)"
            recorder.add(route, status, time.monotonic() - started, problem, name)
            if status == 503:
                # A client told to come back later does so, rather than hammering a full server.
                stop.wait(float(headers.get("retry-after", "1")))
        except (OSError, http.client.HTTPException) as e:
            recorder.add(route, "conn-error", time.monotonic() - started, f"{type(e).__name__}: {e}", name)


def read_response(sock):
    response = http.client.HTTPResponse(sock)
    response.begin()
    body = response.read()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, body


def hang_up_client(port, images, video, recorder, stop, rng):
    """Every 1-3 s, a client that hangs up: mid-upload (half the body sent, to /v1 or the video
    route) or mid-response (after the status line). Whatever happens on its connection is
    expected, except a status that is itself wrong."""
    while not stop.wait(rng.uniform(1, 3)):
        mid_upload = rng.random() < 0.5
        if rng.random() < 0.15:
            route, data = VIDEO, video
        else:
            route, data = V1, rng.choice(images)[1]
        label = f"hang-up mid-{'upload' if mid_upload else 'response'}"
        started = time.monotonic()
        status = "hung-up"
        problem = None
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=CLIENT_TIMEOUT) as s:
                s.sendall(f"POST {route} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: {len(data)}\r\n\r\n".encode())
                if mid_upload:
                    s.sendall(data[: len(data) // 2])
                else:
                    s.sendall(data)
                    line = s.makefile("rb").readline()
                    parts = line.split()
                    if len(parts) >= 2 and parts[1].isdigit() and int(parts[1]) not in (200, 503) and not 400 <= int(parts[1]) < 500:
                        problem = f"status line {line!r}"
                # Closing with unread data makes the kernel send a reset: an abrupt hang-up.
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
        except OSError:
            pass
        recorder.add(label, status, time.monotonic() - started, problem, route)


def sample_server(server, tmpdir):
    rss, fds = loopback.rss_and_fds(server.pid)
    return rss, fds, len(os.listdir(tmpdir))


def percentile(values, q):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def route_table(answers):
    """Per route: statuses and p50/p99 in ms, as text lines and as data."""
    by_route = collections.defaultdict(list)
    for _, route, status, seconds in answers:
        by_route[route].append((status, seconds))
    lines, data = [], {}
    for route in sorted(by_route):
        rows = by_route[route]
        statuses = collections.Counter(str(s) for s, _ in rows)
        times = [t for _, t in rows]
        p50, p99 = percentile(times, 0.5) * 1000, percentile(times, 0.99) * 1000
        data[route] = {"requests": len(rows), "statuses": dict(sorted(statuses.items())), "p50_ms": round(p50, 1), "p99_ms": round(p99, 1)}
        shown = " ".join(f"{k}:{v}" for k, v in sorted(statuses.items()))
        lines.append(f"  {route:<24} {len(rows):>6}  p50 {p50:>8.1f} ms  p99 {p99:>8.1f} ms  {shown}")
    return lines, data


def least_squares_slope(points):
    """Slope of y over x by least squares (per unit of x)."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0


# Leak rule. Each series is the server's lowest value in each 30 s (its floor): an image in flight
# lifts RSS by hundreds of MiB for seconds and a connection adds an fd, but what is kept shows in
# the floor. A series leaks when both the fitted growth of its floor over the measured window and
# the rise of the last third's median over the first third's exceed max(absolute, relative × the
# first third's median): the fit alone is pulled by one late high floor, the medians alone by
# where a burst falls. RSS is allowed its allocator's ratchet (glibc keeps the freed pages of a
# large image in each thread's arena until that arena has seen its largest image): on 2 shared
# cores the floor rose by up to 210 MiB that way after a 3-minute run's warm-up, and in the
# 30-minute run by 330 MiB in 2 minutes, then stayed flat (docs/soak.md); 384 MiB is above both. The fd floor counts the
# connections in flight: when the 30-minute run's machine was overloaded at its end, it rose by
# 5 (medians) and 10 (fit) with nothing held; an fd kept for good is caught exactly by
# `idle_verdict`.
LEAK_THRESHOLDS = {"rss_mib": (384, 0.25), "fds": (16, 0.25), "temp_files": (2, 0.0)}
FLOOR_WINDOW_S = 30
# After the load, the server must be back to what it held idle before it: no more than this many
# fds more (and no temporary file) once every connection has ended. A hung-up client's connection
# may be drained for up to 10 s (linger.rs), so this is awaited for up to IDLE_WAIT_S.
IDLE_EXTRA_FDS = 2
IDLE_WAIT_S = 20


def floors(points, window_s=FLOOR_WINDOW_S):
    """The lowest value in each window (at the window's middle), from (seconds, value) points."""
    by_window = collections.defaultdict(list)
    for t, v in points:
        by_window[int(t // window_s)].append(v)
    return [((w + 0.5) * window_s, min(vs)) for w, vs in sorted(by_window.items())]


def leak_verdict(name, points, window_s):
    """(passed, text) for one series of (seconds, value) after the warm-up."""
    absolute, relative = LEAK_THRESHOLDS[name]
    points = floors(points)
    if len(points) < 3:
        return False, f"{name}: too few {FLOOR_WINDOW_S} s floors after the warm-up ({len(points)}) to judge"
    slope = least_squares_slope(points)
    third = max(1, len(points) // 3)
    first = statistics.median(v for _, v in points[:third])
    last = statistics.median(v for _, v in points[-third:])
    limit = max(absolute, relative * first)
    fitted = slope * window_s
    leaking = fitted > limit and last - first > limit
    text = (f"{name} ({FLOOR_WINDOW_S} s floors): slope {slope * 3600:+.1f}/hour, fitted growth over {window_s / 60:.1f} min {fitted:+.1f}, "
            f"first-third median {first:.1f}, last-third median {last:.1f} (limit {limit:.1f}): {'LEAK TREND' if leaking else 'no growth trend'}")
    return not leaking, text


def idle_verdict(server, server_tmp, before):
    """(passed, text, sample): the server idle after the load against idle before it."""
    rss_before, fds_before, _ = before
    deadline = time.monotonic() + IDLE_WAIT_S
    while True:
        rss, fds, temp = sample_server(server, server_tmp)
        passed = fds <= fds_before + IDLE_EXTRA_FDS and temp == 0
        if passed or time.monotonic() > deadline:
            break
        time.sleep(1)
    text = (f"idle after the load: fds {fds} (before the load {fds_before}; allowed {fds_before + IDLE_EXTRA_FDS}), temporary files {temp}, "
            f"RSS {rss / 2**20:.0f} MiB (before {rss_before / 2**20:.0f} MiB; not judged: the allocator keeps pages): {'ok' if passed else 'HELD'}")
    return passed, text, (rss, fds, temp)


def report_minute(recorder, reported, sample, minutes):
    """Prints and keeps the report of the answers since the last one; returns how many are reported."""
    with recorder.lock:
        window = recorder.answers[reported:]
        reported = len(recorder.answers)
    lines, data = route_table(window)
    _, rss, fds, temp = sample
    health = [s for _, r, _, s in window if r == HEALTH]
    summary = {"minute": len(minutes) + 1, "routes": data, "rss_mib": round(rss / 2**20, 1), "fds": fds, "temp_files": temp,
               "health_p99_ms": round(percentile(health, 0.99) * 1000, 1), "unexpected_so_far": len(recorder.unexpected)}
    minutes.append(summary)
    print(f"minute {summary['minute']}: RSS {summary['rss_mib']} MiB, fds {fds}, temp files {temp}, /health p99 {summary['health_p99_ms']} ms, "
          f"unexpected so far {len(recorder.unexpected)}", flush=True)
    for line in lines:
        print(line, flush=True)
    return reported


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=os.path.join(HERE, "..", "target", "release", "compressor"))
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--factor", type=float, default=0.7, help="share of the measured capacity to send")
    parser.add_argument("--capacity-seconds", type=float, default=30)
    parser.add_argument("--warmup-minutes", type=float, help="left out of the leak fit (default: a third of the run, at most 5)")
    parser.add_argument("--slow-clients", type=int, default=3)
    parser.add_argument("--seed", type=int, default=30)
    parser.add_argument("--json", help="write the summary here")
    parser.add_argument("--server-log", help="the server's output (default: a temporary file)")
    parser.add_argument("--server-arg", action="append", default=[], help="an extra argument for `compressor serve` (the soak itself runs on defaults)")
    opts = parser.parse_args()
    warmup_s = 60 * (opts.warmup_minutes if opts.warmup_minutes is not None else min(5, opts.minutes / 3))
    rng = random.Random(opts.seed)

    tmpdir = tempfile.mkdtemp(prefix="soak-server-tmp-")
    images = pick_images(opts.seed)
    video = make_video(tmpdir)
    hostile = hostile_inputs(images, rng)
    mix = Mix(images, hostile, video, rng)
    print(f"{len(images)} images ({sum(len(d) for _, d in mix.images) // 1024} KiB), {len(hostile)} hostile inputs, a {len(video) // 1024} KiB video", flush=True)
    # The server's temporary files (video uploads and transcodes) go to a folder of their own, so
    # that one left behind is seen.
    server_tmp = os.path.join(tmpdir, "server")
    os.mkdir(server_tmp)
    env = dict(os.environ, TMPDIR=server_tmp)

    with loopback.serve(opts.binary, args=opts.server_arg, env=env, log=opts.server_log) as server:
        port = server.port
        workers = os.cpu_count()
        idle_before = sample_server(server, server_tmp)

        # Capacity: a closed model, two clients per worker so a worker never waits for a client.
        capacity_recorder = Recorder()
        capacity_end = time.monotonic() + opts.capacity_seconds

        def closed_client():
            while time.monotonic() < capacity_end:
                main_request(port, mix.draw(), capacity_recorder)

        threads = [threading.Thread(target=closed_client) for _ in range(2 * workers)]
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        capacity = len(capacity_recorder.answers) / elapsed
        rate = opts.factor * capacity
        print(f"capacity {capacity:.2f} req/s ({len(capacity_recorder.answers)} answers in {elapsed:.1f} s, {2 * workers} clients, {workers} workers); "
              f"sending {rate:.2f} req/s ({opts.factor:.0%}) for {opts.minutes:g} min", flush=True)
        for line in route_table(capacity_recorder.answers)[0]:
            print(line)

        recorder = Recorder()
        recorder.unexpected += capacity_recorder.unexpected
        stop = threading.Event()
        side = [threading.Thread(target=health_probe, args=(port, recorder, stop))]
        side += [threading.Thread(target=slow_client, args=(port, mix.images, recorder, stop, random.Random(opts.seed + i))) for i in range(opts.slow_clients)]
        side.append(threading.Thread(target=hang_up_client, args=(port, mix.images, video, recorder, stop, random.Random(opts.seed + 100))))
        for t in side:
            t.start()

        samples = []  # (seconds since start, rss bytes, fds, temp files)
        minutes = []
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=256)
        start = time.monotonic()
        end = start + 60 * opts.minutes
        next_send = start
        next_sample = start
        next_report = start + 60
        reported = 0  # answers already reported
        died = False
        while time.monotonic() < end:
            now = time.monotonic()
            if now >= next_send:
                pool.submit(main_request, port, mix.draw(), recorder)
                # Poisson arrivals: bursts as well as lulls, as real traffic has.
                next_send += rng.expovariate(rate)
            if now >= next_sample:
                if not server.running():
                    died = True
                    print("THE SERVER DIED", flush=True)
                    break
                samples.append((now - start, *sample_server(server, server_tmp)))
                next_sample += 5
            if now >= next_report:
                reported = report_minute(recorder, reported, samples[-1], minutes)
                next_report += 60
            time.sleep(max(0.0, min(next_send, next_sample, next_report) - time.monotonic()))
        sent_for = time.monotonic() - start
        stop.set()
        pool.shutdown(wait=True)
        for t in side:
            t.join()
        # The last minute ends with the run: its answers, the stragglers included.
        if not died:
            report_minute(recorder, reported, (time.monotonic() - start, *sample_server(server, server_tmp)), minutes)
        died = died or not server.running()
        idle = (False, "the server died: nothing to check idle", None) if died else idle_verdict(server, server_tmp, idle_before)

    print(f"\n=== soak: {opts.minutes:g} min at {rate:.2f} req/s ({opts.factor:.0%} of {capacity:.2f} req/s measured) ===")
    lines, totals = route_table(recorder.answers)
    print("totals by route:")
    for line in lines:
        print(line)
    health = [s for _, r, _, s in recorder.answers if r == HEALTH]
    health_p99 = percentile(health, 0.99) * 1000
    print(f"/health p99 over the run: {health_p99:.1f} ms (max {max(health, default=0) * 1000:.1f} ms, {len(health)} probes)")
    window_s = max(1.0, samples[-1][0] - warmup_s) if samples else 1.0
    verdicts = []
    for name, index, scale in (("rss_mib", 1, 2**20), ("fds", 2, 1), ("temp_files", 3, 1)):
        points = [(s[0], s[index] / scale) for s in samples if s[0] >= warmup_s]
        verdicts.append(leak_verdict(name, points, window_s))
    print(f"after a {warmup_s / 60:.1f} min warm-up, {window_s / 60:.1f} min of samples every 5 s:")
    for _, text in verdicts:
        print("  " + text)
    print(idle[1])
    print(f"unexpected answers: {len(recorder.unexpected)}")
    for ended, route, label, problem in recorder.unexpected[:50]:
        print(f"  {route} {label}: {problem}")
    passed = not died and not recorder.unexpected and all(ok for ok, _ in verdicts) and idle[0] and sent_for >= 60 * opts.minutes * 0.99
    if died:
        print("the server died during the soak")
    print("SOAK PASSED" if passed else "SOAK FAILED", flush=True)

    if opts.json:
        with open(opts.json, "w") as f:
            json.dump({
                "passed": passed, "minutes": opts.minutes, "factor": opts.factor, "capacity_rps": round(capacity, 3), "rate_rps": round(rate, 3),
                "server_died": died, "totals": totals, "health_p99_ms": round(health_p99, 1),
                "leak": [text for _, text in verdicts], "idle_after": idle[1], "unexpected": [{"route": r, "input": l, "problem": p} for _, r, l, p in recorder.unexpected],
                "minutes_report": minutes, "samples": [{"s": round(s[0], 1), "rss_mib": round(s[1] / 2**20, 1), "fds": s[2], "temp_files": s[3]} for s in samples],
            }, f, indent=1)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
