//! The bundle directory: files are collected in memory, written into a
//! temporary sibling directory, and moved into place in one rename. A failed
//! run leaves nothing behind, and a re-run replaces the whole directory, so no
//! stale file survives. A directory that is not a bundle is never replaced.
//!
//! Files are not fsynced one by one: a bundle is regenerated from its recipe
//! in milliseconds, and 30-odd fsyncs would cost more than the rest of the
//! run. The rename still makes the directory appear whole or not at all to
//! every reader; after a power loss, `aicr verify` tells a damaged bundle.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Class, Classify};
use crate::serializer::parent_dir;

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
    // The bundle directory is replaced as a whole: never the directory we
    // run in, or one above it.
    if let (Some(abs), Ok(cwd)) = (normalize(dir), std::env::current_dir()) {
        if cwd.starts_with(&abs) {
            return Err(err(
                "is the current directory or one above it; give a directory for the bundle, such as ./bundle"
                    .into(),
            ));
        }
    }
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

/// `dir` made absolute, with `.` and `..` resolved lexically.
fn normalize(dir: &Path) -> Option<PathBuf> {
    use std::path::Component;
    let abs = std::path::absolute(dir).ok()?;
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    Some(out)
}

fn sibling(dir: &Path, tag: &str) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "bundle".into());
    parent_dir(dir).join(format!(".{name}.aicr-{tag}-{}", std::process::id()))
}

/// What `write` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    /// The directory was created or replaced.
    Written,
    /// The directory already held exactly these files: left untouched.
    Unchanged,
}

/// Writes `files` as the directory `dir`, replacing an earlier bundle there.
/// A bundle that already holds exactly these files, and nothing else, is
/// left as it is (same bytes, and its timestamps stay).
pub fn write(dir: &Path, files: &Files) -> Result<Written, Error> {
    check_destination(dir)?;
    let normal = normalize(dir);
    let dir = normal.as_deref().unwrap_or(dir);
    let previous = compare_previous(dir, files);
    if let Some(p) = &previous {
        if !p.other && p.same.len() == files.0.len() {
            return Ok(Written::Unchanged);
        }
    }
    let tmp = sibling(dir, "tmp");
    let old = sibling(dir, "old");
    let linkable = previous.map(|p| (dir, p.same));
    let result = write_tree(&tmp, files, linkable.as_ref().map(|(d, s)| (*d, s)))
        .and_then(|()| swap(&tmp, dir, &old));
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result.map(|()| Written::Written)
}

/// How an earlier bundle in the destination compares with the new files.
#[derive(Default)]
struct Previous {
    /// Paths whose file there has the same bytes and executable bit.
    same: BTreeSet<String>,
    /// Something there that the new bundle does not have, or not as a file.
    other: bool,
}

/// Reads the earlier bundle at `dir` once, comparing each file with the new
/// one at its path. `None` when `dir` is not a bundle.
fn compare_previous(dir: &Path, files: &Files) -> Option<Previous> {
    if !dir.join(MARKER).is_file() {
        return None;
    }
    let mut prev = Previous::default();
    let Ok(present) = super::checksum::walk(dir) else {
        prev.other = true;
        return Some(prev);
    };
    for (rel, regular) in present {
        match files.0.get(&rel) {
            Some(want) if regular => {
                if same_file(&dir.join(&rel), want) {
                    prev.same.insert(rel);
                }
            }
            _ => prev.other = true,
        }
    }
    Some(prev)
}

fn werr(p: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let p = p.display().to_string();
    move |io| Error::Write { path: p, io }
}

/// Runs `f` on every item in parallel; the first error wins. Creating and
/// removing files is kernel work that serialises per directory, so
/// spreading component directories over threads cuts the wall time.
fn in_parallel<T: Sync>(
    items: &[T],
    f: impl Fn(&T) -> Result<(), Error> + Sync,
) -> Result<(), Error> {
    super::parallel::map(items, f).into_iter().collect()
}

/// Writes the tree at `root`. A file that the earlier bundle at `previous`
/// already holds with the same bytes and mode (its path in the set) is
/// hard-linked from it rather than written again; the earlier bundle is
/// removed once the new one is in place, leaving the new directory the only
/// link.
fn write_tree(
    root: &Path,
    files: &Files,
    previous: Option<(&Path, &BTreeSet<String>)>,
) -> Result<(), Error> {
    if root.exists() {
        remove_tree(root)?;
    }
    std::fs::create_dir(root).map_err(werr(root))?;
    // One group per top-level entry: a component directory, or a root file.
    let mut groups: Vec<Vec<(&String, &File)>> = Vec::new();
    let mut last_top = "";
    for (rel, f) in &files.0 {
        let top = rel.split('/').next().unwrap_or(rel);
        if top != last_top || groups.is_empty() {
            groups.push(Vec::new());
            last_top = top;
        }
        groups.last_mut().expect("pushed above").push((rel, f));
    }
    in_parallel(&groups, |group| {
        let mut made: Option<PathBuf> = None;
        for (rel, f) in group {
            let path = root.join(rel);
            if let Some(parent) = path.parent() {
                if parent != root && made.as_deref() != Some(parent) {
                    std::fs::create_dir_all(parent).map_err(werr(parent))?;
                    made = Some(parent.to_path_buf());
                }
            }
            if let Some((prev, same)) = previous {
                if same.contains(rel.as_str()) && std::fs::hard_link(prev.join(rel), &path).is_ok()
                {
                    continue;
                }
            }
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            // Files 0644 and scripts 0755, less the umask, set as they are
            // created.
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(if f.executable { 0o755 } else { 0o644 });
            }
            let mut out = opts.open(&path).map_err(werr(&path))?;
            out.write_all(&f.bytes).map_err(werr(&path))?;
        }
        Ok(())
    })
}

/// Does the regular file at `path` hold `want`'s bytes and executable bit?
fn same_file(path: &Path, want: &File) -> bool {
    // One open and one fstat: the caller found a regular file here.
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let Ok(meta) = f.metadata() else {
        return false;
    };
    if !meta.is_file() || meta.len() != want.bytes.len() as u64 {
        return false;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if (meta.permissions().mode() & 0o100 != 0) != want.executable {
            return false;
        }
    }
    let mut bytes = Vec::with_capacity(want.bytes.len() + 1);
    std::io::Read::read_to_end(&mut f, &mut bytes).is_ok() && bytes == want.bytes
}

/// Removes a directory tree, its top-level entries in parallel.
fn remove_tree(dir: &Path) -> Result<(), Error> {
    let entries: Vec<(PathBuf, bool)> = std::fs::read_dir(dir)
        .map_err(werr(dir))?
        .map(|e| e.and_then(|e| Ok((e.path(), e.file_type()?.is_dir()))))
        .collect::<Result<_, _>>()
        .map_err(werr(dir))?;
    in_parallel(&entries, |(p, is_dir)| {
        if *is_dir {
            std::fs::remove_dir_all(p).map_err(werr(p))
        } else {
            std::fs::remove_file(p).map_err(werr(p))
        }
    })?;
    std::fs::remove_dir(dir).map_err(werr(dir))
}

/// Moves `tmp` to `dir`. An existing `dir` is moved aside first and removed
/// after, so `dir` is always either the old bundle or the new one.
fn swap(tmp: &Path, dir: &Path, old: &Path) -> Result<(), Error> {
    if dir.exists() {
        std::fs::rename(dir, old).map_err(werr(dir))?;
        if let Err(e) = std::fs::rename(tmp, dir) {
            let _ = std::fs::rename(old, dir);
            return Err(werr(dir)(e));
        }
        remove_tree(old)?;
    } else {
        std::fs::rename(tmp, dir).map_err(werr(dir))?;
    }
    Ok(())
}
