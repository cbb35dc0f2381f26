//! The deployment phase: whether a live cluster runs what a recipe
//! describes, component by component in deployment order, as the registry's
//! `readiness` declarations say (data, not code). Each item is one
//! [`Check`] (phase `deployment`, suite = the component):
//!
//! - the component's namespace exists;
//! - its Helm release is deployed: the newest of Helm 3's release Secrets
//!   (`owner=helm,name=<release>`) has status `deployed` and a chart version
//!   equal to the recipe's (a leading `v` ignored). Manifest-only components
//!   (no chart source) and Kustomize components have no release;
//! - each declared Deployment, DaemonSet and StatefulSet is ready: its
//!   generation observed, and ready = desired (Deployment `readyReplicas`
//!   and `updatedReplicas` = `spec.replicas`; DaemonSet `numberReady` and
//!   `updatedNumberScheduled` = `desiredNumberScheduled`; StatefulSet
//!   `readyReplicas` = `spec.replicas`);
//! - each declared CRD has the condition `Established=True`;
//! - each declared custom resource field holds its value (the GPU
//!   Operator's `ClusterPolicy` `status.state` is `ready`).
//!
//! It only reads; it creates nothing (no Jobs, no RBAC objects). The reads
//! it needs, per component namespace unless cluster-wide:
//!
//! | verb | resource | what for |
//! |---|---|---|
//! | get | namespaces (cluster) | the namespace exists |
//! | list, get | secrets | the Helm release record |
//! | get, list | deployments.apps, daemonsets.apps, statefulsets.apps | workloads (list only for selector entries) |
//! | get | customresourcedefinitions.apiextensions.k8s.io (cluster) | CRDs Established |
//! | get, list | the declared custom resources (`clusterpolicies.nvidia.com`, cluster-wide; `skyhooks.skyhook.nvidia.com`) | custom readiness fields |
//!
//! Outcomes: [`check`] returns `Err` (a classified [`access::Error`]) only when
//! the phase cannot run at all: no cluster configured (exit 6), the server
//! unreachable (6), its probe timing out (5), or the credentials refused
//! (401, exit 4). Every other failed read becomes the failure of the check
//! that needed it, its message naming the verb, the resource and the server
//! (`forbidden: cannot list secrets in namespace gpu-operator (user
//! "limited") on https://…`), and [`Outcome::access`] carries the most
//! severe class of those failures (Unauthorized before Timeout, Unavailable,
//! RateLimited, Internal): the command writes its reports, then exits with
//! it (4 for a forbidden read) rather than 1. Every request has the settings' deadline;
//! independent reads run concurrently, at most [`CONCURRENCY`] at a time,
//! and the checks come back in a fixed order whatever finishes first.

use std::future::Future;
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use serde_json::Value;

use super::helm_release;
use super::{Check, Phase, Status};
use crate::error::Class;
use crate::k8s::{self, access, ClusterSettings, Request, RequestError};
use crate::recipe::metadata::ComponentType;
use crate::recipe::registry::{FieldEquals, Registry, Scope, Workload, WorkloadKind};
use crate::recipe::result::RecipeResult;

/// Reads in flight at once.
pub const CONCURRENCY: usize = 8;
/// The most objects one selector or kind-wide entry looks at.
const MAX_LISTED: u32 = 500;

/// A connected cluster: the client, its URL for messages, and the deadline
/// of each request.
#[derive(Clone)]
pub struct Cluster {
    pub client: kube::Client,
    pub server: String,
    pub timeout: Duration,
}

/// The checks of the phase, in order, and the most severe class of the
/// reads that failed (`None` when every read was answered): the command
/// writes its reports, then exits with that class (4 for a forbidden read).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub checks: Vec<Check>,
    pub access: Option<Class>,
}

/// Runs the phase from the command layer: connects as `settings` say and
/// checks `recipe` within `deadline` (past it, exit 5). The client
/// library's own log lines are dropped: what they report comes back in the
/// checks and errors.
pub fn run(
    settings: &ClusterSettings,
    recipe: &RecipeResult,
    registry: &Registry,
    deadline: Duration,
) -> Result<Outcome, k8s::access::Error> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| access::Error::Runtime(e.to_string()))?;
    let quiet = tracing::subscriber::NoSubscriber::default();
    tracing::subscriber::with_default(quiet, || {
        rt.block_on(async {
            let work = async {
                let (client, server) = settings.client().await?;
                let cluster = Cluster {
                    client,
                    server,
                    timeout: settings.timeout,
                };
                check(&cluster, recipe, registry).await
            };
            match tokio::time::timeout(deadline, work).await {
                Ok(r) => r,
                Err(_) => Err(access::Error::Request(RequestError {
                    code: None,
                    class: Class::Timeout,
                    message: format!(
                        "the deployment checks did not finish within {}",
                        humantime::format_duration(deadline)
                    ),
                })),
            }
        })
    })
}

/// Checks every component of `recipe` against the cluster; see the module
/// documentation for what is checked and how failures are reported.
pub async fn check(
    cluster: &Cluster,
    recipe: &RecipeResult,
    registry: &Registry,
) -> Result<Outcome, access::Error> {
    probe(cluster).await?;
    let items = plan(recipe, registry);
    let results: Vec<Vec<Found>> = stream::iter(items.iter().map(|i| run_item(cluster, i)))
        .buffered(CONCURRENCY)
        .collect()
        .await;
    let mut access: Option<Class> = None;
    let mut checks = Vec::new();
    for found in results.into_iter().flatten() {
        if let Some(c) = found.error {
            if access.is_none_or(|a| severity(c) > severity(a)) {
                access = Some(c);
            }
        }
        checks.push(found.check);
    }
    Ok(Outcome { checks, access })
}

/// How much an access failure weighs when several happen.
fn severity(c: Class) -> u8 {
    match c {
        Class::Unauthorized => 5,
        Class::Timeout => 4,
        Class::Unavailable => 3,
        Class::RateLimited => 2,
        _ => 1,
    }
}

/// The server answers, and accepts the credentials: else the phase cannot run.
async fn probe(cluster: &Cluster) -> Result<(), access::Error> {
    let req = Request {
        verb: "get",
        resource: "/version",
        name: None,
        namespace: None,
    };
    match call(cluster, &req, cluster.client.apiserver_version()).await {
        Ok(_) => Ok(()),
        // The server answered and knows the user: a refused or missing
        // /version does not stop the checks, which report their own reads.
        Err(e) if e.code.is_some_and(|c| c != 401 && c < 500 && c != 429) => Ok(()),
        Err(e) => Err(access::Error::Request(e)),
    }
}

/// One request with the deadline, its failure classified.
async fn call<T>(
    cluster: &Cluster,
    req: &Request<'_>,
    fut: impl Future<Output = Result<T, kube::Error>>,
) -> Result<T, RequestError> {
    match tokio::time::timeout(cluster.timeout, fut).await {
        Err(_) => Err(access::timed_out(req, &cluster.server, cluster.timeout)),
        Ok(Err(e)) => Err(access::request_error(&e, req, &cluster.server)),
        Ok(Ok(v)) => Ok(v),
    }
}

/// What one item of the plan checks.
#[derive(Clone, Debug)]
enum What {
    Namespace,
    Release { name: String, want: String },
    Workload(Workload),
    Crd(String),
    Field(FieldEquals),
    Skip { name: String, reason: String },
}

#[derive(Clone, Debug)]
struct Item {
    component: String,
    namespace: String,
    what: What,
}

/// A check and, when a read failed, its class.
struct Found {
    check: Check,
    error: Option<Class>,
}

/// The items to check, in deployment order (components the order leaves
/// out follow in componentRefs order).
fn plan(recipe: &RecipeResult, registry: &Registry) -> Vec<Item> {
    let mut names: Vec<&str> = recipe.deployment_order.iter().map(String::as_str).collect();
    for r in &recipe.component_refs {
        if !names.contains(&r.name.as_str()) {
            names.push(&r.name);
        }
    }
    let mut items = Vec::new();
    for name in names {
        let Some(r) = recipe.component_refs.iter().find(|r| r.name == name) else {
            continue;
        };
        let reg = registry.get(name);
        let pick = |a: &str, b: &str| {
            if a.is_empty() {
                b.to_string()
            } else {
                a.to_string()
            }
        };
        let namespace = pick(&r.namespace, reg.map_or("", |g| g.default_namespace()));
        let item = |what| Item {
            component: name.to_string(),
            namespace: namespace.clone(),
            what,
        };
        let Some(reg) = reg else {
            items.push(item(What::Skip {
                name: format!("{name}: readiness"),
                reason: "the component is not in the component registry: nothing says what its readiness is".into(),
            }));
            continue;
        };
        if namespace.is_empty() {
            items.push(item(What::Skip {
                name: format!("{name}: readiness"),
                reason: "neither the recipe nor the registry gives the component a namespace"
                    .into(),
            }));
            continue;
        }
        items.push(item(What::Namespace));
        let readiness = reg.readiness.clone().unwrap_or_default();
        // A chart (not manifests only, not Kustomize) leaves a Helm release.
        let kustomize = r.kind == Some(ComponentType::Kustomize)
            || (reg.kustomize.is_some() && reg.helm.is_none());
        if !kustomize && !pick(&r.source, reg.default_source()).is_empty() {
            items.push(item(What::Release {
                name: readiness
                    .release
                    .clone()
                    .unwrap_or_else(|| name.to_string()),
                want: pick(&r.version, reg.default_version()),
            }));
        }
        if reg.readiness.is_none() {
            items.push(item(What::Skip {
                name: format!("{name}: workloads ready"),
                reason: "the registry declares no readiness for this component: its workloads, CRDs and custom resources are not checked".into(),
            }));
            continue;
        }
        items.extend(
            readiness
                .workloads
                .into_iter()
                .map(|w| item(What::Workload(w))),
        );
        items.extend(readiness.crds.into_iter().map(|c| item(What::Crd(c))));
        items.extend(readiness.fields.into_iter().map(|f| item(What::Field(f))));
    }
    items
}

/// A check of `item` with its outcome.
struct Builder<'a> {
    item: &'a Item,
    started: Instant,
}

impl Builder<'_> {
    fn done(&self, name: String, object: String, status: Status, message: String) -> Found {
        Found {
            check: Check {
                name,
                phase: Phase::Deployment,
                suite: self.item.component.clone(),
                status,
                message,
                object: Some(object),
                duration: self.started.elapsed(),
            },
            error: None,
        }
    }

    fn result(&self, name: String, object: String, r: Result<String, Miss>) -> Found {
        match r {
            Ok(msg) => self.done(name, object, Status::Passed, msg),
            Err(Miss::Not(msg)) => self.done(name, object, Status::Failed, msg),
            Err(Miss::Read(e)) => {
                let mut f = self.done(name, object, Status::Failed, e.message);
                f.error = Some(e.class);
                f
            }
        }
    }
}

/// Each listed object's name and state.
type States = Vec<(String, Result<String, Miss>)>;

/// Why a check did not pass: the object is not ready, or it could not be read.
enum Miss {
    Not(String),
    Read(RequestError),
}

impl From<RequestError> for Miss {
    fn from(e: RequestError) -> Miss {
        Miss::Read(e)
    }
}

async fn run_item(cluster: &Cluster, item: &Item) -> Vec<Found> {
    let b = Builder {
        item,
        started: Instant::now(),
    };
    let c = &item.component;
    let ns = item.namespace.as_str();
    match &item.what {
        What::Skip { name, reason } => vec![Found {
            check: Check {
                name: name.clone(),
                phase: Phase::Deployment,
                suite: c.clone(),
                status: Status::Skipped,
                message: reason.clone(),
                object: None,
                duration: Duration::ZERO,
            },
            error: None,
        }],
        What::Namespace => vec![b.result(
            format!("{c}: Namespace {ns} exists"),
            format!("v1 Namespace {ns}"),
            namespace(cluster, ns).await,
        )],
        What::Release { name, want } => {
            let (object, r) = release(cluster, ns, name, want).await;
            vec![b.result(format!("{c}: Helm release {ns}/{name} deployed"), object, r)]
        }
        What::Workload(w) => workloads(cluster, &b, w).await,
        What::Crd(name) => vec![b.result(
            format!("{c}: CRD {name} established"),
            format!("apiextensions.k8s.io/v1 CustomResourceDefinition {name}"),
            crd(cluster, name).await,
        )],
        What::Field(f) => fields(cluster, &b, f).await,
    }
}

async fn namespace(cluster: &Cluster, ns: &str) -> Result<String, Miss> {
    let req = Request {
        verb: "get",
        resource: "namespaces",
        name: Some(ns),
        namespace: None,
    };
    let api: Api<Namespace> = Api::all(cluster.client.clone());
    match call(cluster, &req, api.get_opt(ns)).await? {
        Some(n) => {
            let phase = n
                .status
                .and_then(|s| s.phase)
                .unwrap_or_else(|| "Active".into());
            if phase == "Active" {
                Ok(format!("namespace {ns} is Active"))
            } else {
                Err(Miss::Not(format!("namespace {ns} is {phase}")))
            }
        }
        None => Err(Miss::Not(format!("namespace {ns} not found"))),
    }
}

/// The newest release record of `name` in `ns`: its object and outcome.
async fn release(
    cluster: &Cluster,
    ns: &str,
    name: &str,
    want: &str,
) -> (String, Result<String, Miss>) {
    let generic = format!("helm.sh/release.v1 {ns}/{name}");
    let api: Api<Secret> = Api::namespaced(cluster.client.clone(), ns);
    let list_req = Request {
        verb: "list",
        resource: "secrets",
        name: None,
        namespace: Some(ns),
    };
    let selector = format!("owner=helm,name={name}");
    let metas = match call(
        cluster,
        &list_req,
        api.list_metadata(&ListParams::default().labels(&selector)),
    )
    .await
    {
        Ok(l) => l.items,
        Err(e) => return (generic, Err(e.into())),
    };
    let newest = metas
        .iter()
        .filter_map(|m| {
            let v = m
                .metadata
                .labels
                .as_ref()?
                .get("version")?
                .parse::<u64>()
                .ok()?;
            Some((v, m.metadata.name.clone()?))
        })
        .max();
    let Some((_, secret_name)) = newest else {
        return (
            generic,
            Err(Miss::Not(format!(
                "no Helm release {name:?} in namespace {ns} (no Secret labelled {selector})"
            ))),
        );
    };
    let object = format!("v1 Secret {ns}/{secret_name}");
    let get_req = Request {
        verb: "get",
        resource: "secrets",
        name: Some(&secret_name),
        namespace: Some(ns),
    };
    let secret = match call(cluster, &get_req, api.get_opt(&secret_name)).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return (
                object,
                Err(Miss::Not(format!(
                    "release Secret {secret_name} disappeared while read"
                ))),
            )
        }
        Err(e) => return (object, Err(e.into())),
    };
    let Some(data) = secret.data.as_ref().and_then(|d| d.get("release")) else {
        return (
            object,
            Err(Miss::Not(format!(
                "release Secret {secret_name} has no `release` data"
            ))),
        );
    };
    let rel = match helm_release::decode(&data.0) {
        Ok(r) => r,
        Err(e) => return (object, Err(Miss::Not(format!("Secret {secret_name}: {e}")))),
    };
    let found = format!(
        "release {name} revision {} status {}, chart {} {}",
        rel.version, rel.status, rel.chart_name, rel.chart_version
    );
    if rel.status != "deployed" {
        return (
            object,
            Err(Miss::Not(format!("release status {}; {found}", rel.status))),
        );
    }
    if want.is_empty() {
        return (
            object,
            Ok(format!("{found} (the recipe gives no version to compare)")),
        );
    }
    let bare = |v: &str| v.strip_prefix('v').unwrap_or(v).to_string();
    if bare(&rel.chart_version) != bare(want) {
        return (
            object,
            Err(Miss::Not(format!(
                "chart version {}, recipe wants {want}",
                rel.chart_version
            ))),
        );
    }
    (object, Ok(found))
}

async fn crd(cluster: &Cluster, name: &str) -> Result<String, Miss> {
    let req = Request {
        verb: "get",
        resource: "customresourcedefinitions.apiextensions.k8s.io",
        name: Some(name),
        namespace: None,
    };
    let api: Api<CustomResourceDefinition> = Api::all(cluster.client.clone());
    let Some(crd) = call(cluster, &req, api.get_opt(name)).await? else {
        return Err(Miss::Not(format!("CRD {name} not found")));
    };
    let established = crd
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Established"));
    match established {
        Some(c) if c.status == "True" => Ok(format!("CRD {name} is Established")),
        Some(c) => Err(Miss::Not(format!(
            "CRD {name} is not Established (Established={}{})",
            c.status,
            c.reason
                .as_deref()
                .map(|r| format!(", {r}"))
                .unwrap_or_default()
        ))),
        None => Err(Miss::Not(format!(
            "CRD {name} has no Established condition yet"
        ))),
    }
}

/// The checks of one workload entry: one per object (by name, or each
/// object the selector matches; none matching is a failure).
async fn workloads(cluster: &Cluster, b: &Builder<'_>, w: &Workload) -> Vec<Found> {
    let c = &b.item.component;
    let ns = w.namespace.as_deref().unwrap_or(&b.item.namespace);
    let kind = w.kind.as_str();
    let check_name = |n: &str| format!("{c}: {kind} {ns}/{n} ready");
    let object = |n: &str| format!("apps/v1 {kind} {ns}/{n}");
    if let Some(name) = &w.name {
        let req = Request {
            verb: "get",
            resource: w.kind.resource(),
            name: Some(name),
            namespace: Some(ns),
        };
        let r = match get_workload(cluster, &req, w.kind, ns, name).await {
            Ok(Some(state)) => state,
            Ok(None) => Err(Miss::Not(format!("{kind} {ns}/{name} not found"))),
            Err(e) => Err(e.into()),
        };
        return vec![b.result(check_name(name), object(name), r)];
    }
    let selector = w.selector.as_deref().unwrap_or("");
    let req = Request {
        verb: "list",
        resource: w.kind.resource(),
        name: None,
        namespace: Some(ns),
    };
    let lp = ListParams::default().labels(selector).limit(MAX_LISTED);
    let listed: Result<States, RequestError> = match w.kind {
        WorkloadKind::Deployment => list_states(cluster, &req, ns, &lp, deployment_state).await,
        WorkloadKind::DaemonSet => list_states(cluster, &req, ns, &lp, daemonset_state).await,
        WorkloadKind::StatefulSet => list_states(cluster, &req, ns, &lp, statefulset_state).await,
    };
    let group_name = format!("{c}: {kind}s in {ns} matching {selector} ready");
    let group_object = format!("apps/v1 {kind} {ns} -l {selector}");
    match listed {
        Err(e) => vec![b.result(group_name, group_object, Err(e.into()))],
        Ok(v) if v.is_empty() => vec![b.result(
            group_name,
            group_object,
            Err(Miss::Not(format!(
                "no {kind} in namespace {ns} matches {selector}"
            ))),
        )],
        Ok(v) => v
            .into_iter()
            .map(|(n, r)| b.result(check_name(&n), object(&n), r))
            .collect(),
    }
}

async fn get_workload(
    cluster: &Cluster,
    req: &Request<'_>,
    kind: WorkloadKind,
    ns: &str,
    name: &str,
) -> Result<Option<Result<String, Miss>>, RequestError> {
    let client = cluster.client.clone();
    Ok(match kind {
        WorkloadKind::Deployment => call(
            cluster,
            req,
            Api::<Deployment>::namespaced(client, ns).get_opt(name),
        )
        .await?
        .map(|d| deployment_state(&d)),
        WorkloadKind::DaemonSet => call(
            cluster,
            req,
            Api::<DaemonSet>::namespaced(client, ns).get_opt(name),
        )
        .await?
        .map(|d| daemonset_state(&d)),
        WorkloadKind::StatefulSet => call(
            cluster,
            req,
            Api::<StatefulSet>::namespaced(client, ns).get_opt(name),
        )
        .await?
        .map(|d| statefulset_state(&d)),
    })
}

async fn list_states<K>(
    cluster: &Cluster,
    req: &Request<'_>,
    ns: &str,
    lp: &ListParams,
    state: fn(&K) -> Result<String, Miss>,
) -> Result<States, RequestError>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(cluster.client.clone(), ns);
    let list = call(cluster, req, api.list(lp)).await?;
    let mut out: States = list
        .items
        .iter()
        .map(|o| (o.meta().name.clone().unwrap_or_default(), state(o)))
        .collect();
    if list
        .metadata
        .continue_
        .as_deref()
        .is_some_and(|t| !t.is_empty())
    {
        out.push((
            "…".into(),
            Err(Miss::Not(format!(
                "more than {MAX_LISTED} objects match: name them in the readiness declaration"
            ))),
        ));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// The generation the controller has not seen yet, as a reason.
fn unobserved(generation: Option<i64>, observed: Option<i64>) -> Option<String> {
    match (generation, observed) {
        (_, None) => Some("no status reported yet (observedGeneration absent)".into()),
        (Some(g), Some(o)) if o < g => Some(format!(
            "generation {g} not observed yet (observedGeneration {o})"
        )),
        _ => None,
    }
}

fn deployment_state(d: &Deployment) -> Result<String, Miss> {
    let s = d.status.clone().unwrap_or_default();
    if let Some(why) = unobserved(d.metadata.generation, s.observed_generation) {
        return Err(Miss::Not(why));
    }
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let ready = s.ready_replicas.unwrap_or(0);
    let updated = s.updated_replicas.unwrap_or(0);
    let mut msg = format!("{ready}/{desired} replicas ready");
    if updated != desired {
        msg.push_str(&format!(", {updated}/{desired} updated"));
    }
    if ready == desired && updated == desired {
        Ok(msg)
    } else {
        Err(Miss::Not(msg))
    }
}

fn daemonset_state(d: &DaemonSet) -> Result<String, Miss> {
    let s = d.status.clone().unwrap_or_default();
    if let Some(why) = unobserved(d.metadata.generation, s.observed_generation) {
        return Err(Miss::Not(why));
    }
    let desired = s.desired_number_scheduled;
    let ready = s.number_ready;
    let updated = s.updated_number_scheduled.unwrap_or(0);
    let mut msg = format!("{ready}/{desired} pods ready");
    if updated != desired {
        msg.push_str(&format!(", {updated}/{desired} updated"));
    }
    if desired == 0 {
        msg.push_str(" (no node runs it)");
    }
    if ready == desired && updated == desired {
        Ok(msg)
    } else {
        Err(Miss::Not(msg))
    }
}

fn statefulset_state(d: &StatefulSet) -> Result<String, Miss> {
    let s = d.status.clone().unwrap_or_default();
    if let Some(why) = unobserved(d.metadata.generation, s.observed_generation) {
        return Err(Miss::Not(why));
    }
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let ready = s.ready_replicas.unwrap_or(0);
    let msg = format!("{ready}/{desired} replicas ready");
    if ready == desired {
        Ok(msg)
    } else {
        Err(Miss::Not(msg))
    }
}

/// The checks of one field entry: one per object looked at.
async fn fields(cluster: &Cluster, b: &Builder<'_>, f: &FieldEquals) -> Vec<Found> {
    let c = &b.item.component;
    let (group, version) = match f.api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", f.api_version.as_str()),
    };
    let gvk = GroupVersionKind::gvk(group, version, &f.kind);
    let ar = ApiResource::from_gvk_with_plural(&gvk, &f.resource);
    let ns = match f.scope {
        Scope::Cluster => None,
        Scope::Namespaced => Some(f.namespace.as_deref().unwrap_or(&b.item.namespace)),
    };
    let api: Api<DynamicObject> = match ns {
        Some(ns) => Api::namespaced_with(cluster.client.clone(), ns, &ar),
        None => Api::all_with(cluster.client.clone(), &ar),
    };
    let resource = if group.is_empty() {
        f.resource.clone()
    } else {
        format!("{}.{group}", f.resource)
    };
    let place = |n: &str| match ns {
        Some(ns) => format!("{ns}/{n}"),
        None => n.to_string(),
    };
    let kind = &f.kind;
    let check_name = |n: &str| format!("{c}: {kind} {} {} is {}", place(n), f.field, f.equals);
    let object = |n: &str| format!("{} {kind} {}", f.api_version, place(n));
    if let Some(name) = &f.name {
        let req = Request {
            verb: "get",
            resource: &resource,
            name: Some(name),
            namespace: ns,
        };
        let r = match call(cluster, &req, api.get_opt(name)).await {
            Ok(Some(o)) => field_state(f, name, &o.data),
            Ok(None) => Err(Miss::Not(format!(
                "{kind} {} not found (or its resource type {resource} is not served)",
                place(name)
            ))),
            Err(e) => Err(e.into()),
        };
        return vec![b.result(check_name(name), object(name), r)];
    }
    let req = Request {
        verb: "list",
        resource: &resource,
        name: None,
        namespace: ns,
    };
    let group_name = format!("{c}: {kind} {} is {}", f.field, f.equals);
    let group_object = format!("{} {kind}", f.api_version);
    let list = match call(
        cluster,
        &req,
        api.list(&ListParams::default().limit(MAX_LISTED)),
    )
    .await
    {
        Ok(l) => l,
        Err(e) if e.code == Some(404) => {
            return vec![b.result(
                group_name,
                group_object,
                Err(Miss::Not(format!(
                    "the resource type {resource} ({}) is not served: its CRD is not installed",
                    f.api_version
                ))),
            )]
        }
        Err(e) => return vec![b.result(group_name, group_object, Err(e.into()))],
    };
    if list.items.is_empty() {
        let where_ = ns.map(|n| format!(" in namespace {n}")).unwrap_or_default();
        return vec![b.result(
            group_name,
            group_object,
            Err(Miss::Not(format!("no {kind} found{where_}"))),
        )];
    }
    let mut items = list.items;
    items.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    items
        .iter()
        .map(|o| {
            let n = o.metadata.name.clone().unwrap_or_default();
            b.result(check_name(&n), object(&n), field_state(f, &n, &o.data))
        })
        .collect()
}

/// Whether the object's `field` is `equals`.
fn field_state(f: &FieldEquals, name: &str, data: &Value) -> Result<String, Miss> {
    let mut v = data;
    for part in f.field.split('.') {
        match v.get(part) {
            Some(next) => v = next,
            None => return Err(Miss::Not(format!("{} {name} has no {}", f.kind, f.field))),
        }
    }
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Null => {
            return Err(Miss::Not(format!("{} {name} has no {}", f.kind, f.field)));
        }
        other => other.to_string(),
    };
    let text = crate::error::excerpt(&text).into_owned();
    let msg = format!("{} {name} {} is {text}", f.kind, f.field);
    if text == f.equals {
        Ok(msg)
    } else {
        Err(Miss::Not(msg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plan for Go aicr's eks/h100/training recipe with the embedded
    /// registry: every component, in deployment order, with its declared
    /// items; the manifest-only component has no release.
    #[test]
    fn plan_of_a_real_recipe_follows_the_embedded_registry() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/go-aicr-v0.11.1/golden/recipe-eks-h100-training-ubuntu.yaml");
        let recipe = RecipeResult::parse(&std::fs::read(path).unwrap(), "golden").unwrap();
        let registry = crate::recipe::store::DataStore::embedded()
            .registry()
            .unwrap();
        let items = plan(&recipe, &registry);
        let mut seen: Vec<&str> = Vec::new();
        for i in &items {
            if seen.last() != Some(&i.component.as_str()) {
                seen.push(&i.component);
            }
            assert!(!matches!(i.what, What::Skip { .. }), "{i:?}");
        }
        assert_eq!(seen, recipe.deployment_order);
        let gpu: Vec<String> = items
            .iter()
            .filter(|i| i.component == "gpu-operator")
            .map(|i| format!("{}: {:?}", i.namespace, i.what))
            .collect();
        assert_eq!(gpu[0], "gpu-operator: Namespace");
        assert!(
            gpu[1].starts_with("gpu-operator: Release { name: \"gpu-operator\", want: \"v"),
            "{gpu:?}"
        );
        assert_eq!(gpu.len(), 2 + 1 + 2 + 1, "{gpu:?}");
        let skyhook: Vec<&Item> = items
            .iter()
            .filter(|i| i.component == "skyhook-customizations")
            .collect();
        assert!(!skyhook.is_empty());
        assert!(skyhook
            .iter()
            .all(|i| !matches!(i.what, What::Release { .. })));
    }

    fn field(path: &str, equals: &str) -> FieldEquals {
        FieldEquals {
            api_version: "nvidia.com/v1".into(),
            kind: "ClusterPolicy".into(),
            resource: "clusterpolicies".into(),
            scope: Scope::Cluster,
            name: None,
            namespace: None,
            field: path.into(),
            equals: equals.into(),
        }
    }

    fn text(r: Result<String, Miss>) -> (bool, String) {
        match r {
            Ok(m) => (true, m),
            Err(Miss::Not(m)) => (false, m),
            Err(Miss::Read(e)) => (false, e.message),
        }
    }

    #[test]
    fn field_equals_reads_dotted_paths() {
        let obj = serde_json::json!({"status": {"state": "notReady", "ready": true, "n": 3}});
        let f = field("status.state", "ready");
        assert_eq!(
            text(field_state(&f, "cluster-policy", &obj)),
            (
                false,
                "ClusterPolicy cluster-policy status.state is notReady".into()
            )
        );
        assert_eq!(
            text(field_state(&field("status.ready", "true"), "p", &obj)),
            (true, "ClusterPolicy p status.ready is true".into())
        );
        assert!(text(field_state(&field("status.n", "3"), "p", &obj)).0);
        assert_eq!(
            text(field_state(&field("status.phase", "ready"), "p", &obj)),
            (false, "ClusterPolicy p has no status.phase".into())
        );
    }

    #[test]
    fn workload_states() {
        let d: Deployment = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "x", "generation": 2},
            "spec": {"replicas": 2, "selector": {}, "template": {}},
            "status": {"observedGeneration": 2, "readyReplicas": 1, "updatedReplicas": 2}
        }))
        .unwrap();
        assert_eq!(
            text(deployment_state(&d)),
            (false, "1/2 replicas ready".into())
        );
        let d: Deployment = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "x", "generation": 3},
            "spec": {"replicas": 2, "selector": {}, "template": {}},
            "status": {"observedGeneration": 2, "readyReplicas": 2, "updatedReplicas": 2}
        }))
        .unwrap();
        assert_eq!(
            text(deployment_state(&d)),
            (
                false,
                "generation 3 not observed yet (observedGeneration 2)".into()
            )
        );
        let ds: DaemonSet = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "x", "generation": 1},
            "spec": {"selector": {}, "template": {}},
            "status": {"observedGeneration": 1, "desiredNumberScheduled": 3, "numberReady": 3,
                        "updatedNumberScheduled": 2, "currentNumberScheduled": 3, "numberMisscheduled": 0}
        }))
        .unwrap();
        assert_eq!(
            text(daemonset_state(&ds)),
            (false, "3/3 pods ready, 2/3 updated".into())
        );
        let ss: StatefulSet = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "x", "generation": 1},
            "spec": {"replicas": 1, "selector": {}, "template": {}, "serviceName": "x"},
            "status": {"observedGeneration": 1, "readyReplicas": 1, "replicas": 1}
        }))
        .unwrap();
        assert_eq!(
            text(statefulset_state(&ss)),
            (true, "1/1 replicas ready".into())
        );
    }
}
