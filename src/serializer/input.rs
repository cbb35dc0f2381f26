//! Reading input documents: every file a command reads as a document (`-c`,
//! `-s`, `-r`, `diff A B`, `--data` files) comes through here. Only a regular
//! file, a pipe or standard input is read, and never more than a cap per kind
//! of input; the text is parsed by content, JSON when it is JSON and YAML
//! otherwise, and a key given twice in one mapping is refused rather than the
//! last one winning silently.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::{display_path, Error};

/// The cap on one input document (`-c`, `-s`, `-r`, `diff A B`), in bytes.
/// The largest real document, a snapshot of a big node, is a few hundred KiB.
pub const MAX_DOCUMENT_BYTES: u64 = 16 * 1024 * 1024;

/// Reads a whole input document; `-` is standard input. At most
/// [`MAX_DOCUMENT_BYTES`] are read.
pub fn read_input(path: &str) -> Result<Vec<u8>, Error> {
    if path.is_empty() {
        return Err(Error::EmptyPath("input"));
    }
    if path == "-" {
        let stdin = std::io::stdin().lock();
        return read_limited(stdin, "standard input", MAX_DOCUMENT_BYTES, "document");
    }
    read_capped(Path::new(path), MAX_DOCUMENT_BYTES, "document")
}

/// Reads the file at `path`, refusing anything but a regular file or a pipe
/// (a directory, a device, a socket) and anything over `limit` bytes; `what`
/// names the kind of input in the message. A regular file's size is checked
/// before it is read; a pipe is read up to one byte over the limit.
pub fn read_capped(path: &Path, limit: u64, what: &'static str) -> Result<Vec<u8>, Error> {
    let shown = path.display().to_string();
    let read_err = |io| Error::Read {
        path: shown.clone(),
        io,
    };
    // Judge the type before opening: opening some devices has effects.
    let meta = std::fs::metadata(path).map_err(read_err)?;
    check_type(&meta, &shown)?;
    // Non-blocking, so a FIFO nobody writes to is not waited on forever.
    let file = open_nonblocking(path).map_err(read_err)?;
    // And again on what was opened, in case the path changed in between.
    let meta = file.metadata().map_err(read_err)?;
    check_type(&meta, &shown)?;
    if meta.is_file() && meta.len() > limit {
        return Err(Error::TooLarge {
            path: shown,
            limit,
            what,
        });
    }
    #[cfg(unix)]
    if std::os::unix::fs::FileTypeExt::is_fifo(&meta.file_type()) {
        return read_fifo(file, &shown, limit, what);
    }
    read_limited(file, &shown, limit, what)
}

#[cfg(unix)]
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    File::open(path)
}

/// A FIFO is read only when a writer has it open, as `-o` writes to one
/// only when a reader has it open: a read that finds no writer (end of
/// file at once) is refused rather than waited on. With a writer, the rest
/// is read blocking, up to `limit`.
#[cfg(unix)]
fn read_fifo(
    mut file: File,
    shown: &str,
    limit: u64,
    what: &'static str,
) -> Result<Vec<u8>, Error> {
    let read_err = |io| Error::Read {
        path: shown.to_string(),
        io,
    };
    let mut first = [0u8; 1];
    let got = loop {
        match file.read(&mut first) {
            Ok(0) => return Err(Error::NoWriter(shown.to_string())),
            Ok(n) => break n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break 0,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(io) => return Err(read_err(io)),
        }
    };
    super::output::blocking(&file).map_err(read_err)?;
    read_limited(
        std::io::Read::chain(&first[..got], file),
        shown,
        limit,
        what,
    )
}

fn read_limited(
    r: impl Read,
    shown: &str,
    limit: u64,
    what: &'static str,
) -> Result<Vec<u8>, Error> {
    let mut buf = Vec::new();
    r.take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|io| Error::Read {
            path: shown.to_string(),
            io,
        })?;
    if buf.len() as u64 > limit {
        return Err(Error::TooLarge {
            path: shown.to_string(),
            limit,
            what,
        });
    }
    Ok(buf)
}

/// A regular file or a pipe (`<(cmd)`, a FIFO) is input; nothing else is.
fn check_type(meta: &std::fs::Metadata, shown: &str) -> Result<(), Error> {
    let t = meta.file_type();
    if t.is_file() {
        return Ok(());
    }
    #[cfg(unix)]
    let special = {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return Ok(());
        }
        if t.is_char_device() {
            Some("character device")
        } else if t.is_block_device() {
            Some("block device")
        } else if t.is_socket() {
            Some("socket")
        } else {
            None
        }
    };
    #[cfg(not(unix))]
    let special: Option<&'static str> = None;
    let kind = if t.is_dir() {
        "directory"
    } else {
        special.unwrap_or("special file")
    };
    Err(Error::NotAFile {
        path: shown.to_string(),
        kind,
    })
}

/// Parses a YAML or JSON document by its content. A leading byte-order mark
/// is skipped. A document that starts with `{` or `[` is read as JSON; when
/// it is not valid JSON it is read as YAML, whose flow style looks the same
/// (`{kind: RecipeCriteria}`). Anything else is YAML. A key that appears
/// twice in one mapping is an error in both.
pub fn parse_value(bytes: &[u8], path: &str, expected: &'static str) -> Result<Value, Error> {
    let path = display_path(path);
    let text = std::str::from_utf8(bytes).map_err(|e| Error::Syntax {
        path: path.clone(),
        detail: format!("not UTF-8 text ({e})"),
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let significant = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#') && *l != "---");
    let Some(first) = significant else {
        return Err(Error::Empty { path, expected });
    };
    let value = if first.starts_with(['{', '[']) {
        parse_json_or_flow_yaml(text, &path)?
    } else {
        parse_yaml(text, &path)?
    };
    if value.is_null() {
        return Err(Error::Empty { path, expected });
    }
    Ok(value)
}

/// Parses one JSON text (a command-line value such as `--set-json`'s),
/// refusing a key that appears twice in a mapping, as documents are.
pub fn parse_json(text: &str) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    Strict::deserialize(&mut de).and_then(|v| de.end().map(|()| v.0))
}

fn parse_json_or_flow_yaml(text: &str, path: &str) -> Result<Value, Error> {
    use serde_json::error::Category;
    let mut de = serde_json::Deserializer::from_str(text);
    let json = Strict::deserialize(&mut de).and_then(|v| de.end().map(|()| v.0));
    match json {
        Ok(v) => Ok(v),
        // Valid JSON syntax with a duplicate key: JSON's own answer.
        Err(e) if e.classify() == Category::Data => Err(syntax_error(path, e.to_string())),
        Err(json_err) => match parse_yaml(text, path) {
            Ok(v) => Ok(v),
            Err(_) if looks_like_json(text) => Err(syntax_error(path, json_err.to_string())),
            Err(yaml_err) => Err(yaml_err),
        },
    }
}

/// Whether a document that is neither valid JSON nor valid YAML was meant
/// as JSON (`{"key"…`, `[`), to report the JSON parser's finding.
fn looks_like_json(text: &str) -> bool {
    let t = text.trim_start();
    match t.strip_prefix('{') {
        Some(rest) => rest.trim_start().starts_with(['"', '}']),
        None => true,
    }
}

/// Deepest flow-style nesting (`[[[…`, `{{{…`) handed to the YAML parser.
/// Its scanner takes time quadratic in this depth (16 MiB of `[` would
/// never finish), while no document can nest deeper than the parser's own
/// limit of 128 anyway. Brackets are counted without regard to quotes, so
/// the limit leaves ample room for brackets inside strings.
pub const MAX_FLOW_DEPTH: usize = 1000;

fn parse_yaml(text: &str, path: &str) -> Result<Value, Error> {
    if flow_depth_exceeds(text, MAX_FLOW_DEPTH) {
        return Err(Error::Syntax {
            path: path.to_string(),
            detail: format!("flow collections ([ or {{) nested more than {MAX_FLOW_DEPTH} deep"),
        });
    }
    serde_yaml_ng::from_str::<Strict>(text)
        .map(|v| v.0)
        .map_err(|e| syntax_error(path, e.to_string()))
}

/// True when `[`/`{` outnumber `]`/`}` by more than `limit` at any point.
fn flow_depth_exceeds(text: &str, limit: usize) -> bool {
    let mut depth = 0usize;
    for b in text.bytes() {
        match b {
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

fn syntax_error(path: &str, detail: String) -> Error {
    if detail.contains(DUPLICATE) {
        Error::DuplicateKey {
            path: path.to_string(),
            detail,
        }
    } else {
        Error::Syntax {
            path: path.to_string(),
            detail,
        }
    }
}

/// The start of the parsers' message for a key given twice (the visitor
/// below writes it; YAML puts the path of the mapping in front).
const DUPLICATE: &str = "duplicate key \"";

/// A JSON value deserialised from JSON or YAML, refusing a key that appears
/// twice in a mapping. Otherwise exactly what `serde_json::Value` reads.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Strict, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML or JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_i128<E>(self, v: i128) -> Result<Value, E> {
        Ok(match (i64::try_from(v), u64::try_from(v)) {
            (Ok(i), _) => Value::Number(i.into()),
            (_, Ok(u)) => Value::Number(u.into()),
            _ => float(v as f64),
        })
    }

    fn visit_u128<E>(self, v: u128) -> Result<Value, E> {
        Ok(match u64::try_from(v) {
            Ok(u) => Value::Number(u.into()),
            Err(_) => float(v as f64),
        })
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        // JSON has no NaN or infinity: kept as a value they would become
        // null, silently (a Helm value of null deletes the key).
        if !v.is_finite() {
            return Err(E::custom(format!(
                "{v} (.nan, .inf) is not a number aicr can keep; quote it to mean a string"
            )));
        }
        Ok(float(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Strict::deserialize(d).map(|s| s.0)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(format_args!(
                    "duplicate key {:?}",
                    crate::error::excerpt(&key)
                )));
            }
            let Strict(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

/// A float as `serde_json::Value` holds it (finite: NaN and infinities
/// are refused before, see `visit_f64`).
fn float(v: f64) -> Value {
    Number::from_f64(v).map_or(Value::Null, Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(text: &str) -> Result<Value, Error> {
        parse_value(text.as_bytes(), "in.yaml", "RecipeCriteria")
    }

    #[test]
    fn json_yaml_flow_yaml_and_a_bom_give_the_same_value() {
        let want = json!({"kind": "RecipeCriteria", "spec": {"service": "eks"}});
        for text in [
            r#"{"kind": "RecipeCriteria", "spec": {"service": "eks"}}"#,
            "kind: RecipeCriteria\nspec:\n  service: eks\n",
            "{kind: RecipeCriteria, spec: {service: eks}}\n",
            "\u{feff}kind: RecipeCriteria\nspec:\n  service: eks\n",
            "\u{feff}{\"kind\": \"RecipeCriteria\", \"spec\": {\"service\": \"eks\"}}",
            "# comment\n---\n{kind: RecipeCriteria, spec: {service: eks}}\n",
        ] {
            assert_eq!(parse(text).unwrap(), want, "{text:?}");
        }
    }

    #[test]
    fn duplicate_keys_are_refused_in_json_and_yaml() {
        for text in [
            "kind: A\nkind: B\n",
            "spec:\n  service: eks\n  service: gke\n",
            r#"{"kind": "A", "kind": "B"}"#,
            r#"{"spec": {"service": "eks", "service": "gke"}}"#,
            "{kind: A, kind: B}",
            "- a: 1\n  a: 2\n",
        ] {
            match parse(text) {
                Err(e @ Error::DuplicateKey { .. }) => {
                    let msg = e.to_string();
                    assert!(msg.starts_with("in.yaml: "), "{msg}");
                    assert!(msg.contains("duplicate key \""), "{msg}");
                    assert!(
                        msg.ends_with("; a key may appear only once in a mapping"),
                        "{msg}"
                    );
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn broken_json_reports_the_json_error_and_broken_flow_yaml_the_yaml_error() {
        let e = parse(r#"{"kind": "A",, }"#).unwrap_err().to_string();
        assert!(
            e.ends_with("key must be a string at line 1 column 14"),
            "{e}"
        );
        let e = parse("{kind: A, spec: {service: eks}")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("key must be a string"), "{e}");
    }

    #[test]
    fn values_match_serde_json_value() {
        let text =
            "a: 1\nb: -2\nc: 1.5\nd: ~\ne: [true, 'x']\nf: 18446744073709551615\ng: '.inf'\n";
        let plain: Value = serde_yaml_ng::from_str(text).unwrap();
        assert_eq!(parse(text).unwrap(), plain);
    }

    #[test]
    fn nan_and_infinities_are_refused_not_made_null() {
        // serde_json::Value would hold them as null: a Helm value deleted.
        for v in [".nan", ".inf", "-.inf"] {
            let e = parse(&format!("kind: x\ng: {v}\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("is not a number aicr can keep"), "{e}");
        }
    }

    #[test]
    fn deep_flow_nesting_is_refused_before_the_yaml_parser_sees_it() {
        let deep = format!("a: {}", "[".repeat(MAX_FLOW_DEPTH + 1));
        let start = std::time::Instant::now();
        let e = parse(&deep).unwrap_err().to_string();
        assert_eq!(
            e,
            "in.yaml is not valid YAML or JSON: flow collections ([ or {) nested more than 1000 deep"
        );
        let e = parse(&format!("{{a: {}", "[".repeat(1 << 20))).unwrap_err();
        assert!(matches!(e, Error::Syntax { .. }), "{e}");
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
        // Balanced brackets in strings do not add up.
        let text = "a: '[x]'\n".repeat(5000);
        assert!(!flow_depth_exceeds(&text, MAX_FLOW_DEPTH));
    }

    #[test]
    fn a_directory_and_a_device_are_not_input() {
        let e = read_capped(Path::new("/"), 10, "document").unwrap_err();
        assert!(
            matches!(
                e,
                Error::NotAFile {
                    kind: "directory",
                    ..
                }
            ),
            "{e}"
        );
        let e = read_capped(Path::new("/dev/zero"), 10, "document").unwrap_err();
        assert!(
            matches!(
                e,
                Error::NotAFile {
                    kind: "character device",
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn reads_stop_one_byte_past_the_cap() {
        let e = read_limited(std::io::repeat(b'a'), "pipe", 10, "document").unwrap_err();
        assert_eq!(
            e.to_string(),
            "pipe is larger than 10 bytes, the limit for a document"
        );
        let ok = read_limited(&b"0123456789"[..], "pipe", 10, "document").unwrap();
        assert_eq!(ok.len(), 10);
    }
}
