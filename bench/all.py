#!/usr/bin/env python3
"""Every benchmark of the project in one table (`make bench`): bench/bench.py
(recipe, query, snapshot, validate, bundle) and bench/k8s_scale.py (the
Kubernetes collector at scale), each run as a program of its own with
--table, then one table: case, median wall time, peak RSS, target, ok/miss.

Usage: bench/all.py [--binary PATH] [--runs N] [--skip-k8s]

k8s_scale.py needs the test cluster's binaries (etcd and kube-apiserver in
$SRC_KUBE_DIR/bin, default ~/.cache/aicr-test-kube-modern/bin; .ci/kube/
install.sh builds them). Without them, or with --skip-k8s, its row says
that it was skipped and why: never left out silently. Exit 1 when a case
missed its target or a benchmark failed.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def kube_binaries():
    src = os.path.expanduser(os.environ.get("SRC_KUBE_DIR", "~/.cache/aicr-test-kube-modern"))
    missing = [b for b in ("etcd", "kube-apiserver") if not os.access(os.path.join(src, "bin", b), os.X_OK)]
    return src, missing


def run(script, args, table):
    """Runs one benchmark; its own output goes to stderr, rows to `table`.
    Returns its exit code."""
    cmd = [sys.executable, os.path.join(HERE, script), *args, "--table", table]
    print(f"$ {' '.join(cmd)}", file=sys.stderr, flush=True)
    return subprocess.run(cmd, stdout=sys.stderr, stderr=sys.stderr).returncode


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default=os.path.join(REPO, "target", "dist", "aicr"))
    ap.add_argument("--runs", type=int, help="runs per case for bench.py (default: its own)")
    ap.add_argument("--skip-k8s", action="store_true", help="do not run k8s_scale.py (its row says so)")
    a = ap.parse_args()
    binary = os.path.abspath(a.binary)
    rows = []  # (case, median, peak, target, verdict)
    failed = False
    with tempfile.TemporaryDirectory(prefix="aicr-bench-all-") as work:
        benches = [("bench.py", ["--binary", binary] + (["--runs", str(a.runs)] if a.runs else []), None)]
        src, missing = kube_binaries()
        if a.skip_k8s:
            benches.append(("k8s_scale.py", None, "skipped: --skip-k8s"))
        elif missing:
            benches.append(("k8s_scale.py", None, f"skipped: no {', '.join(missing)} in {src}/bin (.ci/kube/install.sh)"))
        else:
            benches.append(("k8s_scale.py", ["--binary", binary], None))
        for script, args, skipped in benches:
            if skipped:
                rows.append((script, "-", "-", "-", skipped))
                continue
            table = os.path.join(work, script + ".jsonl")
            code = run(script, args, table)
            got = []
            if os.path.exists(table):
                with open(table) as f:
                    got = [json.loads(line) for line in f if line.strip()]
            for r in got:
                rows.append((r["case"], f"{r['median_ms']:.2f} ms", f"{r['peak_mib']:.1f} MiB", r["target"],
                             "ok" if r["ok"] else "MISS"))
                failed |= not r["ok"]
            if code != 0 and all(r["ok"] for r in got):
                # It failed before (or besides) measuring: a row says so.
                rows.append((script, "-", "-", "-", f"FAILED: exit {code}"))
                failed = True
            elif not got:
                rows.append((script, "-", "-", "-", "FAILED: no results"))
                failed = True
    load = os.getloadavg()
    print(f"binary: {binary}; {os.cpu_count()} CPUs, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    head = ("case", "median wall", "peak RSS", "target", "verdict")
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
