"""Renders the card with pixeld-render, @takumi-rs/core and satori + resvg; prints Markdown.

Called by run.sh, which sets OURS (bench_card binary), WORK (inputs/outputs), FONTS, RUNS and
ROUNDS. Each round runs the three engines one after the other, each in a fresh process that
renders the card RUNS + 1 times; the first render of each process is "cold" and is reported on
its own, the others are pooled across rounds for p50/p99 (nearest rank). Peak RSS: /usr/bin/time
-v of those same processes (largest over the rounds), and of a process that only loads the
engine ("idle"), and of a process that renders once; CPU % (user + system ÷ wall, largest
over the rounds) shows each engine kept to one core. Then `bench_card phases` breaks one warm render of ours down.
"""
import json
import math
import os
import re
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OURS = os.environ["OURS"]
WORK = os.environ["WORK"]
FONTS = os.environ["FONTS"]
RUNS = int(os.environ.get("RUNS", "100"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))

# Single thread: takumi's raster backend uses rayon in the Node binding (ours is built
# without takumi's rayon feature); napi async work runs on libuv's pool.
ENV = dict(os.environ, RAYON_NUM_THREADS="1", UV_THREADPOOL_SIZE="1")
TEMPLATE = os.path.join(HERE, "card.json")
DATA = os.path.join(HERE, "data.json")
SRCS = [f"https://bench.invalid/{n}={os.path.join(WORK, n)}" for n in ("avatar.png", "logo.png")]
PEERS = ["node", os.path.join(HERE, "peers.mjs")]

# Targets of the issue: ours ÷ peer, PNG p50.
TARGETS = {"takumi": 0.5, "satori": 0.15}
NAMES = {"ours": "pixeld-render", "takumi": "@takumi-rs/core", "satori": "satori + resvg"}


def command(engine, runs, out):
    if engine == "ours":
        return [OURS, "run", TEMPLATE, DATA, str(runs), out] + SRCS
    return PEERS + [engine, TEMPLATE, DATA, str(runs), out, FONTS] + SRCS


def timed(cmd, cpu=False):
    """Runs cmd under /usr/bin/time -v: (stdout lines as JSON, peak RSS in kB[, CPU %])."""
    r = subprocess.run(["/usr/bin/time", "-v"] + cmd, env=ENV, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{cmd}: {r.stderr[-3000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr).group(1))
    lines = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
    if cpu:
        return lines, rss, int(re.search(r"Percent of CPU this job got: (\d+)%", r.stderr).group(1))
    return lines, rss


def idle(engine):
    cmd = [OURS, "noop"] if engine == "ours" else PEERS + ["noop", engine]
    return timed(cmd)[1]


def pct(xs, p):
    xs = sorted(xs)
    return xs[max(0, math.ceil(p / 100 * len(xs)) - 1)]


def main():
    engines = ["ours", "takumi", "satori"]
    load0 = open("/proc/loadavg").read().split()[:3]
    res = {e: {"warm": [], "cold": [], "rss": 0, "cpu": 0, "summary": None} for e in engines}
    for rnd in range(ROUNDS):
        for e in engines:
            out = os.path.join(WORK, f"{e}.png")
            lines, rss, cpu = timed(command(e, RUNS, out), cpu=True)
            res[e]["cpu"] = max(res[e]["cpu"], cpu)
            runs = [l for l in lines if "run" in l]
            res[e]["cold"].append(runs[0]["ms"])
            res[e]["warm"] += [l["ms"] for l in runs[1:]]
            res[e]["rss"] = max(res[e]["rss"], rss)
            res[e]["summary"] = next(l for l in lines if l.get("summary"))
            print(f"round {rnd + 1}/{ROUNDS} {e}: p50 {pct(res[e]['warm'], 50):.1f} ms", file=sys.stderr)
    for e in engines:
        res[e]["idle"] = idle(e)
        res[e]["rss1"] = timed(command(e, 0, os.path.join(WORK, f"{e}-1.png")))[1]
        res[e]["p50"] = pct(res[e]["warm"], 50)
        res[e]["p99"] = pct(res[e]["warm"], 99)
        if e != "ours":
            d = subprocess.run([OURS, "diff", os.path.join(WORK, "ours.png"), os.path.join(WORK, f"{e}.png")],
                               capture_output=True, text=True, check=True)
            res[e]["diff"] = json.loads(d.stdout)

    load = open("/proc/loadavg").read().split()[:3]
    print(f"\n1200×630 card (gradient, logo PNG, 2-line title, subtitle, round avatar PNG) → PNG; "
          f"single thread each; {ROUNDS} rounds × {RUNS} warm renders per engine "
          f"(p50/p99 over {ROUNDS * RUNS}); cold = first render of a process (median of {ROUNDS}); "
          f"load average (1/5/15 min) {' '.join(load0)} at the start, {' '.join(load)} at the end, "
          f"on {os.cpu_count()} cores\n")
    print(f"| engine | p50 ms | p99 ms | cold ms | ours÷peer p50 | target | ours÷peer p99 | peak RSS MB ({RUNS + 1} renders) | peak RSS MB (1 render) | idle RSS MB | CPU % | PNG bytes | ours÷peer bytes | Δ vs ours (mean abs, px >32 off) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    o = res["ours"]
    for e in engines:
        r = res[e]
        ratio = f"{o['p50'] / r['p50']:.3f}" if e != "ours" else "—"
        ratio99 = f"{o['p99'] / r['p99']:.3f}" if e != "ours" else "—"
        target = "—"
        if e in TARGETS:
            met = o["p50"] / r["p50"] <= TARGETS[e]
            target = f"≤ {TARGETS[e]} ({'met' if met else 'NOT met'})"
        size_ratio = "—" if e == "ours" else f"{o['summary']['bytes'] / r['summary']['bytes']:.3f}"
        diff = "—" if e == "ours" else f"{r['diff']['mean_abs_diff']:.2f}, {100 * r['diff']['pixels_off_by_32']:.2f}%"
        print(f"| {NAMES[e]} | {r['p50']:.2f} | {r['p99']:.2f} | {statistics.median(r['cold']):.1f} | {ratio} | {target} "
              f"| {ratio99} | {r['rss'] / 1024:.1f} | {r['rss1'] / 1024:.1f} | {r['idle'] / 1024:.1f} | {r['cpu']} | {r['summary']['bytes']} | {size_ratio} | {diff} |")
    ours_b, takumi_b = o["summary"]["bytes"], res["takumi"]["summary"]["bytes"]
    print(f"\nPNG size: ours {ours_b} bytes, @takumi-rs/core {takumi_b} bytes: "
          f"{'no larger' if ours_b <= takumi_b else 'LARGER'} ({ours_b / takumi_b:.3f}×).")
    s = res["satori"]["summary"]
    print(f"\nsatori + resvg warm medians of the last process: satori (layout → SVG) {s['satori_ms']} ms, "
          f"resvg (SVG → PNG) {s['resvg_ms']} ms. Setup (fonts, engine): ours {o['summary']['setup_ms']} ms, "
          f"takumi {res['takumi']['summary']['setup_ms']} ms, satori {s['setup_ms']} ms.")

    lines, _ = timed([OURS, "phases", TEMPLATE, DATA, str(max(RUNS, 20)), os.path.join(WORK, "phases")] + SRCS)
    print(f"\nWhere one warm render of ours goes (medians of {max(RUNS, 20)}; see examples/bench_card.rs)\n")
    print("| phase | ms | PNG bytes / note |")
    print("|---|---|---|")
    for l in lines:
        note = str(l.get("bytes", "")) or (f"max diff {l['max_diff']}" if "max_diff" in l else "")
        ms = "" if "max_diff" in l else f"{l['ms']:.2f}"
        print(f"| {l['phase']} | {ms} | {note} |")


main()
