//! Reading and writing documents: YAML, JSON and table output, input parsed by
//! content (never by file extension), `kind`/`apiVersion` checks, and atomic
//! file output. Every command goes through here, so every command writes the
//! same YAML style and the same JSON style.

pub mod table;
pub mod yaml;

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{Class, Classify};

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

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {io}")]
    Read { path: String, io: std::io::Error },
    #[error("{path} is empty; expected a {expected} document")]
    Empty {
        path: String,
        expected: &'static str,
    },
    #[error("{path} is not valid YAML or JSON: {detail}")]
    Syntax { path: String, detail: String },
    #[error("{path} has kind {found:?}; expected kind {expected:?}")]
    WrongKind {
        path: String,
        found: String,
        expected: &'static str,
    },
    #[error("{path} has apiVersion {found:?}; expected {API_VERSION:?}")]
    WrongApiVersion { path: String, found: String },
    #[error("{path} is not a valid {expected}: {detail}")]
    Shape {
        path: String,
        expected: &'static str,
        detail: String,
    },
    #[error("output {path}: {reason}")]
    OutputPath { path: String, reason: String },
    #[error("cannot write {path}: {io}")]
    Write { path: String, io: std::io::Error },
    #[error("ConfigMap destinations (cm://{0}) need cluster access, which this version of aicr does not have yet; write to a file or stdout")]
    ConfigMapUnsupported(String),
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
            _ => Class::InvalidInput,
        }
    }
}

/// Reads a whole input file; `-` is standard input.
pub fn read_input(path: &str) -> Result<Vec<u8>, Error> {
    let res = if path == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).map(|_| buf)
    } else {
        std::fs::read(path)
    };
    res.map_err(|io| Error::Read {
        path: display_path(path),
        io,
    })
}

fn display_path(path: &str) -> String {
    if path == "-" {
        "standard input".into()
    } else {
        path.to_string()
    }
}

/// Parses a YAML or JSON document by its content. A document whose first
/// significant character is `{` or `[` is JSON; anything else is YAML.
pub fn parse_value(bytes: &[u8], path: &str, expected: &'static str) -> Result<Value, Error> {
    let path = display_path(path);
    let text = std::str::from_utf8(bytes).map_err(|e| Error::Syntax {
        path: path.clone(),
        detail: format!("not UTF-8 text ({e})"),
    })?;
    let significant = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#') && *l != "---");
    let Some(first) = significant else {
        return Err(Error::Empty { path, expected });
    };
    let parsed = if first.starts_with(['{', '[']) {
        serde_json::from_str(text).map_err(|e| e.to_string())
    } else {
        serde_yaml_ng::from_str(text).map_err(|e| e.to_string())
    };
    let value: Value = parsed.map_err(|detail| Error::Syntax {
        path: path.clone(),
        detail,
    })?;
    if value.is_null() {
        return Err(Error::Empty { path, expected });
    }
    Ok(value)
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

/// Where a command's data goes (`-o/--output`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    Stdout,
    File(PathBuf),
    ConfigMap(String),
}

impl Output {
    /// `None` or `-` is stdout; `cm://namespace/name` a ConfigMap; anything
    /// else a file path.
    pub fn parse(arg: Option<&str>) -> Output {
        match arg {
            None | Some("-") => Output::Stdout,
            Some(s) => match s.strip_prefix("cm://") {
                Some(rest) => Output::ConfigMap(rest.to_string()),
                None => Output::File(PathBuf::from(s)),
            },
        }
    }

    /// Checks the destination before any work is done.
    pub fn check(&self) -> Result<(), Error> {
        match self {
            Output::Stdout => Ok(()),
            Output::ConfigMap(s) => Err(Error::ConfigMapUnsupported(s.clone())),
            Output::File(p) => {
                if p.is_dir() {
                    return Err(Error::OutputPath {
                        path: p.display().to_string(),
                        reason: "is a directory; give a file path".into(),
                    });
                }
                let parent = parent_dir(p);
                if !parent.is_dir() {
                    return Err(Error::OutputPath {
                        path: p.display().to_string(),
                        reason: format!("directory {} does not exist", parent.display()),
                    });
                }
                Ok(())
            }
        }
    }

    /// Writes the whole output. A file is written to a temporary sibling
    /// and renamed into place, so it is complete or untouched.
    pub fn write(&self, bytes: &[u8]) -> Result<(), Error> {
        match self {
            Output::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(bytes)
                    .and_then(|()| out.flush())
                    .map_err(|io| Error::Write {
                        path: "standard output".into(),
                        io,
                    })
            }
            Output::ConfigMap(s) => Err(Error::ConfigMapUnsupported(s.clone())),
            Output::File(p) => write_atomic(p, bytes),
        }
    }
}

/// The directory a path is in (`.` for a bare file name).
pub fn parent_dir(p: &Path) -> &Path {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let err = |io| Error::Write {
        path: path.display().to_string(),
        io,
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = parent_dir(path).join(format!(".{name}.aicr-tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(err)
}
