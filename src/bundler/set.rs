//! `--set`, `--set-string` and `--set-json`: `component:path=value`
//! assignments to a component's Helm values, with Helm's conventions.
//!
//! - `--set`: `true`/`false` are booleans, `null` is null, an integer without
//!   a leading zero is an integer; everything else is a string, so `1.50` and
//!   `v25.10` stay strings.
//! - `--set-string`: always a string. `--set-json`: a JSON value.
//! - Paths are dotted keys with list indexes: `a.b[0].c`; `\.` is a literal
//!   dot inside a key. An index past the end pads the list with nulls, as Helm
//!   does.
//! - One assignment per flag: the value runs to the end of the argument, so
//!   `a=x=y` sets `x=y` and commas are kept.
//!
//! `component:enabled=true|false` is not a value: it switches the component
//! on or off in the bundle.

use serde_json::{Map, Value};

use super::Error;

/// Helm's largest list index (strvals `MaxIndex`).
const MAX_INDEX: usize = 65_536;

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

/// One step of a value path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
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
            SetKind::Json => serde_json::from_str(raw)
                .map_err(|e| bad(&format!("the value is not valid JSON ({e})")))?,
        };
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

/// `a.b[0].c`, `a\.b.c`, `list[2]`.
pub fn parse_path(text: &str) -> Result<Vec<Step>, String> {
    if text.is_empty() {
        return Err("the path is empty".into());
    }
    let mut steps = Vec::new();
    let mut key = String::new();
    let mut chars = text.chars().peekable();
    // After `]` only `.`, `[` or the end may follow.
    let mut after_index = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'.') => {
                chars.next();
                key.push('.');
            }
            '.' => {
                if key.is_empty() && !after_index {
                    return Err(format!("empty key in path {text:?}"));
                }
                if !key.is_empty() {
                    steps.push(Step::Key(std::mem::take(&mut key)));
                }
                after_index = false;
                if chars.peek().is_none() {
                    return Err(format!("path {text:?} ends with a dot"));
                }
            }
            '[' => {
                if !key.is_empty() {
                    steps.push(Step::Key(std::mem::take(&mut key)));
                } else if steps.is_empty() {
                    return Err(format!("path {text:?} starts with an index"));
                } else if !after_index {
                    return Err(format!("empty key in path {text:?}"));
                }
                let mut digits = String::new();
                loop {
                    match chars.next() {
                        Some(']') => break,
                        Some(d) => digits.push(d),
                        None => return Err(format!("unclosed [ in path {text:?}")),
                    }
                }
                let index: usize = digits.parse().map_err(|_| {
                    format!("list index [{digits}] in path {text:?} is not a non-negative integer")
                })?;
                if index > MAX_INDEX {
                    return Err(format!(
                        "list index {index} in path {text:?} is over the limit of {MAX_INDEX}"
                    ));
                }
                steps.push(Step::Index(index));
                after_index = true;
                if !matches!(chars.peek(), None | Some('.') | Some('[')) {
                    return Err(format!("expected . or [ after ] in path {text:?}"));
                }
            }
            c => {
                if after_index {
                    return Err(format!("expected . or [ after ] in path {text:?}"));
                }
                key.push(c);
            }
        }
    }
    if !key.is_empty() {
        steps.push(Step::Key(key));
    }
    Ok(steps)
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
            "", "a..b", ".a", "a.", "[0]", "a[x]", "a[-1]", "a[0]b", "a[1", "a[70000]",
        ] {
            assert!(parse_path(p).is_err(), "{p:?} should be refused");
        }
        let mut v = json!({"a": {"b": 1}});
        assert!(set("c:a[0]=1").apply(&mut v).is_err());
    }
}
