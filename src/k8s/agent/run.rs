//! One agent run against the cluster: the caller's permissions checked with
//! SelfSubjectAccessReviews (every missing one reported together, before
//! anything is created), the objects created in order (each registered for
//! cleanup before its request), the Job waited for within the deadline,
//! the snapshot read back from its ConfigMap, and everything created deleted
//! again, also on failure, on timeout and on SIGINT/SIGTERM/SIGHUP (held back
//! for the whole run and re-delivered once cleanup is done), unless
//! `keep` says otherwise.

use std::time::{Duration, Instant};

use kube::api::{DeleteParams, GetParams, ListParams, PostParams, PropagationPolicy};
use serde_json::{json, Value};

use super::{ObjectRef, Spec};
use crate::error::{Class, Classify};
use crate::k8s::access::{self, ClusterSettings, RequestError};
use crate::k8s::configmap::{self, DocKind, Target};

/// The largest answer read (a list of the run's pods is far smaller).
const MAX_RESPONSE_BYTES: usize = configmap::MAX_RESPONSE_BYTES;

/// How often the Job is looked at.
const POLL: Duration = Duration::from_millis(500);

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Access(#[from] access::Error),
    #[error(transparent)]
    ConfigMap(Box<configmap::Error>),
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error("not allowed to run the snapshot agent on {server} (nothing was created); missing permissions:\n{}", missing.iter().map(|m| format!("  - {m}")).collect::<Vec<_>>().join("\n"))]
    Forbidden {
        server: String,
        missing: Vec<String>,
    },
    #[error("the snapshot Job {job} did not finish within {} (--timeout){state}", humantime::format_duration(*after))]
    Timeout {
        job: String,
        after: Duration,
        state: String,
    },
    #[error("the snapshot Job {job} failed: {reason}")]
    JobFailed { job: String, reason: String },
    #[error("interrupted by a signal while the snapshot Job ran")]
    Interrupted,
    #[error("cannot start the async runtime: {0}")]
    Runtime(String),
}

impl Classify for Error {
    fn class(&self) -> Class {
        match self {
            Error::Access(e) => e.class(),
            Error::ConfigMap(e) => e.class(),
            Error::Request(e) => e.class,
            Error::Forbidden { .. } => Class::Unauthorized,
            Error::Timeout { .. } => Class::Timeout,
            Error::JobFailed { .. } => Class::Unavailable,
            Error::Interrupted | Error::Runtime(_) => Class::Internal,
        }
    }
}

/// What a finished run gives back.
#[derive(Debug)]
pub struct Outcome {
    /// The snapshot document as the pod wrote it.
    pub snapshot: Vec<u8>,
    /// The objects kept (`--no-cleanup`), or left because deleting failed.
    pub kept: Vec<ObjectRef>,
}

/// One permission the CLI needs: verb, resource, group, namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permission {
    pub verb: &'static str,
    pub resource: &'static str,
    pub group: &'static str,
    pub namespace: Option<String>,
    pub why: &'static str,
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.verb, self.resource)?;
        if !self.group.is_empty() {
            write!(f, ".{}", self.group)?;
        }
        match &self.namespace {
            Some(ns) => write!(f, " in namespace {ns}")?,
            None => write!(f, " (cluster-wide)")?,
        }
        write!(f, " ({})", self.why)
    }
}

/// Every permission a run of `spec` needs, in a fixed order.
pub fn permissions(spec: &Spec) -> Vec<Permission> {
    let ns = Some(spec.namespace.clone());
    let p = |verb, resource, group, namespace: &Option<String>, why| Permission {
        verb,
        resource,
        group,
        namespace: namespace.clone(),
        why,
    };
    let rbac = "rbac.authorization.k8s.io";
    let mut out = Vec::new();
    let mut objects = vec![("configmaps", ""), ("roles", rbac), ("rolebindings", rbac)];
    if spec.service_account.is_none() {
        objects.insert(0, ("serviceaccounts", ""));
    }
    objects.push(("jobs", "batch"));
    for (r, g) in &objects {
        out.push(p("create", r, g, &ns, "to create the agent's objects"));
        out.push(p("delete", r, g, &ns, "to clean up"));
    }
    for r in ["clusterroles", "clusterrolebindings"] {
        out.push(p("create", r, rbac, &None, "to create the agent's objects"));
        out.push(p("delete", r, rbac, &None, "to clean up"));
    }
    out.push(p("get", "jobs", "batch", &ns, "to wait for the Job"));
    out.push(p(
        "list",
        "pods",
        "",
        &ns,
        "to report why the Job's pod failed",
    ));
    out.push(p(
        "get",
        "configmaps",
        "",
        &ns,
        "to read the snapshot, and to grant it",
    ));
    out.push(p(
        "update",
        "configmaps",
        "",
        &ns,
        "to grant it to the agent",
    ));
    for (r, g) in [
        ("nodes", ""),
        ("pods", ""),
        ("clusterpolicies", "nvidia.com"),
    ] {
        for v in ["get", "list"] {
            out.push(p(v, r, g, &None, "to grant it to the agent"));
        }
    }
    out
}

/// Runs the agent: see the module. `progress` hears each change of state.
pub fn run(
    spec: &Spec,
    cluster: &ClusterSettings,
    keep: bool,
    progress: &mut dyn FnMut(&str),
) -> Result<Outcome, Error> {
    let signals = crate::bundler::output::HeldSignals::hold();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Runtime(e.to_string()))?;
    let conn = rt.block_on(Conn::open(cluster))?;
    rt.block_on(conn.check(spec))?;
    let mut created = Vec::new();
    let result = rt.block_on(conn.create_and_wait(spec, &mut created, &signals, progress));
    // The ConfigMap is read by the cm:// code, on a runtime of its own.
    let result = result.and_then(|()| {
        progress("reading the snapshot");
        let target = Target {
            namespace: spec.namespace.clone(),
            name: spec.name(),
        };
        let settings = ClusterSettings {
            timeout: configmap_timeout(cluster.timeout),
            ..cluster.clone()
        };
        configmap::read(&settings, &target, Some(DocKind::Snapshot))
            .map_err(|e| Error::ConfigMap(Box::new(e)))
    });
    let kept = if keep {
        // Said here, so a failed run lists them too.
        for k in &created {
            tracing::warn!("--no-cleanup: kept {k}");
        }
        if !created.is_empty() {
            tracing::warn!(
                "delete them with: kubectl delete job,configmap,role,rolebinding,serviceaccount -n {} -l {sel} && kubectl delete clusterrole,clusterrolebinding -l {sel}",
                spec.namespace,
                sel = spec.selector()
            );
        }
        created
    } else {
        progress("cleaning up");
        rt.block_on(conn.delete_all(&created))
    };
    if signals.pending() {
        tracing::warn!(
            "interrupted: deleted the agent's objects{}",
            if kept.is_empty() {
                ""
            } else {
                " except those listed"
            }
        );
        for k in &kept {
            tracing::warn!("left {k}");
        }
        // Dropping the guard delivers the signal.
        drop(signals);
        return Err(Error::Interrupted);
    }
    result.map(|snapshot| Outcome { snapshot, kept })
}

fn configmap_timeout(t: Duration) -> Duration {
    t.max(Duration::from_secs(5))
}

pub(super) struct Conn {
    pub(super) client: kube::Client,
    pub(super) server: String,
    pub(super) timeout: Duration,
}

impl Conn {
    /// A client of `cluster`, with its request deadline.
    pub(super) async fn open(cluster: &ClusterSettings) -> Result<Conn, access::Error> {
        let (client, server) = cluster.client().await?;
        Ok(Conn {
            client,
            server,
            timeout: cluster.timeout,
        })
    }

    /// One request within the deadline, its failure classified.
    pub(super) async fn call(
        &self,
        http: Result<http::Request<Vec<u8>>, kube::core::request::Error>,
        verb: &str,
        resource: &str,
        name: Option<&str>,
        namespace: Option<&str>,
    ) -> Result<Value, RequestError> {
        let req = access::Request {
            verb,
            resource,
            name,
            namespace,
        };
        let http = http.map_err(|e| RequestError {
            class: Class::Internal,
            message: format!("cannot build the request {req}: {e}"),
            code: None,
        })?;
        let mut bytes = Vec::new();
        let sent = access::send_capped(&self.client, http, MAX_RESPONSE_BYTES, &mut bytes);
        let status = match tokio::time::timeout(self.timeout, sent).await {
            Err(_) => return Err(access::timed_out(&req, &self.server, self.timeout)),
            Ok(Err(access::SendError::Send(e) | access::SendError::Body(e))) => {
                return Err(access::request_error(&e, &req, &self.server))
            }
            Ok(Err(access::SendError::TooLarge)) => {
                return Err(RequestError {
                    class: Class::Unavailable,
                    code: None,
                    message: format!(
                        "{} answered {req} with more than {} MiB",
                        self.server,
                        MAX_RESPONSE_BYTES >> 20
                    ),
                })
            }
            Ok(Ok(status)) => status,
        };
        if !status.is_success() {
            let e = kube::Error::Api(access::error_status(status, &bytes).boxed());
            return Err(access::request_error(&e, &req, &self.server));
        }
        serde_json::from_slice(&bytes).map_err(|e| RequestError {
            class: Class::Unavailable,
            code: None,
            message: format!(
                "{} answered {req} with something not JSON: {e}",
                self.server
            ),
        })
    }

    /// Asks the server about every permission, all at once (so the check
    /// takes one request's deadline); all missing ones in one error.
    async fn check(&self, spec: &Spec) -> Result<(), Error> {
        self.check_all(&permissions(spec)).await
    }

    /// [`Conn::check`] of a list of permissions.
    pub(super) async fn check_all(&self, perms: &[Permission]) -> Result<(), Error> {
        let answers = futures_util::future::join_all(perms.iter().map(|p| self.allowed(p))).await;
        let mut missing = Vec::new();
        for (p, a) in perms.iter().zip(answers) {
            if !a? {
                missing.push(p.to_string());
            }
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(Error::Forbidden {
                server: self.server.clone(),
                missing,
            })
        }
    }

    /// One SelfSubjectAccessReview: whether the server says yes.
    async fn allowed(&self, p: &Permission) -> Result<bool, RequestError> {
        let mut attrs = json!({ "verb": p.verb, "resource": p.resource, "group": p.group });
        if let Some(ns) = &p.namespace {
            attrs["namespace"] = json!(ns);
        }
        let body = json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": { "resourceAttributes": attrs },
        });
        let http =
            kube::core::Request::new("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews")
                .create(&PostParams::default(), body.to_string().into_bytes());
        let answer = self
            .call(
                http,
                "create",
                "selfsubjectaccessreviews.authorization.k8s.io",
                None,
                None,
            )
            .await?;
        Ok(answer.pointer("/status/allowed").and_then(Value::as_bool) == Some(true))
    }

    async fn create_and_wait(
        &self,
        spec: &Spec,
        created: &mut Vec<ObjectRef>,
        signals: &crate::bundler::output::HeldSignals,
        progress: &mut dyn FnMut(&str),
    ) -> Result<(), Error> {
        for m in spec.manifests() {
            if signals.pending() {
                return Err(Error::Interrupted);
            }
            let Some(obj) = super::object_ref(&m) else {
                continue;
            };
            progress(&format!("creating {obj}"));
            // Registered before the request: a create whose answer is lost
            // is still deleted.
            created.push(obj.clone());
            self.create(spec, &obj, &m).await?;
        }
        let job = spec.name();
        self.wait(spec, &job, &spec.selector(), signals, progress)
            .await
    }

    /// Creates the object `m` (`obj` names it; the caller has registered
    /// it for cleanup). A create answered 404 means the namespace is
    /// missing, and says so.
    pub(super) async fn create(
        &self,
        spec: &Spec,
        obj: &ObjectRef,
        m: &Value,
    ) -> Result<(), RequestError> {
        let pp = PostParams {
            dry_run: false,
            field_manager: Some(configmap::FIELD_MANAGER.into()),
        };
        let http =
            kube::core::Request::new(&obj.collection).create(&pp, m.to_string().into_bytes());
        match self
            .call(
                http,
                "create",
                obj.resource,
                Some(&obj.name),
                obj.namespace.as_deref(),
            )
            .await
        {
            Err(e) if e.code == Some(404) && obj.namespace.is_some() => Err(RequestError {
                message: format!(
                    "namespace {} does not exist on {}: create it, or give another with -n/--namespace",
                    spec.namespace, self.server
                ),
                ..e
            }),
            r => r.map(drop),
        }
    }

    /// Deletes one object (its dependents in the background: a Job's
    /// pods); one already gone is no error.
    pub(super) async fn delete(&self, obj: &ObjectRef) -> Result<(), RequestError> {
        let dp = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..DeleteParams::default()
        };
        let http = kube::core::Request::new(&obj.collection).delete(&obj.name, &dp);
        match self
            .call(
                http,
                "delete",
                obj.resource,
                Some(&obj.name),
                obj.namespace.as_deref(),
            )
            .await
        {
            Err(e) if e.code != Some(404) => Err(e),
            _ => Ok(()),
        }
    }

    /// Waits for the Job `job` (its pods: the label selector `pods`) to
    /// complete, within `spec.timeout`.
    pub(super) async fn wait(
        &self,
        spec: &Spec,
        job: &str,
        pods: &str,
        signals: &crate::bundler::output::HeldSignals,
        progress: &mut dyn FnMut(&str),
    ) -> Result<(), Error> {
        let shown = format!("{}/{job}", spec.namespace);
        let deadline = Instant::now() + spec.timeout;
        let path = format!("/apis/batch/v1/namespaces/{}/jobs", spec.namespace);
        let mut last_state = String::new();
        loop {
            if signals.pending() {
                return Err(Error::Interrupted);
            }
            let http = kube::core::Request::new(&path).get(job, &GetParams::default());
            let obj = self
                .call(http, "get", "jobs.batch", Some(job), Some(&spec.namespace))
                .await?;
            let cond = |t: &str| {
                obj.pointer("/status/conditions")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .find(|c| {
                        c.get("type").and_then(Value::as_str) == Some(t)
                            && c.get("status").and_then(Value::as_str) == Some("True")
                    })
                    .cloned()
            };
            if cond("Complete").is_some() {
                return Ok(());
            }
            if let Some(c) = cond("Failed") {
                let job_reason = [c.get("reason"), c.get("message")]
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(": ");
                let pod = self.pod_state(spec, pods).await.unwrap_or_default();
                let reason = match (job_reason.is_empty(), pod.is_empty()) {
                    (_, false) => format!("{job_reason}; {pod}"),
                    (false, true) => job_reason,
                    (true, true) => "no reason given".into(),
                };
                return Err(Error::JobFailed { job: shown, reason });
            }
            let state = self
                .pod_state(spec, pods)
                .await
                .unwrap_or_else(|_| "waiting for the pod".into());
            if state != last_state {
                progress(&format!("Job {shown}: {state}"));
                last_state = state.clone();
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    job: shown,
                    after: spec.timeout,
                    state: if state.is_empty() {
                        String::new()
                    } else {
                        format!("; {state}")
                    },
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The run's pod as one line: its node, phase, and why it waits or
    /// failed (the container's termination message holds its last log
    /// lines).
    async fn pod_state(&self, spec: &Spec, pods: &str) -> Result<String, RequestError> {
        let path = format!("/api/v1/namespaces/{}/pods", spec.namespace);
        let lp = ListParams::default().labels(pods);
        let http = kube::core::Request::new(&path).list(&lp);
        let list = self
            .call(http, "list", "pods", None, Some(&spec.namespace))
            .await?;
        let Some(pod) = list
            .get("items")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
        else {
            return Ok("no pod yet".into());
        };
        let s = |p: &str| pod.pointer(p).and_then(Value::as_str).unwrap_or("");
        let mut parts = vec![format!(
            "pod {} {}",
            s("/metadata/name"),
            s("/status/phase")
        )];
        if !s("/spec/nodeName").is_empty() {
            parts.push(format!("on node {}", s("/spec/nodeName")));
        }
        for c in pod
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if c.get("status").and_then(Value::as_str) == Some("False") {
                if let Some(m) = c.get("message").and_then(Value::as_str) {
                    parts.push(format!(
                        "{}: {m}",
                        c.get("type").and_then(Value::as_str).unwrap_or("")
                    ));
                }
            }
        }
        if !s("/status/reason").is_empty() || !s("/status/message").is_empty() {
            parts.push(
                format!("{} {}", s("/status/reason"), s("/status/message"))
                    .trim()
                    .to_string(),
            );
        }
        for cs in pod
            .pointer("/status/containerStatuses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            for st in ["waiting", "terminated"] {
                if let Some(x) = cs.pointer(&format!("/state/{st}")) {
                    let r = x.get("reason").and_then(Value::as_str).unwrap_or("");
                    let m = x.get("message").and_then(Value::as_str).unwrap_or("");
                    let last = m.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
                    let code = x
                        .get("exitCode")
                        .and_then(Value::as_i64)
                        .map(|c| format!(" (exit {c})"))
                        .unwrap_or_default();
                    parts.push(
                        format!("container {st}: {r}{code} {last}")
                            .trim()
                            .to_string(),
                    );
                }
            }
        }
        Ok(crate::collector::redact::text(&parts.join(", ")))
    }

    /// Deletes the objects in reverse order (the Job's pods with it); what
    /// could not be deleted is returned, and a warning says why.
    pub(super) async fn delete_all(&self, created: &[ObjectRef]) -> Vec<ObjectRef> {
        let mut left = Vec::new();
        for obj in created.iter().rev() {
            match self.delete(obj).await {
                Ok(()) => tracing::debug!("deleted {obj}"),
                Err(e) => {
                    tracing::warn!("could not delete {obj}: {e}");
                    left.push(obj.clone());
                }
            }
        }
        left
    }
}
