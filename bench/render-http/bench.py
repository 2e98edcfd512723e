#!/usr/bin/env python3
"""Render-cache hits over HTTP and idle memory of `pixeld serve`.

Starts the given pixeld binary on a fresh data folder (SQLite), signs up, creates a token and the
bench card template (bench/render/card.json with its images as data: URIs), renders it once (a
miss), then asks for the same render RUNS times on one keep-alive connection and reports the
server's own time (the `Server-Timing: app;dur=` header) and the client's round trip, p50/p99.
Peak and idle RSS come from /proc: idle right after start, after the fonts are loaded, and
after the benchmark.
"""

import base64
import http.client
import json
import os
import pathlib
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
RUNS = int(os.environ.get("RUNS", "2000"))


def rss_kb(pid, field="VmRSS"):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    binary = sys.argv[1]
    data = pathlib.Path(tempfile.mkdtemp(prefix="pixeld-bench-"))
    port = free_port()
    env = dict(os.environ, PIXELD_DATA=str(data), PIXELD_LISTEN=f"127.0.0.1:{port}",
               PIXELD_LOG="warn", PIXELD_RATE_LIMIT__PER_IP_PER_MINUTE="1000000",
               PIXELD_RATE_LIMIT__PER_CREDENTIAL_PER_MINUTE="1000000")
    proc = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.DEVNULL)
    try:
        conn = None
        for _ in range(300):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                conn.request("GET", "/healthz")
                conn.getresponse().read()
                break
            except OSError:
                time.sleep(0.05)
        # Fonts load in the background at start; give them time, then read idle memory.
        time.sleep(3)
        rss_start = rss_kb(proc.pid)

        def call(method, path, body=None, headers=None):
            h = {"content-type": "application/json"}
            h.update(headers or {})
            conn.request(method, path, json.dumps(body) if body is not None else None, h)
            r = conn.getresponse()
            return r, r.read()

        email = "bench@example.com"
        call("POST", "/v1/auth/signup", {"email": email, "password": "correct horse battery staple", "age_confirmed": True})
        mail = max((data / "outbox").iterdir(), key=lambda p: p.stat().st_mtime).read_text()
        token = re.search(r"verify-email\?token=([A-Za-z0-9]+)", mail).group(1)
        call("POST", "/v1/auth/verify-email", {"token": token})
        r, _ = call("POST", "/v1/auth/signin", {"email": email, "password": "correct horse battery staple"},
                    {"origin": f"http://127.0.0.1:{port}"})
        cookie = r.getheader("set-cookie").split(";")[0]
        r, b = call("POST", "/v1/tokens", {"name": "bench", "scopes": ["render"]},
                    {"cookie": cookie, "origin": f"http://127.0.0.1:{port}"})
        auth = {"authorization": "Bearer " + json.loads(b)["token"]}

        card = json.loads((ROOT / "bench/render/card.json").read_text())
        results = ROOT / "bench/results/render"
        results.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, str(ROOT / "bench/render/make-inputs.py"), str(results)], check=True,
                       stdout=subprocess.DEVNULL)
        values = json.loads((ROOT / "bench/render/data.json").read_text())
        # The peers get the images by URL; here they travel in the template as data: URIs.
        for layer in card["layers"]:
            src = layer.get("src", "")
            if src.startswith("https://bench.invalid/"):
                name = src.rsplit("/", 1)[1]
                layer["src"] = "data:image/png;base64," + base64.b64encode((results / name).read_bytes()).decode()
        r, b = call("POST", "/v1/templates", {"name": "card", "template": card}, auth)
        assert r.status == 201, b
        tpl = json.loads(b)["id"]
        req = {"template": tpl, "data": values}
        t0 = time.perf_counter()
        r, b = call("POST", "/v1/renders", req, auth)
        miss_ms = (time.perf_counter() - t0) * 1e3
        assert r.status == 200 and r.getheader("x-pixeld-cache") == "miss", (r.status, b[:300])
        rss_fonts = rss_kb(proc.pid)
        server, client = [], []
        for _ in range(RUNS):
            t0 = time.perf_counter()
            r, b = call("POST", "/v1/renders", req, auth)
            client.append((time.perf_counter() - t0) * 1e3)
            assert r.getheader("x-pixeld-cache") == "hit"
            server.append(float(r.getheader("server-timing").split("dur=")[1]))
        time.sleep(1)
        rss_after = rss_kb(proc.pid)
        peak = rss_kb(proc.pid, "VmHWM")
        print(f"render cache hit over HTTP ({RUNS} requests, one keep-alive connection, {len(b)} bytes each)")
        print(f"  server time  p50 {pct(server, 50):.3f} ms   p99 {pct(server, 99):.3f} ms   (target p50 <= 1 ms)")
        print(f"  round trip   p50 {pct(client, 50):.3f} ms   p99 {pct(client, 99):.3f} ms")
        print(f"  first render (miss, fonts already loaded) {miss_ms:.1f} ms")
        print("memory of pixeld serve (RSS)")
        print(f"  idle after start, fonts loaded   {rss_start / 1024:.1f} MB   (target <= 60 MB)")
        print(f"  after the first render           {rss_fonts / 1024:.1f} MB")
        print(f"  after {RUNS} cache hits           {rss_after / 1024:.1f} MB   peak {peak / 1024:.1f} MB")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
