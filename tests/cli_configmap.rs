//! `cm://NAMESPACE/NAME` through the whole CLI. On the test cluster
//! (`.ci/kube`; ignored in a plain `cargo test`, failing when it is
//! missing): snapshot and recipe round trips read back by recipe, bundle,
//! validate and diff; JSON documents; an update keeping other keys; a
//! concurrent create, change or delete between aicr's read and write
//! (forced through the debug-build hook `AICR_TEST_CM_AFTER_READ`) failing
//! with nothing overwritten; a 2 MiB snapshot refused with nothing
//! written; a missing ConfigMap, namespace or key; a user without rights;
//! ConfigMaps laid out as Go aicr writes them. Each test has a namespace of
//! its own. Without a cluster (always run): bad references and formats
//! refused before any request, an unreachable server (6) and a silent one
//! (5).

mod common;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use common::cluster::{closed_port, cluster, kubeconfig_for, unique, Namespace};
use common::{aicr, code, fixture, golden, stderr, stdout};

/// The test cluster's API server, as errors name it.
fn server() -> String {
    cluster().server()
}

/// A namespace of the test's own, deleted when the test ends.
struct Ns(Namespace);

impl std::ops::Deref for Ns {
    type Target = Namespace;
    fn deref(&self) -> &Namespace {
        &self.0
    }
}

impl Ns {
    fn new(prefix: &str) -> Ns {
        Ns(Namespace::new(&cluster(), prefix))
    }

    fn cm(&self, name: &str) -> String {
        format!("cm://{}/{name}", self.name)
    }

    /// The ConfigMap as JSON; `None` when it does not exist.
    fn get(&self, name: &str) -> Option<serde_json::Value> {
        let (ok, out) = self.c.try_kubectl(
            &[
                "get",
                "configmap",
                "-n",
                &self.name,
                name,
                "-o",
                "json",
                "--show-managed-fields",
            ],
            "",
        );
        if !ok {
            assert!(out.contains("NotFound"), "{out}");
            return None;
        }
        Some(serde_json::from_str(&out).unwrap())
    }

    fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> String {
        self.c.kubectl(args, stdin)
    }

    /// `kubectl ARGS -n NS` as a shell command, for the hook.
    fn shell(&self, args: &str) -> String {
        format!(
            "'{}' --kubeconfig '{}' -n '{}' {args}",
            self.c.kubectl.display(),
            self.c.kubeconfig.display(),
            self.name
        )
    }
}

/// aicr with the test cluster's kubeconfig in KUBECONFIG.
fn run_on(kubeconfig: &Path, args: &[&str]) -> Output {
    aicr()
        .env("KUBECONFIG", kubeconfig)
        .args(args)
        .output()
        .unwrap()
}

fn run_k(args: &[&str]) -> Output {
    run_on(&cluster().kubeconfig, args)
}

fn ok(out: &Output) {
    assert_eq!(code(out), 0, "stderr: {}", stderr(out));
}

const RECIPE_ARGS: &[&str] = &[
    "recipe",
    "--service",
    "eks",
    "--accelerator",
    "h100",
    "--intent",
    "training",
    "--os",
    "ubuntu",
];

/// A node root the os collector reads: Ubuntu 24.04 on kernel 6.8.
fn node_root() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("etc")).unwrap();
    std::fs::create_dir_all(d.path().join("proc/sys/kernel")).unwrap();
    std::fs::write(
        d.path().join("etc/os-release"),
        "NAME=\"Ubuntu\"\nID=ubuntu\nVERSION_ID=\"24.04\"\n",
    )
    .unwrap();
    std::fs::write(
        d.path().join("proc/sys/kernel/osrelease"),
        "6.8.0-1015-aws\n",
    )
    .unwrap();
    d
}

fn snapshot_args(root: &Path) -> Vec<String> {
    [
        "snapshot",
        "--filter",
        "os",
        "--root",
        root.to_str().unwrap(),
        "--node-name",
        "node-a",
    ]
    .map(String::from)
    .to_vec()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// snapshot -o cm:// holds exactly the bytes -o FILE writes, Go's keys and
/// labels; recipe -s, validate -s and diff read it back.
#[test]
#[ignore = "needs the test cluster (.ci/kube)"]
fn snapshot_round_trip() {
    let ns = Ns::new("aicr-cm-snap");
    let root = node_root();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("snap.yaml");

    let mut args = snapshot_args(root.path());
    args.extend(["-o".into(), ns.cm("snap")]);
    let out = run_k(&strs(&args));
    ok(&out);
    assert!(
        stderr(&out).contains(&format!("created ConfigMap {}", ns.cm("snap"))),
        "{}",
        stderr(&out)
    );
    let cm = ns.get("snap").unwrap();
    let data = cm["data"].as_object().unwrap();
    let keys: Vec<&str> = data.keys().map(String::as_str).collect();
    assert_eq!(keys, ["format", "snapshot.yaml", "timestamp"]);
    assert_eq!(data["format"], "yaml");
    let text = data["snapshot.yaml"].as_str().unwrap();
    // The timestamp key is the snapshot's own.
    let doc: serde_json::Value = serde_yaml_ng::from_str(text).unwrap();
    assert_eq!(data["timestamp"], doc["metadata"]["timestamp"]);
    let labels = &cm["metadata"]["labels"];
    assert_eq!(labels["app.kubernetes.io/name"], "aicr");
    assert_eq!(labels["app.kubernetes.io/component"], "Snapshot");
    assert_eq!(
        labels["app.kubernetes.io/version"],
        env!("CARGO_PKG_VERSION")
    );

    // Without a timestamp, the document is byte-identical to the file's.
    let mut args = snapshot_args(root.path());
    args.extend(["--no-timestamp".into(), "-o".into(), ns.cm("snap")]);
    let out = run_k(&strs(&args));
    ok(&out);
    assert!(
        stderr(&out).contains("updated ConfigMap"),
        "{}",
        stderr(&out)
    );
    let mut args = snapshot_args(root.path());
    args.extend([
        "--no-timestamp".into(),
        "-o".into(),
        file.display().to_string(),
    ]);
    ok(&run_k(&strs(&args)));
    let cm = ns.get("snap").unwrap();
    assert_eq!(
        cm["data"]["snapshot.yaml"].as_str().unwrap(),
        std::fs::read_to_string(&file).unwrap()
    );
    // A timestamp key nonetheless: the time of writing, RFC 3339.
    let ts = cm["data"]["timestamp"].as_str().unwrap();
    assert!(humantime::parse_rfc3339(ts).is_ok(), "{ts}");

    // recipe -s cm:// detects what the file gives.
    let criteria = [
        "--service",
        "eks",
        "--accelerator",
        "h100",
        "--intent",
        "training",
    ];
    let snap_ref = ns.cm("snap");
    let mut args = vec!["recipe", "-s", &snap_ref];
    args.extend(criteria);
    let from_cm = run_k(&args);
    ok(&from_cm);
    assert!(
        stderr(&from_cm).contains("detected from the snapshot: --os ubuntu"),
        "{}",
        stderr(&from_cm)
    );
    let mut args = vec!["recipe", "-s", file.to_str().unwrap()];
    args.extend(criteria);
    let from_file = run_k(&args);
    assert_eq!(stdout(&from_cm), stdout(&from_file));

    // validate -s cm:// checks the same as -s FILE.
    let recipe = fixture("validate/recipe-eks-h100-training-ubuntu.yaml");
    let v = |snap: &str| {
        run_k(&[
            "validate",
            "-r",
            recipe.to_str().unwrap(),
            "-s",
            snap,
            "--phase",
            "constraints",
            "-t",
            "json",
        ])
    };
    let (a, b) = (v(&ns.cm("snap")), v(file.to_str().unwrap()));
    assert_eq!(code(&a), code(&b), "{}", stderr(&a));
    assert!(
        stdout(&a).contains("\"OS.release.ID ubuntu\""),
        "{}",
        stdout(&a)
    );
    assert_eq!(stdout(&a), stdout(&b));

    // diff between a ConfigMap and the file: no drift.
    let d = run_k(&[
        "diff",
        &ns.cm("snap"),
        file.to_str().unwrap(),
        "--fail-on-drift",
    ]);
    ok(&d);
    assert_eq!(stdout(&d), "");
}

/// `cm://NAME` on the cluster: in the namespace of `-n`, of the context
/// of a kubeconfig the test writes, and else `default`; each written by
/// one command and read back by another.
#[test]
#[ignore = "needs the test cluster (.ci/kube)"]
fn the_short_form_on_the_cluster() {
    let ns = Ns::new("aicr-cm-short");
    let root = node_root();
    let mut args = snapshot_args(root.path());
    args.extend([
        "-o".into(),
        "cm://snap".into(),
        "-n".into(),
        ns.name.clone(),
    ]);
    let out = run_k(&strs(&args));
    ok(&out);
    assert!(
        stderr(&out).contains(&format!("created ConfigMap {}", ns.cm("snap"))),
        "{}",
        stderr(&out)
    );
    assert!(ns.get("snap").is_some());
    let detected = |out: &Output| {
        ok(out);
        assert!(
            stderr(out).contains("detected from the snapshot: --os ubuntu"),
            "{}",
            stderr(out)
        );
    };
    const CRITERIA: [&str; 6] = [
        "--service",
        "eks",
        "--accelerator",
        "h100",
        "--intent",
        "training",
    ];
    let from = |kc: &Path, args: &[&str]| {
        let mut a = vec!["recipe"];
        a.extend(args);
        a.extend(CRITERIA);
        run_on(kc, &a)
    };
    let admin = ns.c.kubeconfig.clone();
    detected(&from(&admin, &["-s", "cm://snap", "--namespace", &ns.name]));

    // A kubeconfig whose context names the namespace.
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    std::fs::copy(&ns.c.kubeconfig, &kc).unwrap();
    let set = std::process::Command::new(&ns.c.kubectl)
        .arg("--kubeconfig")
        .arg(&kc)
        .args([
            "config",
            "set-context",
            "--current",
            "--namespace",
            &ns.name,
        ])
        .output()
        .unwrap();
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    detected(&from(&kc, &["-s", "cm://snap"]));
    let mut args = RECIPE_ARGS.to_vec();
    args.extend(["-o", "cm://recipe"]);
    ok(&run_on(&kc, &args));
    assert!(ns.get("recipe").is_some());
    // -n wins over the context, cm://NS/NAME over -n.
    let out = from(&kc, &["-s", "cm://snap", "-n", "default"]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let explicit = ns.cm("snap");
    detected(&from(&kc, &["-s", &explicit, "-n", "default"]));

    // Nothing names one: default.
    let name = unique("aicr-cm-default");
    let in_default = format!("cm://{name}");
    let mut args = snapshot_args(root.path());
    args.extend(["-o".into(), in_default.clone()]);
    let out = run_k(&strs(&args));
    let (found, _) =
        ns.c.try_kubectl(&["get", "configmap", "-n", "default", &name], "");
    let _ = ns.c.try_kubectl(
        &[
            "delete",
            "configmap",
            "-n",
            "default",
            &name,
            "--ignore-not-found",
        ],
        "",
    );
    ok(&out);
    assert!(found, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("created ConfigMap cm://default/{name}")),
        "{}",
        stderr(&out)
    );
}

/// recipe -o cm:// (YAML and JSON), read back by bundle -r and validate -r
/// exactly as the file is; an update keeps the keys and labels of others.
#[test]
#[ignore = "needs the test cluster (.ci/kube)"]
fn recipe_round_trip() {
    let ns = Ns::new("aicr-cm-rec");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("recipe.yaml");

    let mut args = RECIPE_ARGS.to_vec();
    let cm_ref = ns.cm("rec");
    args.extend(["-o", &cm_ref]);
    ok(&run_k(&args));
    let mut args = RECIPE_ARGS.to_vec();
    args.extend(["-o", file.to_str().unwrap()]);
    ok(&run_k(&args));
    let cm = ns.get("rec").unwrap();
    // Go's key for every document, so Go aicr reads it.
    assert_eq!(
        cm["data"]["snapshot.yaml"].as_str().unwrap(),
        std::fs::read_to_string(&file).unwrap()
    );
    assert_eq!(cm["data"]["format"], "yaml");
    let ts = cm["data"]["timestamp"].as_str().unwrap();
    assert!(humantime::parse_rfc3339(ts).is_ok(), "{ts}");
    assert_eq!(
        cm["metadata"]["labels"]["app.kubernetes.io/component"],
        "RecipeResult"
    );
    assert_eq!(cm["metadata"]["managedFields"][0]["manager"], "aicr");

    // bundle -r cm:// writes the same bundle as -r FILE.
    let (b1, b2) = (dir.path().join("b-cm"), dir.path().join("b-file"));
    ok(&run_k(&[
        "bundle",
        "-r",
        &cm_ref,
        "-o",
        b1.to_str().unwrap(),
    ]));
    ok(&run_k(&[
        "bundle",
        "-r",
        file.to_str().unwrap(),
        "-o",
        b2.to_str().unwrap(),
    ]));
    assert_eq!(
        std::fs::read_to_string(b1.join("checksums.txt")).unwrap(),
        std::fs::read_to_string(b2.join("checksums.txt")).unwrap()
    );

    // validate -r cm:// against Go's mock snapshot, as -r FILE.
    let snap = golden("mock-snapshot-cuj1.yaml");
    let v = |r: &str| {
        run_k(&[
            "validate",
            "-r",
            r,
            "-s",
            snap.to_str().unwrap(),
            "--phase",
            "constraints",
            "-t",
            "yaml",
        ])
    };
    let (a, b) = (v(&cm_ref), v(file.to_str().unwrap()));
    assert_eq!(code(&a), code(&b), "{}", stderr(&a));
    assert!(stdout(&a).contains("K8s.server.version"), "{}", stdout(&a));
    assert_eq!(stdout(&a), stdout(&b));
    // A recipe given as -s is named as such.
    let swapped = run_k(&["validate", "-r", &cm_ref, "-s", &cm_ref]);
    assert_eq!(code(&swapped), 2);
    assert_eq!(
        stderr(&swapped),
        format!("error: -s {cm_ref} is a RecipeResult; -s takes a Snapshot (from aicr snapshot); were -r and -s swapped?\n")
    );

    // JSON: snapshot.json and format json, read back by bundle.
    let json_ref = ns.cm("rec-json");
    let mut args = RECIPE_ARGS.to_vec();
    args.extend(["-t", "json", "-o", &json_ref]);
    ok(&run_k(&args));
    let cm = ns.get("rec-json").unwrap();
    assert_eq!(cm["data"]["format"], "json");
    assert!(cm["data"]["snapshot.json"]
        .as_str()
        .unwrap()
        .starts_with('{'));
    ok(&run_k(&[
        "bundle",
        "-r",
        &json_ref,
        "-o",
        dir.path().join("b-json").to_str().unwrap(),
    ]));

    // An update keeps what others added, and replaces the document.
    ns.kubectl(
        &["-n", &ns.name, "label", "configmap", "rec-json", "team=gpu"],
        None,
    );
    ns.kubectl(
        &[
            "-n",
            &ns.name,
            "patch",
            "configmap",
            "rec-json",
            "--type=merge",
            "-p",
            r#"{"data":{"note":"kept"}}"#,
        ],
        None,
    );
    let mut args = RECIPE_ARGS.to_vec();
    args.extend(["-o", &json_ref]);
    let out = run_k(&args);
    ok(&out);
    assert!(
        stderr(&out).contains("updated ConfigMap"),
        "{}",
        stderr(&out)
    );
    let cm = ns.get("rec-json").unwrap();
    let keys: Vec<&str> = cm["data"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["format", "note", "snapshot.yaml", "timestamp"]);
    assert_eq!(cm["data"]["format"], "yaml");
    assert_eq!(cm["metadata"]["labels"]["team"], "gpu");
}

/// The hook changes the ConfigMap between aicr's read and its write: the
/// write fails naming who changed it, and the change is kept. Without the
/// hook the same write succeeds.
#[test]
#[ignore = "needs the test cluster (.ci/kube)"]
fn a_concurrent_update_is_not_lost() {
    let ns = Ns::new("aicr-cm-race");
    let cm_ref = ns.cm("rec");
    let write = |hook: Option<String>| {
        let mut cmd = aicr();
        cmd.env("KUBECONFIG", &ns.c.kubeconfig);
        if let Some(h) = hook {
            cmd.env("AICR_TEST_CM_AFTER_READ", h);
        }
        cmd.args(RECIPE_ARGS)
            .args(["-o", &cm_ref])
            .output()
            .unwrap()
    };
    ok(&write(None));
    let first = ns.get("rec").unwrap();

    // Changed in between: 409, nothing overwritten.
    let patch =
        ns.shell(r#"patch configmap rec --type=merge -p '{"data":{"snapshot.yaml":"theirs"}}'"#);
    let out = write(Some(patch));
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let err = stderr(&out);
    let want_start = format!("error: {cm_ref} was changed by \"kubectl-patch\" (Update at ");
    let want_end = format!(
        ") after aicr read it; nothing was written: look at it (kubectl get configmap -n {} rec), then run again to replace it\n",
        ns.name
    );
    assert!(
        err.starts_with(&want_start) && err.ends_with(&want_end),
        "{err}"
    );
    assert!(stdout(&out).is_empty());
    let now = ns.get("rec").unwrap();
    assert_eq!(now["data"]["snapshot.yaml"], "theirs");
    assert_eq!(now["data"]["timestamp"], first["data"]["timestamp"]);

    // Without a race, the same write replaces it.
    ok(&write(None));
    assert_ne!(ns.get("rec").unwrap()["data"]["snapshot.yaml"], "theirs");

    // Created in between (aicr found none): AlreadyExists, theirs kept.
    let created_ref = ns.cm("new");
    let create = ns.shell("create configmap new --from-literal=owner=them");
    let out = aicr()
        .env("KUBECONFIG", &ns.c.kubeconfig)
        .env("AICR_TEST_CM_AFTER_READ", create)
        .args(RECIPE_ARGS)
        .args(["-o", &created_ref])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with(&format!(
            "error: {created_ref} was created by \"kubectl-create\" ("
        )),
        "{}",
        stderr(&out)
    );
    let theirs = ns.get("new").unwrap();
    assert_eq!(theirs["data"], serde_json::json!({"owner": "them"}));

    // Deleted in between: not created again behind the deleter's back.
    let delete = ns.shell("delete configmap rec");
    let out = write(Some(delete));
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        format!("error: {cm_ref} was deleted by another client after aicr read it; nothing was written: run again to create it\n")
    );
    assert!(ns.get("rec").is_none());
}

/// A 2 MiB snapshot: refused with its size and the limit, nothing written,
/// and before any request (a server that is not there gives the same).
#[test]
#[ignore = "needs the test cluster (.ci/kube)"]
fn a_two_mib_document_is_refused_and_nothing_is_written() {
    let ns = Ns::new("aicr-cm-big");
    let root = node_root();
    let big = root.path().join("proc/sys/aicrtest");
    std::fs::create_dir_all(&big).unwrap();
    let value = "x".repeat(1000);
    for i in 0..2100 {
        std::fs::write(big.join(format!("k{i:04}")), &value).unwrap();
    }
    let mut args = snapshot_args(root.path());
    args.extend(["--no-timestamp".into(), "-o".into(), ns.cm("big")]);
    let out = run_k(&strs(&args));
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let err = without_warnings(&stderr(&out));
    let size: u64 = err
        .strip_prefix(&format!("error: the snapshot for {} is ", ns.cm("big")))
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{err}"));
    assert!(size > 2 << 20, "{size}");
    assert_eq!(
        err,
        format!(
            "error: the snapshot for {} is {size} bytes of data with its format and timestamp keys; a ConfigMap holds at most 1048576 bytes (1 MiB): nothing was written; write it to a file instead\n",
            ns.cm("big")
        )
    );
    assert!(ns.get("big").is_none());

    // The same with no server at all: refused before any request.
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    std::fs::write(&kc, kubeconfig_for(closed_port())).unwrap();
    let out = run_on(&kc, &strs(&args));
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert_eq!(without_warnings(&stderr(&out)), err);
}

/// Missing ConfigMap: 3 for every reader; missing namespace on write: 3;
/// a ConfigMap without the document's key: 2, naming the keys it has.
#[test]
#[ignore = "needs the test cluster (.ci/kube)"]
fn missing_configmap_namespace_and_key() {
    let ns = Ns::new("aicr-cm-miss");
    let nope = ns.cm("nope");
    let want = format!(
        "error: ConfigMap {}/nope not found on {server}\n",
        ns.name,
        server = server()
    );
    let snap = golden("mock-snapshot-cuj1.yaml");
    let recipe = fixture("validate/recipe-eks-h100-training-ubuntu.yaml");
    let dir = tempfile::tempdir().unwrap();
    let bundle_dir = dir.path().join("bundle");
    for args in [
        vec!["recipe", "-s", &nope],
        vec!["query", "--selector", "criteria", "-s", &nope],
        vec!["bundle", "-r", &nope, "-o", bundle_dir.to_str().unwrap()],
        vec!["validate", "-r", &nope, "-s", snap.to_str().unwrap()],
        vec![
            "validate",
            "-r",
            recipe.to_str().unwrap(),
            "-s",
            &nope,
            "--phase",
            "constraints",
        ],
        vec!["diff", snap.to_str().unwrap(), &nope],
    ] {
        let out = run_k(&args);
        assert_eq!(code(&out), 3, "{args:?}: {}", stderr(&out));
        assert_eq!(stderr(&out), want, "{args:?}");
        assert!(stdout(&out).is_empty());
    }

    let gone = format!("cm://{}-gone/x", ns.name);
    let mut args = RECIPE_ARGS.to_vec();
    args.extend(["-o", &gone]);
    let out = run_k(&args);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        format!("error: namespace {}-gone not found on {server}: nothing was written; create it, or write to another namespace\n", ns.name, server = server())
    );

    ns.kubectl(
        &[
            "-n",
            &ns.name,
            "create",
            "configmap",
            "other",
            "--from-literal=config.yaml=x",
            "--from-literal=format=table",
        ],
        None,
    );
    let out = run_k(&["recipe", "-s", &ns.cm("other")]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        format!(
            "error: {} holds no snapshot: none of the data keys snapshot.yaml, snapshot.json; its data keys: config.yaml, format\n",
            ns.cm("other")
        )
    );
}

/// Go aicr's layout (4-space YAML under snapshot.yaml, for a recipe too)
/// is read: validate and bundle give what the files give.
#[test]
#[ignore = "needs the test cluster (.ci/kube)"]
fn configmaps_written_the_go_way_are_read() {
    let ns = Ns::new("aicr-cm-go");
    for f in ["go-aicr-snapshot.yaml", "go-aicr-recipe.yaml"] {
        let path = fixture("configmap").join(f);
        ns.kubectl(
            &["apply", "-n", &ns.name, "-f", path.to_str().unwrap()],
            None,
        );
    }
    let snap = golden("mock-snapshot-cuj1.yaml");
    let recipe = golden("recipe-eks-h100-training-ubuntu.yaml");
    let v = |r: &str, s: &str| {
        run_k(&[
            "validate",
            "-r",
            r,
            "-s",
            s,
            "--phase",
            "constraints",
            "-t",
            "yaml",
        ])
    };
    let from_cm = v(&ns.cm("aicr-recipe"), &ns.cm("aicr-snapshot"));
    let from_files = v(recipe.to_str().unwrap(), snap.to_str().unwrap());
    assert_eq!(code(&from_cm), code(&from_files), "{}", stderr(&from_cm));
    assert!(stdout(&from_cm).contains("passed"), "{}", stdout(&from_cm));
    assert_eq!(stdout(&from_cm), stdout(&from_files));

    let dir = tempfile::tempdir().unwrap();
    let (b1, b2) = (dir.path().join("cm"), dir.path().join("file"));
    ok(&run_k(&[
        "bundle",
        "-r",
        &ns.cm("aicr-recipe"),
        "-o",
        b1.to_str().unwrap(),
    ]));
    ok(&run_k(&[
        "bundle",
        "-r",
        recipe.to_str().unwrap(),
        "-o",
        b2.to_str().unwrap(),
    ]));
    assert_eq!(
        std::fs::read_to_string(b1.join("checksums.txt")).unwrap(),
        std::fs::read_to_string(b2.join("checksums.txt")).unwrap()
    );
    // And recipe -s reads the Go snapshot's criteria.
    let out = run_k(&[
        "recipe",
        "-s",
        &ns.cm("aicr-snapshot"),
        "--service",
        "eks",
        "--accelerator",
        "h100",
        "--intent",
        "training",
    ]);
    ok(&out);
    assert!(
        stderr(&out).contains("detected from the snapshot: --os ubuntu"),
        "{}",
        stderr(&out)
    );
}

/// Runs until the exit code is `want` (RBAC takes effect a moment after a
/// binding is made), at most 5 s.
fn run_until(kc: &Path, args: &[&str], want: i32) -> Output {
    let mut out = run_on(kc, args);
    for _ in 0..50 {
        if code(&out) == want {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        out = run_on(kc, args);
    }
    out
}

/// A user with no rights: 4 naming the verb, the resource and the user;
/// with get only, the write is refused naming create (or update).
#[test]
#[ignore = "needs the test cluster (.ci/kube)"]
fn a_user_without_rights_is_refused_with_exit_4() {
    let ns = Ns::new("aicr-cm-rbac");
    let user = format!("{}-user", ns.name);
    let dir = tempfile::tempdir().unwrap();
    let kc = ns.c.user_kubeconfig(&user, dir.path());
    let mut args = RECIPE_ARGS.to_vec();
    let existing = ns.cm("existing");
    args.extend(["-o", &existing]);
    ok(&run_k(&args));

    let out = run_on(&kc, &["recipe", "-s", &existing]);
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        format!(
            "error: forbidden: cannot get configmaps \"existing\" in namespace {} (user \"{user}\") on {server}\n",
            ns.name, server = server()
        )
    );
    // A token the server does not know: 401, exit 4, the token unquoted.
    let bogus =
        ns.c.kubeconfig_as(dir.path(), "bogus", "{token: hunter2-bogus}");
    let out = run_on(&bogus, &["recipe", "-s", &existing]);
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        format!(
            "error: unauthorized: {server} refused the credentials (get configmaps \"existing\" in namespace {})\n",
            ns.name, server = server()
        )
    );
    // A ServiceAccount's token without rights: the same, for writing too.
    ns.kubectl(&["-n", &ns.name, "create", "serviceaccount", "none"], None);
    let token = ns.c.token_kubeconfig(dir.path(), &ns.name, "none");
    let sa_user = format!("system:serviceaccount:{}:none", ns.name);
    let out = run_on(&token, &["recipe", "-s", &existing]);
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        format!(
            "error: forbidden: cannot get configmaps \"existing\" in namespace {} (user \"{sa_user}\") on {server}\n",
            ns.name, server = server()
        )
    );
    let mut args = RECIPE_ARGS.to_vec();
    args.extend(["-o", "cm://new", "-n", &ns.name]);
    let out = run_on(&token, &args);
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with(&format!(
            "error: forbidden: cannot get configmaps \"new\" in namespace {} (user \"{sa_user}\")",
            ns.name
        )),
        "{}",
        stderr(&out)
    );

    // get only: reading works, writing does not.
    ns.grant("cm-reader", "get", "configmaps", &format!("--user={user}"));
    let out = run_until(
        &kc,
        &[
            "bundle",
            "-r",
            &existing,
            "-o",
            dir.path().join("b").to_str().unwrap(),
        ],
        0,
    );
    ok(&out);
    let fresh = ns.cm("fresh");
    let mut args = RECIPE_ARGS.to_vec();
    args.extend(["-o", &fresh]);
    let out = run_on(&kc, &args);
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        format!(
            "error: forbidden: cannot create configmaps \"fresh\" in namespace {} (user \"{user}\") on {server}\n",
            ns.name, server = server()
        )
    );
    let mut args = RECIPE_ARGS.to_vec();
    args.extend(["-o", &existing]);
    let out = run_on(&kc, &args);
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        format!(
            "error: forbidden: cannot update configmaps \"existing\" in namespace {} (user \"{user}\") on {server}\n",
            ns.name, server = server()
        )
    );
    assert!(ns.get("fresh").is_none());
}

/// Bad references and formats are refused (exit 2) before any request:
/// the kubeconfig names a port nothing listens on, which any request
/// would find (exit 6).
#[test]
fn bad_references_are_refused_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    std::fs::write(&kc, kubeconfig_for(closed_port())).unwrap();
    let snap = golden("mock-snapshot-cuj1.yaml");
    let snap = snap.to_str().unwrap();
    let label = "lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters";
    let subdomain = "lowercase letters, digits, '-' and '.', each dot-separated part starting and ending with a letter or digit, at most 253 characters";
    let long = format!("cm://{}/x", "n".repeat(64));
    let bundle_dir = dir.path().join("bundle");
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["recipe", "-s", "cm://Bad_NS/x"],
            format!("cm://Bad_NS/x: namespace \"Bad_NS\" is not a DNS-1123 label: {label}"),
        ),
        (
            vec!["recipe", "--service", "eks", "-o", "cm://ns/Bad_Name"],
            format!("cm://ns/Bad_Name: name \"Bad_Name\" is not a DNS-1123 subdomain: {subdomain}"),
        ),
        (
            vec!["recipe", "--service", "eks", "-s", "cm://ns/ok", "-o", "cm://ns/a..b"],
            format!("cm://ns/a..b: name \"a..b\" is not a DNS-1123 subdomain: {subdomain}"),
        ),
        (
            vec!["validate", "-r", "cm://", "-s", snap],
            "cm://: expected cm://NAMESPACE/NAME or cm://NAME".into(),
        ),
        (
            vec!["validate", "-r", "cm://ns/r", "-s", "cm://ns/s/x"],
            "cm://ns/s/x: expected cm://NAMESPACE/NAME or cm://NAME".into(),
        ),
        (
            vec!["recipe", "-s", "cm://Bad_Name"],
            format!("cm://Bad_Name: name \"Bad_Name\" is not a DNS-1123 subdomain: {subdomain}"),
        ),
        (
            vec!["recipe", "-s", "cm://x", "-n", "Bad_NS"],
            format!("invalid namespace \"Bad_NS\" (-n/--namespace): give a DNS-1123 label: {label}"),
        ),
        (
            vec!["diff", "cm://a", "cm://b", "--namespace=x-"],
            format!("invalid namespace \"x-\" (-n/--namespace): give a DNS-1123 label: {label}"),
        ),
        (
            vec!["diff", &long, snap],
            format!("{long}: namespace \"{}\" is not a DNS-1123 label: {label}", "n".repeat(64)),
        ),
        (
            vec!["diff", snap, "cm:///x"],
            "cm:///x: expected cm://NAMESPACE/NAME or cm://NAME".into(),
        ),
        (
            vec!["bundle", "-r", "cm://-x/y", "-o", bundle_dir.to_str().unwrap()],
            format!("cm://-x/y: namespace \"-x\" is not a DNS-1123 label: {label}"),
        ),
        (
            vec!["query", "--selector", "criteria", "-s", "cm://ns/X"],
            format!("cm://ns/X: name \"X\" is not a DNS-1123 subdomain: {subdomain}"),
        ),
        (
            vec!["snapshot", "--filter", "os", "-t", "table", "-o", "cm://ns/x"],
            "a table cannot be stored in a ConfigMap (it cannot be read back); use -t yaml or -t json".into(),
        ),
        (
            vec!["recipe", "--list", "-o", "cm://ns/x"],
            "-o cm://ns/x: the --list table cannot be stored in a ConfigMap, which holds a Snapshot or RecipeResult; give a file path, or - for standard output".into(),
        ),
        (
            vec!["diff", snap, snap, "-o", "cm://ns/x"],
            "cm://ns/x: only `aicr snapshot -o` and `aicr recipe -o` write to a ConfigMap; give a file path, or - for standard output".into(),
        ),
        (
            vec!["validate", "-r", "cm://ns/r", "-s", snap, "--no-cluster"],
            "-r cm://ns/r: reading a ConfigMap contacts the cluster, and --no-cluster forbids that; save the document to a file, or drop --no-cluster".into(),
        ),
    ];
    for (args, msg) in cases {
        let out = run_on(&kc, &args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert_eq!(stderr(&out), format!("error: {msg}\n"), "{args:?}");
        assert!(stdout(&out).is_empty(), "{args:?}");
    }
    // AICR_NAMESPACE is -n's variable, checked alike; a context's
    // namespace is checked where cm://NAME needs it.
    let out = aicr()
        .env("KUBECONFIG", &kc)
        .env("AICR_NAMESPACE", "Bad_NS")
        .args(["query", "--selector", "criteria", "-s", "cm://x"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2);
    assert_eq!(
        stderr(&out),
        format!("error: invalid namespace \"Bad_NS\" (AICR_NAMESPACE): give a DNS-1123 label: {label}\n")
    );
    std::fs::write(
        &kc,
        kubeconfig_for(closed_port()).replace(
            "context: {cluster: local, user: u}",
            "context: {cluster: local, user: u, namespace: Bad_NS}",
        ),
    )
    .unwrap();
    let out = run_on(&kc, &["recipe", "-s", "cm://x"]);
    assert_eq!(code(&out), 2);
    assert_eq!(
        stderr(&out),
        format!(
            "error: invalid namespace \"Bad_NS\" (context \"local\" of the kubeconfig {}): give a DNS-1123 label: {label}\n",
            kc.display()
        )
    );
}

/// `cm://NAME` in every command that reads or writes one, against a
/// server that is not there: the failed request names the namespace it
/// was meant for: `-n`, else `AICR_NAMESPACE`, else the context's, else
/// `default`; `cm://NS/NAME` wins over them all.
#[test]
fn the_short_form_takes_the_namespace_kubectl_would() {
    let dir = tempfile::tempdir().unwrap();
    let port = closed_port();
    let plain = dir.path().join("plain");
    std::fs::write(&plain, kubeconfig_for(port)).unwrap();
    let with_ns = dir.path().join("with-ns");
    std::fs::write(
        &with_ns,
        kubeconfig_for(port).replace(
            "context: {cluster: local, user: u}",
            "context: {cluster: local, user: u, namespace: from-context}",
        ),
    )
    .unwrap();
    let snap = golden("mock-snapshot-cuj1.yaml");
    let snap = snap.to_str().unwrap();
    let out_dir = dir.path().join("bundle");
    let root = node_root();
    let root = root.path().to_str().unwrap();
    let commands: Vec<Vec<&str>> = vec![
        vec!["recipe", "-s", "cm://doc"],
        vec!["recipe", "--service", "eks", "-o", "cm://doc"],
        vec!["query", "--selector", "criteria", "-s", "cm://doc"],
        vec!["bundle", "-r", "cm://doc", "-o", out_dir.to_str().unwrap()],
        vec!["diff", "cm://doc", snap],
        vec![
            "validate",
            "-r",
            "cm://doc",
            "-s",
            snap,
            "--phase",
            "constraints",
        ],
        vec![
            "snapshot", "--filter", "os", "--root", root, "-o", "cm://doc",
        ],
    ];
    let cases: Vec<(&Path, &[&str], Option<&str>, &str)> = vec![
        (&plain, &[], None, "default"),
        (&with_ns, &[], None, "from-context"),
        (&with_ns, &["-n", "from-flag"], None, "from-flag"),
        (&with_ns, &[], Some("from-env"), "from-env"),
        (
            &with_ns,
            &["--namespace", "from-flag"],
            Some("from-env"),
            "from-flag",
        ),
    ];
    for cmd in &commands {
        for (kc, extra, env, want) in &cases {
            let mut c = aicr();
            c.env("KUBECONFIG", kc).args(cmd).args(*extra);
            if let Some(v) = env {
                c.env("AICR_NAMESPACE", v);
            }
            let out = c.output().unwrap();
            let err = without_warnings(&stderr(&out));
            assert_eq!(code(&out), 6, "{cmd:?} {extra:?}: {err}");
            assert!(
                err.starts_with(&format!(
                    "error: cannot reach https://127.0.0.1:{port} (get configmaps \"doc\" in namespace {want}): "
                )),
                "{cmd:?} {extra:?} {env:?}: {err}"
            );
        }
    }
    // An explicit namespace wins over -n.
    let out = run_on(
        &with_ns,
        &["recipe", "-s", "cm://mine/doc", "-n", "from-flag"],
    );
    assert_eq!(code(&out), 6);
    assert!(
        stderr(&out).contains("(get configmaps \"doc\" in namespace mine)"),
        "{}",
        stderr(&out)
    );
}

/// Nothing listens: 6 naming the server and the request; a server that
/// never answers: 5 within the deadline.
#[test]
fn unreachable_and_silent_servers() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    let port = closed_port();
    std::fs::write(&kc, kubeconfig_for(port)).unwrap();
    let out = run_on(&kc, &["recipe", "-s", "cm://ns/snap"]);
    assert_eq!(code(&out), 6, "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with(&format!(
            "error: cannot reach https://127.0.0.1:{port} (get configmaps \"snap\" in namespace ns): "
        )),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("hunter2"));

    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let _hold = std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming().take(4) {
            held.push(s);
        }
        std::thread::sleep(Duration::from_secs(60));
    });
    std::fs::write(&kc, kubeconfig_for(port)).unwrap();
    let started = std::time::Instant::now();
    let out = run_on(
        &kc,
        &[
            "validate",
            "--timeout",
            "1s",
            "-r",
            "cm://ns/r",
            "-s",
            golden("mock-snapshot-cuj1.yaml").to_str().unwrap(),
            "--phase",
            "constraints",
        ],
    );
    assert_eq!(code(&out), 5, "{}", stderr(&out));
    assert!(started.elapsed() < Duration::from_secs(20));
    let err = stderr(&out);
    assert!(err.starts_with("error: timed out"), "{err}");
    assert!(
        err.ends_with(&format!(
            ": get configmaps \"r\" in namespace ns on https://127.0.0.1:{port}\n"
        )),
        "{err}"
    );
}

/// In a pod: no kubeconfig, `KUBERNETES_SERVICE_HOST/PORT` set and the
/// service account's token, CA and namespace under
/// `/var/run/secrets/kubernetes.io/serviceaccount` (a tmpfs over /run in a
/// mount namespace of the command's own, so the host sees nothing).
/// `cm://NAME` is in the service account's namespace; `-n` still wins.
#[test]
#[ignore = "needs the test cluster (.ci/kube) and root: mounts a tmpfs"]
fn in_cluster_service_account_and_its_namespace() {
    let ns = Ns::new("aicr-cm-pod");
    ns.kubectl(&["-n", &ns.name, "create", "serviceaccount", "agent"], None);
    ns.grant(
        "cm",
        "get,create,update",
        "configmaps",
        &format!("--serviceaccount={}:agent", ns.name),
    );
    let dir = tempfile::tempdir().unwrap();
    let sa = dir.path().join("sa");
    std::fs::create_dir(&sa).unwrap();
    let token = ns.kubectl(&["create", "token", "agent", "-n", &ns.name], None);
    std::fs::write(sa.join("token"), token.trim()).unwrap();
    std::fs::copy(ns.c.ca_file(), sa.join("ca.crt")).unwrap();
    std::fs::write(sa.join("namespace"), &ns.name).unwrap();
    let server = server();
    let (host, port) = server
        .trim_start_matches("https://")
        .rsplit_once(':')
        .unwrap();
    // The command in a mount namespace of its own, /run a fresh tmpfs
    // holding the service account's files.
    let in_pod = |args: &[&str]| {
        let script = format!(
            "mount -t tmpfs none /run && d=/run/secrets/kubernetes.io/serviceaccount && mkdir -p $d && cp '{}'/* $d/ && exec \"$0\" \"$@\"",
            sa.display()
        );
        std::process::Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg(script)
            .arg(assert_cmd::cargo::cargo_bin("aicr"))
            .args(args)
            .env_remove("KUBECONFIG")
            .env_remove("AICR_NAMESPACE")
            .env("HOME", dir.path().join("no-home"))
            .env("KUBERNETES_SERVICE_HOST", host)
            .env("KUBERNETES_SERVICE_PORT", port)
            .output()
            .unwrap()
    };
    let root = node_root();
    let mut args = snapshot_args(root.path());
    args.extend(["-o".into(), "cm://snap".into()]);
    let out = in_pod(&strs(&args));
    assert_eq!(
        code(&out),
        0,
        "unshare and mount need root: {}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains(&format!("created ConfigMap {}", ns.cm("snap"))),
        "{}",
        stderr(&out)
    );
    assert!(ns.get("snap").is_some());
    let mut args = vec!["recipe", "-s", "cm://snap"];
    args.extend([
        "--service",
        "eks",
        "--accelerator",
        "h100",
        "--intent",
        "training",
    ]);
    let out = in_pod(&args);
    ok(&out);
    assert!(
        stderr(&out).contains("detected from the snapshot: --os ubuntu"),
        "{}",
        stderr(&out)
    );
    // -n wins over the pod's namespace: the account may not read there.
    let out = in_pod(&["recipe", "-s", "cm://snap", "-n", "default"]);
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with(&format!(
            "error: forbidden: cannot get configmaps \"snap\" in namespace default (user \"system:serviceaccount:{}:agent\") on https://{host}:{port}",
            ns.name
        )),
        "{}",
        stderr(&out)
    );
}

/// `-n/--namespace` is one flag of every command that talks to a cluster,
/// and no command has another `-n` (clap's own checks of the tree).
#[test]
fn every_cluster_command_takes_n() {
    use clap::CommandFactory;
    let cli = aicr::cli::Cli::command();
    cli.clone().debug_assert();
    for sub in cli.get_subcommands() {
        let n = sub.get_arguments().find(|a| a.get_short() == Some('n'));
        let talks =
            ["snapshot", "recipe", "query", "bundle", "diff", "validate"].contains(&sub.get_name());
        assert_eq!(n.is_some(), talks, "{}", sub.get_name());
        if let Some(n) = n {
            assert_eq!(n.get_long(), Some("namespace"), "{}", sub.get_name());
        }
    }
}

/// Stderr without the warnings of the collectors: the test's node root
/// has no /proc/cmdline or /proc/modules, so those subtypes are reported
/// unavailable before the line the test is about.
fn without_warnings(err: &str) -> String {
    err.lines()
        .filter(|l| !l.starts_with("warning: OS."))
        .map(|l| format!("{l}\n"))
        .collect()
}
