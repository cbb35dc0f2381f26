#!/usr/bin/env python3
"""The Kubernetes collector at scale (issue #12): `aicr snapshot --filter k8s
--node-name gpu-node-007` against a kube-apiserver holding 500 Node objects
and 5,000, 10,000 and 20,000 pods (two containers each, 40 distinct
images), median wall time and peak RSS per size, beside Go aicr v0.11.1.

Usage: bench/k8s_scale.py [--binary PATH] [--go-binary PATH] [--runs N]
                          [--sizes 5000,10000,20000] [--kube-dir DIR]
                          [--api-port P] [--etcd-port P] [--keep] [--table FILE]

It never uses the shared test cluster: it starts a private etcd +
kube-apiserver of its own with .ci/kube/start.sh (binaries and PKI copied
from $SRC_KUBE_DIR, default ~/.cache/aicr-test-kube-modern, into --kube-dir,
default /tmp/kube-scale; ports 13379/13380 and 17443 by default) and stops
it at the end with .ci/kube/stop.sh, unless --keep.

Wall time: each run is started with posix_spawn and reaped with wait4, the
child's own life, spawn to exit. Peak RSS: separate runs under GNU time
(`/usr/bin/time -f %M`, Debian package `time`), so the figure is the
binary's, not this Python process's. Every run's output is checked: the
image counts must add up to two per pod and the summary must count the
500 nodes, so a run that failed to read the cluster is never timed as one
that did.

Go aicr's figures are the ones measured in the issue (its binary is not
always at hand); give --go-binary to measure it in the same run
(`AICR_AGENT_MODE=true aicr snapshot`, all its collectors), and the ratio is
then taken against that.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
NODES = 500
IMAGES = 40
NAMESPACE = "aicr-bench"
NODE = "gpu-node-007"
# Go aicr v0.11.1, from the issue: pods -> (wall seconds low, high, peak MiB low, high).
GO_ISSUE = {5000: (0.21, 0.39, 82, 86), 10000: (0.44, 0.52, 129, 129)}
# Ours before the paged, partial-decoding collector, from the issue.
OURS_BEFORE = {5000: "0.33 s, 86 MiB", 10000: "0.71-0.82 s, 161 MiB"}


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


class Cluster:
    """A private etcd + kube-apiserver, started by .ci/kube/start.sh."""

    def __init__(self, a):
        self.dir = os.path.abspath(a.kube_dir)
        # The API server alone, with its default watch caches, as a real
        # cluster runs it (the test cluster lists pods from etcd for the
        # 410 Gone tests: not here).
        self.env = dict(os.environ, KUBE_DIR=self.dir, ETCD_PORT=str(a.etcd_port),
                        ETCD_PEER_PORT=str(a.etcd_port + 1), API_PORT=str(a.api_port),
                        ONLY_APISERVER="1", WATCH_CACHE_SIZES="")
        self.kubeconfig = os.path.join(self.dir, "kubeconfig")
        self.kubectl = os.path.join(self.dir, "bin", "kubectl")
        self.keep = a.keep
        src = os.path.expanduser(os.environ.get("SRC_KUBE_DIR", "~/.cache/aicr-test-kube-modern"))
        os.makedirs(self.dir, exist_ok=True)
        for d in ("bin", "pki", "etc"):
            if not os.path.isdir(os.path.join(self.dir, d)):
                shutil.copytree(os.path.join(src, d), os.path.join(self.dir, d))

    def start(self):
        sh(["bash", os.path.join(REPO, ".ci/kube/start.sh")], env=self.env, stdout=sys.stderr)

    def stop(self):
        if self.keep:
            print(f"cluster left running: KUBE_DIR={self.dir} bash .ci/kube/stop.sh", file=sys.stderr)
            return
        subprocess.run(["bash", os.path.join(REPO, ".ci/kube/stop.sh")], env=self.env)

    def cpu_seconds(self):
        """CPU time used so far by the private etcd and kube-apiserver."""
        total = 0.0
        for name in ("kube-apiserver", "etcd"):
            with open(os.path.join(self.dir, "run", f"{name}.pid")) as f:
                pid = f.read().strip()
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def create(self, items):
        """Creates objects from one List document, in chunks of 2,500."""
        for i in range(0, len(items), 2500):
            doc = json.dumps({"apiVersion": "v1", "kind": "List", "items": items[i:i + 2500]})
            sh([self.kubectl, "--kubeconfig", self.kubeconfig, "create", "-f", "-"],
               input=doc.encode(), stdout=subprocess.DEVNULL)


def node(i):
    gpus = i % 2 == 1  # every other node offers GPUs; gpu-node-007 does
    n = {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": f"gpu-node-{i:03}", "labels": {
            "kubernetes.io/hostname": f"gpu-node-{i:03}",
            "node.kubernetes.io/instance-type": "p5e.48xlarge" if gpus else "m7i.4xlarge",
            **({"nvidia.com/gpu.product": "NVIDIA-H200", "nvidia.com/gpu.count": "8"} if gpus else {}),
        }},
        "spec": {"providerID": f"aws:///us-east-1a/i-{i:017x}"},
        "status": {
            "capacity": {"cpu": "192", "memory": "2063937484Ki", "pods": "110",
                         **({"nvidia.com/gpu": "8"} if gpus else {})},
            "nodeInfo": {"kubeletVersion": "v1.33.5-eks-3025e55", "containerRuntimeVersion": "containerd://1.7.27",
                         "osImage": "Ubuntu 24.04.3 LTS", "kernelVersion": "6.8.0-1024-aws",
                         "architecture": "amd64", "operatingSystem": "linux", "bootID": "",
                         "machineID": "", "systemUUID": "", "kubeProxyVersion": ""},
        },
    }
    if gpus:
        n["spec"]["taints"] = [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]
    return n


def image(k):
    return f"registry.example/bench/app-{k % IMAGES:02}:1.{k % IMAGES}"


def pod(i):
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"p-{i:06}", "namespace": NAMESPACE,
                     "labels": {"app": f"app-{i % 97}", "bench": "k8s-scale"}},
        "spec": {
            "nodeName": f"gpu-node-{i % NODES:03}",
            "automountServiceAccountToken": False,
            "containers": [
                {"name": "main", "image": image(i), "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}},
                {"name": "sidecar", "image": image(i + 1), "args": ["--port", "9400"]},
            ],
        },
    }


def check(out, pods):
    """The run read the whole cluster: two images per pod, 500 nodes."""
    snap = json.loads(out)
    subs = {(m["type"], s["subtype"]): s for m in snap["measurements"] for s in m.get("subtypes", [])}
    images = subs[("K8s", "image")].get("data", {})
    total = sum(v for k, v in images.items() if k.startswith("registry.example/bench/"))
    nodes = subs[("NodeTopology", "summary")].get("data", {}).get("nodes")
    if total != 2 * pods or nodes != NODES:
        sys.exit(f"the snapshot does not match the cluster: {total} bench containers (want {2 * pods}), "
                 f"{nodes} nodes (want {NODES})\n{out[:2000]}")


def run_once(argv, env):
    devnull = os.open(os.devnull, os.O_WRONLY)
    out_r, out_w = os.pipe()
    try:
        fa = [(os.POSIX_SPAWN_DUP2, out_w, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)]
        start = time.perf_counter()
        pid = os.posix_spawn(argv[0], argv, env, file_actions=fa)
        os.close(out_w)
        out_w = None
        chunks = []
        while True:
            b = os.read(out_r, 1 << 16)
            if not b:
                break
            chunks.append(b)
        _, status, _ = os.wait4(pid, 0)
        wall = time.perf_counter() - start
    finally:
        os.close(devnull)
        os.close(out_r)
        if out_w is not None:
            os.close(out_w)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"{' '.join(argv)} exited {code}")
    return wall, b"".join(chunks).decode()


def peak_rss_mib(argv, env, runs):
    gnu_time = shutil.which("time", path="/usr/bin:/bin")
    if gnu_time is None:
        sys.exit("GNU time is needed for peak RSS: apt-get install time")
    peaks = []
    for _ in range(runs):
        r = subprocess.run([gnu_time, "-f", "%M", *argv], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True, check=True)
        peaks.append(int(r.stderr.strip().splitlines()[-1]) / 1024.0)
    return max(peaks)


def measure(argv, env, runs, pods, checked, cluster):
    """Median, min and max wall seconds, peak RSS MiB, and the median CPU
    seconds the API server and etcd spent on one run (the floor of the
    wall time: the collector waits for them)."""
    for _ in range(2):
        _, out = run_once(argv, env)  # warm caches (the apiserver's too)
        if checked:
            check(out, pods)
    walls, server = [], []
    for _ in range(runs):
        c0 = cluster.cpu_seconds()
        w, out = run_once(argv, env)
        server.append(cluster.cpu_seconds() - c0)
        if checked:
            check(out, pods)
        walls.append(w)
    peak = peak_rss_mib(argv, env, max(3, runs // 2))
    return statistics.median(walls), min(walls), max(walls), peak, statistics.median(server)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default=os.path.join(REPO, "target", "dist", "aicr"))
    ap.add_argument("--go-binary", help="Go aicr v0.11.1, measured in the same run when given")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--sizes", default="5000,10000,20000")
    ap.add_argument("--kube-dir", default="/tmp/kube-scale")
    ap.add_argument("--api-port", type=int, default=17443)
    ap.add_argument("--etcd-port", type=int, default=13379)
    ap.add_argument("--keep", action="store_true", help="leave the private cluster running")
    ap.add_argument("--table", help="append a JSON line per size (case, median_ms, peak_mib, target, ok) to this file")
    a = ap.parse_args()
    binary = os.path.abspath(a.binary)
    if not os.access(binary, os.X_OK):
        sys.exit(f"no binary at {binary}: run `make dist` first, or give --binary")
    sizes = sorted(int(s) for s in a.sizes.split(","))
    cluster = Cluster(a)
    try:
        cluster.start()  # a failed start may leave etcd running: stopped below
        bench(a, binary, sizes, cluster)
    finally:
        cluster.stop()


def bench(a, binary, sizes, cluster):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AICR_") and k not in ("KUBECONFIG", "NODE_NAME")}
    ours = [binary, "snapshot", "--filter", "k8s", "-t", "json", "--no-timestamp",
            "-k", cluster.kubeconfig, "--node-name", NODE]
    go = None
    if a.go_binary:
        go = [os.path.abspath(a.go_binary), "snapshot", "--kubeconfig", cluster.kubeconfig]
    go_env = dict(env, AICR_AGENT_MODE="true", NODE_NAME=NODE, KUBECONFIG=cluster.kubeconfig)

    t = time.perf_counter()
    cluster.create([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}])
    # No controller manager runs to create the namespace's default
    # ServiceAccount, which pod admission requires.
    cluster.create([{"apiVersion": "v1", "kind": "ServiceAccount",
                     "metadata": {"name": "default", "namespace": NAMESPACE}}])
    cluster.create([node(i) for i in range(NODES)])
    print(f"{NODES} nodes created in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    print(f"binary: {binary} ({os.path.getsize(binary) / 1024 / 1024:.2f} MiB), {a.runs} runs per size, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, private kube-apiserver on 127.0.0.1:{a.api_port}")
    print("server CPU: CPU seconds the kube-apiserver and etcd spent serving one run (median)")
    print(f"{'pods':>6} {'median s':>9} {'min-max s':>12} {'server CPU':>10} {'peak RSS':>9}   {'Go aicr v0.11.1':34} {'time ratio':>10}  before (issue)")
    made = 0
    rows = {}
    go_med = {}
    for size in sizes:
        t = time.perf_counter()
        cluster.create([pod(i) for i in range(made, size)])
        print(f"{size - made} pods created in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        made = size
        med, lo, hi, peak, srv = measure(ours, env, a.runs, size, True, cluster)
        rows[size] = (med, peak)
        if go:
            gmed, glo, ghi, gpeak, _ = measure(go, go_env, a.runs, size, False, cluster)
            go_text = f"{gmed:.3f} s ({glo:.2f}-{ghi:.2f}), {gpeak:.0f} MiB"
            ratio = f"{med / gmed:.2f}x"
            go_med[size] = gmed
        elif size in GO_ISSUE:
            glo, ghi, plo, phi = GO_ISSUE[size]
            go_text = f"{glo:.2f}-{ghi:.2f} s, {plo}-{phi} MiB (issue)"
            ratio = f"{med / glo:.2f}x"
        else:
            go_text, ratio = "not measured", "-"
        print(f"{size:6} {med:9.3f} {f'{lo:.3f}-{hi:.3f}':>12} {srv:9.3f}s {peak:6.1f}MiB   {go_text:34} {ratio:>10}  {OURS_BEFORE.get(size, '-')}")
    # The acceptance targets of issue #12.
    ok = True
    table = {size: ("-", True) for size in rows}
    if 5000 in rows and 20000 in rows:
        growth = rows[20000][1] / rows[5000][1] - 1
        hit = growth <= 0.10 and rows[20000][1] < 32
        table[20000] = (f"peak RSS < 32 MiB, within 10% of 5,000 pods' ({growth * 100:+.1f}%)", hit)
        ok &= hit
        print(f"peak RSS 20,000 vs 5,000 pods: {growth * 100:+.1f}% (target within 10%, under 32 MiB): {'ok' if hit else 'MISSED'}")
    if 10000 in rows:
        go_time, where = (go_med[10000], "measured now") if 10000 in go_med else (0.44, "from the issue")
        target = go_time / 2
        hit = rows[10000][0] <= target
        table[10000] = (f"<= {target * 1000:.0f} ms (half of Go aicr's, {where})", hit)
        ok &= hit
        print(f"wall time at 10,000 pods: {rows[10000][0]:.3f} s (target at most {target:.3f} s, half of Go aicr's "
              f"{go_time:.3f} s, {where}): {'ok' if hit else 'MISSED'}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    if a.table:
        with open(a.table, "a") as f:
            for size, (med, peak) in sorted(rows.items()):
                target, hit = table[size]
                f.write(json.dumps({"case": f"snapshot --filter k8s, 500 nodes, {size} pods", "median_ms": med * 1000,
                                    "peak_mib": peak, "target": target, "ok": hit}) + "\n")
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
