//! `cm://NAMESPACE/NAME`: a Snapshot or RecipeResult kept in a ConfigMap,
//! laid out as Go aicr v0.11.1 lays it out, so each tool reads what the
//! other wrote. This module owns the reference (its syntax and DNS-1123
//! names, checked before any request; `cm://NAME` is in the namespace the
//! caller resolves, `-n` or the context's), the layout, and the two operations:
//! [`read`] one document and [`write`] one, each through the cluster
//! settings of [`super::access`] with their request deadline.
//!
//! The layout, from Go aicr's `pkg/serializer` (`ConfigMapWriter.Serialize`
//! and `readConfigMapDataWithKubeconfigContext`):
//!
//! ```text
//! dataKey := fmt.Sprintf("snapshot.%s", extension)   // yaml, json (txt for a table)
//! configMapData := map[string]string{dataKey: string(content),
//!     "format": string(w.format), "timestamp": snapshotTimestamp}
//! WithLabels(map[string]string{"app.kubernetes.io/name": "aicr",
//!     "app.kubernetes.io/component": snapshotKind, "app.kubernetes.io/version": snapshotVersion})
//! ... Apply(..., metav1.ApplyOptions{FieldManager: "aicr", Force: true})
//! ```
//!
//! and on reading `dataKey := fmt.Sprintf("snapshot.%s", format)` (the
//! `format` key, default yaml), falling back to `snapshot.yaml`,
//! `snapshot.json`, `snapshot.txt`. Go writes every document under
//! `snapshot.<ext>`, a recipe too, and reads only those keys: so aicr
//! writes a RecipeResult under `snapshot.yaml` (or `.json`) as well, and
//! reads a recipe from `recipe.yaml`/`recipe.json` first, then the
//! `snapshot.*` keys. The kind is told by the document's own `kind`, which
//! the commands check. `timestamp` is the document's `metadata.timestamp`
//! when it has one, else the time of writing (Go's rule): the ConfigMap is
//! a container, its document key holds exactly the bytes `-o FILE` writes.
//! The component label is the document's kind (`Snapshot`,
//! `RecipeResult`), the version label this aicr's version.
//!
//! Where Go force-applies (a concurrent change is silently overwritten),
//! [`write`] uses optimistic concurrency: it reads the ConfigMap, creates it
//! when absent, else replaces it with the `resourceVersion` it read. When
//! someone else created, changed or deleted it in between, the server
//! refuses (409 or 404) and the write fails (exit 2) naming who made the
//! latest change (the manager of the newest `managedFields` entry) and
//! saying that nothing was written. It does not retry: the document
//! replaces the whole ConfigMap's document, so a retry would overwrite the
//! change it just found. Other keys and labels of an existing ConfigMap
//! are kept; an immutable one is refused.
//!
//! A ConfigMap holds at most 1 MiB of data ([`MAX_DATA_BYTES`], data and
//! binaryData values, as the API server counts): a larger document is
//! refused before any request (exit 2, with the size and the limit), and
//! one that fits alone but not beside the keys an existing ConfigMap holds
//! is refused before the write. Nothing is compressed. Reads are capped as
//! file inputs are: the server's answer at [`MAX_RESPONSE_BYTES`].

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use kube::api::{GetParams, PostParams};
use serde_json::{Map, Value};

use super::access::{self, ClusterSettings, Request, RequestError};
use crate::error::{excerpt, Class, Classify};
use crate::serializer::Format;

/// The scheme of a ConfigMap reference.
pub const SCHEME: &str = "cm://";
/// The most data one ConfigMap holds: the API server refuses one whose
/// data and binaryData values add up to more (keys are not counted).
pub const MAX_DATA_BYTES: u64 = 1024 * 1024;
/// The largest answer read for one ConfigMap: its data, plus labels,
/// annotations and managedFields (etcd refuses objects over 1.5 MiB).
pub const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;
/// The field manager of aicr's writes, Go aicr's too.
pub const FIELD_MANAGER: &str = "aicr";

/// `cm://NAMESPACE/NAME`, its names checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub namespace: String,
    pub name: String,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}/{}", self.namespace, self.name)
    }
}

impl Target {
    /// True when `arg` is meant as a ConfigMap reference.
    pub fn is_reference(arg: &str) -> bool {
        arg.starts_with(SCHEME)
    }

    /// Checks the syntax of `cm://NAMESPACE/NAME` or `cm://NAME` without
    /// resolving a namespace (no file is read, no request made).
    pub fn check(arg: &str) -> Result<(), Error> {
        Self::parse_in(arg, || Ok(access::DEFAULT_NAMESPACE.into())).map(drop)
    }

    /// Parses `cm://NAMESPACE/NAME`, or `cm://NAME` in the namespace
    /// `namespace` gives (called only for the short form: `-n`, the
    /// context's, ...); an explicit namespace always wins. The namespace
    /// must be a DNS-1123 label and the name a DNS-1123 subdomain, as the
    /// API server requires.
    pub fn parse_in(
        arg: &str,
        namespace: impl FnOnce() -> Result<String, Error>,
    ) -> Result<Target, Error> {
        let bad = |reason: String| Error::Reference {
            arg: excerpt(arg).into_owned(),
            reason,
        };
        let shape = || bad(format!("expected {SCHEME}NAMESPACE/NAME or {SCHEME}NAME"));
        let rest = arg.strip_prefix(SCHEME).ok_or_else(shape)?;
        let (given, name) = match rest.split_once('/') {
            Some((ns, name)) => {
                if ns.is_empty() || name.is_empty() || name.contains('/') {
                    return Err(shape());
                }
                if !is_dns1123_label(ns) {
                    return Err(bad(format!(
                        "namespace {:?} is not a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters",
                        excerpt(ns)
                    )));
                }
                (Some(ns), name)
            }
            None if rest.is_empty() => return Err(shape()),
            None => (None, rest),
        };
        if !is_dns1123_subdomain(name) {
            return Err(bad(format!(
                "name {:?} is not a DNS-1123 subdomain: lowercase letters, digits, '-' and '.', each dot-separated part starting and ending with a letter or digit, at most 253 characters",
                excerpt(name)
            )));
        }
        let namespace = match given {
            Some(ns) => ns.to_string(),
            None => namespace()?,
        };
        Ok(Target {
            namespace,
            name: name.to_string(),
        })
    }
}

fn is_dns1123_label(s: &str) -> bool {
    access::is_dns_label(s)
}

fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_label_text)
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?` of any length (the API server limits a
/// subdomain's parts by its whole length only).
fn is_label_text(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty()
        && b.first().is_some_and(alnum)
        && b.last().is_some_and(alnum)
        && b.iter().all(|c| alnum(c) || *c == b'-')
}

/// The kind of document a ConfigMap holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DocKind {
    Snapshot,
    Recipe,
}

impl DocKind {
    /// The document's `kind`, and the component label.
    pub fn kind(self) -> &'static str {
        match self {
            DocKind::Snapshot => "Snapshot",
            DocKind::Recipe => "RecipeResult",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            DocKind::Snapshot => "snapshot",
            DocKind::Recipe => "recipe",
        }
    }
}

/// The data keys a document of `kind` (either: `None`) is read from, in
/// order.
fn read_keys(kind: Option<DocKind>, format: Option<&str>) -> Vec<String> {
    let mut keys = Vec::new();
    let mut add = |k: String| {
        if !keys.contains(&k) {
            keys.push(k);
        }
    };
    let stated = format.filter(|f| matches!(*f, "yaml" | "json"));
    let prefixes: &[&str] = match kind {
        Some(DocKind::Snapshot) => &["snapshot"],
        _ => &["recipe", "snapshot"],
    };
    for p in prefixes {
        if let Some(f) = stated {
            add(format!("{p}.{f}"));
        }
        add(format!("{p}.yaml"));
        add(format!("{p}.json"));
    }
    keys
}

/// The data keys of a document, in any layout aicr or Go aicr writes; an
/// update replaces them all.
const DOCUMENT_KEYS: &[&str] = &[
    "snapshot.yaml",
    "snapshot.json",
    "snapshot.txt",
    "recipe.yaml",
    "recipe.json",
    "format",
    "timestamp",
];

/// A document to store.
#[derive(Clone, Debug)]
pub struct Document<'a> {
    pub kind: DocKind,
    /// YAML or JSON; a table cannot be read back and is refused.
    pub format: Format,
    pub text: &'a str,
    /// The `timestamp` key (see the module).
    pub timestamp: &'a str,
    /// The `app.kubernetes.io/version` label.
    pub version: &'a str,
}

impl Document<'_> {
    /// The `data` of the ConfigMap.
    pub fn data(&self) -> Result<BTreeMap<String, String>, Error> {
        let ext = storable(self.format)?;
        Ok(BTreeMap::from([
            (format!("snapshot.{ext}"), self.text.to_string()),
            ("format".to_string(), ext.to_string()),
            ("timestamp".to_string(), self.timestamp.to_string()),
        ]))
    }

    fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("app.kubernetes.io/name".to_string(), "aicr".to_string()),
            (
                "app.kubernetes.io/component".to_string(),
                self.kind.kind().to_string(),
            ),
            (
                "app.kubernetes.io/version".to_string(),
                label_value(self.version),
            ),
        ])
    }
}

/// The data key extension of a format aicr can read back; a table is
/// refused (exit 2).
pub fn storable(format: Format) -> Result<&'static str, Error> {
    match format {
        Format::Yaml => Ok("yaml"),
        Format::Json => Ok("json"),
        Format::Table => Err(Error::Table),
    }
}

/// A label value: at most 63 of `[A-Za-z0-9._-]`, starting and ending with
/// a letter or digit; anything else becomes `_`.
fn label_value(s: &str) -> String {
    let mapped: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(63)
        .collect();
    mapped
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

/// How a write ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    Created,
    Updated,
}

/// What a concurrent writer did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Race {
    Created,
    Changed,
    Deleted,
}

impl fmt::Display for Race {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Race::Created => "created",
            Race::Changed => "changed",
            Race::Deleted => "deleted",
        })
    }
}

/// The newest entry of an object's `managedFields`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub manager: String,
    pub operation: String,
    pub time: String,
}

/// A ConfigMap without the document's key: what was looked for, what is
/// there.
#[derive(Debug)]
pub struct Missing {
    pub target: Target,
    pub noun: &'static str,
    pub wanted: Vec<String>,
    pub keys: Vec<String>,
    pub binary: Vec<String>,
}

/// Why a ConfigMap could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{arg}: {reason}")]
    Reference { arg: String, reason: String },
    #[error(
        "a table cannot be stored in a ConfigMap (it cannot be read back); use -t yaml or -t json"
    )]
    Table,
    #[error("ConfigMap {} not found on {server}", slash(.target))]
    NotFound { target: Target, server: String },
    #[error(
        "{} holds no {}: none of the data keys {}; its data keys: {}{}",
        .0.target,
        .0.noun,
        .0.wanted.join(", "),
        list(&.0.keys),
        binary_note(&.0.binary)
    )]
    MissingKey(Box<Missing>),
    #[error(
        "the {noun} for {target} is {size} bytes of data{}; a ConfigMap holds at most {MAX_DATA_BYTES} bytes (1 MiB): nothing was written; write it to a file instead",
        if *.others > 0 { format!(" with the {} other keys the ConfigMap holds", .others) } else { " with its format and timestamp keys".to_string() }
    )]
    TooLarge {
        target: Target,
        noun: &'static str,
        size: u64,
        others: usize,
    },
    #[error("namespace {} not found on {server}: nothing was written; create it, or write to another namespace", .target.namespace)]
    NoNamespace { target: Target, server: String },
    #[error(
        "{server} answered with more than {} bytes for {target}, the limit for a ConfigMap",
        MAX_RESPONSE_BYTES
    )]
    ResponseTooLarge { target: Target, server: String },
    #[error("{server} answered with something that is not a ConfigMap for {target}: {detail}")]
    BadResponse {
        target: Target,
        server: String,
        detail: String,
    },
    #[error(
        "{target} is immutable: nothing was written; delete it, or write to another ConfigMap"
    )]
    Immutable { target: Target },
    #[error(
        "{target} was {race} by {} after aicr read it; nothing was written: {}",
        who(.by),
        next_step(*.race, .target)
    )]
    Conflict {
        target: Target,
        race: Race,
        by: Option<Change>,
    },
    #[error(transparent)]
    Access(#[from] access::Error),
    #[error(transparent)]
    Request(#[from] RequestError),
}

impl Classify for Error {
    fn class(&self) -> Class {
        match self {
            Error::NotFound { .. } | Error::NoNamespace { .. } => Class::NotFound,
            Error::BadResponse { .. } => Class::Unavailable,
            Error::Access(e) => e.class(),
            Error::Request(e) => e.class,
            Error::Reference { .. }
            | Error::Table
            | Error::MissingKey(_)
            | Error::TooLarge { .. }
            | Error::ResponseTooLarge { .. }
            | Error::Immutable { .. }
            | Error::Conflict { .. } => Class::InvalidInput,
        }
    }
}

fn slash(t: &Target) -> String {
    format!("{}/{}", t.namespace, t.name)
}

fn list(keys: &[String]) -> String {
    if keys.is_empty() {
        "none".into()
    } else {
        keys.iter()
            .map(|k| excerpt(k).into_owned())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn binary_note(keys: &[String]) -> String {
    if keys.is_empty() {
        String::new()
    } else {
        format!("; binaryData keys: {}", list(keys))
    }
}

fn next_step(race: Race, t: &Target) -> String {
    match race {
        Race::Deleted => "run again to create it".into(),
        _ => format!(
            "look at it (kubectl get configmap -n {} {}), then run again to replace it",
            t.namespace, t.name
        ),
    }
}

fn who(by: &Option<Change>) -> String {
    match by {
        Some(c) => format!(
            "{:?} ({} at {})",
            excerpt(&c.manager),
            excerpt(&c.operation),
            excerpt(&c.time)
        ),
        None => "another client".into(),
    }
}

/// Reads the document of `kind` (`None`: a snapshot or a recipe) from `target`: its bytes, to be parsed by
/// content as a file's are.
pub fn read(
    settings: &ClusterSettings,
    target: &Target,
    kind: Option<DocKind>,
) -> Result<Vec<u8>, Error> {
    block_on(settings, async {
        let conn = Conn::open(settings).await?;
        match conn.get(target).await? {
            None => Err(Error::NotFound {
                target: target.clone(),
                server: conn.server.clone(),
            }),
            Some(obj) => document_of(&obj, target, kind),
        }
    })
}

/// Writes `doc` to `target` (see the module for the policy). `after_read`
/// runs between the read and the write (tests use it to race the write).
pub fn write(
    settings: &ClusterSettings,
    target: &Target,
    doc: &Document<'_>,
    after_read: Option<&dyn Fn()>,
) -> Result<Written, Error> {
    let data = doc.data()?;
    let size = data_size(&data);
    if size > MAX_DATA_BYTES {
        return Err(Error::TooLarge {
            target: target.clone(),
            noun: doc.kind.noun(),
            size,
            others: 0,
        });
    }
    block_on(settings, async {
        let conn = Conn::open(settings).await?;
        let current = conn.get(target).await?;
        if let Some(hook) = after_read {
            hook();
        }
        let (result, race) = match current {
            None => (
                conn.create(target, new_object(target, doc, data))
                    .await
                    .map(|()| Written::Created),
                Race::Created,
            ),
            Some(obj) => {
                let obj = updated_object(obj, target, doc, data)?;
                (
                    conn.replace(target, obj).await.map(|()| Written::Updated),
                    Race::Changed,
                )
            }
        };
        match result {
            // Created: the namespace does not exist.
            Err(Error::Request(e)) if e.code == Some(404) && race == Race::Created => {
                Err(Error::NoNamespace {
                    target: target.clone(),
                    server: conn.server.clone(),
                })
            }
            Err(Error::Request(e)) if matches!(e.code, Some(404 | 409)) => {
                // What happened and who did it, as far as a fresh read
                // says (best effort).
                let (race, by) = match conn.get(target).await {
                    Ok(Some(obj)) if e.code == Some(409) => (race, latest_change(&obj)),
                    Ok(None) => (Race::Deleted, None),
                    _ if e.code == Some(404) => (Race::Deleted, None),
                    _ => (race, None),
                };
                Err(Error::Conflict {
                    target: target.clone(),
                    race,
                    by,
                })
            }
            other => other,
        }
    })
}

/// Runs `work` on a runtime of its own, with the client library's log lines
/// dropped (what they report comes back in the errors), within a deadline
/// of four requests.
fn block_on<T>(
    settings: &ClusterSettings,
    work: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| access::Error::Runtime(e.to_string()))?;
    let deadline = settings.timeout.saturating_mul(4);
    let quiet = tracing::subscriber::NoSubscriber::default();
    tracing::subscriber::with_default(quiet, || {
        rt.block_on(async {
            match tokio::time::timeout(deadline, work).await {
                Ok(r) => r,
                Err(_) => Err(Error::Request(RequestError {
                    class: Class::Timeout,
                    code: None,
                    message: format!(
                        "the ConfigMap request did not finish within {}",
                        humantime::format_duration(deadline)
                    ),
                })),
            }
        })
    })
}

/// The sum of the values, as the API server counts a ConfigMap's size.
fn data_size(data: &BTreeMap<String, String>) -> u64 {
    data.values().map(|v| v.len() as u64).sum()
}

/// The document of `kind` in a ConfigMap object.
pub(crate) fn document_of(
    obj: &Value,
    target: &Target,
    kind: Option<DocKind>,
) -> Result<Vec<u8>, Error> {
    let data = obj.get("data").and_then(Value::as_object);
    let format = data.and_then(|d| d.get("format")).and_then(Value::as_str);
    let wanted = read_keys(kind, format);
    if let Some(d) = data {
        for k in &wanted {
            if let Some(text) = d.get(k).and_then(Value::as_str) {
                return Ok(text.as_bytes().to_vec());
            }
        }
    }
    let keys = |field: &str| -> Vec<String> {
        obj.get(field)
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };
    Err(Error::MissingKey(Box::new(Missing {
        target: target.clone(),
        noun: kind.map_or("snapshot or recipe", DocKind::noun),
        wanted,
        keys: keys("data"),
        binary: keys("binaryData"),
    })))
}

/// A new ConfigMap holding `doc`.
fn new_object(target: &Target, doc: &Document<'_>, data: BTreeMap<String, String>) -> Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": target.name,
            "namespace": target.namespace,
            "labels": doc.labels(),
        },
        "data": data,
    })
}

/// `obj` as read, with the document's keys and labels replaced and
/// everything else kept (its `resourceVersion` makes the write
/// conditional). Refuses an immutable ConfigMap, and one whose data would
/// pass the limit with its other keys.
fn updated_object(
    mut obj: Value,
    target: &Target,
    doc: &Document<'_>,
    data: BTreeMap<String, String>,
) -> Result<Value, Error> {
    if obj.get("immutable").and_then(Value::as_bool) == Some(true) {
        return Err(Error::Immutable {
            target: target.clone(),
        });
    }
    let Some(map) = obj.as_object_mut() else {
        return Err(internal(format!(
            "the ConfigMap read for {target} is not an object"
        )));
    };
    let mut size = data_size(&data);
    let mut others = 0;
    let mut kept = Map::new();
    if let Some(Value::Object(old)) = map.get("data") {
        for (k, v) in old {
            if !DOCUMENT_KEYS.contains(&k.as_str()) {
                size += v.as_str().map_or(0, str::len) as u64;
                others += 1;
                kept.insert(k.clone(), v.clone());
            }
        }
    }
    if let Some(Value::Object(bin)) = map.get("binaryData") {
        for v in bin.values() {
            size += v.as_str().map_or(0, base64_len) as u64;
            others += 1;
        }
    }
    if size > MAX_DATA_BYTES {
        return Err(Error::TooLarge {
            target: target.clone(),
            noun: doc.kind.noun(),
            size,
            others,
        });
    }
    for (k, v) in data {
        kept.insert(k, Value::String(v));
    }
    map.insert("data".into(), Value::Object(kept));
    let meta = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(meta) = meta.as_object_mut() {
        // Left out, the server keeps the field history and adds this write.
        meta.remove("managedFields");
        let labels = meta
            .entry("labels")
            .or_insert_with(|| Value::Object(Map::new()));
        if !labels.is_object() {
            *labels = Value::Object(Map::new());
        }
        if let Some(labels) = labels.as_object_mut() {
            for (k, v) in doc.labels() {
                labels.insert(k, Value::String(v));
            }
        }
    }
    Ok(obj)
}

/// The decoded length of a base64 value.
fn base64_len(s: &str) -> usize {
    let pad = s.bytes().rev().take_while(|b| *b == b'=').count();
    (s.len() / 4 * 3).saturating_sub(pad)
}

/// The newest `managedFields` entry; on a tie of times, one that is not
/// aicr's own.
fn latest_change(obj: &Value) -> Option<Change> {
    let entries = obj.pointer("/metadata/managedFields")?.as_array()?;
    let mut best: Option<Change> = None;
    for e in entries {
        let text = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let c = Change {
            manager: text("manager"),
            operation: text("operation"),
            time: text("time"),
        };
        if c.manager.is_empty() {
            continue;
        }
        let better = match &best {
            None => true,
            Some(b) => c.time > b.time || (c.time == b.time && b.manager == FIELD_MANAGER),
        };
        if better {
            best = Some(c);
        }
    }
    best
}

/// A connected client, the server's URL (for messages), and the deadline
/// of each request.
struct Conn {
    client: kube::Client,
    server: String,
    timeout: Duration,
}

/// One request to the ConfigMaps of a namespace.
enum Op {
    Get,
    Create(Vec<u8>),
    Replace(Vec<u8>),
}

impl Conn {
    async fn open(settings: &ClusterSettings) -> Result<Conn, Error> {
        let (client, server) = settings.client().await?;
        Ok(Conn {
            client,
            server,
            timeout: settings.timeout,
        })
    }

    /// The ConfigMap, `None` when it does not exist.
    async fn get(&self, target: &Target) -> Result<Option<Value>, Error> {
        match self.call(target, Op::Get).await {
            Ok(v) => Ok(Some(v)),
            Err(Error::Request(e)) if e.code == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn create(&self, target: &Target, obj: Value) -> Result<(), Error> {
        let body = serde_json::to_vec(&obj).map_err(|e| internal(e.to_string()))?;
        self.call(target, Op::Create(body)).await.map(drop)
    }

    async fn replace(&self, target: &Target, obj: Value) -> Result<(), Error> {
        let body = serde_json::to_vec(&obj).map_err(|e| internal(e.to_string()))?;
        self.call(target, Op::Replace(body)).await.map(drop)
    }

    /// One request within the deadline: the object the server answered
    /// with, or the failure classified (its HTTP status kept).
    async fn call(&self, target: &Target, op: Op) -> Result<Value, Error> {
        let verb = match op {
            Op::Get => "get",
            Op::Create(_) => "create",
            Op::Replace(_) => "update",
        };
        let req = Request {
            verb,
            resource: "configmaps",
            name: Some(&target.name),
            namespace: Some(&target.namespace),
        };
        let api = kube::core::Request::new(format!(
            "/api/v1/namespaces/{}/configmaps",
            target.namespace
        ));
        let pp = PostParams {
            dry_run: false,
            field_manager: Some(FIELD_MANAGER.into()),
        };
        let http = match op {
            Op::Get => api.get(&target.name, &GetParams::default()),
            Op::Create(body) => api.create(&pp, body),
            Op::Replace(body) => api.replace(&target.name, &pp, body),
        }
        .map_err(|e| internal(e.to_string()))?;
        let mut bytes = Vec::new();
        let sent = access::send_capped(&self.client, http, MAX_RESPONSE_BYTES, &mut bytes);
        let status = match tokio::time::timeout(self.timeout, sent).await {
            Err(_) => return Err(access::timed_out(&req, &self.server, self.timeout).into()),
            Ok(Err(access::SendError::Send(e) | access::SendError::Body(e))) => {
                return Err(access::request_error(&e, &req, &self.server).into())
            }
            Ok(Err(access::SendError::TooLarge)) => {
                return Err(Error::ResponseTooLarge {
                    target: target.clone(),
                    server: self.server.clone(),
                })
            }
            Ok(Ok(status)) => status,
        };
        if !status.is_success() {
            let e = kube::Error::Api(access::error_status(status, &bytes).boxed());
            return Err(access::request_error(&e, &req, &self.server).into());
        }
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| Error::BadResponse {
            target: target.clone(),
            server: self.server.clone(),
            detail: e.to_string(),
        })?;
        if value.get("kind").and_then(Value::as_str) != Some("ConfigMap") {
            return Err(Error::BadResponse {
                target: target.clone(),
                server: self.server.clone(),
                detail: "its kind is not ConfigMap".into(),
            });
        }
        Ok(value)
    }
}

fn internal(message: String) -> Error {
    Error::Request(RequestError {
        class: Class::Internal,
        code: None,
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn target() -> Target {
        parse("cm://ns/name").unwrap()
    }

    /// `cm://NS/NAME`, or `cm://NAME` in the namespace `fallback`.
    fn parse(arg: &str) -> Result<Target, Error> {
        Target::parse_in(arg, || Ok("fallback".into()))
    }

    #[test]
    fn references_are_checked_before_any_request() {
        assert_eq!(
            parse("cm://gpu-operator/aicr-snapshot.v1").unwrap(),
            Target {
                namespace: "gpu-operator".into(),
                name: "aicr-snapshot.v1".into()
            }
        );
        // The short form takes the namespace it is given, and asks for it
        // only when it is needed.
        assert_eq!(
            parse("cm://aicr-snapshot").unwrap(),
            Target {
                namespace: "fallback".into(),
                name: "aicr-snapshot".into()
            }
        );
        let never = || -> Result<String, Error> { panic!("the namespace was asked for") };
        assert_eq!(
            Target::parse_in("cm://ns/x", never).unwrap().namespace,
            "ns"
        );
        assert!(Target::parse_in("cm://Bad_Name", never).is_err());
        let long_ns = format!("cm://{}/x", "a".repeat(64));
        let cases = [
            ("cm://", "cm://: expected cm://NAMESPACE/NAME or cm://NAME"),
            ("cm:///x", "cm:///x: expected cm://NAMESPACE/NAME or cm://NAME"),
            ("cm://ns/", "cm://ns/: expected cm://NAMESPACE/NAME or cm://NAME"),
            ("cm://ns/a/b", "cm://ns/a/b: expected cm://NAMESPACE/NAME or cm://NAME"),
            (
                "cm://Bad_Name",
                "cm://Bad_Name: name \"Bad_Name\" is not a DNS-1123 subdomain: lowercase letters, digits, '-' and '.', each dot-separated part starting and ending with a letter or digit, at most 253 characters",
            ),
            (
                "cm://Bad_NS/x",
                "cm://Bad_NS/x: namespace \"Bad_NS\" is not a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters",
            ),
            (
                "cm://ns/-x",
                "cm://ns/-x: name \"-x\" is not a DNS-1123 subdomain: lowercase letters, digits, '-' and '.', each dot-separated part starting and ending with a letter or digit, at most 253 characters",
            ),
        ];
        for (arg, msg) in cases {
            let e = parse(arg).unwrap_err();
            assert_eq!(e.class(), Class::InvalidInput);
            assert_eq!(e.to_string(), msg);
        }
        for bad in [
            long_ns.as_str(),
            "cm://ns/a..b",
            "cm://ns/a.-b",
            "cm://ns/UPPER",
            "cm://ns/x y",
            "cm://n.s/x",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let long_name = format!("cm://ns/{}", "a".repeat(253));
        assert!(parse(&long_name).is_ok());
        assert!(parse(&format!("{long_name}a")).is_err());
    }

    #[test]
    fn go_layout_is_written_and_read() {
        let doc = Document {
            kind: DocKind::Recipe,
            format: Format::Yaml,
            text: "kind: RecipeResult\n",
            timestamp: "2026-01-02T03:04:05Z",
            version: "0.1.0+dirty",
        };
        let obj = new_object(&target(), &doc, doc.data().unwrap());
        assert_eq!(
            obj,
            json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "name", "namespace": "ns", "labels": {
                    "app.kubernetes.io/component": "RecipeResult",
                    "app.kubernetes.io/name": "aicr",
                    "app.kubernetes.io/version": "0.1.0_dirty"}},
                "data": {"format": "yaml", "snapshot.yaml": "kind: RecipeResult\n",
                         "timestamp": "2026-01-02T03:04:05Z"}
            })
        );
        let text = document_of(&obj, &target(), Some(DocKind::Recipe)).unwrap();
        assert_eq!(text, b"kind: RecipeResult\n");
        // A table is refused; JSON goes under snapshot.json.
        let table = Document {
            format: Format::Table,
            ..doc.clone()
        };
        assert_eq!(
            table.data().unwrap_err().to_string(),
            "a table cannot be stored in a ConfigMap (it cannot be read back); use -t yaml or -t json"
        );
        let json_doc = Document {
            format: Format::Json,
            ..doc
        };
        assert!(json_doc.data().unwrap().contains_key("snapshot.json"));
    }

    #[test]
    fn keys_are_read_in_go_order_and_a_missing_key_names_the_keys_there_are() {
        assert_eq!(
            read_keys(Some(DocKind::Snapshot), Some("json")),
            ["snapshot.json", "snapshot.yaml"]
        );
        assert_eq!(
            read_keys(Some(DocKind::Recipe), None),
            [
                "recipe.yaml",
                "recipe.json",
                "snapshot.yaml",
                "snapshot.json"
            ]
        );
        let obj = json!({"kind": "ConfigMap", "data": {"format": "table", "snapshot.txt": "x"},
                         "binaryData": {"blob": "AAAA"}});
        let e = document_of(&obj, &target(), Some(DocKind::Snapshot)).unwrap_err();
        assert_eq!(e.class(), Class::InvalidInput);
        assert_eq!(
            e.to_string(),
            "cm://ns/name holds no snapshot: none of the data keys snapshot.yaml, snapshot.json; its data keys: format, snapshot.txt; binaryData keys: blob"
        );
        let empty = json!({"kind": "ConfigMap"});
        let e = document_of(&empty, &target(), None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cm://ns/name holds no snapshot or recipe: none of the data keys recipe.yaml, recipe.json, snapshot.yaml, snapshot.json; its data keys: none"
        );
    }

    #[test]
    fn an_update_keeps_other_keys_and_labels_and_counts_them() {
        let doc = Document {
            kind: DocKind::Snapshot,
            format: Format::Yaml,
            text: "measurements: []\n",
            timestamp: "t",
            version: "0.1.0",
        };
        let old = json!({"kind": "ConfigMap", "apiVersion": "v1",
            "metadata": {"name": "name", "resourceVersion": "42", "labels": {"team": "gpu"},
                         "managedFields": [{"manager": "kubectl"}]},
            "data": {"note": "keep me", "snapshot.json": "{}", "format": "json", "timestamp": "old"}});
        let new = updated_object(old.clone(), &target(), &doc, doc.data().unwrap()).unwrap();
        assert_eq!(new["metadata"]["resourceVersion"], "42");
        assert_eq!(new["metadata"]["labels"]["team"], "gpu");
        assert_eq!(new["metadata"]["labels"]["app.kubernetes.io/name"], "aicr");
        assert!(new["metadata"].get("managedFields").is_none());
        assert_eq!(
            new["data"],
            json!({"note": "keep me", "snapshot.yaml": "measurements: []\n", "format": "yaml", "timestamp": "t"})
        );
        // Beside a large key, it no longer fits.
        let mut big = old.clone();
        big["data"]["other"] = json!("x".repeat(MAX_DATA_BYTES as usize - 10));
        let e = updated_object(big, &target(), &doc, doc.data().unwrap()).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "the snapshot for cm://ns/name is {} bytes of data with the 2 other keys the ConfigMap holds; a ConfigMap holds at most 1048576 bytes (1 MiB): nothing was written; write it to a file instead",
                MAX_DATA_BYTES - 10 + 7 + 17 + 4 + 1
            )
        );
        let mut frozen = old;
        frozen["immutable"] = json!(true);
        let e = updated_object(frozen, &target(), &doc, doc.data().unwrap()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cm://ns/name is immutable: nothing was written; delete it, or write to another ConfigMap"
        );
    }

    #[test]
    fn the_latest_change_names_its_manager() {
        let obj = json!({"metadata": {"managedFields": [
            {"manager": "aicr", "operation": "Update", "time": "2026-01-01T00:00:01Z"},
            {"manager": "kubectl-patch", "operation": "Update", "time": "2026-01-01T00:00:01Z"},
            {"manager": "old", "operation": "Apply", "time": "2025-01-01T00:00:00Z"}]}});
        assert_eq!(
            latest_change(&obj),
            Some(Change {
                manager: "kubectl-patch".into(),
                operation: "Update".into(),
                time: "2026-01-01T00:00:01Z".into()
            })
        );
        assert_eq!(latest_change(&json!({"metadata": {}})), None);
        let e = Error::Conflict {
            target: target(),
            race: Race::Changed,
            by: latest_change(&obj),
        };
        assert_eq!(e.class(), Class::InvalidInput);
        assert_eq!(
            e.to_string(),
            "cm://ns/name was changed by \"kubectl-patch\" (Update at 2026-01-01T00:00:01Z) after aicr read it; nothing was written: look at it (kubectl get configmap -n ns name), then run again to replace it"
        );
    }

    #[test]
    fn sizes_count_values_as_the_api_server_does() {
        assert_eq!(base64_len("AAAA"), 3);
        assert_eq!(base64_len("AAA="), 2);
        assert_eq!(base64_len("AA=="), 1);
        assert_eq!(base64_len(""), 0);
        assert_eq!(label_value("-1.2.3+build/x-"), "1.2.3_build_x");
    }
}
