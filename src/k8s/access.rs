//! Cluster access the way kubectl finds it, resolved once into
//! [`ClusterSettings`] before a command starts work: `-k/--kubeconfig FILE`,
//! else `KUBECONFIG` (a colon-separated list, merged as kubectl merges it:
//! the first file to set a key wins, so the first `current-context` and the
//! first cluster, user or context of a given name are kept; missing entries
//! are ignored), else `~/.kube/config`, else the in-cluster service account.
//! `--context NAME` picks a context of the merged configuration; one that
//! does not exist is refused (exit 2) with the list of those that do.
//! The namespace of a name given without one ([`ClusterSettings::namespace`])
//! is resolved as kubectl resolves it: `-n/--namespace`, else the context's
//! `namespace`, else (in a pod) the service account's namespace file, else
//! `default`; each a DNS-1123 label, or exit 2 naming where it came from.
//!
//! It also owns the one way a request is sent and its answer read
//! ([`send_capped`]: the body capped, an error's turned into a `Status`),
//! and what a failed request means ([`RequestError`]): the class
//! (401/403 exit 4, a deadline exit 5, an unreachable server exit 6) and a
//! message naming the server, the verb and the resource. Nothing here quotes
//! a kubeconfig or a token; client errors pass through
//! [`crate::collector::redact::text`].

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::collector::redact;
use crate::error::{Class, Classify};

/// The environment cluster access depends on, read by the command layer
/// (domain modules never read the environment).
#[derive(Clone, Debug, Default)]
pub struct Env {
    /// `KUBECONFIG`.
    pub kubeconfig: Option<OsString>,
    /// `HOME`, for `~/.kube/config`.
    pub home: Option<OsString>,
    /// True when `KUBERNETES_SERVICE_HOST` is set (running in a pod).
    pub in_cluster: bool,
}

impl Env {
    /// The process environment.
    pub fn from_process() -> Env {
        Env {
            kubeconfig: std::env::var_os("KUBECONFIG"),
            home: std::env::var_os("HOME"),
            in_cluster: std::env::var_os("KUBERNETES_SERVICE_HOST").is_some(),
        }
    }
}

/// Where the configuration comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// Kubeconfig files, merged in this order (first wins).
    Files(Vec<PathBuf>),
    /// The in-cluster service account.
    InCluster,
    /// Nothing found.
    None,
}

/// How to reach the cluster, resolved once before work starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterSettings {
    pub source: Source,
    /// `--context`; the current context when absent.
    pub context: Option<String>,
    /// Deadline of each request (connect and read).
    pub timeout: Duration,
    /// `-n/--namespace`, checked; `None`: see [`ClusterSettings::namespace`].
    pub namespace: Option<String>,
}

/// The namespace file of the in-cluster service account.
pub const SERVICE_ACCOUNT_NAMESPACE: &str =
    "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// The namespace when nothing names one.
pub const DEFAULT_NAMESPACE: &str = "default";

/// True for a DNS-1123 label (`[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63
/// characters), what a namespace's name must be.
pub fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty()
        && b.len() <= 63
        && b.first().is_some_and(alnum)
        && b.last().is_some_and(alnum)
        && b.iter().all(|c| alnum(c) || *c == b'-')
}

/// Refuses a namespace that is not a DNS-1123 label; `from` says where it
/// came from.
fn check_namespace(ns: &str, from: &str) -> Result<(), Error> {
    if is_dns_label(ns) {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "invalid namespace {:?} ({from}): give a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters",
        crate::error::excerpt(ns)
    )))
}

/// Why cluster access could not be set up or a request failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag or a configuration the user must change (exit 2).
    #[error("{0}")]
    Usage(String),
    /// A file that could not be read (its I/O kind decides the class).
    #[error(transparent)]
    Read(#[from] crate::serializer::Error),
    /// Nothing says where a cluster is (exit 6).
    #[error(
        "no cluster configured: give -k/--kubeconfig, set KUBECONFIG, create ~/.kube/config, or run in a pod"
    )]
    NoCluster,
    /// A request or the connection failed.
    #[error("{0}")]
    Request(#[from] RequestError),
    /// The async runtime could not start (exit 8).
    #[error("cannot start the async runtime: {0}")]
    Runtime(String),
}

impl Classify for Error {
    fn class(&self) -> Class {
        match self {
            Error::Usage(_) => Class::InvalidInput,
            Error::Read(e) => e.class(),
            Error::NoCluster => Class::Unavailable,
            Error::Request(e) => e.class,
            Error::Runtime(_) => Class::Internal,
        }
    }
}

/// A failed request: its class and a message naming the server, the verb and
/// the resource.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RequestError {
    pub class: Class,
    pub message: String,
    /// The HTTP status the server answered with, when it answered.
    pub code: Option<u16>,
}

impl Classify for RequestError {
    fn class(&self) -> Class {
        self.class
    }
}

/// What a request was for, as RBAC names it: `list deployments.apps in
/// namespace gpu-operator`.
#[derive(Clone, Debug)]
pub struct Request<'a> {
    pub verb: &'a str,
    /// `resource.group` (`deployments.apps`, `secrets`).
    pub resource: &'a str,
    pub name: Option<&'a str>,
    pub namespace: Option<&'a str>,
}

impl std::fmt::Display for Request<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.verb, self.resource)?;
        if let Some(n) = self.name {
            write!(f, " {n:?}")?;
        }
        match self.namespace {
            Some(ns) => write!(f, " in namespace {ns}"),
            None => write!(f, " (cluster-wide)"),
        }
    }
}

impl ClusterSettings {
    /// Resolves `-k`, `KUBECONFIG`, `~/.kube/config` and in-cluster, in
    /// that order. `-k` must name a readable regular file (exit 2 when it is
    /// not a file, 3 when missing, 4 when unreadable). Files are read later,
    /// by [`ClusterSettings::kubeconfig`].
    pub fn resolve(
        kubeconfig: Option<PathBuf>,
        context: Option<String>,
        timeout: Duration,
        env: &Env,
    ) -> Result<ClusterSettings, Error> {
        let context = context.filter(|c| !c.is_empty());
        let source = match kubeconfig {
            Some(p) => {
                check_flag_file(&p)?;
                Source::Files(vec![p])
            }
            None => from_env(env),
        };
        Ok(ClusterSettings {
            source,
            context,
            timeout,
            namespace: None,
        })
    }

    /// The settings with `-n/--namespace` (empty: not given), checked
    /// (exit 2 when it is not a DNS-1123 label); `from` names the flag or
    /// variable it came from.
    pub fn with_namespace(
        mut self,
        namespace: Option<String>,
        from: &str,
    ) -> Result<ClusterSettings, Error> {
        let namespace = namespace.filter(|n| !n.is_empty());
        if let Some(ns) = &namespace {
            check_namespace(ns, from)?;
        }
        self.namespace = namespace;
        Ok(self)
    }

    /// The namespace of a name given without one, as kubectl resolves it:
    /// `-n`, else the namespace of the context in use (`--context`, else
    /// the current one), else in a pod its service account's
    /// ([`SERVICE_ACCOUNT_NAMESPACE`]), else `default`. Reads the
    /// kubeconfig (or the file) only when `-n` was not given.
    pub fn namespace(&self) -> Result<String, Error> {
        self.namespace_with(std::path::Path::new(SERVICE_ACCOUNT_NAMESPACE))
    }

    fn namespace_with(&self, sa_file: &std::path::Path) -> Result<String, Error> {
        if let Some(ns) = &self.namespace {
            return Ok(ns.clone());
        }
        match &self.source {
            Source::None => Ok(DEFAULT_NAMESPACE.into()),
            Source::InCluster => {
                // A missing file is no namespace (kubectl's rule).
                let text = match crate::collector::rootfs::read_file(sa_file, 4096) {
                    Ok(b) => String::from_utf8_lossy(&b).trim().to_string(),
                    Err(_) => String::new(),
                };
                if text.is_empty() {
                    return Ok(DEFAULT_NAMESPACE.into());
                }
                check_namespace(&text, &format!("in-cluster {}", sa_file.display()))?;
                Ok(text)
            }
            Source::Files(_) => {
                let kc = self.kubeconfig()?.unwrap_or_default();
                let name = self.context.clone().or(kc.current_context.clone());
                let ns = name.as_deref().and_then(|n| {
                    kc.contexts
                        .iter()
                        .find(|c| c.name == n)
                        .and_then(|c| c.context.as_ref())
                        .and_then(|c| c.namespace.clone())
                        .filter(|ns| !ns.is_empty())
                });
                match ns {
                    None => Ok(DEFAULT_NAMESPACE.into()),
                    Some(ns) => {
                        check_namespace(
                            &ns,
                            &format!(
                                "context {:?} of the kubeconfig {}",
                                name.unwrap_or_default(),
                                self.describe_files()
                            ),
                        )?;
                        Ok(ns)
                    }
                }
            }
        }
    }

    /// The merged kubeconfig (`None` in-cluster), with `--context` checked:
    /// an unknown context is exit 2, naming the contexts there are.
    pub fn kubeconfig(&self) -> Result<Option<Kubeconfig>, Error> {
        let files = match &self.source {
            Source::Files(f) => f,
            Source::InCluster => {
                if let Some(c) = &self.context {
                    return Err(Error::Usage(format!(
                        "--context {c:?}: there is no kubeconfig, only the in-cluster service account"
                    )));
                }
                return Ok(None);
            }
            Source::None => return Err(Error::NoCluster),
        };
        let mut merged: Option<Kubeconfig> = None;
        for p in files {
            let kc = super::read_kubeconfig(p).map_err(Error::Usage)?;
            merged = Some(match merged {
                None => kc,
                Some(m) => m.merge(kc).map_err(|e| {
                    Error::Usage(format!(
                        "kubeconfig {}: cannot be merged with the files before it: {}",
                        p.display(),
                        redact::text(&e.to_string())
                    ))
                })?,
            });
        }
        let kc = merged.unwrap_or_default();
        if let Some(c) = &self.context {
            if !kc.contexts.iter().any(|n| &n.name == c) {
                let mut names: Vec<&str> = kc.contexts.iter().map(|n| n.name.as_str()).collect();
                names.sort_unstable();
                let list = if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                };
                return Err(Error::Usage(format!(
                    "--context {c:?} is not in the kubeconfig ({}); contexts: {list}",
                    self.describe_files()
                )));
            }
        }
        Ok(Some(kc))
    }

    fn describe_files(&self) -> String {
        match &self.source {
            Source::Files(f) => f
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(":"),
            Source::InCluster => "in-cluster".into(),
            Source::None => "none".into(),
        }
    }

    /// A client with the request deadline set, and the server's URL (for
    /// messages).
    pub async fn client(&self) -> Result<(kube::Client, String), Error> {
        let mut config = match self.kubeconfig()? {
            Some(kc) => {
                let opts = KubeConfigOptions {
                    context: self.context.clone(),
                    ..KubeConfigOptions::default()
                };
                kube::Config::from_custom_kubeconfig(kc, &opts)
                    .await
                    .map_err(|e| {
                        Error::Usage(format!(
                            "kubeconfig {}: {}",
                            self.describe_files(),
                            redact::text(&e.to_string())
                        ))
                    })?
            }
            None => kube::Config::incluster().map_err(|e| {
                Error::Request(RequestError {
                    code: None,
                    class: Class::Unavailable,
                    message: format!("in-cluster config: {}", redact::text(&e.to_string())),
                })
            })?,
        };
        config.connect_timeout = Some(self.timeout);
        config.read_timeout = Some(self.timeout);
        let server = redact::text(config.cluster_url.to_string().trim_end_matches('/'));
        let client = kube::Client::try_from(config).map_err(|e| {
            Error::Usage(format!(
                "cannot create a client for {server}: {}",
                redact::text(&e.to_string())
            ))
        })?;
        Ok((client, server))
    }
}

/// `-k FILE`: a regular file aicr may read.
fn check_flag_file(p: &std::path::Path) -> Result<(), Error> {
    let read_error = |io| {
        Error::Read(crate::serializer::Error::Read {
            path: format!("--kubeconfig {}", p.display()),
            io,
        })
    };
    let m = std::fs::metadata(p).map_err(read_error)?;
    if !m.is_file() {
        let what = if m.is_dir() {
            "a directory"
        } else {
            "not a regular file"
        };
        return Err(Error::Usage(format!(
            "--kubeconfig {}: {what}; give a kubeconfig file",
            p.display()
        )));
    }
    // A regular file: opening it cannot block. One aicr may not read is
    // refused now (exit 4), as every other input is.
    std::fs::File::open(p).map_err(read_error)?;
    Ok(())
}

/// `KUBECONFIG` (its existing entries, in order), `~/.kube/config`, then
/// in-cluster. A `KUBECONFIG` naming no existing file falls through to the
/// next source.
fn from_env(env: &Env) -> Source {
    if let Some(list) = &env.kubeconfig {
        let files: Vec<PathBuf> = std::env::split_paths(list)
            .filter(|p| !p.as_os_str().is_empty() && p.is_file())
            .collect();
        if !files.is_empty() {
            return Source::Files(files);
        }
    }
    if let Some(home) = &env.home {
        let p = PathBuf::from(home).join(".kube/config");
        if p.is_file() {
            return Source::Files(vec![p]);
        }
    }
    if env.in_cluster {
        return Source::InCluster;
    }
    Source::None
}

/// The most read of an error answer's body (what was read still says why).
pub const MAX_ERROR_BODY: usize = 1 << 20;

/// Why [`send_capped`] has no whole answer.
#[derive(Debug)]
pub enum SendError {
    /// The request could not be sent, or no answer came.
    Send(kube::Error),
    /// The answer's body broke off.
    Body(kube::Error),
    /// A successful answer's body is over the cap.
    TooLarge,
}

/// Sends `request` and reads the answer's body into `buf` (cleared
/// first): at most `cap` bytes of a successful answer (more is
/// [`SendError::TooLarge`]), at most [`MAX_ERROR_BODY`] of a failed one (cut
/// there). Returns the HTTP status; no deadline of its own (the caller's).
pub async fn send_capped(
    client: &kube::Client,
    request: http::Request<Vec<u8>>,
    cap: usize,
    buf: &mut Vec<u8>,
) -> Result<http::StatusCode, SendError> {
    let response = client
        .send(request.map(kube::client::Body::from))
        .await
        .map_err(SendError::Send)?;
    read_capped(response, cap, buf, |_| {}).await
}

/// Reads an answer's body into `buf` as [`send_capped`] does, showing
/// `seen` the body read so far after each piece of a successful answer
/// (the collector reads a list's continue token from the first bytes).
pub async fn read_capped(
    response: http::Response<kube::client::Body>,
    cap: usize,
    buf: &mut Vec<u8>,
    mut seen: impl FnMut(&[u8]),
) -> Result<http::StatusCode, SendError> {
    use http_body_util::BodyExt;
    let status = response.status();
    let failed = !status.is_success();
    let cap = if failed { MAX_ERROR_BODY } else { cap };
    let mut body = response.into_body();
    buf.clear();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(SendError::Body)?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > cap {
                if failed {
                    let room = cap - buf.len();
                    buf.extend_from_slice(&data[..room]);
                    break;
                }
                return Err(SendError::TooLarge);
            }
            buf.extend_from_slice(&data);
            if !failed {
                seen(buf);
            }
        }
    }
    Ok(status)
}

/// The `Status` of a failed answer: the body's, when it is one for this
/// HTTP status, else one made of the body's text (as the client library
/// reads error bodies).
pub fn error_status(code: http::StatusCode, body: &[u8]) -> kube::core::Status {
    serde_json::from_slice::<kube::core::Status>(body)
        .ok()
        .filter(|s| s.code == code.as_u16())
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            let message = if text.is_empty() {
                "(no Status in the answer)".to_string()
            } else {
                crate::error::excerpt(text).into_owned()
            };
            kube::core::Status::failure(&message, "Unknown").with_code(code.as_u16())
        })
}

/// The class and message of a failed request to `server`.
pub fn request_error(e: &kube::Error, req: &Request<'_>, server: &str) -> RequestError {
    let (class, message) = match e {
        kube::Error::Api(s) if s.code == 403 => (
            Class::Unauthorized,
            format!(
                "forbidden: cannot {req}{} on {server}",
                user_of(&s.message)
                    .map(|u| format!(" (user {u:?})"))
                    .unwrap_or_default()
            ),
        ),
        kube::Error::Api(s) if s.code == 401 => (
            Class::Unauthorized,
            format!("unauthorized: {server} refused the credentials ({req})"),
        ),
        kube::Error::Api(s) if s.code == 404 => {
            (Class::NotFound, format!("not found: {req} on {server}"))
        }
        kube::Error::Api(s) if s.code == 429 => (
            Class::RateLimited,
            format!("rate limited by {server} ({req})"),
        ),
        kube::Error::Api(s) if s.code == 504 || s.reason == "Timeout" => (
            Class::Timeout,
            format!("{server} timed out ({req}): {}", s.message),
        ),
        kube::Error::Api(s) if s.code >= 500 => (
            Class::Unavailable,
            format!(
                "{server} failed ({req}): {} ({}): {}",
                s.reason, s.code, s.message
            ),
        ),
        kube::Error::Api(s) => (
            Class::Internal,
            format!(
                "{server} refused {req}: {} ({}): {}",
                s.reason, s.code, s.message
            ),
        ),
        other if is_timeout(other) => (Class::Timeout, format!("timed out: {req} on {server}")),
        other => (
            Class::Unavailable,
            format!("cannot reach {server} ({req}): {}", chain(other)),
        ),
    };
    RequestError {
        class,
        message: redact::text(&message),
        code: match e {
            kube::Error::Api(s) => Some(s.code),
            _ => None,
        },
    }
}

/// A request that did not answer within the deadline.
pub fn timed_out(req: &Request<'_>, server: &str, after: Duration) -> RequestError {
    RequestError {
        code: None,
        class: Class::Timeout,
        message: format!(
            "timed out after {}: {req} on {server}",
            humantime::format_duration(after)
        ),
    }
}

/// `User "alice"` in the server's 403 message.
fn user_of(message: &str) -> Option<&str> {
    let rest = &message[message.find("User \"")? + 6..];
    Some(&rest[..rest.find('"')?])
}

fn is_timeout(e: &kube::Error) -> bool {
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = src {
        if s.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        let text = s.to_string().to_ascii_lowercase();
        if text.contains("timed out") || text.contains("deadline has elapsed") {
            return true;
        }
        src = s.source();
    }
    false
}

/// An error and its sources, each once.
pub(crate) fn chain(e: &kube::Error) -> String {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let m = s.to_string();
        if !msg.contains(&m) {
            msg.push_str(": ");
            msg.push_str(&m);
        }
        src = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &std::path::Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    const A: &str = "apiVersion: v1\nkind: Config\ncurrent-context: a\nclusters:\n- name: shared\n  cluster: {server: 'https://a.example:6443'}\nusers:\n- name: u\n  user: {token: token-a}\ncontexts:\n- name: a\n  context: {cluster: shared, user: u}\n- name: both\n  context: {cluster: shared, user: u, namespace: from-a}\n";
    const B: &str = "apiVersion: v1\nkind: Config\ncurrent-context: b\nclusters:\n- name: shared\n  cluster: {server: 'https://b.example:6443'}\n- name: only-b\n  cluster: {server: 'https://only-b.example:6443'}\nusers:\n- name: u\n  user: {token: token-b}\ncontexts:\n- name: b\n  context: {cluster: only-b, user: u}\n- name: both\n  context: {cluster: only-b, user: u, namespace: from-b}\n";

    fn settings(env: &Env, context: Option<&str>) -> ClusterSettings {
        ClusterSettings::resolve(None, context.map(String::from), Duration::from_secs(1), env)
            .unwrap()
    }

    /// `KUBECONFIG=a:missing:b`: both files, in order; the first file to set
    /// a key wins, as in kubectl.
    #[test]
    fn kubeconfig_list_merges_first_wins() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(dir.path(), "a", A);
        let b = write(dir.path(), "b", B);
        let list =
            std::env::join_paths([a.clone(), dir.path().join("missing"), b.clone()]).unwrap();
        let env = Env {
            kubeconfig: Some(list),
            home: None,
            in_cluster: true,
        };
        let s = settings(&env, None);
        assert_eq!(s.source, Source::Files(vec![a.clone(), b.clone()]));
        let kc = s.kubeconfig().unwrap().unwrap();
        assert_eq!(kc.current_context.as_deref(), Some("a"));
        let names: Vec<&str> = kc.contexts.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["a", "both", "b"]);
        let both = kc.contexts.iter().find(|c| c.name == "both").unwrap();
        assert_eq!(
            both.context.as_ref().unwrap().namespace.as_deref(),
            Some("from-a")
        );
        let shared = kc.clusters.iter().find(|c| c.name == "shared").unwrap();
        assert_eq!(
            shared.cluster.as_ref().unwrap().server.as_deref(),
            Some("https://a.example:6443")
        );
        assert!(kc.clusters.iter().any(|c| c.name == "only-b"));

        // Reversed, b wins.
        let list = std::env::join_paths([b, a]).unwrap();
        let env = Env {
            kubeconfig: Some(list),
            ..Env::default()
        };
        let kc = settings(&env, Some("a")).kubeconfig().unwrap().unwrap();
        assert_eq!(kc.current_context.as_deref(), Some("b"));
    }

    /// Precedence: -k over KUBECONFIG over ~/.kube/config over in-cluster.
    #[test]
    fn sources_in_kubectl_order() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(dir.path(), "a", A);
        std::fs::create_dir_all(dir.path().join("home/.kube")).unwrap();
        let home_cfg = write(&dir.path().join("home/.kube"), "config", B);
        let env = Env {
            kubeconfig: Some(a.clone().into_os_string()),
            home: Some(dir.path().join("home").into_os_string()),
            in_cluster: true,
        };
        let flag = write(dir.path(), "flag", B);
        let s = ClusterSettings::resolve(Some(flag.clone()), None, Duration::from_secs(1), &env)
            .unwrap();
        assert_eq!(s.source, Source::Files(vec![flag]));
        assert_eq!(settings(&env, None).source, Source::Files(vec![a]));
        let env2 = Env {
            kubeconfig: Some(dir.path().join("nope").into_os_string()),
            ..env.clone()
        };
        assert_eq!(settings(&env2, None).source, Source::Files(vec![home_cfg]));
        let env3 = Env {
            kubeconfig: None,
            home: None,
            in_cluster: true,
        };
        assert_eq!(settings(&env3, None).source, Source::InCluster);
        let none = settings(&Env::default(), None);
        assert_eq!(none.source, Source::None);
        let err = none.kubeconfig().unwrap_err();
        assert_eq!(err.class(), Class::Unavailable);
    }

    /// An unknown --context is exit 2 naming the contexts there are.
    #[test]
    fn unknown_context_lists_the_contexts() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(dir.path(), "a", A);
        let b = write(dir.path(), "b", B);
        let env = Env {
            kubeconfig: Some(std::env::join_paths([a.clone(), b.clone()]).unwrap()),
            ..Env::default()
        };
        let err = settings(&env, Some("prod")).kubeconfig().unwrap_err();
        assert_eq!(err.class(), Class::InvalidInput);
        assert_eq!(
            err.to_string(),
            format!(
                "--context \"prod\" is not in the kubeconfig ({}:{}); contexts: a, b, both",
                a.display(),
                b.display()
            )
        );
        assert!(settings(&env, Some("b")).kubeconfig().is_ok());
    }

    /// The namespace of `cm://NAME`: -n, else the context's, else in a pod
    /// its own, else default; a bad one names where it came from.
    #[test]
    fn namespace_in_kubectl_order() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(dir.path(), "a", A);
        let env = Env {
            kubeconfig: Some(a.clone().into_os_string()),
            ..Env::default()
        };
        let sa = write(dir.path(), "sa-namespace", "from-pod\n");
        let ns = |s: &ClusterSettings| s.namespace_with(&sa).unwrap();
        // The current context "a" names none; "both" names from-a.
        assert_eq!(ns(&settings(&env, None)), "default");
        assert_eq!(ns(&settings(&env, Some("both"))), "from-a");
        let flag = settings(&env, Some("both"))
            .with_namespace(Some("mine".into()), "-n/--namespace")
            .unwrap();
        assert_eq!(ns(&flag), "mine");
        // Empty is not given.
        let empty = settings(&env, Some("both"))
            .with_namespace(Some(String::new()), "-n/--namespace")
            .unwrap();
        assert_eq!(ns(&empty), "from-a");
        let pod = settings(
            &Env {
                in_cluster: true,
                ..Env::default()
            },
            None,
        );
        assert_eq!(ns(&pod), "from-pod");
        assert_eq!(
            pod.namespace_with(&dir.path().join("missing")).unwrap(),
            "default"
        );
        assert_eq!(ns(&settings(&Env::default(), None)), "default");

        let e = settings(&env, None)
            .with_namespace(Some("Bad_NS".into()), "-n/--namespace")
            .unwrap_err();
        assert_eq!(e.class(), Class::InvalidInput);
        assert_eq!(
            e.to_string(),
            "invalid namespace \"Bad_NS\" (-n/--namespace): give a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters"
        );
        let bad = write(
            dir.path(),
            "bad",
            &A.replace("namespace: from-a", "namespace: From_A"),
        );
        let env = Env {
            kubeconfig: Some(bad.clone().into_os_string()),
            ..Env::default()
        };
        let e = settings(&env, Some("both"))
            .namespace_with(&sa)
            .unwrap_err();
        assert_eq!(e.class(), Class::InvalidInput);
        assert!(
            e.to_string().starts_with(&format!(
                "invalid namespace \"From_A\" (context \"both\" of the kubeconfig {}): ",
                bad.display()
            )),
            "{e}"
        );
        assert!(is_dns_label("a-1") && !is_dns_label("-a") && !is_dns_label(&"a".repeat(64)));
    }

    #[test]
    fn flag_file_errors_are_classified() {
        let dir = tempfile::tempdir().unwrap();
        let env = Env::default();
        let r = |p: PathBuf| {
            ClusterSettings::resolve(Some(p), None, Duration::from_secs(1), &env).unwrap_err()
        };
        let e = r(dir.path().to_path_buf());
        assert_eq!(e.class(), Class::InvalidInput);
        assert_eq!(
            e.to_string(),
            format!(
                "--kubeconfig {}: a directory; give a kubeconfig file",
                dir.path().display()
            )
        );
        assert_eq!(r(dir.path().join("missing")).class(), Class::NotFound);
    }

    #[test]
    fn forbidden_names_verb_resource_user_and_server() {
        let e = kube::Error::Api(
            kube::core::Status::failure(
                "deployments.apps \"x\" is forbidden: User \"aicr-limited\" cannot get resource \"deployments\" in API group \"apps\" in the namespace \"ns\"",
                "Forbidden",
            )
            .with_code(403)
            .boxed(),
        );
        let req = Request {
            verb: "get",
            resource: "deployments.apps",
            name: Some("x"),
            namespace: Some("ns"),
        };
        let r = request_error(&e, &req, "https://127.0.0.1:16443");
        assert_eq!(r.class, Class::Unauthorized);
        assert_eq!(r.code, Some(403));
        assert_eq!(
            r.message,
            "forbidden: cannot get deployments.apps \"x\" in namespace ns (user \"aicr-limited\") on https://127.0.0.1:16443"
        );
    }

    /// Each answer of the server, and none, has its class and message.
    #[test]
    fn request_errors_are_classified() {
        let api = |code: u16, reason: &str| {
            kube::Error::Api(
                kube::core::Status::failure("the server's message", reason)
                    .with_code(code)
                    .boxed(),
            )
        };
        let req = Request {
            verb: "list",
            resource: "secrets",
            name: None,
            namespace: Some("gpu-operator"),
        };
        let server = "https://k8s.example:6443";
        let cases = [
            (
                api(401, "Unauthorized"),
                Class::Unauthorized,
                "unauthorized: https://k8s.example:6443 refused the credentials (list secrets in namespace gpu-operator)",
            ),
            (
                api(404, "NotFound"),
                Class::NotFound,
                "not found: list secrets in namespace gpu-operator on https://k8s.example:6443",
            ),
            (
                api(429, "TooManyRequests"),
                Class::RateLimited,
                "rate limited by https://k8s.example:6443 (list secrets in namespace gpu-operator)",
            ),
            (
                api(504, "Timeout"),
                Class::Timeout,
                "https://k8s.example:6443 timed out (list secrets in namespace gpu-operator): the server's message",
            ),
            (
                api(503, "ServiceUnavailable"),
                Class::Unavailable,
                "https://k8s.example:6443 failed (list secrets in namespace gpu-operator): ServiceUnavailable (503): the server's message",
            ),
            (
                api(422, "Invalid"),
                Class::Internal,
                "https://k8s.example:6443 refused list secrets in namespace gpu-operator: Invalid (422): the server's message",
            ),
        ];
        for (e, class, msg) in cases {
            let r = request_error(&e, &req, server);
            assert_eq!((r.class, r.message.as_str()), (class, msg));
        }
        let t = timed_out(&req, server, Duration::from_millis(1500));
        assert_eq!(t.class, Class::Timeout);
        assert_eq!(
            t.message,
            "timed out after 1s 500ms: list secrets in namespace gpu-operator on https://k8s.example:6443"
        );
    }
}
