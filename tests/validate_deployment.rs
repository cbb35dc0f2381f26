//! The deployment phase of `aicr validate` through the library
//! (`aicr::validate::deployment`), against the real kube-apiserver of
//! `.ci/kube/` (no workload controllers run there, so the test writes the status a
//! controller would, through the status subresource): a recipe of three
//! components whose objects the test installs, all passing; then one thing
//! broken at a time; then a user allowed only some reads. Every object has a
//! per-test name (namespaces, CRD group, ClusterPolicy, RBAC objects), so
//! runs in parallel with other tests never meet. The tests that need no
//! server (unreachable, silent server, unknown context) always run.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use aicr::error::{Class, Classify};
use aicr::k8s::{ClusterSettings, Env};
use aicr::recipe::registry::{Registry, RegistryComponent};
use aicr::recipe::result::RecipeResult;
use aicr::validate::deployment::{self, Outcome};
use aicr::validate::{helm_release, Status};
use common::cluster::*;
use common::fixture;

const CHART_VERSION: &str = "v25.10.1";

/// The objects of one test run.
struct Setup {
    c: Cluster,
    id: String,
    /// The operator's namespace and the agent's.
    ns_op: String,
    ns_agent: String,
    group: String,
    policy: String,
}

impl Setup {
    fn crd_name(&self) -> String {
        format!("widgets.{}", self.group)
    }

    /// The recipe: an operator chart and a manifest-only agent.
    fn recipe(&self, version: &str) -> RecipeResult {
        RecipeResult::parse(self.recipe_text(version).as_bytes(), "test recipe").unwrap()
    }

    fn recipe_text(&self, version: &str) -> String {
        format!(
            "kind: RecipeResult
apiVersion: aicr.nvidia.com/v1alpha1
metadata: {{version: test}}
criteria: {{service: any, accelerator: any, intent: any, os: any, platform: any}}
componentRefs:
  - name: test-operator
    namespace: {ns_op}
    type: Helm
    source: https://charts.example/test
    chart: test-operator
    version: {version}
  - name: test-agent
    namespace: {ns_agent}
    manifestFiles: [agent.yaml]
deploymentOrder: [test-operator, test-agent]
",
            ns_op = self.ns_op,
            ns_agent = self.ns_agent,
        )
    }

    /// The readiness declarations, as a `--data` registry would give them.
    fn registry(&self) -> Registry {
        let components: Vec<RegistryComponent> =
            serde_yaml_ng::from_str(&self.registry_text()).unwrap();
        Registry { components }
    }

    /// The components of the test registry, a YAML sequence.
    fn registry_text(&self) -> String {
        format!(
            "- name: test-operator
  helm: {{defaultRepository: https://charts.example/test, defaultNamespace: unused}}
  readiness:
    workloads:
      - {{kind: Deployment, name: operator}}
    crds: [clusterpolicies.nvidia.com, {crd}]
    fields:
      - {{apiVersion: nvidia.com/v1, kind: ClusterPolicy, resource: clusterpolicies, scope: Cluster, name: {policy}, field: status.state, equals: ready}}
- name: test-agent
  manifest: {{defaultNamespace: unused}}
  readiness:
    workloads:
      - {{kind: DaemonSet, name: agent}}
      - {{kind: DaemonSet, selector: app={id}-extra}}
",
            crd = self.crd_name(),
            policy = self.policy,
            id = self.id,
        )
    }

    fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> String {
        self.c.kubectl(args, stdin)
    }

    /// Retries `kubectl apply` until the server serves the kind (a CRD is
    /// served a moment after it is created).
    fn apply_when_served(&self, yaml: &str) {
        let mut last = String::new();
        for _ in 0..100 {
            let (ok, out) = self.c.try_kubectl(&["apply", "-f", "-"], yaml);
            if ok {
                return;
            }
            last = out;
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("could not apply: {last}\n{yaml}");
    }

    fn patch_status(&self, ns: Option<&str>, what: &str, status: &str) {
        let mut args = vec!["patch"];
        if let Some(ns) = ns {
            args.extend(["-n", ns]);
        }
        let patch = format!("{{\"status\":{status}}}");
        args.extend([what, "--subresource=status", "--type=merge", "-p", &patch]);
        self.kubectl(&args, None);
    }

    fn release_secret(&self, revision: u32, status: &str, chart_version: &str) {
        let json = format!(
            r#"{{"name":"test-operator","version":{revision},"namespace":"{ns}","info":{{"status":"{status}"}},"chart":{{"metadata":{{"name":"test-operator","version":"{chart_version}"}}}},"manifest":"---\n"}}"#,
            ns = self.ns_op
        );
        let payload = helm_release::encode(json.as_bytes());
        let yaml = format!(
            "apiVersion: v1
kind: Secret
type: helm.sh/release.v1
metadata:
  name: sh.helm.release.v1.test-operator.v{revision}
  namespace: {ns}
  labels: {{owner: helm, name: test-operator, status: {status}, version: \"{revision}\"}}
stringData:
  release: {payload}
",
            ns = self.ns_op
        );
        self.kubectl(&["apply", "-f", "-"], Some(&yaml));
    }

    fn install(&self) {
        self.kubectl(&["create", "namespace", &self.ns_op], None);
        self.kubectl(&["create", "namespace", &self.ns_agent], None);
        self.release_secret(1, "superseded", "v25.3.0");
        self.release_secret(2, "deployed", CHART_VERSION);
        let workload = |kind: &str, name: &str, ns: &str, labels: &str, extra: &str| {
            format!(
                "apiVersion: apps/v1
kind: {kind}
metadata:
  name: {name}
  namespace: {ns}
  labels: {{{labels}}}
spec:
{extra}  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers: [{{name: c, image: registry.example/aicr-test/x:1}}]
"
            )
        };
        self.kubectl(
            &["apply", "-f", "-"],
            Some(&workload(
                "Deployment",
                "operator",
                &self.ns_op,
                "",
                "  replicas: 2\n",
            )),
        );
        self.kubectl(
            &["apply", "-f", "-"],
            Some(&workload("DaemonSet", "agent", &self.ns_agent, "", "")),
        );
        self.kubectl(
            &["apply", "-f", "-"],
            Some(&workload(
                "DaemonSet",
                "extra",
                &self.ns_agent,
                &format!("app: {}-extra", self.id),
                "",
            )),
        );
        self.set_deployment_ready(2);
        for ds in ["agent", "extra"] {
            self.patch_status(
                Some(&self.ns_agent),
                &format!("daemonset/{ds}"),
                r#"{"observedGeneration":1,"desiredNumberScheduled":3,"currentNumberScheduled":3,"numberMisscheduled":0,"numberReady":3,"updatedNumberScheduled":3}"#,
            );
        }
        self.install_crd();
        let crd =
            std::fs::read_to_string(fixture("crds/gpu-operator-clusterpolicy-crd.yaml")).unwrap();
        self.kubectl(&["create", "-f", "-"], Some(&crd));
        self.apply_when_served(&format!(
            "apiVersion: nvidia.com/v1
kind: ClusterPolicy
metadata:
  name: {}
spec:
  driver: {{enabled: true}}
  toolkit: {{enabled: true}}
  devicePlugin: {{enabled: true}}
  dcgm: {{enabled: true}}
  dcgmExporter: {{enabled: true}}
  gfd: {{enabled: true}}
  nodeStatusExporter: {{enabled: false}}
  operator: {{defaultRuntime: containerd}}
  daemonsets: {{tolerations: [{{operator: Exists}}]}}
",
            self.policy
        ));
        self.set_policy_state("ready");
    }

    fn install_crd(&self) {
        let yaml = format!(
            "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: {name}
spec:
  group: {group}
  scope: Cluster
  names: {{plural: widgets, singular: widget, kind: Widget, listKind: WidgetList}}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}
",
            name = self.crd_name(),
            group = self.group
        );
        self.kubectl(&["apply", "-f", "-"], Some(&yaml));
        // Established is set by the server a moment later.
        for _ in 0..100 {
            let out = self.kubectl(
                &[
                    "get",
                    "crd",
                    &self.crd_name(),
                    "-o",
                    "jsonpath={.status.conditions[?(@.type==\"Established\")].status}",
                ],
                None,
            );
            if out.trim() == "True" {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("CRD {} never became Established", self.crd_name());
    }

    fn set_deployment_ready(&self, ready: u32) {
        self.patch_status(
            Some(&self.ns_op),
            "deployment/operator",
            &format!(
                r#"{{"observedGeneration":1,"replicas":2,"readyReplicas":{ready},"updatedReplicas":2,"availableReplicas":{ready}}}"#
            ),
        );
    }

    fn set_policy_state(&self, state: &str) {
        self.patch_status(
            None,
            &format!("clusterpolicy/{}", self.policy),
            &format!(r#"{{"state":"{state}"}}"#),
        );
    }

    fn cleanup(&self) {
        for args in [
            vec![
                "delete",
                "namespace",
                &self.ns_op,
                "--wait=false",
                "--ignore-not-found",
            ],
            vec![
                "delete",
                "namespace",
                &self.ns_agent,
                "--wait=false",
                "--ignore-not-found",
            ],
            vec![
                "delete",
                "clusterpolicy",
                &self.policy,
                "--ignore-not-found",
            ],
        ] {
            let _ = self.c.try_kubectl(&args, "");
        }
        let crd = self.crd_name();
        let _ = self
            .c
            .try_kubectl(&["delete", "crd", &crd, "--ignore-not-found"], "");
        let role = format!("{}-reader", self.id);
        let _ = self.c.try_kubectl(
            &[
                "delete",
                "clusterrole,clusterrolebinding",
                &role,
                "--ignore-not-found",
            ],
            "",
        );
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        self.cleanup();
    }
}

fn setup(prefix: &str) -> Setup {
    let c = cluster();
    let id = unique(prefix);
    Setup {
        ns_op: format!("{id}-op"),
        ns_agent: format!("{id}-agent"),
        group: format!("{id}.aicr.test"),
        policy: format!("{id}-policy"),
        id,
        c,
    }
}

fn settings(kubeconfig: &Path) -> ClusterSettings {
    ClusterSettings::resolve(
        Some(kubeconfig.to_path_buf()),
        None,
        Duration::from_secs(10),
        &Env::default(),
    )
    .unwrap()
}

fn run(s: &Setup, kubeconfig: &Path, recipe: &RecipeResult) -> Outcome {
    deployment::run(
        &settings(kubeconfig),
        recipe,
        &s.registry(),
        Duration::from_secs(60),
    )
    .unwrap()
}

/// `(status, name, object, message)` of every check, with the test's id
/// replaced by `ID`.
fn table(s: &Setup, o: &Outcome) -> Vec<(Status, String, String, String)> {
    let r = |t: &str| t.replace(&s.id, "ID");
    o.checks
        .iter()
        .map(|c| {
            assert_eq!(c.phase, aicr::validate::Phase::Deployment);
            (
                c.status,
                r(&c.name),
                r(c.object.as_deref().unwrap_or("")),
                r(&c.message),
            )
        })
        .collect()
}

/// The one check whose name ends with `suffix`, and that every other check
/// passed.
fn only_failure(s: &Setup, o: &Outcome, name: &str) -> (String, String) {
    let t = table(s, o);
    let failed: Vec<_> = t.iter().filter(|c| c.0 != Status::Passed).collect();
    assert_eq!(failed.len(), 1, "{t:#?}");
    assert_eq!(failed[0].0, Status::Failed, "{t:#?}");
    assert_eq!(failed[0].1, name, "{t:#?}");
    (failed[0].2.clone(), failed[0].3.clone())
}

fn p(status: Status, name: &str, object: &str, message: &str) -> (Status, String, String, String) {
    (status, name.into(), object.into(), message.into())
}

#[test]
#[ignore = "needs the test cluster (.ci/kube)"]
fn deployed_stack_passes_then_each_break_fails() {
    let s = setup("aicr-dep");
    s.install();
    let recipe = s.recipe(CHART_VERSION);
    let kc = s.c.kubeconfig.clone();
    let out = run(&s, &kc, &recipe);
    use Status::Passed;
    assert_eq!(
        table(&s, &out),
        vec![
            p(
                Passed,
                "test-operator: Namespace ID-op exists",
                "v1 Namespace ID-op",
                "namespace ID-op is Active"
            ),
            p(
                Passed,
                "test-operator: Helm release ID-op/test-operator deployed",
                "v1 Secret ID-op/sh.helm.release.v1.test-operator.v2",
                "release test-operator revision 2 status deployed, chart test-operator v25.10.1"
            ),
            p(
                Passed,
                "test-operator: Deployment ID-op/operator ready",
                "apps/v1 Deployment ID-op/operator",
                "2/2 replicas ready"
            ),
            p(
                Passed,
                "test-operator: CRD clusterpolicies.nvidia.com established",
                "apiextensions.k8s.io/v1 CustomResourceDefinition clusterpolicies.nvidia.com",
                "CRD clusterpolicies.nvidia.com is Established"
            ),
            p(
                Passed,
                "test-operator: CRD widgets.ID.aicr.test established",
                "apiextensions.k8s.io/v1 CustomResourceDefinition widgets.ID.aicr.test",
                "CRD widgets.ID.aicr.test is Established"
            ),
            p(
                Passed,
                "test-operator: ClusterPolicy ID-policy status.state is ready",
                "nvidia.com/v1 ClusterPolicy ID-policy",
                "ClusterPolicy ID-policy status.state is ready"
            ),
            p(
                Passed,
                "test-agent: Namespace ID-agent exists",
                "v1 Namespace ID-agent",
                "namespace ID-agent is Active"
            ),
            p(
                Passed,
                "test-agent: DaemonSet ID-agent/agent ready",
                "apps/v1 DaemonSet ID-agent/agent",
                "3/3 pods ready"
            ),
            p(
                Passed,
                "test-agent: DaemonSet ID-agent/extra ready",
                "apps/v1 DaemonSet ID-agent/extra",
                "3/3 pods ready"
            ),
        ]
    );
    assert_eq!(out.access, None);
    assert!(out
        .checks
        .iter()
        .all(|c| c.suite == "test-operator" || c.suite == "test-agent"));

    // A replica not ready.
    s.set_deployment_ready(1);
    let (_, msg) = only_failure(
        &s,
        &run(&s, &kc, &recipe),
        "test-operator: Deployment ID-op/operator ready",
    );
    assert_eq!(msg, "1/2 replicas ready");
    s.set_deployment_ready(2);

    // A new revision that failed.
    s.release_secret(3, "failed", CHART_VERSION);
    let (object, msg) = only_failure(
        &s,
        &run(&s, &kc, &recipe),
        "test-operator: Helm release ID-op/test-operator deployed",
    );
    assert_eq!(
        object,
        "v1 Secret ID-op/sh.helm.release.v1.test-operator.v3"
    );
    assert_eq!(msg, "release status failed; release test-operator revision 3 status failed, chart test-operator v25.10.1");
    s.kubectl(
        &[
            "delete",
            "secret",
            "-n",
            &s.ns_op,
            "sh.helm.release.v1.test-operator.v3",
        ],
        None,
    );

    // The recipe wants another chart version.
    let (_, msg) = only_failure(
        &s,
        &run(&s, &kc, &s.recipe("25.3.0")),
        "test-operator: Helm release ID-op/test-operator deployed",
    );
    assert_eq!(msg, "chart version v25.10.1, recipe wants 25.3.0");
    // A leading `v` on either side is ignored.
    let out = run(&s, &kc, &s.recipe("25.10.1"));
    assert!(
        out.checks.iter().all(|c| c.status == Passed),
        "{:#?}",
        table(&s, &out)
    );

    // The ClusterPolicy not ready.
    s.set_policy_state("notReady");
    let (_, msg) = only_failure(
        &s,
        &run(&s, &kc, &recipe),
        "test-operator: ClusterPolicy ID-policy status.state is ready",
    );
    assert_eq!(msg, "ClusterPolicy ID-policy status.state is notReady");
    s.set_policy_state("ready");

    // A DaemonSet whose generation the controller has not seen.
    s.kubectl(
        &[
            "patch",
            "-n",
            &s.ns_agent,
            "daemonset/agent",
            "--type=merge",
            "-p",
            r#"{"spec":{"template":{"metadata":{"annotations":{"aicr.test/rev":"2"}}}}}"#,
        ],
        None,
    );
    let (_, msg) = only_failure(
        &s,
        &run(&s, &kc, &recipe),
        "test-agent: DaemonSet ID-agent/agent ready",
    );
    assert_eq!(msg, "generation 2 not observed yet (observedGeneration 1)");
    s.patch_status(
        Some(&s.ns_agent),
        "daemonset/agent",
        r#"{"observedGeneration":2}"#,
    );

    // The CRD missing.
    s.kubectl(&["delete", "crd", &s.crd_name()], None);
    let (_, msg) = only_failure(
        &s,
        &run(&s, &kc, &recipe),
        "test-operator: CRD widgets.ID.aicr.test established",
    );
    assert_eq!(msg, "CRD widgets.ID.aicr.test not found");

    // Everything back but the CRD: exactly that one failure was the CRD.
    let out = run(&s, &kc, &recipe);
    assert_eq!(out.access, None);
}

/// A client certificate for a user allowed some reads only.
fn limited_kubeconfig(s: &Setup, dir: &Path) -> PathBuf {
    let user = format!("aicr-limited-{}", s.id);
    let kc = s.c.user_kubeconfig(&user, dir);
    // Everything but Deployments: cluster-wide reads, and in the operator's
    // namespace Secrets only.
    let role = format!("{}-reader", s.id);
    s.kubectl(
        &["create", "clusterrole", &role,
          "--verb=get,list",
          "--resource=namespaces,customresourcedefinitions.apiextensions.k8s.io,clusterpolicies.nvidia.com,daemonsets.apps,secrets"],
        None,
    );
    s.kubectl(
        &[
            "create",
            "clusterrolebinding",
            &role,
            "--clusterrole",
            &role,
            "--user",
            &user,
        ],
        None,
    );
    kc
}

#[test]
#[ignore = "needs the test cluster (.ci/kube)"]
fn forbidden_read_fails_its_check_with_class_unauthorized() {
    let s = setup("aicr-dep-rbac");
    s.install();
    let dir = tempfile::tempdir().unwrap();
    let kc = limited_kubeconfig(&s, dir.path());
    let recipe = s.recipe(CHART_VERSION);
    // RBAC takes effect a moment after the binding is created.
    let mut out = run(&s, &kc, &recipe);
    for _ in 0..50 {
        if out
            .checks
            .iter()
            .filter(|c| c.status != Status::Passed)
            .count()
            == 1
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        out = run(&s, &kc, &recipe);
    }
    let (object, msg) = only_failure(&s, &out, "test-operator: Deployment ID-op/operator ready");
    assert_eq!(object, "apps/v1 Deployment ID-op/operator");
    assert_eq!(
        msg,
        format!(
            "forbidden: cannot get deployments.apps \"operator\" in namespace ID-op (user \"aicr-limited-ID\") on {}",
            cluster().server()
        )
    );
    assert_eq!(out.access, Some(Class::Unauthorized));
    assert_eq!(Class::Unauthorized.exit_code(), 4);
}

/// Nothing listens: the phase cannot run, exit 6, naming the server.
#[test]
fn unreachable_server_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let kc = dir.path().join("kubeconfig");
    std::fs::write(&kc, kubeconfig_for(port)).unwrap();
    let err = deployment::run(
        &settings(&kc),
        &empty_recipe(),
        &Registry::default(),
        Duration::from_secs(30),
    )
    .unwrap_err();
    assert_eq!(err.class(), Class::Unavailable, "{err}");
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!(
            "cannot reach https://127.0.0.1:{port} (get /version (cluster-wide)): "
        )),
        "{msg}"
    );
    assert!(!msg.contains("hunter2"), "{msg}");
}

/// A server that accepts and never answers: exit 5 at the request deadline.
#[test]
fn silent_server_times_out() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let _hold = std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming().take(4) {
            held.push(s);
        }
        std::thread::sleep(Duration::from_secs(30));
    });
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    std::fs::write(&kc, kubeconfig_for(port)).unwrap();
    let mut settings = settings(&kc);
    settings.timeout = Duration::from_millis(500);
    let started = std::time::Instant::now();
    let err = deployment::run(
        &settings,
        &empty_recipe(),
        &Registry::default(),
        Duration::from_secs(30),
    )
    .unwrap_err();
    assert_eq!(err.class(), Class::Timeout, "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        err.to_string()
            .contains(&format!("https://127.0.0.1:{port}")),
        "{err}"
    );
}

/// `--context` naming no context: exit 2, listing those there are.
#[test]
fn unknown_context_is_invalid_input() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    std::fs::write(&kc, kubeconfig_for(1)).unwrap();
    let settings = ClusterSettings::resolve(
        Some(kc.clone()),
        Some("prod".into()),
        Duration::from_secs(1),
        &Env::default(),
    )
    .unwrap();
    let err = deployment::run(
        &settings,
        &empty_recipe(),
        &Registry::default(),
        Duration::from_secs(5),
    )
    .unwrap_err();
    assert_eq!(err.class(), Class::InvalidInput);
    assert_eq!(
        err.to_string(),
        format!(
            "--context \"prod\" is not in the kubeconfig ({}); contexts: local, other",
            kc.display()
        )
    );
}

fn empty_recipe() -> RecipeResult {
    RecipeResult::parse(
        b"kind: RecipeResult\napiVersion: aicr.nvidia.com/v1alpha1\nmetadata: {version: t}\ncriteria: {service: any}\n",
        "t",
    )
    .unwrap()
}

/// Declarations that find nothing fail, never pass: a selector matching no
/// workload, a kind whose CRD is not installed, a namespace that does not
/// exist; and a release record that does not decode.
#[test]
#[ignore = "needs the test cluster (.ci/kube)"]
fn declarations_that_find_nothing_fail() {
    let s = setup("aicr-dep-none");
    s.install();
    let kc = s.c.kubeconfig.clone();
    let mut registry = s.registry();
    let extra: Vec<RegistryComponent> = serde_yaml_ng::from_str(&format!(
        "- name: test-agent
  manifest: {{defaultNamespace: unused}}
  readiness:
    workloads:
      - {{kind: StatefulSet, selector: app={id}-nothing}}
    fields:
      - {{apiVersion: {group}/v1, kind: Gadget, resource: gadgets, scope: Cluster, field: status.ok, equals: \"true\"}}
      - {{apiVersion: {group}/v1, kind: Widget, resource: widgets, scope: Cluster, field: status.ok, equals: \"true\"}}
",
        id = s.id,
        group = s.group
    ))
    .unwrap();
    registry.merge(extra);
    s.release_secret(2, "deployed", CHART_VERSION);
    s.kubectl(
        &[
            "create",
            "secret",
            "generic",
            "-n",
            &s.ns_op,
            "sh.helm.release.v1.test-operator.v3",
            "--type=helm.sh/release.v1",
            "--from-literal=release=not base64!",
        ],
        None,
    );
    s.kubectl(
        &[
            "label",
            "secret",
            "-n",
            &s.ns_op,
            "sh.helm.release.v1.test-operator.v3",
            "owner=helm",
            "name=test-operator",
            "status=deployed",
            "version=3",
        ],
        None,
    );
    let out = deployment::run(
        &settings(&kc),
        &s.recipe(CHART_VERSION),
        &registry,
        Duration::from_secs(60),
    )
    .unwrap();
    let failed: Vec<_> = table(&s, &out)
        .into_iter()
        .filter(|c| c.0 != Status::Passed)
        .collect();
    assert_eq!(
        failed,
        vec![
            p(Status::Failed, "test-operator: Helm release ID-op/test-operator deployed", "v1 Secret ID-op/sh.helm.release.v1.test-operator.v3", "Secret sh.helm.release.v1.test-operator.v3: the release record is not valid base64"),
            p(Status::Failed, "test-agent: StatefulSets in ID-agent matching app=ID-nothing ready", "apps/v1 StatefulSet ID-agent -l app=ID-nothing", "no StatefulSet in namespace ID-agent matches app=ID-nothing"),
            p(Status::Failed, "test-agent: Gadget status.ok is true", "ID.aicr.test/v1 Gadget", "the resource type gadgets.ID.aicr.test (ID.aicr.test/v1) is not served: its CRD is not installed"),
            p(Status::Failed, "test-agent: Widget status.ok is true", "ID.aicr.test/v1 Widget", "no Widget found"),
        ]
    );
    assert_eq!(out.access, None);

    // The agent's namespace gone: its checks fail, naming what is missing.
    let mut recipe = s.recipe(CHART_VERSION);
    recipe.component_refs[1].namespace = format!("{}-absent", s.id);
    let out = deployment::run(
        &settings(&kc),
        &recipe,
        &s.registry(),
        Duration::from_secs(60),
    )
    .unwrap();
    let agent: Vec<_> = table(&s, &out)
        .into_iter()
        .filter(|c| c.1.starts_with("test-agent"))
        .collect();
    assert_eq!(
        agent,
        vec![
            p(
                Status::Failed,
                "test-agent: Namespace ID-absent exists",
                "v1 Namespace ID-absent",
                "namespace ID-absent not found"
            ),
            p(
                Status::Failed,
                "test-agent: DaemonSet ID-absent/agent ready",
                "apps/v1 DaemonSet ID-absent/agent",
                "DaemonSet ID-absent/agent not found"
            ),
            p(
                Status::Failed,
                "test-agent: DaemonSets in ID-absent matching app=ID-extra ready",
                "apps/v1 DaemonSet ID-absent -l app=ID-extra",
                "no DaemonSet in namespace ID-absent matches app=ID-extra"
            ),
        ]
    );
}

/// Go aicr's registry still loads through `--data`; its entries, which
/// declare no readiness, replace the embedded ones whole (the deployment
/// phase then reports their workload checks as skipped, saying why).
#[test]
#[ignore = "needs ../shared/reference/aicr-v0.11.1/recipes"]
fn go_registry_loads_without_readiness() {
    let store = aicr::recipe::store::DataStore::with_dir(&common::go_recipes()).unwrap();
    let reg = store.registry().unwrap();
    assert!(reg.components.len() >= 19, "{}", reg.components.len());
    for c in &reg.components {
        assert_eq!(c.readiness, None, "{}", c.name);
    }
}

/// The installed stack through the whole CLI (`aicr validate --phase
/// deployment`, the test registry through `--data`): 0 when every check
/// passes, 1 when one fails, 4 when a read is forbidden, with the client
/// library silent on stderr.
#[test]
#[ignore = "needs the test cluster (.ci/kube)"]
fn cli_exit_codes_on_the_installed_stack() {
    let s = setup("aicr-dep-cli");
    s.install();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(
        data.join("registry.yaml"),
        format!(
            "apiVersion: aicr.nvidia.com/v1alpha1\nkind: ComponentRegistry\ncomponents:\n{}",
            s.registry_text()
        ),
    )
    .unwrap();
    let recipe = dir.path().join("recipe.yaml");
    std::fs::write(&recipe, s.recipe_text(CHART_VERSION)).unwrap();
    let validate = |kc: &Path| {
        common::aicr()
            .args(["validate", "--phase", "deployment", "-t", "json", "-r"])
            .arg(&recipe)
            .arg("--data")
            .arg(&data)
            .arg("-k")
            .arg(kc)
            .output()
            .unwrap()
    };
    let statuses = |out: &std::process::Output| -> Vec<(String, String)> {
        let doc: serde_json::Value =
            serde_json::from_str(&common::stdout(out)).unwrap_or_else(|e| panic!("{e}: {out:?}"));
        doc["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap().replace(&s.id, "ID"),
                    c["status"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let quiet = |out: &std::process::Output| {
        let err = common::stderr(out);
        for noise in ["kube", "hyper", "tower", "rustls", "Connect"] {
            assert!(
                !err.contains(noise),
                "client library noise on stderr: {err}"
            );
        }
    };

    let kc = s.c.kubeconfig.clone();
    let out = validate(&kc);
    assert_eq!(common::code(&out), 0, "{}", common::stderr(&out));
    quiet(&out);
    let all = statuses(&out);
    assert_eq!(all.len(), 9, "{all:?}");
    assert!(all.iter().all(|(_, st)| st == "passed"), "{all:?}");

    s.set_deployment_ready(1);
    let out = validate(&kc);
    assert_eq!(common::code(&out), 1, "{}", common::stderr(&out));
    let failed: Vec<_> = statuses(&out)
        .into_iter()
        .filter(|(_, st)| st != "passed")
        .collect();
    assert_eq!(
        failed,
        [(
            "test-operator: Deployment ID-op/operator ready".to_string(),
            "failed".to_string()
        )]
    );
    s.set_deployment_ready(2);

    let limited = limited_kubeconfig(&s, dir.path());
    let mut out = validate(&limited);
    for _ in 0..50 {
        if common::code(&out) == 4 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        out = validate(&limited);
    }
    assert_eq!(common::code(&out), 4, "{}", common::stderr(&out));
    quiet(&out);
    let failed: Vec<_> = statuses(&out)
        .into_iter()
        .filter(|(_, st)| st != "passed")
        .collect();
    assert_eq!(
        failed,
        [(
            "test-operator: Deployment ID-op/operator ready".to_string(),
            "failed".to_string()
        )]
    );
    let err = common::stderr(&out);
    assert_eq!(
        err,
        "9 checks: 8 passed, 1 failed, 0 skipped; status: fail\nerror: some reads of the cluster failed (UNAUTHORIZED): the failed checks in the report name each one\n"
    );
    // The failed check names the verb, the resource, the user and the server.
    let want = format!(
        "forbidden: cannot get deployments.apps \\\"operator\\\" in namespace {}-op (user \\\"aicr-limited-{}\\\") on {}",
        s.id,
        s.id,
        cluster().server()
    );
    assert!(
        common::stdout(&out).contains(&want),
        "{want}\n{}",
        common::stdout(&out)
    );
}

/// `KUBECONFIG` as a list and `--context` through the CLI: the first file's
/// current-context wins, `--context` picks one from any file, and an
/// unknown one is exit 2 listing those there are. Each context points at
/// its own closed port, so the exit-6 message names the server chosen.
#[test]
fn cli_kubeconfig_list_and_context() {
    let dir = tempfile::tempdir().unwrap();
    let (pa, pb) = (closed_port(), closed_port());
    let file = |name: &str, port: u16| {
        let p = dir.path().join(name);
        std::fs::write(
            &p,
            format!(
                "apiVersion: v1
kind: Config
current-context: {name}
clusters:
- name: {name}
  cluster: {{server: 'https://127.0.0.1:{port}', insecure-skip-tls-verify: true}}
users:
- name: {name}
  user: {{token: hunter2-{name}}}
contexts:
- name: {name}
  context: {{cluster: {name}, user: {name}}}
"
            ),
        )
        .unwrap();
        p
    };
    let (a, b) = (file("a", pa), file("b", pb));
    let recipe = dir.path().join("recipe.yaml");
    std::fs::write(
        &recipe,
        "kind: RecipeResult\napiVersion: aicr.nvidia.com/v1alpha1\nmetadata: {version: t}\ncriteria: {service: any}\n",
    )
    .unwrap();
    let validate = |list: &[&PathBuf], context: Option<&str>| {
        let mut cmd = common::aicr();
        cmd.env("KUBECONFIG", std::env::join_paths(list).unwrap())
            .env("HOME", dir.path())
            .args(["validate", "--phase", "deployment", "-r"])
            .arg(&recipe);
        if let Some(c) = context {
            cmd.args(["--context", c]);
        }
        cmd.output().unwrap()
    };
    let reached = |out: &std::process::Output, port: u16| {
        let err = common::stderr(out);
        assert_eq!(common::code(out), 6, "{err}");
        assert!(
            err.starts_with(&format!(
                "error: cannot reach https://127.0.0.1:{port} (get /version (cluster-wide)): "
            )),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
    };
    reached(&validate(&[&a, &b], None), pa);
    reached(&validate(&[&b, &a], None), pb);
    reached(&validate(&[&a, &b], Some("b")), pb);
    let out = validate(&[&a, &b], Some("prod"));
    assert_eq!(common::code(&out), 2);
    assert_eq!(
        common::stderr(&out),
        format!(
            "error: --context \"prod\" is not in the kubeconfig ({}:{}); contexts: a, b\n",
            a.display(),
            b.display()
        )
    );
}
