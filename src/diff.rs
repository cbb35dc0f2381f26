//! What changed between two documents of the same kind, for `aicr diff`.
//! Two `Snapshot`s are compared as readings (`Type.subtype.key`, the path
//! form recipe constraints use, plus `Type.unavailable`, the subtypes'
//! context and `metadata.<key>`); two `RecipeResult`s as the leaves of the
//! whole document in the yq style of `aicr query`, with lists of named items
//! (`componentRefs`, `constraints`) keyed by name rather than by index. It
//! also computes a JSON Patch (RFC 6902) that turns the first raw document
//! into the second. `metadata.timestamp` is volatile and is always ignored.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{Class, Classify};
use crate::measurement::{Snapshot, SNAPSHOT_KIND};
use crate::recipe::path::{Path, Segment};
use crate::recipe::result::RESULT_KIND;
use crate::serializer;

/// What the documents may be, for messages.
pub const EXPECTED: &str = "Snapshot or RecipeResult";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "{path} has kind {found:?}; aicr diff compares two Snapshot or two RecipeResult documents"
    )]
    UnsupportedKind { path: String, found: String },
    #[error("{path} has no kind and no measurements; aicr diff compares two Snapshot or two RecipeResult documents")]
    NoKind { path: String },
    #[error("{a} is a {kind_a} and {b} is a {kind_b}; aicr diff compares two documents of the same kind: two Snapshot or two RecipeResult")]
    KindMismatch {
        a: String,
        kind_a: Kind,
        b: String,
        kind_b: Kind,
    },
    #[error("{path} is a RecipeResult with no components (componentRefs is missing or empty); a recipe lists at least one component")]
    NoComponents { path: String },
    #[error("{path} is not a valid RecipeResult: componentRefs lists component {name:?} twice; each component may appear once")]
    DuplicateComponent { path: String, name: String },
    #[error(transparent)]
    Document(#[from] serializer::Error),
}

impl Classify for Error {
    fn class(&self) -> Class {
        match self {
            Error::Document(e) => e.class(),
            _ => Class::InvalidInput,
        }
    }
}

/// The kinds of document `diff` compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Snapshot,
    Recipe,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Snapshot => SNAPSHOT_KIND,
            Kind::Recipe => RESULT_KIND,
        })
    }
}

/// One side of a comparison: a parsed document whose kind is known.
#[derive(Clone, Debug)]
pub struct Document {
    origin: String,
    kind: Kind,
    raw: Value,
    snapshot: Option<Snapshot>,
}

impl Document {
    /// Checks a parsed document's kind (a document with `measurements` and
    /// no `kind` is a Go aicr snapshot), its `apiVersion`, and for a snapshot
    /// its shape. `origin` names it in messages.
    pub fn new(origin: &str, raw: Value) -> Result<Document, Error> {
        let Value::Object(map) = &raw else {
            return Err(serializer::Error::Shape {
                path: origin.to_string(),
                expected: EXPECTED,
                detail: "expected a mapping at the top level".into(),
            }
            .into());
        };
        let kind = match map.get("kind") {
            Some(Value::String(k)) if k == SNAPSHOT_KIND => Kind::Snapshot,
            Some(Value::String(k)) if k == RESULT_KIND => Kind::Recipe,
            None if map.contains_key("measurements") => Kind::Snapshot,
            None => {
                return Err(Error::NoKind {
                    path: origin.to_string(),
                })
            }
            Some(other) => {
                return Err(Error::UnsupportedKind {
                    path: origin.to_string(),
                    found: other
                        .as_str()
                        .map_or_else(|| other.to_string(), str::to_string),
                })
            }
        };
        let snapshot = match kind {
            Kind::Snapshot => Some(serializer::typed_document::<Snapshot>(
                raw.clone(),
                origin,
                SNAPSHOT_KIND,
                true,
            )?),
            Kind::Recipe => {
                // Compared generically; only kind and apiVersion are checked.
                serializer::typed_document::<Value>(raw.clone(), origin, RESULT_KIND, false)?;
                let refs = map.get("componentRefs").and_then(Value::as_array);
                let Some(refs) = refs.filter(|r| !r.is_empty()) else {
                    return Err(Error::NoComponents {
                        path: origin.to_string(),
                    });
                };
                // Compared keyed by name, as bundle reads them: a name given
                // twice is refused as bundle refuses it.
                let mut seen = std::collections::BTreeSet::new();
                for name in refs.iter().filter_map(|r| r.get("name")?.as_str()) {
                    if !seen.insert(name) {
                        return Err(Error::DuplicateComponent {
                            path: origin.to_string(),
                            name: name.to_string(),
                        });
                    }
                }
                None
            }
        };
        Ok(Document {
            origin: origin.to_string(),
            kind,
            raw,
            snapshot,
        })
    }

    /// Every compared leaf: its path and value.
    fn leaves(&self) -> BTreeMap<Path, Value> {
        match &self.snapshot {
            Some(s) => snapshot_leaves(s),
            None => {
                let mut out = BTreeMap::new();
                flatten(&without_timestamp(&self.raw), Vec::new(), &mut out);
                out
            }
        }
    }
}

/// How a leaf changed from the first document to the second.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Changed,
    Added,
    Removed,
}

impl fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChangeKind::Changed => "changed",
            ChangeKind::Added => "added",
            ChangeKind::Removed => "removed",
        })
    }
}

/// One difference: `old` is absent for an addition, `new` for a removal.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Change {
    pub change: ChangeKind,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<Value>,
}

/// One JSON Patch operation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PatchOp {
    pub op: PatchKind,
    /// A JSON Pointer (RFC 6901).
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PatchKind {
    Add,
    Remove,
    Replace,
}

/// Two documents of the same kind, ready to compare.
#[derive(Clone, Debug)]
pub struct Pair {
    a: Document,
    b: Document,
}

impl Pair {
    pub fn new(a: Document, b: Document) -> Result<Pair, Error> {
        if a.kind != b.kind {
            return Err(Error::KindMismatch {
                a: a.origin,
                kind_a: a.kind,
                b: b.origin,
                kind_b: b.kind,
            });
        }
        Ok(Pair { a, b })
    }

    pub fn kind(&self) -> Kind {
        self.a.kind
    }

    /// The changed, added and removed leaves, sorted by path.
    pub fn changes(&self) -> Vec<Change> {
        let (a, b) = (self.a.leaves(), self.b.leaves());
        let mut paths: Vec<&Path> = a.keys().chain(b.keys()).collect();
        paths.sort();
        paths.dedup();
        paths
            .into_iter()
            .filter_map(|p| {
                let change = match (a.get(p), b.get(p)) {
                    (Some(x), Some(y)) if x == y => return None,
                    (Some(_), Some(_)) => ChangeKind::Changed,
                    (None, Some(_)) => ChangeKind::Added,
                    (Some(_), None) => ChangeKind::Removed,
                    (None, None) => return None,
                };
                Some(Change {
                    change,
                    path: p.render(self.kind()),
                    old: a.get(p).cloned(),
                    new: b.get(p).cloned(),
                })
            })
            .collect()
    }

    /// A JSON Patch that turns the first raw document into the second,
    /// leaving `/metadata/timestamp` alone.
    pub fn patch(&self) -> Vec<PatchOp> {
        let mut ops = Vec::new();
        patch(
            &without_timestamp(&self.a.raw),
            &without_timestamp(&self.b.raw),
            &mut String::new(),
            &mut ops,
        );
        ops
    }
}

impl Path {
    /// Snapshot paths are the constraint form, `Type.subtype.key` with the
    /// key as is (`GPU.smi.gpu.model`); recipe paths the `aicr query` form,
    /// with keys that need it quoted (`constraints."OS.release.ID".value`).
    fn render(&self, kind: Kind) -> String {
        if kind == Kind::Recipe {
            return self.to_string();
        }
        let mut out = String::new();
        for seg in &self.0 {
            match seg {
                Segment::Key(k) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                }
                Segment::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out
    }
}

fn key_path(keys: &[&str]) -> Path {
    Path(keys.iter().map(|k| Segment::Key(k.to_string())).collect())
}

fn snapshot_leaves(s: &Snapshot) -> BTreeMap<Path, Value> {
    let mut out = BTreeMap::new();
    for (k, v) in &s.metadata {
        if k != "timestamp" {
            out.insert(key_path(&["metadata", k]), Value::String(v.clone()));
        }
    }
    // The first of duplicates wins, as in constraint evaluation.
    for m in &s.measurements {
        let t = m.kind.to_string();
        if let Some(reason) = &m.unavailable {
            out.entry(key_path(&[&t, "unavailable"]))
                .or_insert_with(|| Value::String(reason.clone()));
        }
        for sub in &m.subtypes {
            for (k, r) in &sub.data {
                let v = serde_json::to_value(r).unwrap_or_else(|_| Value::String(r.to_string()));
                out.entry(key_path(&[&t, &sub.subtype, k])).or_insert(v);
            }
            for (k, v) in &sub.context {
                out.entry(key_path(&[&t, &sub.subtype, "context", k]))
                    .or_insert_with(|| Value::String(v.clone()));
            }
        }
    }
    out
}

/// The document without `metadata.timestamp`.
fn without_timestamp(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(Value::Object(m)) = v.get_mut("metadata") {
        m.shift_remove("timestamp");
    }
    v
}

/// Flattens to leaves; an empty mapping or list is a leaf itself. A list
/// whose items are all mappings with distinct string `name`s is keyed by
/// name, and the `name` field is then left out (it is the key).
fn flatten(v: &Value, path: Vec<Segment>, out: &mut BTreeMap<Path, Value>) {
    let child = |seg: Segment| {
        let mut p = path.clone();
        p.push(seg);
        p
    };
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, x) in m {
                flatten(x, child(Segment::Key(k.clone())), out);
            }
        }
        Value::Array(a) if !a.is_empty() => match named_items(a) {
            Some(items) => {
                for (name, item) in items {
                    let rest: Map<String, Value> = item
                        .iter()
                        .filter(|(k, _)| *k != "name")
                        .map(|(k, x)| (k.clone(), x.clone()))
                        .collect();
                    flatten(
                        &Value::Object(rest),
                        child(Segment::Key(name.to_string())),
                        out,
                    );
                }
            }
            None => {
                for (i, x) in a.iter().enumerate() {
                    flatten(x, child(Segment::Index(i as i64)), out);
                }
            }
        },
        leaf => {
            out.insert(Path(path), leaf.clone());
        }
    }
}

/// The items of a list keyed by their `name`, when every item has a
/// distinct one.
fn named_items(a: &[Value]) -> Option<Vec<(&str, &Map<String, Value>)>> {
    let mut seen = std::collections::BTreeSet::new();
    a.iter()
        .map(|x| {
            let m = x.as_object()?;
            let name = m.get("name")?.as_str()?;
            seen.insert(name).then_some((name, m))
        })
        .collect()
}

/// RFC 6901 escaping of one reference token.
fn pointer_token(k: &str) -> String {
    k.replace('~', "~0").replace('/', "~1")
}

fn patch(a: &Value, b: &Value, path: &mut String, ops: &mut Vec<PatchOp>) {
    if a == b {
        return;
    }
    let len = path.len();
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().filter(|k| !y.contains_key(*k)) {
                path.push('/');
                path.push_str(&pointer_token(k));
                ops.push(PatchOp {
                    op: PatchKind::Remove,
                    path: path.clone(),
                    value: None,
                });
                path.truncate(len);
            }
            for (k, yv) in y {
                path.push('/');
                path.push_str(&pointer_token(k));
                match x.get(k) {
                    Some(xv) => patch(xv, yv, path, ops),
                    None => ops.push(PatchOp {
                        op: PatchKind::Add,
                        path: path.clone(),
                        value: Some(yv.clone()),
                    }),
                }
                path.truncate(len);
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (xv, yv)) in x.iter().zip(y).enumerate() {
                path.push('/');
                path.push_str(&i.to_string());
                patch(xv, yv, path, ops);
                path.truncate(len);
            }
        }
        _ => ops.push(PatchOp {
            op: PatchKind::Replace,
            path: path.clone(),
            value: Some(b.clone()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(v: Value) -> Document {
        Document::new("x", v).unwrap()
    }

    fn recipe(extra: Value) -> Value {
        let mut v = json!({"kind": "RecipeResult", "apiVersion": "aicr.nvidia.com/v1alpha1", "componentRefs": [{"name": "c"}]});
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v
    }

    fn snapshot(extra: Value) -> Value {
        let mut v = json!({"kind": "Snapshot", "apiVersion": "aicr.nvidia.com/v1alpha1"});
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v
    }

    /// Applies a patch made of add, remove and replace operations.
    fn apply(doc: &Value, ops: &[PatchOp]) -> Value {
        let mut doc = doc.clone();
        for op in ops {
            if op.path.is_empty() {
                doc = op.value.clone().unwrap();
                continue;
            }
            let tokens: Vec<String> = op.path[1..]
                .split('/')
                .map(|t| t.replace("~1", "/").replace("~0", "~"))
                .collect();
            let (last, parents) = tokens.split_last().unwrap();
            let mut cur = &mut doc;
            for t in parents {
                cur = match cur {
                    Value::Object(m) => m.get_mut(t).unwrap(),
                    Value::Array(a) => &mut a[t.parse::<usize>().unwrap()],
                    _ => panic!("{} goes through a scalar", op.path),
                };
            }
            match (op.op, cur) {
                (PatchKind::Remove, Value::Object(m)) => {
                    m.shift_remove(last).unwrap();
                }
                (PatchKind::Add, Value::Object(m)) => {
                    m.insert(last.clone(), op.value.clone().unwrap());
                }
                (PatchKind::Replace, Value::Object(m)) => {
                    *m.get_mut(last).unwrap() = op.value.clone().unwrap();
                }
                (PatchKind::Replace, Value::Array(a)) => {
                    a[last.parse::<usize>().unwrap()] = op.value.clone().unwrap();
                }
                (kind, _) => panic!("unexpected {kind:?} at {}", op.path),
            }
        }
        doc
    }

    #[test]
    fn named_lists_are_keyed_by_name() {
        let a = doc(recipe(json!({
            "componentRefs": [{"name": "a.b", "version": "1"}, {"name": "c", "version": "2"}],
            "deploymentOrder": ["a.b", "c"],
        })));
        let b = doc(recipe(json!({
            "componentRefs": [{"name": "new"}, {"name": "a.b", "version": "1"}, {"name": "c", "version": "3"}],
            "deploymentOrder": ["a.b", "c", "new"],
        })));
        let changes = Pair::new(a, b).unwrap().changes();
        let rows: Vec<(String, String)> = changes
            .iter()
            .map(|c| (c.change.to_string(), c.path.clone()))
            .collect();
        assert_eq!(
            rows,
            [
                ("changed".into(), "componentRefs.c.version".into()),
                ("added".into(), "componentRefs.new".into()),
                ("added".into(), "deploymentOrder[2]".into()),
            ]
        );
        assert_eq!(changes[1].new, Some(json!({})));
        assert_eq!(changes[1].old, None);
    }

    #[test]
    fn indexes_sort_as_numbers_and_keys_are_quoted() {
        let a = doc(recipe(
            json!({"l": (0..12).collect::<Vec<_>>(), "m": {"x.y": 1}}),
        ));
        let b = doc(recipe(
            json!({"l": (1..13).collect::<Vec<_>>(), "m": {"x.y": 2}}),
        ));
        let paths: Vec<String> = Pair::new(a, b)
            .unwrap()
            .changes()
            .into_iter()
            .map(|c| c.path)
            .collect();
        assert_eq!(paths[1], "l[1]");
        assert_eq!(paths[2], "l[2]");
        assert_eq!(paths[11], "l[11]");
        assert_eq!(paths[12], r#"m."x.y""#);
    }

    #[test]
    fn snapshots_compare_readings_not_timestamps() {
        let a = doc(snapshot(json!({
            "metadata": {"timestamp": "1", "source-node": "n1"},
            "measurements": [
                {"type": "GPU", "subtypes": [{"subtype": "smi", "data": {"gpu.model": "H100", "driver": "570"}}]},
                {"type": "SystemD", "unavailable": "no systemd"},
            ],
        })));
        let b = doc(snapshot(json!({
            "metadata": {"timestamp": "2", "source-node": "n1"},
            "measurements": [
                {"type": "GPU", "subtypes": [{"subtype": "smi", "data": {"gpu.model": "H100", "driver": "580"}}]},
                {"type": "SystemD", "subtypes": [{"subtype": "kubelet", "data": {"ActiveState": "active"}, "context": {"note": "x"}}]},
            ],
        })));
        let rows: Vec<String> = Pair::new(a, b)
            .unwrap()
            .changes()
            .iter()
            .map(|c| format!("{} {}", c.change, c.path))
            .collect();
        assert_eq!(
            rows,
            [
                "changed GPU.smi.driver",
                "added SystemD.kubelet.ActiveState",
                "added SystemD.kubelet.context.note",
                "removed SystemD.unavailable",
            ]
        );
    }

    #[test]
    fn kinds_are_checked() {
        let e = Document::new("a.yaml", json!({"kind": "RecipeCriteria"})).unwrap_err();
        assert_eq!(
            e.to_string(),
            "a.yaml has kind \"RecipeCriteria\"; aicr diff compares two Snapshot or two RecipeResult documents"
        );
        assert!(matches!(
            Document::new("a", json!({"spec": {}})),
            Err(Error::NoKind { .. })
        ));
        assert!(matches!(
            Document::new("a", json!([1])),
            Err(Error::Document(_))
        ));
        // A recipe lists components.
        for refs in [json!({"componentRefs": []}), json!({"componentRefs": null})] {
            let mut r = recipe(refs);
            if r["componentRefs"].is_null() {
                r.as_object_mut().unwrap().remove("componentRefs");
            }
            let e = Document::new("r.yaml", r).unwrap_err();
            assert_eq!(e.class(), Class::InvalidInput);
            assert_eq!(e.to_string(), "r.yaml is a RecipeResult with no components (componentRefs is missing or empty); a recipe lists at least one component");
        }
        // A Go aicr snapshot: no kind, no apiVersion.
        let go = doc(json!({"measurements": []}));
        assert_eq!(go.kind, Kind::Snapshot);
        let e = Pair::new(go, doc(recipe(json!({})))).unwrap_err();
        assert_eq!(e.class(), Class::InvalidInput);
        assert!(e
            .to_string()
            .contains("x is a Snapshot and x is a RecipeResult"));
    }

    #[test]
    fn patch_turns_a_into_b() {
        let a = recipe(json!({
            "metadata": {"timestamp": "t1", "version": "1"},
            "a/b": {"c~d": 1, "gone": true, "same": [1, 2]},
            "list": [1, {"x": 1}, 3],
            "resized": [1, 2],
            "type": {"was": "object"},
        }));
        let b = recipe(json!({
            "metadata": {"timestamp": "t2", "version": "2"},
            "a/b": {"c~d": 2, "same": [1, 2], "new": null},
            "list": [1, {"x": 2}, 3],
            "resized": [1, 2, 3],
            "type": "scalar",
        }));
        let ops = Pair::new(doc(a.clone()), doc(b.clone())).unwrap().patch();
        let paths: Vec<&str> = ops.iter().map(|o| o.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/metadata/version",
                "/a~1b/gone",
                "/a~1b/c~0d",
                "/a~1b/new",
                "/list/1/x",
                "/resized",
                "/type",
            ]
        );
        let patched = apply(&a, &ops);
        assert_eq!(without_timestamp(&patched), without_timestamp(&b));
        assert_eq!(patched["metadata"]["timestamp"], "t1");
        assert!(Pair::new(doc(a.clone()), doc(a))
            .unwrap()
            .patch()
            .is_empty());
    }
}
