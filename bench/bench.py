#!/usr/bin/env python3
"""Whole-process benchmark of the release binary: median wall time and peak
RSS of each case over N runs, printed beside the targets.

Usage: bench/bench.py [--runs N] [--binary PATH] [--only TEXT] [--table FILE]
--table FILE appends one JSON line per case (case, median_ms, peak_mib,
target, ok) for bench/all.py, which prints every benchmark in one table.
Wall time: each run is started with posix_spawn and reaped with wait4, so
the time is the child's own life, spawn to exit.
Peak RSS: measured in separate runs under GNU time (`/usr/bin/time -f %M`,
Debian package `time`). The kernel's high-water mark includes the memory
image a child had before exec; a child spawned from this Python process
shares Python's (~14 MiB), so wait4's figure would be Python's, not ours.
GNU time is a small C program, so the peak it reports is the binary's.
"""
import shutil
import subprocess
import argparse
import json
import os
import statistics
import sys
import tempfile
import time

CRITERIA = ["--service", "eks", "--accelerator", "h100", "--intent", "training", "--os", "ubuntu"]

# (name, args, target wall ms, target peak RSS MiB, Go aicr v0.11.1 note)
CASES = [
    ("recipe eks/h100/training/ubuntu", ["recipe", *CRITERIA], 4.0, 10.0, "Go aicr: ~37 ms, ~41 MiB"),
    ("query  gpu-operator driver version", ["query", *CRITERIA, "--selector", "components.gpu-operator.values.driver.version"], 4.0, 10.0, "Go aicr: ~37 ms, ~41 MiB"),
    ("query  whole hydrated recipe", ["query", *CRITERIA, "--selector", "."], 4.0, 10.0, "(same target as query)"),
    ("snapshot full local (no GPU)", ["snapshot"], 20.0, 16.0, "Go aicr local mode: ~50 ms, ~40 MiB"),
]

# validate offline on Go aicr's golden pair (vendored in tests/fixtures).
GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "go-aicr-v0.11.1", "golden")
VALIDATE = ["validate", "-r", os.path.join(GOLDEN, "recipe-eks-h100-training-ubuntu.yaml"),
            "-s", os.path.join(GOLDEN, "mock-snapshot-cuj1.yaml"), "--no-cluster"]
CASES.append(("validate golden pair, offline", VALIDATE, 4.0, 10.0, "Go aicr validate --no-cluster: ~27 ms"))
CASES.append(("validate golden pair, CTRF + JUnit", [*VALIDATE, "--report", "ctrf", "--report", "junit=/dev/null"], 4.0, 10.0, "(same target)"))


def run_once(binary, args, fresh=None):
    if fresh:
        shutil.rmtree(fresh, ignore_errors=True)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        file_actions = [(os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)]
        start = time.perf_counter()
        pid = os.posix_spawn(binary, [binary, *args], os.environ, file_actions=file_actions)
        _, status, usage = os.wait4(pid, 0)
        wall = time.perf_counter() - start
    finally:
        os.close(devnull)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"{' '.join(args)} exited {code}")
    return wall * 1000.0, usage.ru_maxrss / 1024.0  # ms, MiB (ru_maxrss is KiB on Linux)


def peak_rss_mib(binary, args, runs=20, fresh=None):
    """Largest peak RSS (MiB) over `runs` runs under GNU time."""
    gnu_time = shutil.which("time", path="/usr/bin:/bin")
    if gnu_time is None:
        sys.exit("GNU time is needed for peak RSS: apt-get install time")
    peak = 0.0
    for _ in range(runs):
        if fresh:
            shutil.rmtree(fresh, ignore_errors=True)
        r = subprocess.run([gnu_time, "-f", "%M", binary, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=True)
        peak = max(peak, int(r.stderr.strip().splitlines()[-1]) / 1024.0)
    return peak


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--only", default="", help="run only the cases whose name contains this text")
    # The shipped build (make dist): the figures are the binary users get.
    ap.add_argument("--binary", default=os.path.join(os.path.dirname(__file__), "..", "target", "dist", "aicr"))
    ap.add_argument("--table", help="append a JSON line per case to this file")
    a = ap.parse_args()
    binary = os.path.abspath(a.binary)
    if not os.access(binary, os.X_OK):
        sys.exit(f"no binary at {binary}: run `make dist` first, or give --binary")
    # The bundle cases read a recipe file and rewrite one bundle directory
    # per run (each run replaces the previous bundle, as a re-run would).
    work = tempfile.mkdtemp(prefix="aicr-bench-")
    recipe = os.path.join(work, "recipe.yaml")
    with open(recipe, "wb") as f:
        f.write(subprocess.run([binary, "recipe", *CRITERIA], check=True, capture_output=True).stdout)
    helm = ["bundle", "-r", recipe, "-d", "helm"]
    argocd = ["bundle", "-r", recipe, "-d", "argocd", "--repo", "https://git.example.com/gpu.git"]
    d = lambda name: os.path.join(work, name)
    go = "Go aicr: ~82 ms, ~40 MiB"
    # (name, args, target ms, target MiB, note, directory removed before each run)
    cases = [(*c, None) for c in CASES] + [
        ("bundle helm   into a new directory", [*helm, "-o", d("helm-new")], 10.0, 16.0, go, d("helm-new")),
        # --force: a bundle file edited since aicr wrote it is otherwise refused.
        ("bundle helm   over a changed bundle", [*helm, "--force", "-o", d("helm-re")], 10.0, 16.0, go, None),
        ("bundle helm   re-run, unchanged", [*helm, "-o", d("helm-same")], 10.0, 16.0, go, None),
        ("bundle argocd into a new directory", [*argocd, "-o", d("argo-new")], 10.0, 16.0, go, d("argo-new")),
        ("bundle argocd over a changed bundle", [*argocd, "--force", "-o", d("argo-re")], 10.0, 16.0, go, None),
        ("bundle argocd re-run, unchanged", [*argocd, "-o", d("argo-same")], 10.0, 16.0, go, None),
    ]
    print(f"binary: {binary} ({os.path.getsize(binary) / 1024 / 1024:.2f} MiB), {a.runs} runs per case, {os.cpu_count()} CPUs")
    print(f"{'case':40} {'median ms':>10} {'p90 ms':>8} {'target':>8} {'peak RSS':>10} {'target':>8}  verdict")
    failed = False
    for name, args, t_ms, t_mib, note, fresh in cases:
        if a.only not in name:
            continue
        changed = "changed bundle" in name
        out_dir = args[args.index("-o") + 1] if "-o" in args else None

        def before():
            # "over a changed bundle": the previous bundle differs in one
            # file, so the whole directory is rewritten and the old removed.
            if changed and os.path.isdir(out_dir):
                with open(os.path.join(out_dir, "README.md"), "a") as f:
                    f.write("edited\n")
            return fresh

        for _ in range(5):
            run_once(binary, args, before())  # warm the page cache
        walls = [run_once(binary, args, before())[0] for _ in range(a.runs)]
        med = statistics.median(walls)
        p90 = statistics.quantiles(walls, n=10)[-1]
        peak = peak_rss_mib(binary, args, fresh=fresh)
        ok = med < t_ms and peak < t_mib
        failed |= not ok
        print(f"{name:40} {med:10.2f} {p90:8.2f} {'<' + str(t_ms):>8} {peak:8.2f}Mi {'<' + str(t_mib) + 'Mi':>8}  {'ok' if ok else 'MISSED'}   {note}")
        if a.table:
            with open(a.table, "a") as f:
                f.write(json.dumps({"case": " ".join(name.split()), "median_ms": med, "peak_mib": peak,
                                    "target": f"< {t_ms:g} ms, < {t_mib:g} MiB", "ok": ok}) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
