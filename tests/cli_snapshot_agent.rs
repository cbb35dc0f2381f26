//! Whole runs of `aicr snapshot --agent`: the manifests of `--dry-run`
//! (nothing created, no cluster needed), the flags refused before any
//! request, and, on a test cluster with a scheduler, controller-manager and
//! kwok, whole agent runs (see the cluster tests below).

mod common;

use common::*;

/// A run id for `--run-id`: `c` and 11 digits of `unique` (the process
/// id, then the time's nanoseconds, padded with zeros when short).
fn run_id(c: char) -> String {
    let digits = common::cluster::unique("x").replace('-', "");
    format!("{c}{:0<11.11}", &digits[1..])
}

fn dry_run(extra: &[&str]) -> std::process::Output {
    let mut args = vec!["snapshot", "--agent", "--dry-run", "--run-id", "0123abcd"];
    args.extend_from_slice(extra);
    // No ~/.kube/config of the machine's names a namespace.
    aicr()
        .args(&args)
        .env("HOME", "/nonexistent")
        .output()
        .unwrap()
}

/// The default objects: restricted pod, GPU nodes only, least rights.
#[test]
fn dry_run_prints_the_objects_and_needs_no_cluster() {
    let out = aicr()
        .args([
            "snapshot",
            "--agent",
            "--dry-run",
            "--run-id",
            "0123abcd",
            "-n",
            "gpu-team",
        ])
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env("HOME", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    let text = stdout(&out).replace(env!("CARGO_PKG_VERSION"), "[VERSION]");
    settings().bind(|| insta::assert_snapshot!("agent_dry_run_default", text));
    let docs: Vec<serde_json::Value> = text
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .map(parse_yaml)
        .collect();
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "ServiceAccount",
            "ConfigMap",
            "Role",
            "RoleBinding",
            "ClusterRole",
            "ClusterRoleBinding",
            "Job"
        ]
    );
    for d in &docs {
        assert_eq!(
            d["metadata"]["labels"]["app.kubernetes.io/instance"],
            "0123abcd"
        );
    }
    // Same input, same bytes.
    assert_eq!(
        stdout(&out),
        stdout(&dry_run(&["-n", "gpu-team"])),
        "the dry run is deterministic with --run-id"
    );
}

#[test]
fn dry_run_options() {
    let out = dry_run(&[
        "--privileged",
        "--image",
        "registry.example/aicr:test",
        "--image-pull-secret",
        "regcred",
        "--service-account-name",
        "snapshotter",
        "--node-selector",
        "kubernetes.io/hostname=gpu-1",
        "--toleration",
        "dedicated=gpu:NoSchedule",
        "--toleration",
        "example.com/maintenance",
        "--require-gpu",
        "--job-name",
        "mine",
        "--timeout",
        "90s",
        "--filter",
        "gpu,os",
        "-t",
        "json",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let list: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(list["kind"], "List");
    let items = list["items"].as_array().unwrap();
    // An existing ServiceAccount: none is created.
    assert_eq!(items.len(), 6);
    assert!(items.iter().all(|i| i["kind"] != "ServiceAccount"));
    let job = items.last().unwrap();
    assert_eq!(job["metadata"]["name"], "mine-snapshot-0123abcd");
    assert_eq!(job["spec"]["activeDeadlineSeconds"], 150);
    let pod = &job["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "snapshotter");
    assert_eq!(pod["hostPID"], true);
    assert_eq!(
        pod["nodeSelector"],
        serde_json::json!({"kubernetes.io/hostname": "gpu-1"})
    );
    assert_eq!(
        pod["tolerations"],
        serde_json::json!([
            {"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"},
            {"key": "example.com/maintenance", "operator": "Exists"}
        ])
    );
    assert_eq!(
        pod["imagePullSecrets"],
        serde_json::json!([{"name": "regcred"}])
    );
    let c = &pod["containers"][0];
    assert_eq!(c["image"], "registry.example/aicr:test");
    assert_eq!(c["securityContext"]["privileged"], true);
    assert_eq!(c["resources"]["limits"]["nvidia.com/gpu"], 1);
    assert_eq!(
        c["args"],
        serde_json::json!([
            "snapshot",
            "-o",
            "cm://default/mine-snapshot-0123abcd",
            "--root",
            "/host",
            "--filter",
            "gpu,os"
        ])
    );
    assert_eq!(
        c["volumeMounts"],
        serde_json::json!([{"name": "host", "mountPath": "/host", "readOnly": true}])
    );
}

/// Environment variables of Go aicr's flags; without -n or
/// AICR_NAMESPACE, the namespace of the kubeconfig's context.
#[test]
fn dry_run_environment() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    std::fs::write(
        &kc,
        "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: c, context: {cluster: c, user: u, namespace: from-context}}]\n",
    )
    .unwrap();
    let out = aicr()
        .args(["snapshot", "--agent", "--dry-run", "--run-id", "x1"])
        .env("KUBECONFIG", &kc)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("namespace: from-context"), "{text}");
    assert!(!text.contains("namespace: default"), "{text}");
    assert!(
        text.contains("cm://from-context/aicr-snapshot-x1"),
        "{text}"
    );

    let out = aicr()
        .args(["snapshot", "--agent", "--dry-run", "--run-id", "x1"])
        .env("KUBECONFIG", &kc)
        .env("AICR_NAMESPACE", "from-env")
        .env("AICR_IMAGE", "example/aicr:env")
        .env("AICR_RUNTIME_CLASS", "nvidia")
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("namespace: from-env"), "{text}");
    assert!(text.contains("image: example/aicr:env"), "{text}");
    assert!(text.contains("runtimeClassName: nvidia"), "{text}");
}

/// Bad agent flags: exit 2 with what is allowed, before any request.
#[test]
fn bad_agent_flags() {
    let cases: &[&[&str]] = &[
        &["snapshot", "--dry-run"],
        &["snapshot", "--privileged"],
        &["snapshot", "--agent", "--dry-run", "-n", "Bad_NS"],
        &[
            "snapshot",
            "--agent",
            "--dry-run",
            "--toleration",
            "k=v:Sometimes",
        ],
        &[
            "snapshot",
            "--agent",
            "--dry-run",
            "--toleration",
            "bad key",
        ],
        &[
            "snapshot",
            "--agent",
            "--dry-run",
            "--node-selector",
            "novalue",
        ],
        &["snapshot", "--agent", "--dry-run", "--run-id", "NOT-HEX"],
        &[
            "snapshot",
            "--agent",
            "--dry-run",
            "--job-name",
            "a-very-long-job-name-prefix",
        ],
        &["snapshot", "--agent", "--dry-run", "--filter", "os"],
        &["snapshot", "--agent", "--dry-run", "--exclude", "gpu,k8s"],
        &["snapshot", "--agent", "--dry-run", "--root", "/tmp"],
        &["snapshot", "--agent", "--dry-run", "--timeout", "2h"],
        &["snapshot", "--agent", "--dry-run", "-t", "table"],
        &["snapshot", "--agent", "--dry-run", "-o", "cm://ns/name"],
        &[
            "snapshot",
            "--agent",
            "--dry-run",
            "--require-gpu",
            "--runtime-class",
            "nvidia",
        ],
    ];
    let mut all = String::new();
    for args in cases {
        let out = run(args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert_eq!(stdout(&out), "", "{args:?}");
        all.push_str(&transcript(args));
    }
    settings().bind(|| insta::assert_snapshot!("agent_bad_flags", all));
}

/// Bad --all-nodes flags: exit 2 with what is allowed, before any request.
#[test]
fn bad_fleet_flags() {
    let cases: &[&[&str]] = &[
        &["snapshot", "--all-nodes"],
        &["snapshot", "--agent", "--parallel", "5"],
        &["snapshot", "--agent", "--all-nodes", "--parallel", "0"],
        &["snapshot", "--agent", "--all-nodes", "--parallel", "257"],
        &["snapshot", "--agent", "--all-nodes", "-o", "-"],
        &["snapshot", "--agent", "--all-nodes", "-o", "cm://ns/name"],
        &["snapshot", "--agent", "--all-nodes", "-o", "Cargo.toml"],
        &["snapshot", "--agent", "--all-nodes", "-o", "no-such-dir"],
        &["snapshot", "--agent", "--all-nodes", "--no-cleanup"],
        &[
            "snapshot",
            "--agent",
            "--all-nodes",
            "--dry-run",
            "-o",
            "snaps/",
        ],
    ];
    let mut all = String::new();
    for args in cases {
        let out = run(args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert_eq!(stdout(&out), "", "{args:?}");
        all.push_str(&transcript(args));
    }
    settings().bind(|| insta::assert_snapshot!("fleet_bad_flags", all));
}

/// Without a cluster the run stops before creating anything: exit 6.
#[test]
fn no_cluster_is_unavailable() {
    let out = aicr()
        .args(["snapshot", "--agent"])
        .env("HOME", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(code(&out), 6, "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    assert!(
        stderr(&out).contains("no cluster configured"),
        "{}",
        stderr(&out)
    );
}

// ---------------------------------------------------------------------------
// On a cluster with a scheduler, a controller-manager and kwok (v1.25+,
// `.ci/kube` of the modern test environment; give its directory in
// KUBE_DIR). kwok plays the kubelet of nodes labelled type=kwok and
// completes a Job's pod as soon as it runs, so the tests "play the
// container" before the GPU node exists: the pod waits unschedulable, the
// test runs the pod's own command line with the Job's ServiceAccount token,
// then creates the GPU node, and kwok runs and completes the pod there.

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::cluster::{cluster, unique, Cluster};

const NEEDS: &str = "needs the test cluster v1.25+ (.ci/kube)";

/// The cluster, checked to be one with Jobs, a scheduler and kwok.
fn modern() -> Cluster {
    let c = cluster();
    let v: serde_json::Value =
        serde_json::from_str(&c.kubectl(&["version", "-o", "json"], None)).unwrap();
    let minor: u32 = v["serverVersion"]["minor"]
        .as_str()
        .unwrap()
        .trim_end_matches('+')
        .parse()
        .unwrap();
    assert!(
        minor >= 25,
        "{NEEDS}: the server at KUBE_DIR is v1.{minor}; set KUBE_DIR to the modern test environment"
    );
    c
}

/// A namespace of the test, deleted at the end.
type Ns = common::cluster::Namespace;

/// A kwok node of the test, deleted at the end.
struct Node<'a> {
    c: &'a Cluster,
    name: String,
}

impl<'a> Node<'a> {
    fn new(c: &'a Cluster, name: &str, labels: &str, taints: &str) -> Node<'a> {
        let yaml = format!(
            "apiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\n  labels: {{type: kwok, {labels}}}\nspec:\n  taints: [{taints}]\n"
        );
        c.kubectl(&["apply", "-f", "-"], Some(&yaml));
        Node {
            c,
            name: name.to_string(),
        }
    }
}

impl Drop for Node<'_> {
    fn drop(&mut self) {
        let _ = self
            .c
            .try_kubectl(&["delete", "node", &self.name, "--wait=false"], "");
    }
}

/// The CLI running in the background, its output in files.
struct Agent {
    child: Child,
    out: PathBuf,
    err: PathBuf,
    _dir: tempfile::TempDir,
}

impl Agent {
    fn start(c: &Cluster, args: &[&str]) -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("stdout");
        let err = dir.path().join("stderr");
        let child = Command::new(assert_cmd::cargo::cargo_bin("aicr"))
            .args(["snapshot", "--agent"])
            .args(args)
            .env("KUBECONFIG", &c.kubeconfig)
            .env_remove("AICR_NAMESPACE")
            .env_remove("AICR_IMAGE")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        Agent {
            child,
            out,
            err,
            _dir: dir,
        }
    }

    /// Waits (at most 60 s) for the exit; its status, stdout and stderr.
    fn finish(self) -> (std::process::ExitStatus, String, String) {
        self.finish_within(Duration::from_secs(60))
    }

    /// Whether it has exited.
    fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Waits at most `limit` for the exit; its status, stdout and stderr.
    fn finish_within(mut self, limit: Duration) -> (std::process::ExitStatus, String, String) {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                // Drop stops it (SIGTERM, so it cleans up).
                panic!(
                    "the agent run did not end within {limit:?}: {}",
                    std::fs::read_to_string(&self.err).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        (
            status,
            std::fs::read_to_string(&self.out).unwrap(),
            std::fs::read_to_string(&self.err).unwrap(),
        )
    }
}

impl Drop for Agent {
    /// A test that failed half-way stops the CLI the way a user would
    /// (SIGTERM), so it deletes its objects; killed only if it has not
    /// ended after 30 s.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            // SAFETY: kill(2) on the child's pid, which has not been reaped.
            unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(30);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `f` every 200 ms until it gives a value, at most 30 s.
fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The run's pod, once the Job made it.
fn pod_of(c: &Cluster, ns: &str, run: &str) -> serde_json::Value {
    wait_for("the agent's pod", || {
        let (ok, text) = c.try_kubectl(
            &[
                "get",
                "pods",
                "-n",
                ns,
                "-l",
                &format!("app.kubernetes.io/instance={run}"),
                "-o",
                "json",
            ],
            "",
        );
        let v: serde_json::Value = serde_json::from_str(&text).ok().filter(|_| ok)?;
        v["items"].as_array()?.first().cloned()
    })
}

/// The objects with the run's label still there (pods go a moment after
/// their Job: waited for, at most 30 s).
fn assert_nothing_left(c: &Cluster, ns: &str, run: &str) {
    let sel = format!("app.kubernetes.io/instance={run}");
    wait_for("the agent's objects to go", || {
        let a = c.kubectl(
            &[
                "get",
                "job,pod,role,rolebinding,serviceaccount,configmap",
                "-n",
                ns,
                "-l",
                &sel,
                "-o",
                "name",
            ],
            None,
        );
        let b = c.kubectl(
            &[
                "get",
                "clusterrole,clusterrolebinding",
                "-l",
                &sel,
                "-o",
                "name",
            ],
            None,
        );
        (a.trim().is_empty() && b.trim().is_empty()).then_some(())
    });
}

/// The whole run: the pod waits for a GPU node (never the plain node
/// there is), the test plays its container with the Job's own token and
/// command line, the GPU node comes, kwok completes the pod, the CLI
/// prints the snapshot the "container" wrote and leaves nothing behind.
/// Meanwhile the token is checked to reach nothing else.
#[test]
#[ignore = "needs the test cluster v1.25+ (.ci/kube)"]
fn agent_run_on_a_gpu_node_then_cleanup() {
    let c = modern();
    let ns = Ns::new(&c, "agent-run");
    let other = Ns::new(&c, "agent-other");
    let run = run_id('r');
    let plain = Node::new(&c, &format!("cpu-{run}"), "aicr-test: cpu", "");
    let agent = Agent::start(&c, &["-n", &ns.name, "--run-id", &run, "--timeout", "50s"]);
    let pod = pod_of(&c, &ns.name, &run);
    // Unschedulable: the only node has no GPU label.
    std::thread::sleep(Duration::from_secs(2));
    let pod_name = pod["metadata"]["name"].as_str().unwrap().to_string();
    let node_now = c.kubectl(
        &[
            "get",
            "pod",
            &pod_name,
            "-n",
            &ns.name,
            "-o",
            "jsonpath={.spec.nodeName}",
        ],
        None,
    );
    assert_eq!(node_now, "", "the pod must not land on {}", plain.name);

    // The container's command line, from the Job.
    let job: serde_json::Value = serde_json::from_str(&c.kubectl(
        &[
            "get",
            "job",
            &format!("aicr-snapshot-{run}"),
            "-n",
            &ns.name,
            "-o",
            "json",
        ],
        None,
    ))
    .unwrap();
    let podspec = &job["spec"]["template"]["spec"];
    let sa = podspec["serviceAccountName"].as_str().unwrap();
    let args: Vec<String> = podspec["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        args,
        [
            "snapshot",
            "-o",
            &format!("cm://{}/aicr-snapshot-{run}", ns.name),
            "--exclude",
            "os,systemd"
        ]
    );
    let dir = tempfile::tempdir().unwrap();
    let kc = c.token_kubeconfig(dir.path(), &ns.name, sa);

    // The token reaches only its own ConfigMap.
    let as_sa = |a: &[&str]| -> (bool, String) {
        let out = Command::new(&c.kubectl)
            .arg("--kubeconfig")
            .arg(&kc)
            .args(a)
            .output()
            .unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let own_ref = format!("configmap/aicr-snapshot-{run}");
    for (check, want) in [
        (
            vec!["auth", "can-i", "get", &own_ref, "-n", &ns.name],
            "yes",
        ),
        (
            vec!["auth", "can-i", "update", &own_ref, "-n", &ns.name],
            "yes",
        ),
        (vec!["auth", "can-i", "list", "nodes"], "yes"),
        (
            vec!["auth", "can-i", "get", "secrets", "-n", &ns.name],
            "no",
        ),
        (
            vec!["auth", "can-i", "create", "configmaps", "-n", &ns.name],
            "no",
        ),
        (
            vec![
                "auth",
                "can-i",
                "update",
                "configmap/kube-root-ca.crt",
                "-n",
                &ns.name,
            ],
            "no",
        ),
        (
            vec!["auth", "can-i", "delete", &own_ref, "-n", &ns.name],
            "no",
        ),
        (
            vec!["auth", "can-i", "get", "configmaps", "-n", &other.name],
            "no",
        ),
        (
            vec!["auth", "can-i", "create", "pods", "-n", &ns.name],
            "no",
        ),
    ] {
        let (_, text) = as_sa(&check);
        assert_eq!(text.lines().next().unwrap_or(""), want, "{check:?}: {text}");
    }
    for real in [
        vec!["get", "secrets", "-n", &ns.name],
        vec!["create", "configmap", "stray", "-n", &ns.name],
        vec!["get", "configmap", "kube-root-ca.crt", "-n", &other.name],
        vec![
            "label",
            "configmap",
            "kube-root-ca.crt",
            "x=y",
            "-n",
            &ns.name,
        ],
    ] {
        let (ok, text) = as_sa(&real);
        assert!(
            !ok && text.to_lowercase().contains("forbidden"),
            "{real:?}: {text}"
        );
    }

    // Play the container, as the pod would run it on the GPU node.
    let gpu_name = format!("gpu-{run}");
    let played = aicr()
        .args(&args)
        .args(["--filter", "k8s", "-k"])
        .arg(&kc)
        .env("NODE_NAME", &gpu_name)
        .output()
        .unwrap();
    assert_eq!(code(&played), 0, "{}", stderr(&played));
    let gpu = Node::new(
        &c,
        &gpu_name,
        "nvidia.com/gpu.present: \"true\"",
        "{key: nvidia.com/gpu, value: present, effect: NoSchedule}",
    );

    let (status, out, err) = agent.finish();
    assert_eq!(status.code(), Some(0), "{err}");
    let snap = parse_yaml(&out);
    assert_eq!(snap["kind"], "Snapshot");
    assert_eq!(snap["metadata"]["source-node"], gpu.name.as_str());
    let types: Vec<&str> = snap["measurements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["type"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"K8s"), "{types:?}");
    for m in snap["measurements"].as_array().unwrap() {
        if m["type"] == "OS" || m["type"] == "SystemD" {
            assert_eq!(
                m["unavailable"],
                "not collected: the agent ran without --privileged, so it cannot read the node's files"
            );
        }
    }
    assert!(
        err.contains("the captured snapshot holds no GPU data"),
        "{err}"
    );
    // Where the scheduler put the pod: the GPU node.
    let events = c.kubectl(
        &[
            "get",
            "events",
            "-n",
            &ns.name,
            "--field-selector",
            &format!("involvedObject.name={pod_name},reason=Scheduled"),
            "-o",
            "jsonpath={.items[*].message}",
        ],
        None,
    );
    assert!(events.ends_with(&format!(" to {}", gpu.name)), "{events}");
    assert_nothing_left(&c, &ns.name, &run);
}

/// The default pod passes Pod Security "restricted"; the privileged one
/// does not (so the check can fail).
#[test]
#[ignore = "needs the test cluster v1.25+ (.ci/kube)"]
fn default_pod_is_admitted_under_restricted() {
    let c = modern();
    let ns = Ns::new(&c, "agent-pss");
    c.kubectl(
        &[
            "label",
            "namespace",
            &ns.name,
            "pod-security.kubernetes.io/enforce=restricted",
        ],
        None,
    );
    let pod_of_job = |extra: &[&str]| -> String {
        let mut a = vec![
            "snapshot",
            "--agent",
            "--dry-run",
            "-t",
            "json",
            "-n",
            &ns.name,
        ];
        a.extend_from_slice(extra);
        let out = run(&a);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let list: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        let job = list["items"].as_array().unwrap().last().unwrap().clone();
        let mut spec = job["spec"]["template"]["spec"].clone();
        // The ServiceAccount does not exist in a dry run.
        spec.as_object_mut().unwrap().remove("serviceAccountName");
        serde_json::json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "agent-pss", "namespace": ns.name},
            "spec": spec,
        })
        .to_string()
    };
    let (ok, text) = c.try_kubectl(&["create", "--dry-run=server", "-f", "-"], &pod_of_job(&[]));
    assert!(ok, "{text}");
    assert!(!text.contains("Warning"), "{text}");
    let (ok, text) = c.try_kubectl(
        &["create", "--dry-run=server", "-f", "-"],
        &pod_of_job(&["--privileged"]),
    );
    assert!(
        !ok && text.contains("violates PodSecurity \"restricted"),
        "{text}"
    );
}

/// SIGINT while the Job waits: everything created is deleted, then the
/// signal ends the process.
#[test]
#[ignore = "needs the test cluster v1.25+ (.ci/kube)"]
fn interrupt_cleans_up() {
    let c = modern();
    let ns = Ns::new(&c, "agent-int");
    let run = run_id('i');
    let agent = Agent::start(
        &c,
        &[
            "-n",
            &ns.name,
            "--run-id",
            &run,
            "--node-selector",
            &format!("aicr-test/run={run}"),
        ],
    );
    pod_of(&c, &ns.name, &run);
    // SAFETY: kill(2) on the child's pid.
    unsafe { libc::kill(agent.child.id() as i32, libc::SIGINT) };
    let (status, out, err) = agent.finish();
    assert_eq!(status.signal(), Some(libc::SIGINT), "{err}");
    assert_eq!(out, "");
    assert!(
        err.contains("interrupted: deleted the agent's objects"),
        "{err}"
    );
    assert_nothing_left(&c, &ns.name, &run);
}

/// The pod fails: exit 6 with the pod's reason, nothing left.
#[test]
#[ignore = "needs the test cluster v1.25+ (.ci/kube)"]
fn failed_job_cleans_up() {
    let c = modern();
    let ns = Ns::new(&c, "agent-fail");
    let run = run_id('f');
    let agent = Agent::start(
        &c,
        &[
            "-n",
            &ns.name,
            "--run-id",
            &run,
            "--node-selector",
            &format!("aicr-test/run={run}"),
        ],
    );
    let pod = pod_of(&c, &ns.name, &run);
    // As a kubelet would report it.
    c.kubectl(
        &[
            "patch",
            "pod",
            pod["metadata"]["name"].as_str().unwrap(),
            "-n",
            &ns.name,
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"phase":"Failed","reason":"Evicted","message":"test: the node ran out of memory"}}"#,
        ],
        None,
    );
    let (status, out, err) = agent.finish();
    assert_eq!(status.code(), Some(6), "{err}");
    assert_eq!(out, "");
    assert!(
        err.contains(&format!(
            "error: the snapshot Job {}/aicr-snapshot-{run} failed: BackoffLimitExceeded",
            ns.name
        )),
        "{err}"
    );
    assert!(
        err.contains("Evicted test: the node ran out of memory"),
        "{err}"
    );
    assert_nothing_left(&c, &ns.name, &run);
}

/// No node matches: exit 5 after --timeout, saying why the pod waits
/// (12 s: time for the Job controller to make the pod on a busy machine).
#[test]
#[ignore = "needs the test cluster v1.25+ (.ci/kube)"]
fn timeout_says_why_and_cleans_up() {
    let c = modern();
    let ns = Ns::new(&c, "agent-time");
    let run = run_id('t');
    let agent = Agent::start(
        &c,
        &[
            "-n",
            &ns.name,
            "--run-id",
            &run,
            "--timeout",
            "12s",
            "--node-selector",
            &format!("aicr-test/run={run}"),
        ],
    );
    let (status, out, err) = agent.finish();
    assert_eq!(status.code(), Some(5), "{err}");
    assert_eq!(out, "");
    assert!(
        err.contains(&format!("error: the snapshot Job {}/aicr-snapshot-{run} did not finish within 12s (--timeout); pod aicr-snapshot-{run}-", ns.name)),
        "{err}"
    );
    assert!(err.contains("PodScheduled: "), "{err}");
    assert_nothing_left(&c, &ns.name, &run);
}

/// A user without the rights: exit 4 listing what is missing, nothing
/// created.
#[test]
#[ignore = "needs the test cluster v1.25+ (.ci/kube)"]
fn missing_permissions_are_listed_before_anything_is_created() {
    let c = modern();
    let ns = Ns::new(&c, "agent-perm");
    let run = run_id('p');
    let agent = Agent::start(
        &c,
        &["-n", &ns.name, "--run-id", &run, "--context", "nobody"],
    );
    let (status, out, err) = agent.finish();
    assert_eq!(status.code(), Some(4), "{err}");
    assert_eq!(out, "");
    assert!(
        err.contains("(nothing was created); missing permissions:"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "  - create jobs.batch in namespace {} (to create the agent's objects)",
            ns.name
        )),
        "{err}"
    );
    assert!(
        err.contains("  - list nodes (cluster-wide) (to grant it to the agent)"),
        "{err}"
    );
    assert_eq!(err.matches("\n  - ").count(), 24, "{err}");
    assert_nothing_left(&c, &ns.name, &run);
}

/// `--no-cleanup` keeps every object, also when the run fails, and says
/// which and how to delete them.
#[test]
#[ignore = "needs the test cluster v1.25+ (.ci/kube)"]
fn no_cleanup_keeps_and_lists_the_objects() {
    let c = modern();
    let ns = Ns::new(&c, "agent-keep");
    let run = run_id('k');
    let agent = Agent::start(
        &c,
        &[
            "-n",
            &ns.name,
            "--run-id",
            &run,
            "--timeout",
            "2s",
            "--no-cleanup",
            "--node-selector",
            &format!("aicr-test/run={run}"),
        ],
    );
    let (status, _, err) = agent.finish();
    assert_eq!(status.code(), Some(5), "{err}");
    let name = format!("aicr-snapshot-{run}");
    let cname = format!("aicr-snapshot-{}-{run}", ns.name);
    for kept in [
        format!("ServiceAccount {}/{name}", ns.name),
        format!("ConfigMap {}/{name}", ns.name),
        format!("Role {}/{name}", ns.name),
        format!("RoleBinding {}/{name}", ns.name),
        format!("ClusterRole {cname}"),
        format!("ClusterRoleBinding {cname}"),
        format!("Job {}/{name}", ns.name),
    ] {
        assert!(
            err.contains(&format!("warning: --no-cleanup: kept {kept}\n")),
            "{kept}: {err}"
        );
    }
    let sel = format!("app.kubernetes.io/instance={run}");
    let there = c.kubectl(
        &[
            "get",
            "job,role,rolebinding,serviceaccount,configmap",
            "-n",
            &ns.name,
            "-l",
            &sel,
            "-o",
            "name",
        ],
        None,
    );
    assert_eq!(there.lines().count(), 5, "{there}");
    let cluster_there = c.kubectl(
        &[
            "get",
            "clusterrole,clusterrolebinding",
            "-l",
            &sel,
            "-o",
            "name",
        ],
        None,
    );
    assert_eq!(cluster_there.lines().count(), 2, "{cluster_there}");
    // The command the warning gives removes them.
    assert!(err.contains(&format!(
        "delete them with: kubectl delete job,configmap,role,rolebinding,serviceaccount -n {} -l {sel} && kubectl delete clusterrole,clusterrolebinding -l {sel}",
        ns.name
    )), "{err}");
    c.kubectl(
        &[
            "delete",
            "job,configmap,role,rolebinding,serviceaccount",
            "-n",
            &ns.name,
            "-l",
            &sel,
        ],
        None,
    );
    c.kubectl(
        &["delete", "clusterrole,clusterrolebinding", "-l", &sel],
        None,
    );
    assert_nothing_left(&c, &ns.name, &run);
}

/// The Containerfile, read as a builder would: a pinned base (no `latest`),
/// the binary built from this checkout with the lock file, a runtime stage
/// that runs as 65532 with `aicr` as an exec-form entrypoint, and nothing
/// fetched by `ADD` from the network. (No linter such as hadolint is
/// available here; this checks the structure the agent depends on.)
#[test]
fn containerfile_structure() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Containerfile"))
        .expect("a Containerfile at the top level");
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let froms: Vec<&str> = lines
        .iter()
        .filter(|l| l.starts_with("FROM "))
        .copied()
        .collect();
    assert_eq!(froms.len(), 2, "a build and a runtime stage: {froms:?}");
    for f in &froms {
        let image = f.split_whitespace().nth(1).unwrap();
        assert!(image.contains(':'), "{image}: pin a tag");
        assert!(!image.ends_with(":latest"), "{image}: not latest");
    }
    let runtime = text.rsplit("\nFROM ").next().unwrap();
    assert!(runtime.contains("\nUSER 65532:65532\n"), "{runtime}");
    assert!(
        runtime.contains("\nENTRYPOINT [\"/usr/local/bin/aicr\"]"),
        "{runtime}"
    );
    assert!(runtime.contains("COPY --from=build /src/target/dist/aicr /usr/local/bin/aicr"));
    assert!(text.contains("cargo build --profile dist --locked --bin aicr"));
    assert!(!lines.iter().any(|l| l.starts_with("ADD ")), "no ADD");
    // The build context leaves out build outputs and history.
    let ignore =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.containerignore")).unwrap();
    for p in ["target", ".git"] {
        assert!(ignore.lines().any(|l| l == p), "{p}");
    }
}

/// A namespace that does not exist: exit 3 naming it, nothing left (the
/// cluster-scoped objects come after the namespaced ones).
#[test]
#[ignore = "needs the test cluster v1.25+ (.ci/kube)"]
fn missing_namespace_is_not_found() {
    let c = modern();
    let ns = unique("agent-none");
    let run = run_id('n');
    let (status, out, err) = Agent::start(&c, &["-n", &ns, "--run-id", &run]).finish();
    assert_eq!(status.code(), Some(3), "{err}");
    assert_eq!(out, "");
    assert!(
        err.contains(&format!("error: namespace {ns} does not exist on https://")),
        "{err}"
    );
    assert!(
        err.contains(": create it, or give another with -n/--namespace"),
        "{err}"
    );
    let sel = format!("app.kubernetes.io/instance={run}");
    let left = c.kubectl(
        &[
            "get",
            "clusterrole,clusterrolebinding",
            "-l",
            &sel,
            "-o",
            "name",
        ],
        None,
    );
    assert_eq!(left, "");
}

// ---------------------------------------------------------------------------
// --all-nodes over 200 kwok nodes.

/// The test's kwok nodes, deleted at the end (by their label).
struct Fleet<'a> {
    c: &'a Cluster,
    label: String,
}

impl Drop for Fleet<'_> {
    fn drop(&mut self) {
        let _ = self
            .c
            .try_kubectl(&["delete", "nodes", "-l", &self.label, "--wait=false"], "");
    }
}

/// Items of a `kubectl get -o json` list.
fn items(c: &Cluster, args: &[&str]) -> Vec<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_str(&c.kubectl(args, None)).unwrap();
    v["items"].as_array().cloned().unwrap_or_default()
}

/// 200 kwok nodes (labelled for this test only, not nvidia.com/gpu.present:
/// other tests running at the same time wait for GPU nodes of their own),
/// each tainted so its pod waits until the test has played its container.
/// 10 nodes' pods are failed as a kubelet would report it; for the others
/// the test writes the node's snapshot into the node's ConfigMap, as the
/// container's `aicr snapshot -o cm://…` would (running 200 containers'
/// command lines is too slow here; the single-node test above runs the
/// real one), then removes the taint, and kwok runs and completes the pod.
/// Meanwhile it polls the run's Jobs: never more than --parallel active
/// at once. Then: 180 files, the 20 failed nodes named, exit 6, nothing
/// left, and on stdout the summary as JSON (-t json), in node order.
#[test]
#[ignore = "needs the test cluster v1.25+ (.ci/kube)"]
fn fleet_over_200_nodes() {
    const N: usize = 200;
    const PARALLEL: usize = 10;
    let c = modern();
    let ns = Ns::new(&c, "agent-fleet");
    let run = run_id('m');
    let label = format!("aicr-test/fleet={run}");
    let fleet = Fleet {
        c: &c,
        label: label.clone(),
    };
    let node = |i: usize| format!("fleet-{run}-{i:03}");
    // Every tenth node's pod fails (those ending in 7).
    let failing = |n: &str| n.ends_with('7');
    let nodes: Vec<String> = (0..N).map(node).collect();
    let want_failed: Vec<&String> = nodes.iter().filter(|n| failing(n)).collect();
    assert_eq!(want_failed.len(), 20, "{want_failed:?}");
    let list = serde_json::json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": nodes.iter().map(|n| serde_json::json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": { "name": n, "labels": { "type": "kwok", "aicr-test/fleet": run } },
            "spec": { "taints": [{ "key": "aicr-test/hold", "value": run, "effect": "NoSchedule" }] },
        })).collect::<Vec<_>>(),
    });
    c.kubectl(&["apply", "-f", "-"], Some(&list.to_string()));

    let dir = tempfile::tempdir().unwrap();
    let out_dir = format!("{}/snaps/", dir.path().display());
    let started = Instant::now();
    let mut agent = Agent::start(
        &c,
        &[
            "--all-nodes",
            "--parallel",
            &PARALLEL.to_string(),
            "-n",
            &ns.name,
            "--run-id",
            &run,
            "--node-selector",
            &label,
            "--timeout",
            "100s",
            "-o",
            &out_dir,
            "-t",
            "json",
        ],
    );
    let sel = format!("app.kubernetes.io/instance={run}");
    let mut handled = std::collections::BTreeSet::new();
    let mut max_active = 0;
    while !agent.exited() {
        assert!(
            started.elapsed() < Duration::from_secs(150),
            "the fleet run did not end within 150 s ({} nodes played)",
            handled.len()
        );
        let active = items(
            &c,
            &["get", "jobs", "-n", &ns.name, "-l", &sel, "-o", "json"],
        )
        .iter()
        .filter(|j| {
            !j["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| {
                    (c["type"] == "Complete" || c["type"] == "Failed") && c["status"] == "True"
                })
        })
        .count();
        max_active = max_active.max(active);
        let mut release = Vec::new();
        let mut configmaps = Vec::new();
        for pod in items(
            &c,
            &["get", "pods", "-n", &ns.name, "-l", &sel, "-o", "json"],
        ) {
            let n = pod["spec"]["affinity"]["nodeAffinity"]
                ["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]
                ["matchFields"][0]["values"][0]
                .as_str()
                .expect("a fleet pod is pinned to its node")
                .to_string();
            if pod["status"]["phase"] != "Pending" || !handled.insert(n.clone()) {
                continue;
            }
            if failing(&n) {
                c.kubectl(
                    &[
                        "patch",
                        "pod",
                        pod["metadata"]["name"].as_str().unwrap(),
                        "-n",
                        &ns.name,
                        "--subresource=status",
                        "--type=merge",
                        "-p",
                        r#"{"status":{"phase":"Failed","reason":"Evicted","message":"test: the node ran out of memory"}}"#,
                    ],
                    None,
                );
                continue;
            }
            let cm = pod["metadata"]["labels"]["job-name"].as_str().unwrap();
            configmaps.push(serde_json::json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": { "name": cm, "namespace": ns.name },
                "data": {
                    "format": "yaml",
                    "snapshot.yaml": format!(
                        "kind: Snapshot\napiVersion: aicr.nvidia.com/v1alpha1\nmetadata:\n  source-node: {n}\n  version: 0.0.0\nmeasurements: []\n"
                    ),
                },
            }));
            release.push(n);
        }
        if !configmaps.is_empty() {
            let list =
                serde_json::json!({ "apiVersion": "v1", "kind": "List", "items": configmaps });
            c.kubectl(
                &[
                    "apply",
                    "--server-side",
                    "--field-manager=aicr-test",
                    "-f",
                    "-",
                ],
                Some(&list.to_string()),
            );
            let mut args = vec!["taint".to_string(), "nodes".to_string()];
            args.extend(release);
            args.push("aicr-test/hold-".into());
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            c.kubectl(&args, None);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let elapsed = started.elapsed();
    let (status, out, err) = agent.finish();
    eprintln!("fleet of {N}: {elapsed:?}, at most {max_active} Jobs active at once");
    assert_eq!(status.code(), Some(6), "{err}");
    assert_eq!(handled.len(), N, "every node got its Job and pod");
    assert!(
        (2..=PARALLEL).contains(&max_active),
        "{max_active} Jobs were active at once; --parallel {PARALLEL}"
    );
    // The summary: one entry per node, in node order, nothing else.
    let summary: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let keys: Vec<&str> = summary
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["total", "ok", "failed", "timedOut", "nodes"]);
    assert_eq!(
        (
            &summary["total"],
            &summary["ok"],
            &summary["failed"],
            &summary["timedOut"]
        ),
        (&N.into(), &(N - 20).into(), &20.into(), &0.into())
    );
    let entries = summary["nodes"].as_array().unwrap();
    let listed: Vec<&str> = entries
        .iter()
        .map(|e| e["node"].as_str().unwrap())
        .collect();
    assert_eq!(listed, nodes, "in node order");
    for (n, e) in nodes.iter().zip(entries) {
        if failing(n) {
            let reason = e["reason"].as_str().unwrap();
            assert_eq!(e["status"], "failed", "{e}");
            assert!(e.get("snapshot").is_none(), "{e}");
            assert!(
                reason.contains("BackoffLimitExceeded")
                    && reason.contains("Evicted test: the node ran out of memory"),
                "{e}"
            );
        } else {
            let file = format!("{out_dir}{n}.json");
            assert_eq!(
                e,
                &serde_json::json!({"node": n, "status": "ok", "snapshot": file})
            );
            let text = std::fs::read_to_string(&file).unwrap();
            let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(doc["metadata"]["source-node"], n.as_str(), "{text}");
        }
    }
    let files = std::fs::read_dir(&out_dir).unwrap().count();
    assert_eq!(files, N - want_failed.len());
    let names: Vec<&str> = want_failed.iter().map(|s| s.as_str()).collect();
    assert!(
        err.contains(&format!(
            "error: 20 of 200 nodes gave no snapshot: {} (see the summary)",
            names.join(", ")
        )),
        "{err}"
    );
    assert_nothing_left(&c, &ns.name, &run);
    drop(fleet);
}

/// --all-nodes --dry-run: the matching nodes on stderr, the shared objects
/// and the first node's on stdout, nothing created; a node name that is no
/// DNS label gets a hashed object name. No matching node: exit 3.
#[test]
#[ignore = "needs the test cluster v1.25+ (.ci/kube)"]
fn fleet_dry_run_and_no_nodes() {
    let c = modern();
    let ns = Ns::new(&c, "agent-fleet-dry");
    let run = run_id('d');
    let label = format!("aicr-test/fleet={run}");
    let labels = format!("aicr-test/fleet: {run}");
    let _a = Node::new(&c, &format!("fleet-{run}-b"), &labels, "");
    let _b = Node::new(&c, &format!("fleet-{run}.a.example"), &labels, "");
    let (status, out, err) = Agent::start(
        &c,
        &[
            "--all-nodes",
            "--dry-run",
            "-n",
            &ns.name,
            "--run-id",
            &run,
            "--node-selector",
            &label,
        ],
    )
    .finish();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!(
            "2 nodes match {label} (the manifests are those of the first; each node gets its own ConfigMap and Job):\n  fleet-{run}-b\n  fleet-{run}.a.example\n"
        )),
        "{err}"
    );
    let docs: Vec<serde_yaml_ng::Value> = out
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_yaml_ng::from_str(d).unwrap())
        .collect();
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "ServiceAccount",
            "Role",
            "RoleBinding",
            "ClusterRole",
            "ClusterRoleBinding",
            "ConfigMap",
            "Job"
        ]
    );
    let names: Vec<&str> = docs[1]["rules"][0]["resourceNames"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(names[0], format!("aicr-snapshot-{run}-fleet-{run}-b"));
    assert!(
        names[1].starts_with(&format!("aicr-snapshot-{run}-fleet-{run}-a-"))
            && names[1].len() == 63
            && names[1][55..].chars().all(|c| c.is_ascii_hexdigit()),
        "{names:?}"
    );
    assert_eq!(docs[6]["metadata"]["name"].as_str(), Some(names[0]));
    assert_nothing_left(&c, &ns.name, &run);

    let (status, out, err) = Agent::start(
        &c,
        &[
            "--all-nodes",
            "-n",
            &ns.name,
            "--run-id",
            &run,
            "--node-selector",
            &format!("aicr-test/fleet=none-{run}"),
        ],
    )
    .finish();
    assert_eq!(status.code(), Some(3), "{err}");
    assert_eq!(out, "");
    assert!(
        err.contains(&format!(
            "error: no node matches the node selector aicr-test/fleet=none-{run} (--node-selector): nothing to snapshot"
        )),
        "{err}"
    );
}

/// SIGINT during a fleet run: every object created (shared, per node) is
/// deleted, then the signal ends the process.
#[test]
#[ignore = "needs the test cluster v1.25+ (.ci/kube)"]
fn fleet_interrupt_cleans_up() {
    let c = modern();
    let ns = Ns::new(&c, "agent-fleet-int");
    let run = run_id('j');
    let label = format!("aicr-test/fleet={run}");
    let labels = format!("aicr-test/fleet: {run}");
    let taint = format!("{{key: aicr-test/hold, value: {run}, effect: NoSchedule}}");
    let _nodes: Vec<Node> = (0..3)
        .map(|i| Node::new(&c, &format!("fleet-{run}-{i}"), &labels, &taint))
        .collect();
    let agent = Agent::start(
        &c,
        &[
            "--all-nodes",
            "-n",
            &ns.name,
            "--run-id",
            &run,
            "--node-selector",
            &label,
        ],
    );
    wait_for("the three pods", || {
        let sel = format!("app.kubernetes.io/instance={run}");
        (items(
            &c,
            &["get", "pods", "-n", &ns.name, "-l", &sel, "-o", "json"],
        )
        .len()
            == 3)
            .then_some(())
    });
    // SAFETY: kill(2) on the child's pid.
    unsafe { libc::kill(agent.child.id() as i32, libc::SIGINT) };
    let (status, out, err) = agent.finish();
    assert_eq!(status.signal(), Some(libc::SIGINT), "{err}");
    assert_eq!(out, "");
    assert_nothing_left(&c, &ns.name, &run);
}

/// Without -o: the node that succeeded keeps its ConfigMap (the result,
/// named in the table, -t table on stdout), the node whose pod never runs
/// times out (its row says so, exit 6), and everything else is deleted. (25 s: with 8 s the
/// node released at once timed out too while the 200-node test loaded the
/// cluster.)
#[test]
#[ignore = "needs the test cluster v1.25+ (.ci/kube)"]
fn fleet_without_output_keeps_the_configmaps_and_reports_timeouts() {
    let c = modern();
    let ns = Ns::new(&c, "agent-fleet-cm");
    let run = run_id('k');
    let label = format!("aicr-test/fleet={run}");
    let labels = format!("aicr-test/fleet: {run}");
    let taint = format!("{{key: aicr-test/hold, value: {run}, effect: NoSchedule}}");
    let ok = Node::new(&c, &format!("fleet-{run}-ok"), &labels, &taint);
    let stuck = Node::new(&c, &format!("fleet-{run}-stuck"), &labels, &taint);
    let agent = Agent::start(
        &c,
        &[
            "--all-nodes",
            "-n",
            &ns.name,
            "--run-id",
            &run,
            "--node-selector",
            &label,
            "--timeout",
            "25s",
            "-t",
            "table",
        ],
    );
    let cm = format!("aicr-snapshot-{run}-{}", ok.name);
    wait_for("the ok node's Job", || {
        c.try_kubectl(&["get", "job", &cm, "-n", &ns.name], "")
            .0
            .then_some(())
    });
    let doc = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": { "name": cm, "namespace": ns.name },
        "data": {
            "format": "yaml",
            "snapshot.yaml": format!("kind: Snapshot\napiVersion: aicr.nvidia.com/v1alpha1\nmetadata:\n  source-node: {}\nmeasurements: []\n", ok.name),
        },
    });
    c.kubectl(
        &[
            "apply",
            "--server-side",
            "--field-manager=aicr-test",
            "-f",
            "-",
        ],
        Some(&doc.to_string()),
    );
    c.kubectl(&["taint", "nodes", &ok.name, "aicr-test/hold-"], None);
    let (status, out, err) = agent.finish();
    assert_eq!(status.code(), Some(6), "{err}");
    let row = |n: &str| {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(n))
            .unwrap_or_else(|| panic!("no row for {n}:\n{out}\n{err}"))
            .to_string()
    };
    assert_eq!(
        out.lines().next(),
        Some(&*format!(
            "NODE{}  STATUS     DETAIL",
            " ".repeat(ok.name.len().max(stuck.name.len()) - 4)
        )),
        "{out}"
    );
    assert!(
        row(&ok.name).ends_with(&format!(" ok         cm://{}/{cm}", ns.name)),
        "{err}"
    );
    let r = row(&stuck.name);
    assert!(
        r.contains(" timed-out  the snapshot Job ") && r.contains("did not finish within 25s"),
        "{r}"
    );
    assert!(
        err.contains(&format!(
            "error: 1 of 2 nodes gave no snapshot: {} (see the summary)",
            stuck.name
        )),
        "{err}"
    );
    // The result stays, with the snapshot; nothing else does.
    let data = c.kubectl(
        &[
            "get",
            "configmap",
            &cm,
            "-n",
            &ns.name,
            "-o",
            "jsonpath={.data.snapshot\\.yaml}",
        ],
        None,
    );
    assert!(
        data.contains(&format!("source-node: {}", ok.name)),
        "{data}"
    );
    c.kubectl(&["delete", "configmap", &cm, "-n", &ns.name], None);
    assert_nothing_left(&c, &ns.name, &run);
}
