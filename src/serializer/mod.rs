//! Reading and writing documents: YAML, JSON and table output, input parsed by
//! content (never by file extension), `kind`/`apiVersion` checks, and atomic
//! file output. Every command goes through here, so every command writes the
//! same YAML style and the same JSON style.

pub mod http;
mod input;
mod output;
pub mod table;
pub mod yaml;

pub use input::{parse_json, parse_value, read_capped, read_input, MAX_DOCUMENT_BYTES};
pub use output::{parent_dir, write_file, Output};

use std::fmt;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{excerpt, Class, Classify};

/// The API version of every aicr document.
pub const API_VERSION: &str = "aicr.nvidia.com/v1alpha1";

/// Output formats shared by all commands (`-t/--format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Yaml,
    Json,
    Table,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Yaml => "yaml",
            Format::Json => "json",
            Format::Table => "table",
        })
    }
}

/// Errors of reading, parsing and writing documents. Every piece of input
/// a message quotes (a kind, a parser's finding) is cut by
/// [`excerpt`], so a huge value is never echoed back whole.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {io}{}", io_hint(.io))]
    Read { path: String, io: std::io::Error },
    #[error("{path} is a {kind}; expected a regular file, a pipe, or - for standard input")]
    NotAFile { path: String, kind: &'static str },
    #[error("{0} is a FIFO with no writer (or one that wrote nothing); start the writer first, or give a file path")]
    NoWriter(String),
    #[error("{path} is larger than {}, the limit for a {what}", size_text(*.limit))]
    TooLarge {
        path: String,
        limit: u64,
        what: &'static str,
    },
    #[error("{path} is empty; expected a {expected} document")]
    Empty {
        path: String,
        expected: &'static str,
    },
    #[error("{path} is not valid YAML or JSON: {}", excerpt(.detail))]
    Syntax { path: String, detail: String },
    #[error("{path}: {}; a key may appear only once in a mapping", excerpt(.detail))]
    DuplicateKey { path: String, detail: String },
    #[error("{path} has kind {:?}; expected kind {expected:?}", excerpt(.found))]
    WrongKind {
        path: String,
        found: String,
        expected: &'static str,
    },
    #[error("{path} has apiVersion {:?}; expected {API_VERSION:?}", excerpt(.found))]
    WrongApiVersion { path: String, found: String },
    #[error("{path} is not a valid {expected}: {}", excerpt(.detail))]
    Shape {
        path: String,
        expected: &'static str,
        detail: String,
    },
    #[error("the {0} path is empty; give a file path, or - for standard {0}")]
    EmptyPath(&'static str),
    #[error("output {path}: {reason}")]
    OutputPath { path: String, reason: String },
    #[error("cannot write {path}: {io}{}", io_hint(.io))]
    Write { path: String, io: std::io::Error },
    #[error("cm://{0}: only `aicr snapshot -o` and `aicr recipe -o` write to a ConfigMap; give a file path, or - for standard output")]
    ConfigMapUnsupported(String),
    #[error(transparent)]
    Fetch(#[from] http::FetchError),
}

impl Error {
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Error::Write { io, .. } if io.kind() == std::io::ErrorKind::BrokenPipe)
    }
}

impl Classify for Error {
    fn class(&self) -> Class {
        match self {
            Error::Read { io, .. } => match Class::of_io(io.kind()) {
                Class::Internal => Class::InvalidInput,
                c => c,
            },
            Error::Write { io, .. } => Class::of_io(io.kind()),
            Error::Fetch(e) => e.class(),
            _ => Class::InvalidInput,
        }
    }
}

/// What to do about an I/O error the user can act on, after its own text.
fn io_hint(io: &std::io::Error) -> &'static str {
    use std::io::ErrorKind as K;
    match io.kind() {
        K::ResourceBusy => {
            "; the path is a mount point or busy: give a file path inside it, or another path"
        }
        K::CrossesDevices => {
            "; the path is on another file system than its directory (a mount point?): give another path"
        }
        K::ReadOnlyFilesystem => "; the file system is read-only: give a path on a writable one",
        K::StorageFull | K::QuotaExceeded => {
            "; the file system is full or over quota: free some space, or write elsewhere"
        }
        _ => "",
    }
}

/// A byte count as people read it: whole MiB or KiB when exact.
fn size_text(n: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if n >= MIB && n.is_multiple_of(MIB) {
        format!("{} MiB", n / MIB)
    } else if n >= 1024 && n.is_multiple_of(1024) {
        format!("{} KiB", n / 1024)
    } else {
        format!("{n} bytes")
    }
}

/// Reads an input document from a file, `-` (stdin), or an `https://`
/// URL fetched with `fetch`; the same size cap applies to all three.
pub fn read_source(arg: &str, fetch: &http::FetchOptions) -> Result<Vec<u8>, Error> {
    if http::is_url(arg) {
        return Ok(http::fetch(arg, fetch)?);
    }
    read_input(arg)
}

pub(crate) fn display_path(path: &str) -> String {
    if path == "-" {
        "standard input".into()
    } else {
        path.to_string()
    }
}

/// Checks `kind` and `apiVersion` of a parsed document, then deserialises it.
/// `kind_optional` accepts a document without `kind` (Go aicr snapshots have
/// none); a `kind` that is present must always match.
pub fn typed_document<T: DeserializeOwned>(
    value: Value,
    path: &str,
    kind: &'static str,
    kind_optional: bool,
) -> Result<T, Error> {
    let path = display_path(path);
    let Value::Object(map) = &value else {
        return Err(Error::Shape {
            path,
            expected: kind,
            detail: "expected a mapping at the top level".into(),
        });
    };
    match map.get("kind") {
        Some(Value::String(k)) if k == kind => {}
        None if kind_optional => {}
        None => {
            return Err(Error::WrongKind {
                path,
                found: String::new(),
                expected: kind,
            })
        }
        Some(other) => {
            let found = other
                .as_str()
                .map_or_else(|| other.to_string(), str::to_string);
            return Err(Error::WrongKind {
                path,
                found,
                expected: kind,
            });
        }
    }
    match map.get("apiVersion") {
        Some(Value::String(v)) if v == API_VERSION => {}
        None if kind_optional && !map.contains_key("kind") => {}
        Some(other) => {
            let found = other
                .as_str()
                .map_or_else(|| other.to_string(), str::to_string);
            return Err(Error::WrongApiVersion { path, found });
        }
        None => {
            return Err(Error::WrongApiVersion {
                path,
                found: String::new(),
            })
        }
    }
    serde_json::from_value(value).map_err(|e| Error::Shape {
        path,
        expected: kind,
        detail: e.to_string(),
    })
}

/// Renders a value as YAML or JSON. Table output is built by the caller,
/// which knows what the rows mean; for a plain value it falls back to rows of
/// path and value.
pub fn render(value: &Value, format: Format) -> String {
    match format {
        Format::Yaml => yaml::to_string(value),
        Format::Json => to_json(value),
        Format::Table => table::flatten(value),
    }
}

/// Pretty JSON, 2-space indented, ending in a newline.
pub fn to_json(value: &Value) -> String {
    let mut s = serde_json::to_string_pretty(value).expect("a JSON value always serialises");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Conditions of the destination the user can change are exit 2 with
    /// what to do; a full disk is exit 6. None of them is exit 8.
    #[test]
    fn write_errors_say_what_to_do_and_are_not_internal() {
        use std::io::ErrorKind as K;
        for (kind, class, hint) in [
            (K::ResourceBusy, Class::InvalidInput, "; the path is a mount point or busy: give a file path inside it, or another path"),
            (K::CrossesDevices, Class::InvalidInput, "; the path is on another file system than its directory (a mount point?): give another path"),
            (K::ReadOnlyFilesystem, Class::InvalidInput, "; the file system is read-only: give a path on a writable one"),
            (K::StorageFull, Class::Unavailable, "; the file system is full or over quota: free some space, or write elsewhere"),
        ] {
            let io = std::io::Error::from(kind);
            let shown = io.to_string();
            let e = Error::Write {
                path: "/mnt/x".into(),
                io,
            };
            assert_eq!(e.class(), class, "{kind:?}");
            assert_eq!(e.to_string(), format!("cannot write /mnt/x: {shown}{hint}"));
        }
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(size_text(16 * 1024 * 1024), "16 MiB");
        assert_eq!(size_text(10 * 1024), "10 KiB");
        assert_eq!(size_text(10), "10 bytes");
    }
}
