"""`compressor serve` on a free loopback port, for the load scripts beside this file.

    with loopback.serve(binary) as server:
        urllib.request.urlopen(f"{server.url}/health")
"""

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, process, port):
        self.process, self.port = process, port
        self.pid = process.pid
        self.url = f"http://127.0.0.1:{port}"

    def running(self):
        return self.process.poll() is None


@contextlib.contextmanager
def serve(binary, args=(), env=None, log=None):
    """Starts the server (its output to `log`, a path, else a temporary file, so a full pipe never
    blocks it), waits until it answers /healthz, and stops it (SIGTERM) when the block ends. Exits
    with the server's output if it stops before it answers."""
    port = free_port()
    out = open(log, "wb") if log else tempfile.TemporaryFile()
    process = subprocess.Popen([binary, "serve", "--listen", f"127.0.0.1:{port}", *args], env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Server(process, port)
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"{server.url}/healthz", timeout=1).read()
                break
            except OSError:
                if not server.running():
                    out.seek(0)
                    sys.exit(f"compressor serve exited: {out.read().decode(errors='replace')}")
                time.sleep(0.05)
        yield server
    finally:
        process.terminate()
        process.wait(timeout=30)
        out.close()


def rss_and_fds(pid):
    """The process's resident memory in bytes and its number of open file descriptors."""
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))
    return rss, len(os.listdir(f"/proc/{pid}/fd"))
