//! Plain-text tables: aligned columns with a header row, for people reading a
//! terminal. No colour and no borders, so they paste and grep well.

use serde_json::Value;

/// Aligns `rows` (the first is the header) into columns separated by two
/// spaces. The last column is not padded.
pub fn render(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; cols];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < row.len() {
                let pad = widths[i] - cell.chars().count() + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A table of every leaf of `value`: its path and its value.
pub fn flatten(value: &Value) -> String {
    let mut rows = vec![vec!["PATH".to_string(), "VALUE".to_string()]];
    walk(value, String::new(), &mut rows);
    render(&rows)
}

fn walk(value: &Value, path: String, rows: &mut Vec<Vec<String>>) {
    match value {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                let key = path_key(k).into_owned();
                let p = if path.is_empty() {
                    key
                } else {
                    format!("{path}.{key}")
                };
                walk(v, p, rows);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for (i, v) in a.iter().enumerate() {
                walk(v, format!("{path}[{i}]"), rows);
            }
        }
        leaf => {
            let p = if path.is_empty() {
                ".".to_string()
            } else {
                path
            };
            rows.push(vec![p, scalar_text(leaf)]);
        }
    }
}

/// A map key as a path segment in the `aicr query` selector syntax: bare,
/// or quoted when it is empty or holds `.`, `[`, `]`, `"` or a space. Tables,
/// query messages and diffs all write paths this way, so any path they show
/// can be pasted into `--selector`.
pub fn path_key(k: &str) -> std::borrow::Cow<'_, str> {
    if k.is_empty() || k.contains(['.', '[', ']', '"', ' ']) {
        std::borrow::Cow::Owned(format!("{k:?}"))
    } else {
        std::borrow::Cow::Borrowed(k)
    }
}

/// A scalar as a person (or a shell script) wants it: strings bare.
pub fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
        other => other.to_string(),
    }
}
