//! `checksums.txt`: the SHA-256 of every file of a bundle but itself
//! (`recipe.yaml` included), as `sha256sum -c` reads it; and the check of a
//! bundle directory against it, reporting missing, changed and extra files.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::output::{read_capped, Files, CARRIED, CHECKSUMS_CAP, FILE_CAP, MARKER, OWNER};
use crate::error::{Class, Classify};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}: no such bundle directory")]
    NotFound(String),
    #[error("{path}: not a bundle: {reason}")]
    NotBundle { path: String, reason: String },
    #[error("{path} line {line}: {reason}; expected '<sha256>  <relative path>'")]
    Malformed {
        path: String,
        line: usize,
        reason: String,
    },
    #[error("cannot read {path}: {io}")]
    Read { path: String, io: std::io::Error },
}

impl Classify for Error {
    fn class(&self) -> Class {
        match self {
            Error::NotFound(_) => Class::NotFound,
            Error::Read { io, .. } => Class::of_io(io.kind()),
            _ => Class::InvalidInput,
        }
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut s = String::with_capacity(64);
    for b in digest {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// The text of `checksums.txt` for `files` (which must not hold it yet).
pub fn render(files: &Files) -> String {
    let mut s = String::new();
    for (path, f) in &files.0 {
        s.push_str(&sha256_hex(&f.bytes));
        s.push_str("  ");
        s.push_str(path);
        s.push('\n');
    }
    s
}

/// What `verify` found.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub verified: bool,
    /// Files listed and matching.
    pub files: usize,
    pub missing: Vec<String>,
    pub changed: Vec<String>,
    pub extra: Vec<String>,
}

/// Parses the text of a `checksums.txt` (`shown` names it in errors): each
/// line a SHA-256 and a plain relative path inside the bundle, no path
/// twice. Returns path -> lower-case digest.
pub fn parse(text: &str, shown: &str) -> Result<BTreeMap<String, String>, Error> {
    let mut listed: BTreeMap<String, String> = BTreeMap::new();
    let mut line_of: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let bad = |reason: &str| Error::Malformed {
            path: shown.to_string(),
            line: i + 1,
            reason: reason.to_string(),
        };
        if line.is_empty() {
            continue;
        }
        let Some((sum, path)) = line.split_once("  ") else {
            return Err(bad("no two-space separator"));
        };
        if sum.len() != 64 || !sum.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("the checksum is not 64 hex digits"));
        }
        if path.is_empty()
            || path.starts_with('/')
            || path.contains('\\')
            || path.chars().any(char::is_control)
            || path
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return Err(bad(
                "the path is not a plain relative path inside the bundle",
            ));
        }
        if path == MARKER || path == OWNER || path == CARRIED {
            return Err(bad("the path names a file the bundle keeps for itself"));
        }
        if listed
            .insert(path.to_string(), sum.to_ascii_lowercase())
            .is_some()
        {
            return Err(bad("the path is listed twice"));
        }
        line_of.insert(path, i + 1);
    }
    // A path cannot be a file and a directory of another listed path.
    for path in listed.keys() {
        let mut end = 0;
        while let Some(i) = path[end..].find('/') {
            end += i;
            if listed.contains_key(&path[..end]) {
                let (a, b) = (line_of[&path[..end]], line_of[path.as_str()]);
                return Err(Error::Malformed {
                    path: shown.to_string(),
                    line: a.max(b),
                    reason: format!("{} is listed as a file and as a directory", &path[..end]),
                });
            }
            end += 1;
        }
    }
    Ok(listed)
}

/// Checks a bundle directory against its `checksums.txt`; a top-level
/// `.git` (a bundle kept in a git checkout) is not an extra file. Files are read
/// without following links and up to a size cap, so a listed path that was
/// replaced by a link, a FIFO or a device counts as changed.
pub fn verify(dir: &Path) -> Result<Report, Error> {
    let shown = dir.display().to_string();
    let root = match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => std::fs::File::open(dir).map_err(|io| Error::Read {
            path: shown.clone(),
            io,
        })?,
        Ok(_) => {
            return Err(Error::NotBundle {
                path: shown,
                reason: "it is a file, not a bundle directory".into(),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Error::NotFound(shown)),
        Err(io) => return Err(Error::Read { path: shown, io }),
    };
    let root = std::os::fd::AsFd::as_fd(&root);
    let list_path = format!("{}/{MARKER}", shown.trim_end_matches('/'));
    let text = match std::fs::symlink_metadata(dir.join(MARKER)) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NotBundle {
                path: shown,
                reason: format!("it has no {MARKER}"),
            })
        }
        _ => read_capped(root, MARKER, CHECKSUMS_CAP).map_err(|reason| Error::NotBundle {
            path: list_path.clone(),
            reason,
        })?,
    };
    let text = String::from_utf8(text).map_err(|_| Error::NotBundle {
        path: list_path.clone(),
        reason: "it is not UTF-8 text".into(),
    })?;
    let listed = parse(&text, &list_path)?;
    let mut report = Report::default();
    for (path, sum) in &listed {
        match read_capped(root, path, FILE_CAP) {
            Ok(bytes) if &sha256_hex(&bytes) == sum => report.files += 1,
            Ok(_) => report.changed.push(path.clone()),
            Err(_) if std::fs::symlink_metadata(dir.join(path)).is_err() => {
                report.missing.push(path.clone())
            }
            Err(_) => {
                if let Some(io) = unreadable(&dir.join(path)) {
                    // A file aicr may not read is not a finding about the
                    // bundle: it is refused with its class (exit 4).
                    return Err(Error::Read {
                        path: format!("{}/{path}", shown.trim_end_matches('/')),
                        io,
                    });
                }
                report.changed.push(path.clone())
            }
        }
    }
    let present = walk(dir).map_err(|io| Error::Read {
        path: shown.clone(),
        io,
    })?;
    report.extra = present
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| p != MARKER && p != OWNER && !p.starts_with(".git/") && !listed.contains_key(p))
        .collect();
    report.verified =
        report.missing.is_empty() && report.changed.is_empty() && report.extra.is_empty();
    Ok(report)
}

/// The error that keeps a regular file at `path` from being opened for
/// reading, when it is a permission error; links are not followed and
/// nothing blocks (a FIFO is not a regular file, and is never opened).
fn unreadable(path: &Path) -> Option<std::io::Error> {
    use std::os::unix::fs::OpenOptionsExt;
    if !std::fs::symlink_metadata(path).ok()?.is_file() {
        return None;
    }
    match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Some(e),
        _ => None,
    }
}

/// Every entry under `root` that is not a directory, as a relative path
/// with whether it is a regular file, sorted.
pub fn walk(root: &Path) -> std::io::Result<Vec<(String, bool)>> {
    fn inner(
        root: &Path,
        prefix: &str,
        out: &mut Vec<(String, bool)>,
        depth: usize,
    ) -> std::io::Result<()> {
        if depth > 32 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{prefix}: directories nested more than 32 deep"),
            ));
        }
        let mut entries: Vec<_> =
            std::fs::read_dir(root.join(prefix))?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name().to_string_lossy().into_owned();
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let ft = e.file_type()?;
            if ft.is_dir() {
                inner(root, &rel, out, depth + 1)?;
            } else {
                out.push((rel, ft.is_file()));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    inner(root, "", &mut out, 0)?;
    Ok(out)
}
