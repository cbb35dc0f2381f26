//! `aicr query` selectors, yq-style: `components.gpu-operator.values.driver`,
//! a leading dot optional, `.` or nothing for everything, list indexes
//! (`deploymentOrder[0]`, `[-1]` for the last), and quoted keys for names
//! that contain dots (`components."a.b".values`). The syntax is
//! [`super::path`]'s, shared with `--set` and `diff`.

use serde_json::Value;

pub use super::path::Segment;
use super::path::{Path, SyntaxError};
use crate::error::{Class, Classify};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid selector {selector_:?}: {reason} at character {pos}; selectors look like components.gpu-operator.values.driver.version, deploymentOrder[0] or components.\"name.with.dots\"", selector_ = crate::error::excerpt(.selector))]
    Syntax {
        selector: String,
        pos: usize,
        reason: &'static str,
    },
    #[error("selector {selector_:?}: key {key_:?} not found at {at_}; available keys: {available}", selector_ = crate::error::excerpt(.selector), key_ = crate::error::excerpt(.key), at_ = crate::error::excerpt(.at))]
    KeyNotFound {
        selector: String,
        at: String,
        key: String,
        available: String,
    },
    #[error("selector {selector_:?}: index {index} is out of range at {at_}, which has {len} items", selector_ = crate::error::excerpt(.selector), at_ = crate::error::excerpt(.at))]
    IndexOutOfRange {
        selector: String,
        at: String,
        index: i64,
        len: usize,
    },
    #[error("selector {selector_:?}: {at_} is a list of {len} items, not a mapping; select an item with [0]..[{last}]", last = len.saturating_sub(1), selector_ = crate::error::excerpt(.selector), at_ = crate::error::excerpt(.at))]
    NotAMap {
        selector: String,
        at: String,
        len: usize,
    },
    #[error("selector {selector_:?}: {at_} is a mapping, not a list; select a key: {available}", selector_ = crate::error::excerpt(.selector), at_ = crate::error::excerpt(.at))]
    NotAList {
        selector: String,
        at: String,
        available: String,
    },
    #[error("selector {selector_:?}: {at_} is the value {value}, which has nothing below it", selector_ = crate::error::excerpt(.selector), at_ = crate::error::excerpt(.at))]
    Scalar {
        selector: String,
        at: String,
        value: String,
    },
}

impl Classify for Error {
    fn class(&self) -> Class {
        match self {
            Error::Syntax { .. } => Class::InvalidInput,
            _ => Class::NotFound,
        }
    }
}

/// Parses a selector into path segments.
pub fn parse(selector: &str) -> Result<Vec<Segment>, Error> {
    Path::parse(selector)
        .map(|p| p.0)
        .map_err(|SyntaxError { pos, reason }| Error::Syntax {
            selector: selector.to_string(),
            pos,
            reason,
        })
}

/// Renders a path for messages: `components."a.b".values[0]`; the root is `the top level`.
fn show(path: &[Segment]) -> String {
    if path.is_empty() {
        return "the top level".into();
    }
    format!("{:?}", Path(path.to_vec()).to_string())
}

fn keys(m: &serde_json::Map<String, Value>) -> String {
    let mut k: Vec<&str> = m.keys().map(String::as_str).collect();
    k.sort_unstable();
    if k.is_empty() {
        "(none)".into()
    } else {
        k.join(", ")
    }
}

/// Selects the value at `selector` in `root`.
pub fn select<'a>(root: &'a Value, selector: &str) -> Result<&'a Value, Error> {
    Selector::parse(selector)?.select(root)
}

/// A parsed selector, with its text for messages.
#[derive(Clone, Debug)]
pub struct Selector {
    text: String,
    path: Vec<Segment>,
}

impl Selector {
    pub fn parse(text: &str) -> Result<Selector, Error> {
        Ok(Selector {
            text: text.to_string(),
            path: parse(text)?,
        })
    }

    /// The value at this selector in `root`.
    pub fn select<'a>(&self, root: &'a Value) -> Result<&'a Value, Error> {
        select_path(root, &self.path, &self.text)
    }
}

fn select_path<'a>(root: &'a Value, path: &[Segment], selector: &str) -> Result<&'a Value, Error> {
    let sel = selector.to_string();
    let mut cur = root;
    for (i, seg) in path.iter().enumerate() {
        let at = show(&path[..i]);
        cur = match (seg, cur) {
            (Segment::Key(k), Value::Object(m)) => m.get(k).ok_or_else(|| Error::KeyNotFound {
                selector: sel.clone(),
                at,
                key: k.clone(),
                available: keys(m),
            })?,
            (Segment::Index(n), Value::Array(a)) => {
                let idx = if *n < 0 { a.len() as i64 + n } else { *n };
                usize::try_from(idx)
                    .ok()
                    .and_then(|i| a.get(i))
                    .ok_or(Error::IndexOutOfRange {
                        selector: sel.clone(),
                        at,
                        index: *n,
                        len: a.len(),
                    })?
            }
            (Segment::Key(_), Value::Array(a)) => {
                return Err(Error::NotAMap {
                    selector: sel,
                    at,
                    len: a.len(),
                })
            }
            (Segment::Index(_), Value::Object(m)) => {
                return Err(Error::NotAList {
                    selector: sel,
                    at,
                    available: keys(m),
                })
            }
            (_, scalar) => {
                return Err(Error::Scalar {
                    selector: sel,
                    at,
                    value: scalar.to_string(),
                })
            }
        };
    }
    Ok(cur)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_yq_style_paths() {
        use Segment::*;
        assert_eq!(parse("").unwrap(), vec![]);
        assert_eq!(parse(".").unwrap(), vec![]);
        assert_eq!(
            parse(".a.b").unwrap(),
            vec![Key("a".into()), Key("b".into())]
        );
        assert_eq!(
            parse("a[0][-1].b").unwrap(),
            vec![Key("a".into()), Index(0), Index(-1), Key("b".into())]
        );
        assert_eq!(
            parse(r#"c."x.y".z"#).unwrap(),
            vec![Key("c".into()), Key("x.y".into()), Key("z".into())]
        );
        for bad in ["a..b", "a.", "a[x]", "a[0", "a\"b\"", "\"open", "[0]b"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let deep = vec!["a"; 5000].join(".");
        assert_eq!(
            parse(&deep).unwrap_err().to_string(),
            format!("invalid selector {:?}: a path may have at most 64 keys and indexes at character 129; selectors look like components.gpu-operator.values.driver.version, deploymentOrder[0] or components.\"name.with.dots\"", crate::error::excerpt(&deep))
        );
    }

    #[test]
    fn selects_and_explains_misses() {
        let v = json!({"a": {"x.y": [1, 2]}, "b": 3});
        assert_eq!(select(&v, r#"a."x.y"[1]"#).unwrap(), &json!(2));
        assert_eq!(select(&v, r#"a."x.y"[-1]"#).unwrap(), &json!(2));
        let e = select(&v, "a.nope").unwrap_err().to_string();
        assert_eq!(
            e,
            "selector \"a.nope\": key \"nope\" not found at \"a\"; available keys: x.y"
        );
        assert!(matches!(
            select(&v, r#"a."x.y"[2]"#),
            Err(Error::IndexOutOfRange { .. })
        ));
        assert!(matches!(select(&v, "b.c"), Err(Error::Scalar { .. })));
    }
}
