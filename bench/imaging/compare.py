"""Runs every job with pixeld-imaging, sharp and vips; prints a Markdown table.

Called by run.sh, which sets OURS (bench binary), WORK (inputs/outputs) and RUNS.
Time: median of RUNS in-process runs for ours and sharp; vips is a CLI, so each run is a
whole process (startup included, ~10 ms). The three take turns for ROUNDS rounds (default 3)
and each cell is the median over the rounds, the ratios the median of each round's own ratio:
on a shared machine a slow spell then hits one round of all three, not all of one tool. Peak RSS: /usr/bin/time -v of one run, minus the
same program doing nothing ("extra" = what the job itself costs).
"""
import json
import os
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
OURS = os.environ["OURS"]
WORK = os.environ["WORK"]
RUNS = int(os.environ.get("RUNS", "9"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))

ENV = dict(os.environ, RAYON_NUM_THREADS="1", UV_THREADPOOL_SIZE="1", VIPS_CONCURRENCY="1")
# One CPU for every process, whatever threads a library starts on its own: libheif runs libaom
# with its own threads (vipsthumbnail's AVIF save used 184 % CPU with VIPS_CONCURRENCY=1).
CPU = min(os.sched_getaffinity(0))


def run(cmd, **kw):
    return subprocess.run(cmd, env=ENV, preexec_fn=lambda: os.sched_setaffinity(0, {CPU}), **kw)
SHARP = ["node", os.path.join(HERE, "sharp-job.js")]

# id, input, our query, sharp job, vips command (OUT is replaced), output extension
JOBS = [
    ("12MP → 800px JPEG q80", "12mp.jpg", "w=800&format=jpeg&q=80", "jpeg800",
     ["vipsthumbnail", "IN", "-s", "800x", "-o", "OUT[Q=80,strip]"], "jpg"),
    ("12MP → 800px WebP q80", "12mp.jpg", "w=800&format=webp&q=80", "webp800",
     ["vipsthumbnail", "IN", "-s", "800x", "-o", "OUT[Q=80,strip]"], "webp"),
    # sharp and vipsthumbnail shrink on load as far as the target allows; our default keeps a
    # 2× margin for the Lanczos step (src/pipeline.rs), `fast_shrink` does what they do.
    ("12MP → 800px JPEG q80, fast_shrink", "12mp.jpg", "w=800&format=jpeg&q=80&fast_shrink=true",
     "jpeg800", ["vipsthumbnail", "IN", "-s", "800x", "-o", "OUT[Q=80,strip]"], "jpg"),
    ("12MP → 800px WebP q80, fast_shrink", "12mp.jpg", "w=800&format=webp&q=80&fast_shrink=true",
     "webp800", ["vipsthumbnail", "IN", "-s", "800x", "-o", "OUT[Q=80,strip]"], "webp"),
    ("12MP → 200px JPEG q80 (thumbnail)", "12mp.jpg", "w=200&format=jpeg&q=80", "jpeg200",
     ["vipsthumbnail", "IN", "-s", "200x", "-o", "OUT[Q=80,strip]"], "jpg"),
    ("4MP → 800px JPEG q80", "4mp.jpg", "w=800&format=jpeg&q=80", "jpeg800",
     ["vipsthumbnail", "IN", "-s", "800x", "-o", "OUT[Q=80,strip]"], "jpg"),
    ("PNG screenshot → WebP lossless", "screenshot.png", "format=webp&lossless", "webplossless",
     ["vips", "webpsave", "IN", "OUT", "--lossless", "--strip"], "webp"),
    ("24MP → 2048px AVIF", "24mp.jpg", "w=2048&format=avif&q=60", "avif2048",
     ["vipsthumbnail", "IN", "-s", "2048x", "-o", "OUT[Q=50,strip]"], "avif"),
]


def peak_rss_kb(cmd):
    r = run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{cmd}: {r.stderr[-2000:]}")
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr)
    return int(m.group(1))


def ssim(original, output):
    path = output
    if output.endswith(".avif"):
        # We cannot decode AVIF ourselves; libvips (libheif) converts it for the comparison.
        path = output + ".png"
        if subprocess.run(["vips", "copy", output, path], capture_output=True).returncode != 0:
            return None
    r = subprocess.run([OURS, "ssim", original, path], capture_output=True, text=True)
    return float(r.stdout) if r.returncode == 0 else None


def ours(job):
    name, inp, query, _, _, ext = job
    src, out = os.path.join(WORK, inp), os.path.join(WORK, f"ours-{inp}.{ext}")
    r = run([OURS, "run", src, query, str(RUNS), out], capture_output=True, text=True, check=True)
    res = json.loads(r.stdout)
    res["rss"] = peak_rss_kb([OURS, "run", src, query, "1", out + ".rss"])
    res["ssim"] = ssim(src, out)
    return res


def ours_time(job):
    name, inp, query, _, _, ext = job
    src, out = os.path.join(WORK, inp), os.path.join(WORK, f"ours-{inp}.{ext}")
    r = run([OURS, "run", src, query, str(RUNS), out], capture_output=True, text=True, check=True)
    return json.loads(r.stdout)["median_ms"]


def sharp_time(job):
    name, inp, _, sjob, _, ext = job
    src, out = os.path.join(WORK, inp), os.path.join(WORK, f"sharp-{inp}.{ext}")
    r = run(SHARP + [src, sjob, str(RUNS), out], capture_output=True, text=True, check=True)
    return json.loads(r.stdout)["median_ms"]


def sharp(job):
    name, inp, _, sjob, _, ext = job
    src, out = os.path.join(WORK, inp), os.path.join(WORK, f"sharp-{inp}.{ext}")
    r = run(SHARP + [src, sjob, str(RUNS), out], capture_output=True, text=True, check=True)
    res = json.loads(r.stdout)
    res["rss"] = peak_rss_kb(SHARP + [src, sjob, "1", out + ".rss"])
    res["ssim"] = ssim(src, out)
    return res


def vips(job, rss=True):
    name, inp, _, _, vcmd, ext = job
    src, out = os.path.join(WORK, inp), os.path.join(WORK, f"vips-{inp}.{ext}")
    cmd = [c.replace("IN", src).replace("OUT", out) for c in vcmd]
    times = []
    for _ in range(RUNS):
        t = time.perf_counter()
        run(cmd, check=True, capture_output=True)
        times.append((time.perf_counter() - t) * 1000)
    if not rss:
        return {"median_ms": statistics.median(times)}
    return {
        "median_ms": statistics.median(times),
        "bytes": os.path.getsize(out),
        "rss": peak_rss_kb(cmd),
        "ssim": ssim(src, out),
    }


def ours_at_ssim(job, target):
    """Our bytes at `target` SSIM (sharp's), over quality 50-95: the lowest quality that reaches
    it, and the bytes interpolated between it and the quality just below (which misses), since
    one quality step can move SSIM past the target by a lot (AVIF: q60 → q61 is +0.005).
    Returns (q, bytes at q, interpolated bytes) or None."""
    name, inp, query, _, _, ext = job
    if target is None or "q=" not in query:
        return None
    src, out = os.path.join(WORK, inp), os.path.join(WORK, f"ours-matched-{inp}.{ext}")

    def at(q):
        qq = re.sub(r"q=\d+", f"q={q}", query)
        run([OURS, "run", src, qq, "1", out], capture_output=True, check=True)
        return os.path.getsize(out), ssim(src, out)

    # Coarse steps of 5, then back down one by one to the lowest quality that still reaches it.
    missed = None  # (bytes, ssim) of the last coarse step that missed
    for q in range(50, 100, 5):
        b, v = at(q)
        if v is None or v < target:
            missed = (b, v) if v is not None else None
            continue
        below = missed if q - 5 >= 50 else None
        for lower in range(q - 1, max(q - 5, 0), -1):
            lb, lv = at(lower)
            if lv is None or lv < target:
                below = (lb, lv) if lv is not None else None
                break
            q, b, v = lower, lb, lv
        b, v = at(q)  # leaves the matched output on disk
        if below is None or v == below[1]:
            return q, b, b
        return q, b, below[0] + (target - below[1]) / (v - below[1]) * (b - below[0])
    return None


def fmt_ssim(v):
    return "n/a" if v is None else f"{v:.4f}"


def main():
    # ONLY=thumb,fast runs the jobs whose names contain any of the words (case-insensitive).
    only = [w.lower() for w in os.environ.get("ONLY", "").split(",") if w]
    jobs = [j for j in JOBS if not only or any(w in j[0].lower() for w in only)]
    base = {
        "ours": peak_rss_kb([OURS, "noop"]),
        "sharp": peak_rss_kb(SHARP + ["noop"]),
        "vips": peak_rss_kb(["vips", "--version"]),
    }
    print(f"\nsingle thread each; median of {RUNS} runs, {ROUNDS} rounds taking turns; RSS 'extra' = peak − idle process "
          f"(idle: ours {base['ours']//1024} MB, sharp/node {base['sharp']//1024} MB, vips {base['vips']//1024} MB)\n")
    header = ("| job | ours ms | sharp ms | vips ms | ours÷sharp | ours÷vips | ours extra RSS MB | "
              "sharp extra RSS MB | RSS ours÷sharp | bytes ours / sharp / vips | SSIM ours / sharp / vips | "
              "ours at sharp's SSIM: q, bytes, ÷sharp bytes (interpolated) |")
    print(header)
    print("|" + "|".join(["---"] * (header.count("|") - 1)) + "|")
    for job in jobs:
        o, s, v = ours(job), sharp(job), vips(job)
        rounds = [(o["median_ms"], s["median_ms"], v["median_ms"])]
        for _ in range(ROUNDS - 1):
            rounds.append((ours_time(job), sharp_time(job), vips(job, rss=False)["median_ms"]))
        med = statistics.median
        ot, st, vt = (med(r[i] for r in rounds) for i in range(3))
        per_sharp = med(r[0] / r[1] for r in rounds)
        per_vips = med(r[0] / r[2] for r in rounds)
        ox, sx = (o["rss"] - base["ours"]) / 1024, (s["rss"] - base["sharp"]) / 1024
        m = ours_at_ssim(job, s["ssim"])
        matched = "n/a" if m is None else f"q{m[0]}, {m[1]}, {m[2] / s['bytes']:.3f}"
        print(f"| {job[0]} | {ot:.1f} | {st:.1f} | {vt:.1f} | "
              f"{per_sharp:.2f} | {per_vips:.2f} | "
              f"{ox:.1f} | {sx:.1f} | {ox / sx if sx > 0 else float('nan'):.2f} | "
              f"{o['bytes']} / {s['bytes']} / {v['bytes']} | "
              f"{fmt_ssim(o['ssim'])} / {fmt_ssim(s['ssim'])} / {fmt_ssim(v['ssim'])} | {matched} |")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
