//! The bundle directory: files are collected in memory, written into a
//! temporary sibling directory, and moved into place in one rename. A failed
//! run leaves nothing behind, and a re-run replaces the whole directory, so no
//! stale file survives. A directory that is not a bundle is never replaced.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Class, Classify};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("output {path}: {reason}")]
    Path { path: String, reason: String },
    #[error("cannot write {path}: {io}")]
    Write { path: String, io: std::io::Error },
}

impl Classify for Error {
    fn class(&self) -> Class {
        match self {
            Error::Path { .. } => Class::InvalidInput,
            Error::Write { io, .. } => Class::of_io(io.kind()),
        }
    }
}

/// One file of a bundle.
#[derive(Clone, Debug)]
pub struct File {
    pub bytes: Vec<u8>,
    pub executable: bool,
}

/// The files of a bundle, by relative path (`/`-separated), in path order.
#[derive(Clone, Debug, Default)]
pub struct Files(pub BTreeMap<String, File>);

impl Files {
    pub fn add(&mut self, path: impl Into<String>, text: impl Into<String>) {
        self.0.insert(
            path.into(),
            File {
                bytes: text.into().into_bytes(),
                executable: false,
            },
        );
    }

    pub fn add_script(&mut self, path: impl Into<String>, text: impl Into<String>) {
        self.0.insert(
            path.into(),
            File {
                bytes: text.into().into_bytes(),
                executable: true,
            },
        );
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

/// The marker of a directory aicr may replace: a bundle has a checksums file.
pub const MARKER: &str = "checksums.txt";

/// Checks, before any work, that `dir` can receive a bundle: absent, an
/// empty directory, or an earlier bundle; and that its parent exists.
pub fn check_destination(dir: &Path) -> Result<(), Error> {
    let shown = dir.display().to_string();
    let err = |reason: String| Error::Path {
        path: shown.clone(),
        reason,
    };
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_symlink() => {
            Err(err("is a symbolic link; give the real directory".into()))
        }
        Ok(m) if !m.is_dir() => Err(err("exists and is not a directory".into())),
        Ok(_) => {
            let mut entries = std::fs::read_dir(dir).map_err(|e| err(e.to_string()))?;
            if entries.next().is_none() || dir.join(MARKER).is_file() {
                Ok(())
            } else {
                Err(err(format!(
                    "is a directory that is not an aicr bundle (no {MARKER}); give a new or empty directory"
                )))
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let parent = parent_dir(dir);
            if parent.is_dir() {
                Ok(())
            } else {
                Err(err(format!(
                    "parent directory {} does not exist",
                    parent.display()
                )))
            }
        }
        Err(e) => Err(err(e.to_string())),
    }
}

fn parent_dir(p: &Path) -> &Path {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

fn sibling(dir: &Path, tag: &str) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "bundle".into());
    parent_dir(dir).join(format!(".{name}.aicr-{tag}-{}", std::process::id()))
}

/// Writes `files` as the directory `dir`, replacing an earlier bundle there.
pub fn write(dir: &Path, files: &Files) -> Result<(), Error> {
    check_destination(dir)?;
    let tmp = sibling(dir, "tmp");
    let old = sibling(dir, "old");
    let result = write_tree(&tmp, files).and_then(|()| swap(&tmp, dir, &old));
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

fn write_tree(root: &Path, files: &Files) -> Result<(), Error> {
    let werr = |p: &Path| {
        let p = p.display().to_string();
        move |io| Error::Write { path: p, io }
    };
    if root.exists() {
        std::fs::remove_dir_all(root).map_err(werr(root))?;
    }
    std::fs::create_dir(root).map_err(werr(root))?;
    for (rel, f) in &files.0 {
        let path = root.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(werr(parent))?;
        }
        let mut out = std::fs::File::create(&path).map_err(werr(&path))?;
        out.write_all(&f.bytes).map_err(werr(&path))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = if f.executable { 0o755 } else { 0o644 };
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
                .map_err(werr(&path))?;
        }
        out.sync_all().map_err(werr(&path))?;
    }
    Ok(())
}

/// Moves `tmp` to `dir`. An existing `dir` is moved aside first and removed
/// after, so `dir` is always either the old bundle or the new one.
fn swap(tmp: &Path, dir: &Path, old: &Path) -> Result<(), Error> {
    let werr = |p: &Path| {
        let p = p.display().to_string();
        move |io| Error::Write { path: p, io }
    };
    if dir.exists() {
        std::fs::rename(dir, old).map_err(werr(dir))?;
        if let Err(e) = std::fs::rename(tmp, dir) {
            let _ = std::fs::rename(old, dir);
            return Err(werr(dir)(e));
        }
        std::fs::remove_dir_all(old).map_err(werr(old))?;
    } else {
        std::fs::rename(tmp, dir).map_err(werr(dir))?;
    }
    Ok(())
}
