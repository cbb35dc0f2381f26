//! `aicr bundle -d helmfile` checked without helmfile (building it takes
//! longer than CI may spend; `make test-helmfile` runs the real one): the
//! `helmfile.yaml` of several bundles (the eks/h100/training/ubuntu stack;
//! a recipe of a repository chart with manifests around it, an OCI chart of
//! an asynchronous operator awaiting every kind of readiness check, and a
//! manifests-only component; the same with its charts vendored) holds only
//! the keys helmfile reads, with their Go types (tests/fixtures/helmfile:
//! helmfile v1.8.0 decodes strictly, so an unknown key fails it), and
//! passes helmfile's published JSON schema (SchemaStore's). The hooks'
//! shell passes shellcheck, and the readiness hooks, run as helmfile runs
//! them against the test cluster, wait for an object that appears late and
//! fail at their deadline, naming it, for one that never does.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{code, fixture, parse_yaml, run, stderr};
use serde_json::Value;

/// The eks/h100/training/ubuntu bundle (helm charts from repositories and
/// OCI, a manifests-only component, manifests around a chart, an async
/// operator).
fn eks_bundle(dir: &Path) -> PathBuf {
    let out = run(&[
        "bundle",
        "--service",
        "eks",
        "--accelerator",
        "h100",
        "--intent",
        "training",
        "--os",
        "ubuntu",
        "-d",
        "helmfile",
        "-o",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    dir.to_path_buf()
}

/// The readiness of `ho`, the asynchronous operator: one check of each
/// kind (`crd` names the CRD it waits for).
fn operator_readiness(crd: &str, namespace: &str) -> String {
    format!(
        "      async: true
      workloads:
        - {{kind: Deployment, name: ho-operator}}
        - {{kind: DaemonSet, selector: app=ho-agent}}
      crds: [{crd}]
      fields:
        - {{apiVersion: v1, kind: ConfigMap, resource: configmaps, name: ho-state, namespace: {namespace}, field: data.state, equals: ready}}
        - {{apiVersion: example.com/v1, kind: Gizmo, resource: gizmos, scope: Cluster, field: status.phase, equals: Ready}}
"
    )
}

/// A recipe and a `--data` registry of three components in `namespace`:
/// `hc`, a repository chart with a ConfigMap applied before it and a custom
/// resource after it; `ho`, an OCI chart of an asynchronous operator
/// (`readiness`); `hm`, manifests only. Returns the bundle's directory.
fn small_bundle(
    work: &Path,
    name: &str,
    namespace: &str,
    readiness: &str,
    extra: &[&str],
) -> PathBuf {
    let data = work.join(format!("{name}-data"));
    let write = |rel: &str, text: &str| {
        let p = data.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    write(
        "registry.yaml",
        &format!(
            "apiVersion: aicr.nvidia.com/v1alpha1
kind: ComponentRegistry
components:
  - name: hc
    helm:
      defaultRepository: https://charts.example.com/stable
      defaultChart: widget
  - name: ho
    helm:
      defaultRepository: oci://registry.example.com/charts
      defaultChart: gadget
    readiness:
{readiness}  - name: hm
    helm:
      defaultRepository: \"\"
"
        ),
    );
    for c in ["hc", "ho", "hm"] {
        write(&format!("components/{c}/values.yaml"), "replicas: 1\n");
    }
    write(
        "components/hc/manifests/settings.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: hc-settings\ndata:\n  a: b\n",
    );
    write(
        "components/hc/manifests/gizmo.yaml",
        "apiVersion: example.com/v1\nkind: Gizmo\nmetadata:\n  name: hc-gizmo\nspec: {}\n",
    );
    write(
        "components/hm/manifests/only.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: hm-only\n",
    );
    let recipe = work.join(format!("{name}-recipe.yaml"));
    std::fs::write(
        &recipe,
        format!(
            "kind: RecipeResult
apiVersion: aicr.nvidia.com/v1alpha1
metadata:
  version: 0.1.0
criteria:
  service: any
componentRefs:
  - name: hc
    namespace: {namespace}
    chart: widget
    type: Helm
    source: https://charts.example.com/stable
    version: 1.2.3
    valuesFile: components/hc/values.yaml
    dependencyRefs: []
    manifestFiles: [components/hc/manifests/settings.yaml, components/hc/manifests/gizmo.yaml]
  - name: ho
    namespace: {namespace}
    chart: gadget
    type: Helm
    source: oci://registry.example.com/charts
    version: \"1.10\"
    valuesFile: components/ho/values.yaml
    dependencyRefs: [hc]
  - name: hm
    namespace: {namespace}
    type: Helm
    valuesFile: components/hm/values.yaml
    dependencyRefs: [ho]
    manifestFiles: [components/hm/manifests/only.yaml]
deploymentOrder: [hc, ho, hm]
"
        ),
    )
    .unwrap();
    let out_dir = work.join(name);
    let out = common::aicr()
        .args(["bundle", "-r", recipe.to_str().unwrap()])
        .args(["--data", data.to_str().unwrap()])
        .args(["-d", "helmfile", "-o", out_dir.to_str().unwrap()])
        .args(extra)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "bundle: {}", stderr(&out));
    out_dir
}

/// A stand-in for `helm pull --untar --untardir DIR`: writes a chart
/// directory into DIR.
fn fake_helm(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join("helm");
    std::fs::write(
        &p,
        "#!/bin/sh\n\
         while [ $# -gt 0 ]; do case $1 in --untardir) d=$2; shift ;; esac; shift; done\n\
         [ -n \"$d\" ] || { echo 'fake helm: no --untardir' >&2; exit 1; }\n\
         mkdir -p \"$d/chart/templates\"\n\
         printf 'apiVersion: v2\\nname: chart\\nversion: 0.1.0\\n' > \"$d/chart/Chart.yaml\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// The `helmfile.yaml` of every kind of bundle, by name.
fn bundles(work: &Path) -> Vec<(&'static str, Value)> {
    let helm = fake_helm(work);
    let readiness = operator_readiness("gizmos.example.com", "hf-ns");
    let dirs = [
        ("eks", eks_bundle(&work.join("eks"))),
        (
            "small",
            small_bundle(work, "small", "hf-ns", &readiness, &[]),
        ),
        (
            "vendored",
            small_bundle(
                work,
                "vendored",
                "hf-ns",
                &readiness,
                &["--vendor-charts", "--helm", helm.to_str().unwrap()],
            ),
        ),
    ];
    dirs.into_iter()
        .map(|(name, dir)| {
            let text = std::fs::read_to_string(dir.join("helmfile.yaml")).unwrap();
            (name, parse_yaml(&text))
        })
        .collect()
}

/// The YAML keys helmfile v1.8.0 reads (tests/fixtures/helmfile/fields.json,
/// from its Go structs), with their Go types.
fn helmfile_fields() -> Value {
    let text = std::fs::read_to_string(fixture("helmfile/fields.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Every key of `v` (a `structure` of helmfile's) and its type, against the
/// Go fields; one line per problem. A Go type this checker does not model
/// is a problem too: the test must learn it before aicr writes it.
fn check_struct(fields: &Value, structure: &str, v: &Value, at: &str, errors: &mut Vec<String>) {
    let Some(obj) = v.as_object() else {
        errors.push(format!("{at}: a mapping ({structure}) expected, got {v}"));
        return;
    };
    let known = &fields["structs"][structure]["fields"];
    for (key, value) in obj {
        let here = format!("{at}.{key}");
        match known[key].as_str() {
            None => errors.push(format!(
                "{here}: helmfile's {structure} has no field {key:?}"
            )),
            Some(ty) => check_type(fields, ty, value, &here, errors),
        }
    }
}

fn check_type(fields: &Value, ty: &str, v: &Value, at: &str, errors: &mut Vec<String>) {
    let ty = ty.trim_start_matches('*');
    let ok = match ty {
        "string" => v.is_string(),
        "bool" => v.is_boolean(),
        "int" => v.is_i64() || v.is_u64(),
        "[]any" => v.is_array(),
        "[]string" => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
        "map[string]string" => v
            .as_object()
            .is_some_and(|m| m.values().all(Value::is_string)),
        "HelmSpec" => return check_struct(fields, "HelmSpec", v, at, errors),
        "[]RepositorySpec" | "[]ReleaseSpec" | "[]event.Hook" => {
            let inner = match ty {
                "[]RepositorySpec" => "RepositorySpec",
                "[]ReleaseSpec" => "ReleaseSpec",
                _ => "Hook",
            };
            let Some(items) = v.as_array() else {
                errors.push(format!("{at}: a list ({ty}) expected, got {v}"));
                return;
            };
            for (i, item) in items.iter().enumerate() {
                check_struct(fields, inner, item, &format!("{at}[{i}]"), errors);
            }
            return;
        }
        other => {
            errors.push(format!(
                "{at}: Go type {other} is not modelled by this test's checker"
            ));
            return;
        }
    };
    if !ok {
        errors.push(format!("{at}: {ty} expected, got {v}"));
    }
}

fn field_errors(doc: &Value) -> Vec<String> {
    let fields = helmfile_fields();
    let mut errors = Vec::new();
    check_struct(&fields, "ReleaseSetSpec", doc, "helmfile.yaml", &mut errors);
    errors
}

/// The checker refuses what helmfile refuses: an unknown key, a wrong type.
fn broken_docs() -> Vec<(&'static str, Value)> {
    vec![
        ("unknown top-level key", serde_json::json!({"release": []})),
        (
            "chart a number",
            serde_json::json!({"releases": [{"name": "a", "chart": 5}]}),
        ),
        (
            "needs a string",
            serde_json::json!({"releases": [{"name": "a", "chart": "b", "needs": "c"}]}),
        ),
        (
            "unknown hook key",
            serde_json::json!({"releases": [{"name": "a", "chart": "b", "hooks": [{"event": ["presync"]}]}]}),
        ),
        (
            "hook events an unknown event",
            serde_json::json!({"releases": [{"name": "a", "chart": "b", "hooks": [{"events": ["postinstall"], "command": "true"}]}]}),
        ),
        (
            "timeout a string",
            serde_json::json!({"helmDefaults": {"timeout": "600s"}}),
        ),
        (
            "repository oci a string",
            serde_json::json!({"repositories": [{"name": "a", "url": "b", "oci": "true"}]}),
        ),
    ]
}

#[test]
fn every_key_of_helmfile_yaml_is_a_field_helmfile_reads_with_its_type() {
    let work = tempfile::tempdir().unwrap();
    for (name, doc) in bundles(work.path()) {
        let errors = field_errors(&doc);
        assert!(errors.is_empty(), "{name}: {errors:#?}");
    }
    // The checker is not blind: each broken document is refused (the hook
    // event, which Go reads as any string, is the schema's to refuse).
    for (what, doc) in broken_docs() {
        if what == "hook events an unknown event" {
            continue;
        }
        assert!(!field_errors(&doc).is_empty(), "{what}: accepted: {doc}");
    }
    assert_eq!(
        field_errors(&serde_json::json!({"releases": [{"name": "a", "chart": 5, "need": []}]})),
        [
            "helmfile.yaml.releases[0].chart: string expected, got 5",
            "helmfile.yaml.releases[0].need: helmfile's ReleaseSpec has no field \"need\"",
        ]
    );
}

#[test]
fn the_bundles_cover_every_kind_of_release_and_hook() {
    let work = tempfile::tempdir().unwrap();
    let docs = bundles(work.path());
    let release = |bundle: &str, name: &str| -> Value {
        let doc = &docs.iter().find(|(b, _)| *b == bundle).unwrap().1;
        doc["releases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("{bundle}: no release {name}"))
            .clone()
    };
    // A repository chart, an OCI chart (its repository `oci: true`), a
    // vendored chart (a local path, no repository), manifests only.
    assert_eq!(release("small", "hc")["chart"], "hc/widget");
    assert_eq!(release("small", "ho")["chart"], "ho/gadget");
    assert_eq!(release("small", "ho")["version"], "1.10");
    assert_eq!(release("vendored", "ho")["chart"], "./charts/ho");
    assert!(release("vendored", "ho").get("version").is_none());
    assert_eq!(release("small", "hm")["chart"], "./hm/manifests");
    let small = &docs[1].1;
    assert_eq!(
        small["repositories"],
        serde_json::json!([
            {"name": "hc", "url": "https://charts.example.com/stable"},
            {"name": "ho", "url": "registry.example.com/charts", "oci": true},
        ])
    );
    assert!(docs[2].1.get("repositories").is_none(), "{}", docs[2].1);
    // The operator is installed without waiting; one readiness hook per
    // check, each a POSIX sh poll loop given the component, the deadline
    // and the check's arguments.
    let ho = release("small", "ho");
    assert_eq!(ho["wait"], false);
    let awaits: Vec<Vec<&str>> = ho["hooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            assert_eq!(h["events"], serde_json::json!(["postsync"]));
            assert_eq!(h["command"], "sh");
            h["args"].as_array().unwrap()[2..]
                .iter()
                .map(|a| a.as_str().unwrap())
                .collect()
        })
        .collect();
    assert_eq!(
        awaits,
        [
            vec!["ho", "600", "deployment", "ho-operator", "hf-ns"],
            vec!["ho", "600", "daemonset", "app=ho-agent", "hf-ns"],
            vec!["ho", "600", "gizmos.example.com"],
            vec![
                "ho",
                "600",
                "configmaps",
                "ho-state",
                "hf-ns",
                "{.data.state}",
                "ready"
            ],
            vec![
                "ho",
                "600",
                "gizmos.example.com",
                "",
                "",
                "{.status.phase}",
                "Ready"
            ],
        ]
    );
    // hc: the namespace and the ConfigMap before the chart, the custom
    // resource after it, both deleted after an uninstall.
    let hc = release("small", "hc");
    let events: Vec<(String, String)> = hc["hooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let args: Vec<&str> = h["args"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap())
                .collect();
            (h["events"][0].as_str().unwrap().to_string(), args.join(" "))
        })
        .collect();
    assert_eq!(
        events,
        [
            ("presync".to_string(), "-c kubectl get namespace \"$0\" >/dev/null 2>&1 || kubectl create namespace \"$0\" hf-ns".to_string()),
            ("presync".into(), "apply --namespace hf-ns -f hc/manifests/settings.yaml".into()),
            ("postuninstall".into(), "delete --ignore-not-found --namespace hf-ns -f hc/manifests/settings.yaml".into()),
            ("postsync".into(), "apply --namespace hf-ns -f hc/manifests/gizmo.yaml".into()),
            ("postuninstall".into(), "delete --ignore-not-found --namespace hf-ns -f hc/manifests/gizmo.yaml".into()),
        ]
    );
}

/// Runs a python3 script with `stdin`; fails (never skips) when python3 or
/// the package is missing.
fn python(script: &str, args: &[&str], stdin: &[u8], package: &str) -> String {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("python3 cannot run ({e}): this test needs {package} (.ci/run installs it)")
        });
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python3 with {package} failed (.ci/run installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Each document's schema errors, one line per document ("ok" when none).
const VALIDATE: &str = r#"
import json, sys
import jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft7Validator.check_schema(schema)
v = jsonschema.Draft7Validator(schema)
for name, doc in json.load(sys.stdin):
    errors = sorted(f"{list(e.absolute_path)}: {e.message}" for e in v.iter_errors(doc))
    print(f"{name}: " + ("; ".join(errors) if errors else "ok"))
"#;

/// helmfile's published JSON schema (SchemaStore's helmfile.json, vendored
/// in tests/fixtures/helmfile) accepts every bundle's helmfile.yaml and
/// refuses broken ones.
#[test]
#[ignore = "needs python3-jsonschema"]
fn helmfile_yaml_validates_against_helmfiles_published_schema() {
    let work = tempfile::tempdir().unwrap();
    let mut docs: Vec<(String, Value)> = bundles(work.path())
        .into_iter()
        .map(|(n, d)| (n.to_string(), d))
        .collect();
    docs.extend(broken_docs().into_iter().map(|(n, d)| (n.to_string(), d)));
    let got = python(
        VALIDATE,
        &[fixture("helmfile/helmfile.schema.json").to_str().unwrap()],
        &serde_json::to_vec(&docs).unwrap(),
        "python3-jsonschema",
    );
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(
        lines[..3],
        ["eks: ok", "small: ok", "vendored: ok"],
        "{got}"
    );
    // The schema has no closed objects (helmfile's strict decoding is the
    // Go-field test's to check), so an unknown key passes it; a wrong type
    // or an unknown hook event does not.
    assert_eq!(
        lines[3..],
        [
            "unknown top-level key: ok",
            "chart a number: ['releases', 0, 'chart']: 5 is not of type 'string'",
            "needs a string: ok",
            "unknown hook key: ok",
            "hook events an unknown event: ['releases', 0, 'hooks', 0, 'events', 0]: 'postinstall' is not one of ['prepare', 'preapply', 'presync', 'preuninstall', 'postuninstall', 'postsync', 'cleanup']",
            "timeout a string: ['helmDefaults', 'timeout']: '600s' is not of type 'number'",
            "repository oci a string: ['repositories', 0, 'oci']: 'true' is not of type 'boolean'",
        ],
        "{got}"
    );
}

/// Every `sh -c` script of every bundle's hooks, with where it is.
fn shell_scripts(docs: &[(&str, Value)]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (bundle, doc) in docs {
        for r in doc["releases"].as_array().unwrap() {
            for h in r["hooks"].as_array().into_iter().flatten() {
                if h["command"] == "sh" {
                    assert_eq!(h["args"][0], "-c", "{h}");
                    let at = format!("{bundle}: {} {}", r["name"], h["args"]);
                    out.push((at, h["args"][1].as_str().unwrap().to_string()));
                }
            }
        }
    }
    out
}

#[test]
#[ignore = "needs shellcheck"]
fn the_hooks_shell_passes_shellcheck() {
    use std::io::Write;
    let work = tempfile::tempdir().unwrap();
    let docs = bundles(work.path());
    let scripts = shell_scripts(&docs);
    // The namespace hook and one poll loop per readiness kind, at least.
    assert!(scripts.len() >= 5, "{scripts:?}");
    for (at, script) in scripts {
        let mut child = Command::new("shellcheck")
            .args(["--shell=sh", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("shellcheck runs (this test needs shellcheck; .ci/run installs it)");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{at}:\n{script}\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

/// A readiness hook of a bundle, run as helmfile runs it (`sh ARGS...` in
/// the bundle's directory) against the test cluster, with its deadline set
/// to `deadline` seconds.
fn run_hook(
    c: &common::cluster::Cluster,
    dir: &Path,
    hook: &Value,
    deadline: u64,
) -> std::process::Child {
    let mut args: Vec<String> = hook["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        args[3], "600",
        "the deadline is the bundle's timeout: {args:?}"
    );
    args[3] = deadline.to_string();
    let bin = c.kubectl.parent().unwrap();
    Command::new(hook["command"].as_str().unwrap())
        .args(&args)
        .current_dir(dir)
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .env("KUBECONFIG", &c.kubeconfig)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

fn finish(child: std::process::Child) -> (i32, String, String) {
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A Deployment (no replicas) and a DaemonSet labelled `app=ho-agent`, with
/// no status: the cluster runs no workload controllers, so they are not
/// rolled out until the test writes their status.
fn workloads_yaml() -> String {
    let spec = |app: &str| {
        format!(
            "  selector: {{matchLabels: {{app: {app}}}}}
  template:
    metadata: {{labels: {{app: {app}}}}}
    spec:
      containers: [{{name: c, image: example.com/none:1}}]
      nodeSelector: {{aicr-test: none}}
"
        )
    };
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata: {{name: ho-operator}}
spec:
  replicas: 0
{}---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: ho-agent
  labels: {{app: ho-agent}}
spec:
{}",
        spec("ho-operator"),
        spec("ho-agent")
    )
}

/// Deletes the test's CRDs however the test ends.
struct Crds(common::cluster::Cluster, Vec<String>);

impl Drop for Crds {
    fn drop(&mut self) {
        for crd in &self.1 {
            let _ = self.0.try_kubectl(
                &["delete", "crd", crd, "--ignore-not-found", "--wait=false"],
                "",
            );
        }
    }
}

fn crd_yaml(group: &str, plural: &str, kind: &str) -> String {
    format!(
        "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: {plural}.{group}
spec:
  group: {group}
  scope: Cluster
  names: {{plural: {plural}, singular: {singular}, kind: {kind}, listKind: {kind}List}}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}
",
        singular = plural.trim_end_matches('s'),
    )
}

/// The readiness hooks poll: one of each kind (a Deployment by name,
/// DaemonSets by selector, a CRD, a ConfigMap's field) started before its
/// object exists, which appears 3 s later not ready yet (no status, a wrong
/// value) and is made ready 3 s after that: each hook waits through both
/// and passes. A CRD never created fails its hook at the deadline with a
/// message naming it and what the hook last read. (`kubectl wait` and
/// `kubectl rollout status` fail at once on a missing object.)
#[test]
#[ignore = "needs the test cluster (.ci/kube)"]
fn readiness_hooks_wait_for_late_objects_and_fail_at_their_deadline() {
    let c = common::cluster::cluster();
    let ns = common::cluster::Namespace::new(&c, "hfhook");
    let group = format!("{}.aicr-test.example.com", common::cluster::unique("hf"));
    let late = format!("lates.{group}");
    let never = format!("nevers.{group}");
    let _crds = Crds(c.clone(), vec![late.clone(), never.clone()]);
    let work = tempfile::tempdir().unwrap();
    let b = small_bundle(
        work.path(),
        "b",
        &ns.name,
        &operator_readiness(&late, &ns.name),
        &[],
    );
    let b_never = small_bundle(
        work.path(),
        "n",
        &ns.name,
        &operator_readiness(&never, &ns.name),
        &[],
    );
    let hooks = |dir: &Path| -> Vec<Value> {
        let doc = parse_yaml(&std::fs::read_to_string(dir.join("helmfile.yaml")).unwrap());
        doc["releases"][1]["hooks"].as_array().unwrap().clone()
    };
    // rollout (a Deployment), rollout-selector (DaemonSets), crd, field.
    let h = hooks(&b);
    let never_hook = hooks(&b_never)[2].clone();
    assert_eq!(h[0]["args"][5], "ho-operator");
    assert_eq!(h[1]["args"][5], "app=ho-agent");
    assert_eq!(h[2]["args"][4], late.as_str());
    assert_eq!(h[3]["args"][5], "ho-state");
    assert_eq!(never_hook["args"][4], never.as_str());

    // Nothing exists when the hooks start; the objects appear 3 s later,
    // not ready yet (no status, a wrong value), and are made ready 3 s
    // after that.
    let t0 = Instant::now();
    let mut runs: Vec<_> = h[..4].iter().map(|k| run_hook(&c, &b, k, 60)).collect();
    let never_run = run_hook(&c, &b_never, &never_hook, 6);
    let still_waiting = |runs: &mut Vec<std::process::Child>, when: &str| {
        for (i, r) in runs.iter_mut().enumerate() {
            if let Some(status) = r.try_wait().unwrap() {
                let mut err = String::new();
                std::io::Read::read_to_string(r.stderr.as_mut().unwrap(), &mut err).unwrap();
                panic!("hook {i} ended {when} ({status}): {err}");
            }
        }
    };
    std::thread::sleep(Duration::from_secs(3));
    // (kubectl wait and rollout status would have failed by now)
    still_waiting(&mut runs, "before its object existed");
    c.kubectl(
        &["apply", "-f", "-"],
        Some(&crd_yaml(&group, "lates", "Late")),
    );
    c.kubectl(
        &["apply", "-n", &ns.name, "-f", "-"],
        Some(&workloads_yaml()),
    );
    c.kubectl(
        &[
            "create",
            "configmap",
            "ho-state",
            "-n",
            &ns.name,
            "--from-literal=state=starting",
        ],
        None,
    );
    std::thread::sleep(Duration::from_secs(3));
    let crd = runs.remove(2);
    still_waiting(&mut runs, "before its object was ready");
    for (kind, name, status) in [
        (
            "deployment",
            "ho-operator",
            r#"{"status":{"observedGeneration":1}}"#,
        ),
        (
            "daemonset",
            "ho-agent",
            r#"{"status":{"observedGeneration":1,"currentNumberScheduled":0,"desiredNumberScheduled":0,"numberMisscheduled":0,"numberReady":0}}"#,
        ),
    ] {
        c.kubectl(
            &[
                "patch",
                kind,
                name,
                "-n",
                &ns.name,
                "--subresource=status",
                "--type=merge",
                "-p",
                status,
            ],
            None,
        );
    }
    c.kubectl(
        &[
            "patch",
            "configmap",
            "ho-state",
            "-n",
            &ns.name,
            "-p",
            r#"{"data":{"state":"ready"}}"#,
        ],
        None,
    );

    let (code, out, err) = finish(crd);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(
        out,
        format!("ho: await CRD {late} Established: ready\n"),
        "{err}"
    );
    let want = [
        format!(
            "ho: await deployment/ho-operator in {} rolled out: ready\n",
            ns.name
        ),
        format!(
            "ho: await every daemonset matching app=ho-agent in {} rolled out: ready\n",
            ns.name
        ),
        format!(
            "ho: await configmaps/ho-state in {} {{.data.state}} = ready: ready\n",
            ns.name
        ),
    ];
    for (run, want) in runs.into_iter().zip(want) {
        let (code, out, err) = finish(run);
        assert_eq!(code, 0, "{out}\n{err}");
        assert_eq!(out, want, "{err}");
    }
    let (code, out, err) = finish(never_run);
    let took = t0.elapsed();
    assert_eq!(code, 1, "{out}\n{err}");
    assert_eq!(out, "");
    assert_eq!(
        err,
        format!(
            "ho: await CRD {never} Established FAILED: not after 6s (last seen: Error from server (NotFound): customresourcedefinitions.apiextensions.k8s.io \"{never}\" not found)\n"
        )
    );
    assert!(
        took >= Duration::from_secs(6) && took < Duration::from_secs(40),
        "{took:?}"
    );
}
