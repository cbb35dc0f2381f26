//! The one YAML style of aicr: block style, 2-space indentation, sequences
//! indented under their key, keys in the order given (maps from data files are
//! sorted before they get here), scalars quoted only when a YAML 1.1 or 1.2
//! reader could take them for something other than a string. Characters a
//! YAML reader would not give back as they are (control characters, the
//! line breaks of YAML 1.1 NEL, LS and PS, a byte-order mark) are written
//! only as escapes in double quotes.
//!
//! Emitting from `serde_json::Value` by hand keeps the bytes stable across
//! crate upgrades and identical for every command.

use serde_json::{Map, Number, Value};

/// Renders `v` as a YAML document ending in a newline (no `---`).
pub fn to_string(v: &Value) -> String {
    let mut out = String::with_capacity(4096);
    match v {
        Value::Object(m) if !m.is_empty() => write_map(&mut out, m, 0),
        Value::Array(a) if !a.is_empty() => write_seq(&mut out, a, 0),
        other => {
            write_inline(&mut out, other, 0);
            out.push('\n');
        }
    }
    out
}

fn indent(out: &mut String, n: usize) {
    for _ in 0..n {
        out.push(' ');
    }
}

fn is_block(v: &Value) -> bool {
    match v {
        Value::Object(m) => !m.is_empty(),
        Value::Array(a) => !a.is_empty(),
        _ => false,
    }
}

fn write_map(out: &mut String, m: &Map<String, Value>, ind: usize) {
    let mut first = true;
    for (k, v) in m {
        if !first {
            indent(out, ind);
        }
        first = false;
        write_key(out, k);
        write_value_after_key(out, v, ind);
    }
}

/// Writes what follows `key:`; `ind` is the indentation of the key.
fn write_value_after_key(out: &mut String, v: &Value, ind: usize) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push_str(":\n");
            indent(out, ind + 2);
            write_map(out, m, ind + 2);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push_str(":\n");
            write_seq(out, a, ind + 2);
        }
        _ => {
            out.push_str(": ");
            write_inline(out, v, ind + 2);
            out.push('\n');
        }
    }
}

fn write_seq(out: &mut String, a: &[Value], ind: usize) {
    for item in a {
        indent(out, ind);
        out.push_str("- ");
        match item {
            Value::Object(m) if !m.is_empty() => write_map(out, m, ind + 2),
            Value::Array(inner) if !inner.is_empty() => {
                // A nested sequence starts on the next line.
                out.truncate(out.len() - 1);
                out.push('\n');
                write_seq(out, inner, ind + 2);
            }
            _ => {
                write_inline(out, item, ind + 2);
                out.push('\n');
            }
        }
    }
}

fn write_key(out: &mut String, k: &str) {
    if k.contains('\n') {
        write_double_quoted(out, k);
    } else {
        write_string_scalar(out, k);
    }
}

/// Writes a scalar or an empty collection; `block_ind` is the indentation a
/// literal block's lines get.
fn write_inline(out: &mut String, v: &Value, block_ind: usize) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => {
            if s.contains('\n') && literal_block_ok(s) {
                write_literal_block(out, s, block_ind);
            } else {
                write_string_scalar(out, s);
            }
        }
        Value::Array(_) => out.push_str("[]"),
        Value::Object(_) => out.push_str("{}"),
    }
    debug_assert!(!is_block(v));
}

fn write_number(out: &mut String, n: &Number) {
    if let Some(f) = n.as_f64().filter(|_| n.is_f64()) {
        let s = n.to_string();
        // Keep floats recognisable as floats to YAML 1.1 readers too.
        if f.is_finite() && !s.contains(['.', 'e', 'E']) {
            out.push_str(&s);
            out.push_str(".0");
        } else if let Some(pos) = s.find(['e', 'E']).filter(|_| !s.contains('.')) {
            out.push_str(&s[..pos]);
            out.push_str(".0");
            out.push_str(&s[pos..]);
        } else {
            out.push_str(&s);
        }
    } else {
        out.push_str(&n.to_string());
    }
}

/// True for a character that must be escaped: YAML 1.1 and 1.2 readers
/// either refuse it unescaped (C0 and C1 controls, DEL, U+FFFE, U+FFFF),
/// take it for a line break (U+0085 NEL, U+2028 LS, U+2029 PS; and `\t`,
/// `\n`, `\r` in a plain scalar), or drop it (U+FEFF, a byte-order mark).
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}'
        )
}

fn write_string_scalar(out: &mut String, s: &str) {
    let has_special = s.chars().any(needs_escape);
    if has_special || s.is_empty() || resolves_to_non_string(s) {
        write_double_quoted(out, s);
    } else if needs_quotes(s) {
        out.push('\'');
        out.push_str(&s.replace('\'', "''"));
        out.push('\'');
    } else {
        out.push_str(s);
    }
}

fn write_double_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{85}' => out.push_str("\\N"),
            '\u{2028}' => out.push_str("\\L"),
            '\u{2029}' => out.push_str("\\P"),
            c if needs_escape(c) && (c as u32) < 0x100 => {
                out.push_str(&format!("\\x{:02X}", c as u32));
            }
            c if needs_escape(c) => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A literal block keeps multi-line text readable. Text it cannot carry
/// exactly (leading spaces, whitespace-only lines, control characters,
/// several trailing newlines) is double-quoted instead.
fn literal_block_ok(s: &str) -> bool {
    !s.starts_with([' ', '\n'])
        && !s.ends_with("\n\n")
        && !s.chars().any(|c| needs_escape(c) && c != '\n')
        && s.split('\n').all(|l| l.is_empty() || !l.trim().is_empty())
}

fn write_literal_block(out: &mut String, s: &str, ind: usize) {
    let body = s.strip_suffix('\n');
    out.push_str(if body.is_some() { "|" } else { "|-" });
    for line in body.unwrap_or(s).split('\n') {
        out.push('\n');
        if !line.is_empty() {
            indent(out, ind);
            out.push_str(line);
        }
    }
}

/// Plain scalars that a YAML reader would not give back as this string.
fn needs_quotes(s: &str) -> bool {
    if s.is_empty() || s.trim() != s {
        return true;
    }
    let first = s.chars().next().unwrap_or(' ');
    let indicator = matches!(
        first,
        '?' | ':'
            | ','
            | '['
            | ']'
            | '{'
            | '}'
            | '#'
            | '&'
            | '*'
            | '!'
            | '|'
            | '>'
            | '\''
            | '"'
            | '%'
            | '@'
            | '`'
    );
    let dash = first == '-' && (s.len() == 1 || s[1..].starts_with(' ') || s == "---");
    indicator || dash || s.contains(": ") || s.contains(" #") || s.ends_with(':') || s == "<<"
}

/// True when a YAML 1.1 or 1.2 reader resolves the plain scalar `s` to null,
/// a boolean, a number, a timestamp or YAML 1.1's value key `=`.
pub(crate) fn resolves_to_non_string(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "~", "null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE", "y", "Y",
        "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF",
        ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", ".nan",
        ".NaN", ".NAN",
        // YAML 1.1's value key (tag:yaml.org,2002:value), which PyYAML
        // reads as a non-string.
        "=",
    ];
    if WORDS.contains(&s) {
        return true;
    }
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let Some(first) = body.chars().next() else {
        return false;
    };
    if !(first.is_ascii_digit() || first == '.') {
        return false;
    }
    // Integers and floats in any YAML base or notation, with `_` separators.
    let plain: String = body.chars().filter(|&c| c != '_').collect();
    if plain.parse::<f64>().is_ok()
        && !plain.eq_ignore_ascii_case("inf")
        && !plain.eq_ignore_ascii_case("nan")
    {
        return true;
    }
    for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
        if let Some(d) = plain.strip_prefix(prefix) {
            if !d.is_empty() && u64::from_str_radix(d, radix).is_ok() {
                return true;
            }
        }
    }
    // Sexagesimal (YAML 1.1): 1:30, 190:20:30.5
    let mut parts = plain.split(':');
    if plain.contains(':') && parts.all(|p| !p.is_empty() && p.parse::<f64>().is_ok()) {
        return true;
    }
    // Timestamps (YAML 1.1): 2001-12-14, 2001-12-14t21:59:43.10-05:00
    let b = plain.as_bytes();
    b.len() >= 8 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' && b[5].is_ascii_digit()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn roundtrip(v: &Value) {
        let text = to_string(v);
        let back: Value = serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(&back, v, "YAML was:\n{text}");
    }

    #[test]
    fn layout_is_block_style_with_indented_sequences() {
        let v = json!({"a": {"b": [1, {"c": "d", "e": [true]}]}, "f": [], "g": {}});
        assert_eq!(
            to_string(&v),
            "a:\n  b:\n    - 1\n    - c: d\n      e:\n        - true\nf: []\ng: {}\n"
        );
        roundtrip(&v);
    }

    #[test]
    fn strings_that_look_typed_are_quoted() {
        for s in [
            "24.04",
            "1.50",
            "570",
            "true",
            "yes",
            "on",
            "null",
            "~",
            "0x1F",
            "1_000",
            "10:30",
            "2001-12-14",
            ".5",
            "-1",
            "+1",
            "1e5",
            ".inf",
            "",
        ] {
            let text = to_string(&json!({ "k": s }));
            assert!(text.starts_with("k: \""), "{s:?} gave {text}");
            roundtrip(&json!({ "k": s }));
        }
    }

    #[test]
    fn plain_when_safe() {
        for s in [
            "25.12.0",
            "v1.17.2",
            "ubuntu",
            "-Xmx1g",
            "a: b c",
            "/proc/sys/kernel/osrelease",
        ] {
            roundtrip(&json!({ "k": s, s: 1 }));
        }
        assert_eq!(to_string(&json!({"k": "25.12.0"})), "k: 25.12.0\n");
        assert_eq!(to_string(&json!({"k": ">= 1.30"})), "k: '>= 1.30'\n");
    }

    #[test]
    fn multiline_text_and_odd_strings_roundtrip() {
        for s in [
            "line one\nline two\n",
            "no trailing\nnewline",
            "  leading spaces\nx",
            "blank\n\nline\n",
            "two trailing\n\n",
            "tab\there",
            "it's",
            "quote \" and \\ back",
            "ctrl \u{7}",
            "# not a comment",
            "- not a list",
            "key: value",
            "ends with colon:",
            "[1, 2]",
            "*alias",
        ] {
            roundtrip(&json!({ "k": s, "list": [s] }));
        }
    }

    #[test]
    fn floats_stay_floats() {
        roundtrip(&json!({"a": 1.0, "b": 1.5e300, "c": -0.25}));
        assert_eq!(to_string(&json!({"a": 1.0})), "a: 1.0\n");
    }

    /// Strings a YAML 1.1 reader (go-yaml in Helm, PyYAML) would not read
    /// back unchanged if they were written plain, single-quoted or literal.
    const LINE_BREAKS_AND_CONTROLS: &[&str] = &[
        "line\u{2028}separator",
        "para\u{2029}separator",
        "next\u{85}line",
        "\u{feff}bom first",
        "bom\u{feff}inside",
        "nul\0byte",
        "esc\u{1b}[0m",
        "del\u{7f}",
        "c1\u{9b}csi",
        "non\u{fffe}char",
        "multi\nline\u{2028}text\n",
        "crlf\r\nline\n",
        "\u{2028}",
    ];

    #[test]
    fn line_breaks_and_controls_are_escaped_in_double_quotes() {
        for s in LINE_BREAKS_AND_CONTROLS {
            let text = to_string(&json!({ "k": s }));
            assert!(text.starts_with("k: \""), "{s:?} gave {text}");
            for c in ['\u{2028}', '\u{2029}', '\u{85}', '\u{feff}', '\0', '\u{1b}'] {
                assert!(!text.contains(c), "{s:?} gave {text:?}");
            }
            roundtrip(&json!({ "k": s, "list": [s], *s: s }));
        }
        assert_eq!(
            to_string(&json!({"k": "a\u{2028}b\u{2029}c\u{85}d\u{feff}e\u{1b}"})),
            "k: \"a\\Lb\\Pc\\Nd\\uFEFFe\\x1B\"\n"
        );
    }

    /// PyYAML is a YAML 1.1 reader like go-yaml, the one Helm uses. It is
    /// required in CI (`CI` set); elsewhere the test says it skipped.
    #[test]
    fn pyyaml_reads_back_what_was_written() {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let available = Command::new("python3")
            .args(["-c", "import yaml"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !available {
            assert!(
                std::env::var_os("CI").is_none(),
                "python3 with PyYAML (python3-yaml) is required in CI"
            );
            eprintln!("skipped: python3 with PyYAML is not installed");
            return;
        }
        let mut strings: Vec<&str> = LINE_BREAKS_AND_CONTROLS.to_vec();
        strings.extend([
            "24.04",
            "yes",
            "on",
            "~",
            "1_000",
            "10:30",
            "2001-12-14",
            "0x1F",
            "it's",
            "# hash",
            "- dash",
            "key: value",
            "tab\there",
            "two trailing\n\n",
            "  leading",
            "line one\nline two\n",
            "25.12.0",
            "ünïcödé",
            "emoji 🚀",
        ]);
        let v = json!({
            "strings": strings,
            "keys": strings.iter().map(|s| (s.to_string(), json!(1))).collect::<Map<_, _>>(),
            "numbers": [1, -2, 1.5, 1.0, 1e300],
            "empty": [{}, []],
        });
        let text = to_string(&v);
        let mut child = Command::new("python3")
            .args([
                "-c",
                "import sys, json, yaml; print(json.dumps(yaml.safe_load(sys.stdin.buffer)))",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(text.as_bytes())
            .expect("python3 reads");
        let out = child.wait_with_output().expect("python3 finishes");
        assert!(
            out.status.success(),
            "PyYAML refused:\n{}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
        let back: Value = serde_json::from_slice(&out.stdout).expect("python3 printed JSON");
        assert_eq!(back, v, "YAML was:\n{text}");
    }

    #[test]
    fn nested_sequences() {
        roundtrip(&json!([[1, 2], [], [[3]], {"a": [[4]]}]));
    }
}
