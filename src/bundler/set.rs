//! `--set`, `--set-string` and `--set-json`: `component:path=value`
//! assignments to a component's Helm values, with Helm's conventions.
//!
//! - `--set`: `true`/`false` are booleans, `null` is null, an integer without
//!   a leading zero is an integer; everything else is a string, so `1.50` and
//!   `v25.10` stay strings.
//! - `--set-string`: always a string. `--set-json`: a JSON value.
//! - Paths are dotted keys with list indexes: `a.b[0].c`; `\.` is a literal
//!   dot inside a key, as is a quoted key (`"k8s.io/x"`): the syntax of
//!   [`crate::recipe::path`], at most 64 segments. An index past the end pads
//!   the list with nulls, as Helm does; the indexes of one path add up to
//!   at most 65,536, Helm's limit for one index.
//! - One assignment per flag: the value runs to the end of the argument, so
//!   `a=x=y` sets `x=y` and commas are kept.
//!
//! `component:enabled=true|false` is not a value: it switches the component
//! on or off in the bundle.

use serde_json::{Map, Value};

use super::Error;
use crate::error::excerpt;
use crate::recipe::path::Path;
pub use crate::recipe::path::Segment as Step;

/// Helm's largest list index (strvals `MaxIndex`).
const MAX_INDEX: usize = 65_536;

/// How deep an assignment may nest the values: its path plus the depth of
/// its value. YAML and JSON readers (serde_json, serde_yaml, and so aicr
/// itself) refuse documents nested deeper than 128.
pub const MAX_VALUE_DEPTH: usize = 128;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetKind {
    Typed,
    String,
    Json,
}

impl SetKind {
    pub fn flag(self) -> &'static str {
        match self {
            SetKind::Typed => "--set",
            SetKind::String => "--set-string",
            SetKind::Json => "--set-json",
        }
    }
}

/// A parsed `component:path=value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Assignment {
    /// The component as written (registry name or a valueOverrideKey).
    pub component: String,
    /// The path as written, for messages.
    pub path_text: String,
    pub path: Vec<Step>,
    pub value: Value,
    pub flag: SetKind,
}

impl Assignment {
    pub fn parse(arg: &str, kind: SetKind) -> Result<Assignment, Error> {
        let bad = |reason: &str| Error::BadSet {
            flag: kind.flag(),
            arg: arg.to_string(),
            reason: reason.to_string(),
        };
        let Some((component, rest)) = arg.split_once(':') else {
            return Err(bad("expected component:path=value"));
        };
        let Some((path_text, raw)) = rest.split_once('=') else {
            return Err(bad("expected component:path=value"));
        };
        if component.is_empty() {
            return Err(bad("the component is empty"));
        }
        let path = parse_path(path_text).map_err(|r| bad(&r))?;
        let value = match kind {
            SetKind::Typed => typed(raw),
            SetKind::String => Value::String(raw.to_string()),
            SetKind::Json => crate::serializer::parse_json(raw)
                .map_err(|e| bad(&format!("the value is not valid JSON ({e})")))?,
        };
        let depth = path.len() + depth(&value);
        if depth > MAX_VALUE_DEPTH {
            return Err(bad(&format!(
                "the path and value nest {depth} levels deep; values may nest at most {MAX_VALUE_DEPTH} levels (what YAML and JSON readers accept)"
            )));
        }
        Ok(Assignment {
            component: component.to_string(),
            path_text: path_text.to_string(),
            path,
            value,
            flag: kind,
        })
    }

    /// `enabled` at the top level: the component switch, not a value.
    pub fn is_enabled_switch(&self) -> bool {
        self.path == [Step::Key("enabled".into())]
    }

    /// The switch's state, when this is `component:enabled=true|false`.
    pub fn enabled(&self) -> Result<Option<bool>, Error> {
        if !self.is_enabled_switch() {
            return Ok(None);
        }
        match &self.value {
            Value::Bool(b) => Ok(Some(*b)),
            Value::String(s) if s == "true" || s == "false" => Ok(Some(s == "true")),
            other => Err(Error::BadSet {
                flag: self.flag.flag(),
                arg: format!(
                    "{}:enabled={}",
                    self.component,
                    other
                        .as_str()
                        .map_or_else(|| other.to_string(), str::to_string)
                ),
                reason: "enabled must be true or false".into(),
            }),
        }
    }

    /// Writes the value into `values`, creating maps and lists on the way.
    pub fn apply(&self, values: &mut Value) -> Result<(), Error> {
        set_path(values, &self.path, self.value.clone()).map_err(|reason| Error::BadSet {
            flag: self.flag.flag(),
            arg: format!("{}:{}", self.component, self.path_text),
            reason,
        })
    }
}

/// How many levels of maps and lists `v` nests (a scalar: 0). The value
/// was parsed by serde_json, which stops at 128 levels, so this recursion is
/// bounded.
fn depth(v: &Value) -> usize {
    match v {
        Value::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Helm's `typedVal`: booleans, null and integers are typed; a number with a
/// leading zero, a float or anything else stays a string.
fn typed(raw: &str) -> Value {
    match raw {
        "true" => return Value::Bool(true),
        "false" => return Value::Bool(false),
        "null" => return Value::Null,
        _ => {}
    }
    let digits = raw.strip_prefix('-').unwrap_or(raw);
    let leading_zero = digits.len() > 1 && digits.starts_with('0');
    if !digits.is_empty() && !leading_zero && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(n) = raw.parse::<i64>() {
            return Value::from(n);
        }
    }
    Value::String(raw.to_string())
}

/// `a.b[0].c`, `a\.b.c`, `list[2]`: a [`Path`] that names a key first,
/// with indexes from 0 to Helm's limit.
pub fn parse_path(text: &str) -> Result<Vec<Step>, String> {
    if text.is_empty() {
        return Err("the path is empty".into());
    }
    let path = Path::parse(text).map_err(|e| format!("invalid path {:?}: {e}", excerpt(text)))?;
    match path.0.first() {
        None => return Err(format!("path {:?} names no key", excerpt(text))),
        Some(Step::Index(_)) => {
            return Err(format!("path {:?} starts with an index", excerpt(text)))
        }
        Some(Step::Key(_)) => {}
    }
    let mut padded: i64 = 0;
    for step in &path.0 {
        if let Step::Index(i) = step {
            if *i < 0 {
                return Err(format!(
                    "list index [{i}] in path {:?} is not a non-negative integer",
                    excerpt(text)
                ));
            }
            if *i > MAX_INDEX as i64 {
                return Err(format!(
                    "list index {i} in path {:?} is over the limit of {MAX_INDEX}",
                    excerpt(text)
                ));
            }
            padded += i;
        }
    }
    // Each index pads its list with nulls, and nested lists are padded one
    // by one: `a[65536][65536]…`, 63 deep, is four million nulls and
    // hundreds of MiB of values.yaml from one argument.
    if padded > MAX_INDEX as i64 {
        return Err(format!(
            "the list indexes in path {:?} add up to {padded}, over the limit of {MAX_INDEX} for one path",
            excerpt(text)
        ));
    }
    Ok(path.0)
}

/// Sets `value` at `path`, creating what is missing. A step that meets the
/// wrong kind of node (a key into a list, an index into a map or a scalar
/// that is in the way) replaces it, as Helm's `--set` does, except for an
/// index into an existing map, which is an error: it is almost always a
/// mistake in the path.
pub fn set_path(root: &mut Value, path: &[Step], value: Value) -> Result<(), String> {
    let Some((step, rest)) = path.split_first() else {
        *root = value;
        return Ok(());
    };
    match step {
        Step::Key(k) => {
            if !root.is_object() {
                *root = Value::Object(Map::new());
            }
            let map = root.as_object_mut().expect("made a map above");
            if rest.is_empty() {
                map.insert(k.clone(), value);
                return Ok(());
            }
            let child = map.entry(k.clone()).or_insert(Value::Null);
            set_path(child, rest, value)
        }
        Step::Index(i) => {
            let i = &usize::try_from(*i)
                .ok()
                .filter(|i| *i <= MAX_INDEX)
                .ok_or_else(|| format!("list index [{i}] is out of range (0 to {MAX_INDEX})"))?;
            if let Value::Object(m) = root {
                if !m.is_empty() {
                    return Err(format!(
                        "[{i}] indexes a list, but the value there is a map"
                    ));
                }
            }
            if !root.is_array() {
                *root = Value::Array(Vec::new());
            }
            let list = root.as_array_mut().expect("made a list above");
            if list.len() <= *i {
                list.resize(*i + 1, Value::Null);
            }
            set_path(&mut list[*i], rest, value)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(arg: &str) -> Assignment {
        Assignment::parse(arg, SetKind::Typed).unwrap()
    }

    #[test]
    fn helm_typing() {
        assert_eq!(set("c:a=570").value, json!(570));
        assert_eq!(set("c:a=-3").value, json!(-3));
        assert_eq!(set("c:a=1.50").value, json!("1.50"));
        assert_eq!(set("c:a=007").value, json!("007"));
        assert_eq!(set("c:a=true").value, json!(true));
        assert_eq!(set("c:a=null").value, Value::Null);
        assert_eq!(set("c:a=x=y").value, json!("x=y"));
        assert_eq!(set("c:a=").value, json!(""));
        assert_eq!(
            set("c:a=99999999999999999999").value,
            json!("99999999999999999999")
        );
        let s = Assignment::parse("c:a=true", SetKind::String).unwrap();
        assert_eq!(s.value, json!("true"));
        let j = Assignment::parse(r#"c:a={"b":[1,"2"]}"#, SetKind::Json).unwrap();
        assert_eq!(j.value, json!({"b": [1, "2"]}));
        let deep = |levels: usize| format!("c:k.l={}1{}", "[".repeat(levels), "]".repeat(levels));
        assert!(Assignment::parse(&deep(126), SetKind::Json).is_ok());
        assert_eq!(
            Assignment::parse(&deep(127), SetKind::Json)
                .unwrap_err()
                .to_string(),
            format!("--set-json {:?}: the path and value nest 129 levels deep; values may nest at most 128 levels (what YAML and JSON readers accept)", excerpt(&deep(127)))
        );
    }

    #[test]
    fn paths_with_indexes_and_escapes() {
        let mut v = json!({"a": {"keep": 1}});
        set("c:a.b[1].c=x").apply(&mut v).unwrap();
        set(r"c:a.k\.io/x=y").apply(&mut v).unwrap();
        set("c:m[0][1]=z").apply(&mut v).unwrap();
        assert_eq!(
            v,
            json!({"a": {"keep": 1, "b": [null, {"c": "x"}], "k.io/x": "y"}, "m": [[null, "z"]]})
        );
    }

    #[test]
    fn bad_paths() {
        for p in [
            "", ".", "a..b", "a.", "[0]", "a[x]", "a[-1]", "a[0]b", "a[1", "a[70000]",
        ] {
            assert!(parse_path(p).is_err(), "{p:?} should be refused");
        }
        assert_eq!(
            parse_path("a[x]").unwrap_err(),
            "invalid path \"a[x]\": a list index must be an integer at character 2"
        );
        let deep = vec!["a"; 5000].join(".");
        assert_eq!(
            parse_path(&deep).unwrap_err(),
            format!(
                "invalid path {:?}: a path may have at most 64 keys and indexes at character 129",
                excerpt(&deep)
            )
        );
        assert_eq!(
            parse_path(r#"a."k8s.io/x""#).unwrap(),
            vec![Step::Key("a".into()), Step::Key("k8s.io/x".into())]
        );
        let mut v = json!({"a": {"b": 1}});
        assert!(set("c:a[0]=1").apply(&mut v).is_err());
    }
}
