//! Where a command's document goes (`-o/--output`): standard output, or a
//! file. A regular file (or a new one) is replaced atomically: written to an
//! unpredictable temporary name created exclusively beside it, synced, then
//! renamed over it, keeping the old file's permissions, so it is complete or
//! untouched. A symlink, a device or a FIFO is written through, as
//! `cat > PATH` would, never replaced by a file.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::Error;

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
                if p.as_os_str().is_empty() {
                    return Err(Error::EmptyPath("output"));
                }
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

    /// Writes the whole output.
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
            Output::File(p) => write_file(p, bytes),
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

/// Writes `bytes` to `path`: a regular file or a new one atomically, a
/// symlink, device or FIFO through (see the module).
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    if path.as_os_str().is_empty() {
        return Err(Error::EmptyPath("output"));
    }
    let shown = path.display().to_string();
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_file() => replace(path, bytes, Some(&m)),
        Ok(m) if m.is_dir() => Err(Error::OutputPath {
            path: shown,
            reason: "is a directory; give a file path".into(),
        }),
        Ok(_) => write_through(path, bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => replace(path, bytes, None),
        Err(io) => Err(Error::Write { path: shown, io }),
    }
}

/// The atomic replacement: `old` is the metadata of the regular file being
/// replaced, if any, whose permissions (and, where allowed, owner) the new
/// file keeps. A new file gets 0666 less the umask, as `cat > PATH` gives.
fn replace(path: &Path, bytes: &[u8], old: Option<&std::fs::Metadata>) -> Result<(), Error> {
    let err = |io| Error::Write {
        path: path.display().to_string(),
        io,
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".aicr-tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    // Created with O_EXCL under a random name: no planted file or link is
    // ever opened.
    let mut tmp = builder
        .tempfile_in(parent_dir(path))
        .map_err(|e| err(without_temporary_path(e)))?;
    let keep = |f: &File| -> std::io::Result<()> {
        #[cfg(unix)]
        if let Some(old) = old {
            use std::os::unix::fs::{MetadataExt, PermissionsExt};
            // Best effort: only root may give a file to another owner.
            let _ = std::os::unix::fs::fchown(f, Some(old.uid()), Some(old.gid()));
            f.set_permissions(std::fs::Permissions::from_mode(old.mode() & 0o777))?;
        }
        #[cfg(not(unix))]
        let _ = (f, old);
        Ok(())
    };
    tmp.write_all(bytes)
        .and_then(|()| keep(tmp.as_file()))
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(err)?;
    // On failure the temporary file is removed when `PersistError` drops.
    tmp.persist(path).map(drop).map_err(|e| err(e.error))
}

/// tempfile's error without the random temporary path it appends
/// (`… at path "/dir/.out.yaml.Ab12Cd.aicr-tmp"`): messages name the path
/// the user gave, the same on every run. The kind, which decides the exit
/// code, is kept.
fn without_temporary_path(e: std::io::Error) -> std::io::Error {
    if e.raw_os_error().is_some() {
        return e;
    }
    let text = e.to_string();
    match text.rfind(" at path \"") {
        Some(cut) => std::io::Error::new(e.kind(), &text[..cut]),
        None => e,
    }
}

/// Writes through a symlink, a device or a FIFO as `cat > PATH` does: open
/// for writing, truncate, write; no rename. A FIFO is opened without
/// blocking, so one with no reader is an error rather than a hang.
fn write_through(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let shown = path.display().to_string();
    let err = |io| Error::Write {
        path: shown.clone(),
        io,
    };
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NONBLOCK);
    }
    let mut file = match opts.open(path) {
        Ok(f) => f,
        Err(io) => return Err(special_open_error(path, io)),
    };
    #[cfg(unix)]
    blocking(&file).map_err(err)?;
    file.write_all(bytes)
        .and_then(|()| file.flush())
        .map_err(err)
}

/// Clears `O_NONBLOCK` on an open file, so writes wait for a slow reader.
#[cfg(unix)]
pub(super) fn blocking(file: &File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor this function borrows open; F_GETFL and
    // F_SETFL take and return plain integers.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// `ENXIO` on open means a FIFO without a reader, or a socket.
fn special_open_error(path: &Path, io: std::io::Error) -> Error {
    let shown = path.display().to_string();
    #[cfg(unix)]
    if io.raw_os_error() == Some(libc::ENXIO) {
        use std::os::unix::fs::FileTypeExt;
        let t = std::fs::metadata(path).map(|m| m.file_type());
        let reason = match t {
            Ok(t) if t.is_fifo() => {
                "is a FIFO with no reader; start the reader first, or give a file path"
            }
            Ok(t) if t.is_socket() => "is a socket; give a file path or - for standard output",
            _ => "is a device that cannot be opened for writing; give a file path",
        };
        return Error::OutputPath {
            path: shown,
            reason: reason.into(),
        };
    }
    Error::Write { path: shown, io }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    fn mode(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_new_file_is_written_and_no_temporary_file_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.yaml");
        write_file(&p, b"a: 1\n").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"a: 1\n");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["out.yaml"]);
    }

    #[cfg(unix)]
    #[test]
    fn replacing_a_file_keeps_its_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.yaml");
        std::fs::write(&p, "old").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_file(&p, b"new").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
        assert_eq!(mode(&p), 0o640);
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_is_written_through_and_stays_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target.yaml");
        std::fs::write(&target, "old old old").unwrap();
        let link = dir.path().join("link.yaml");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        write_file(&link, b"new").unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_without_a_reader_is_refused_not_waited_on() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = write_file(&fifo, b"x").unwrap_err();
        assert!(
            e.to_string()
                .ends_with("is a FIFO with no reader; start the reader first, or give a file path"),
            "{e}"
        );
        assert_eq!(
            crate::error::Classify::class(&e),
            crate::error::Class::InvalidInput
        );
    }

    #[test]
    fn an_empty_path_is_refused() {
        let e = write_file(Path::new(""), b"x").unwrap_err();
        assert!(matches!(e, Error::EmptyPath("output")), "{e}");
        assert!(matches!(
            Output::File(PathBuf::new()).check(),
            Err(Error::EmptyPath("output"))
        ));
    }
}
