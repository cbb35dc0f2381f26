//! Reading the node's files under `--root` without leaving it: paths are
//! resolved like a chroot (a symbolic link's absolute target is taken
//! relative to the root, and `..` cannot climb above it), only regular files
//! are opened (a FIFO, device or socket is refused before it is opened, and
//! the open itself is non-blocking and does not follow a link swapped in
//! meanwhile), and every read is capped in size. Collectors read the node
//! only through here, so a hostile root cannot hang a snapshot, make it
//! report the live host, or exhaust memory.
//!
//! Resolution happens in user space, one component at a time, so it works
//! on every kernel. The open that follows is done by the kernel beneath the
//! root with no link followed at all (`openat2` with `RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS`, Linux 5.6+), so a directory swapped for a link
//! between the two fails instead of leading out; where `openat2` is not
//! available the last component is still opened with `O_NOFOLLOW`.

use std::ffi::OsString;
use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

/// Symbolic links followed in one resolution before it is taken for a loop
/// (Linux's own limit).
const MAX_LINKS: usize = 40;

/// Why a file under the root was not read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReadError {
    #[error("No such file or directory")]
    NotFound,
    #[error("Permission denied")]
    PermissionDenied,
    #[error("not a regular file ({0})")]
    NotRegular(&'static str),
    #[error("larger than {0} bytes")]
    TooLarge(u64),
    #[error("too many levels of symbolic links")]
    Loop,
    #[error("it leads out of the root")]
    OutsideRoot,
    #[error("{0}")]
    Io(String),
}

impl From<std::io::Error> for ReadError {
    fn from(e: std::io::Error) -> ReadError {
        match e.kind() {
            std::io::ErrorKind::NotFound => ReadError::NotFound,
            std::io::ErrorKind::PermissionDenied => ReadError::PermissionDenied,
            _ if e.raw_os_error() == Some(libc::ELOOP) => ReadError::Loop,
            _ => {
                // Without the "(os error N)" suffix.
                let s = e.to_string();
                let s = match s.find(" (os error") {
                    Some(i) => s[..i].to_string(),
                    None => s,
                };
                ReadError::Io(s)
            }
        }
    }
}

/// What a file that is not a regular file is, in words.
fn kind_of(m: &Metadata) -> &'static str {
    let t = m.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_symlink() {
        "a symbolic link"
    } else {
        "not a file"
    }
}

/// The path on this machine of `abs` on the node under `root`, every
/// symbolic link on the way resolved inside the root. Fails when a
/// component is missing or the links loop.
pub fn resolve(root: &Path, abs: &str) -> Result<PathBuf, ReadError> {
    // Components still to walk, last first.
    let mut pending: Vec<OsString> = Vec::new();
    push_components(&mut pending, Path::new(abs));
    let mut done: Vec<OsString> = Vec::new();
    let mut links = 0;
    while let Some(c) = pending.pop() {
        if c == ".." {
            done.pop();
            continue;
        }
        let mut here = root.to_path_buf();
        here.extend(&done);
        here.push(&c);
        let meta = std::fs::symlink_metadata(&here)?;
        if meta.file_type().is_symlink() {
            links += 1;
            if links > MAX_LINKS {
                return Err(ReadError::Loop);
            }
            let target = std::fs::read_link(&here)?;
            if target.has_root() {
                done.clear();
            }
            push_components(&mut pending, &target);
        } else {
            done.push(c);
        }
    }
    let mut out = root.to_path_buf();
    out.extend(&done);
    Ok(out)
}

/// Pushes the components of `p` onto `pending` so the first pops first;
/// `.` and the root are dropped, `..` is kept for the walk to apply.
fn push_components(pending: &mut Vec<OsString>, p: &Path) {
    let parts: Vec<OsString> = p
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect();
    pending.extend(parts.into_iter().rev());
}

/// Reads `abs` under `root` as text (invalid UTF-8 replaced), at most `cap`
/// bytes.
pub fn read(root: &Path, abs: &str, cap: u64) -> Result<String, ReadError> {
    let path = resolve(root, abs)?;
    let mut buf = Vec::new();
    read_regular(root, &path, cap, &mut buf, false)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Reads the regular file at `path` (already resolved under `root`: no
/// link on the way is followed) into `buf`, at most `cap` bytes. With `one_read`, a
/// read that does not fill the buffer ends the file (procfs answers a small
/// entry in one read), which saves a system call per sysctl entry.
pub fn read_regular(
    root: &Path,
    path: &Path,
    cap: u64,
    buf: &mut Vec<u8>,
    one_read: bool,
) -> Result<(), ReadError> {
    let before = std::fs::symlink_metadata(path)?;
    if !before.is_file() {
        return Err(ReadError::NotRegular(kind_of(&before)));
    }
    let file = open_beneath(root, path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular(kind_of(&meta)));
    }
    read_capped(file, cap, buf, one_read)
}

/// Opens a regular file, following links (for files named on the command
/// line, such as a kubeconfig), and reads it whole, at most `cap` bytes.
/// A FIFO or device is refused without blocking.
pub fn read_file(path: &Path, cap: u64) -> Result<Vec<u8>, ReadError> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular(kind_of(&meta)));
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular(kind_of(&meta)));
    }
    let mut buf = Vec::new();
    read_capped(file, cap, &mut buf, false)?;
    Ok(buf)
}

/// Opens `path`, a resolved path under `root`, non-blocking: beneath the
/// root and following no link where the kernel can (see the module doc),
/// else with `O_NOFOLLOW` on the last component.
fn open_beneath(root: &Path, path: &Path) -> Result<File, ReadError> {
    #[cfg(target_os = "linux")]
    if let Ok(rel) = path.strip_prefix(root) {
        if let Some(opened) = openat2_beneath(root, rel) {
            return opened;
        }
    }
    open_nonblocking(path)
}

/// `openat2(root, rel, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
/// RESOLVE_NO_MAGICLINKS)`; `None` when the kernel (or a seccomp filter)
/// does not offer it.
#[cfg(target_os = "linux")]
fn openat2_beneath(root: &Path, rel: &Path) -> Option<Result<File, ReadError>> {
    use std::os::fd::{AsRawFd, FromRawFd};
    use std::os::unix::ffi::OsStrExt;
    let dir = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(root)
    {
        Ok(d) => d,
        Err(e) => return Some(Err(e.into())),
    };
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let name = std::ffi::CString::new(rel.as_os_str().as_bytes()).ok()?;
    // SAFETY: open_how is plain integers, for which all zeroes is valid.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY) as u64;
    how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: `dir` is an open directory, `name` a NUL-terminated path and
    // `how` a valid open_how of the size passed, all alive for the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            name.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENOSYS | libc::EPERM | libc::E2BIG | libc::EINVAL) => None,
            Some(libc::EXDEV) => Some(Err(ReadError::OutsideRoot)),
            _ => Some(Err(e.into())),
        };
    }
    let fd = i32::try_from(fd).ok()?;
    // SAFETY: openat2 returned a new file descriptor that nothing else owns.
    Some(Ok(unsafe { File::from_raw_fd(fd) }))
}

fn open_nonblocking(path: &Path) -> Result<File, ReadError> {
    Ok(std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)?)
}

fn read_capped(file: File, cap: u64, buf: &mut Vec<u8>, one_read: bool) -> Result<(), ReadError> {
    buf.clear();
    let limit = usize::try_from(cap).unwrap_or(usize::MAX);
    let mut take = file.take(cap.saturating_add(1));
    if one_read {
        let want = buf.capacity().max(4096).min(limit.saturating_add(1));
        buf.resize(want, 0);
        let n = loop {
            match take.read(buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        };
        buf.truncate(n);
        if n < want {
            return Ok(());
        }
    }
    take.read_to_end(buf)?;
    if buf.len() > limit {
        buf.clear();
        return Err(ReadError::TooLarge(cap));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tree() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("etc")).unwrap();
        std::fs::create_dir_all(r.join("usr/lib")).unwrap();
        std::fs::write(r.join("usr/lib/os-release"), "ID=inside\n").unwrap();
        root
    }

    #[test]
    fn absolute_and_relative_links_stay_inside() {
        let root = tree();
        let r = root.path();
        symlink("/usr/lib/os-release", r.join("etc/os-release")).unwrap();
        symlink("../../../../../../usr/lib/os-release", r.join("etc/climb")).unwrap();
        symlink("/", r.join("etc/top")).unwrap();
        assert_eq!(read(r, "/etc/os-release", 1024).unwrap(), "ID=inside\n");
        assert_eq!(read(r, "/etc/climb", 1024).unwrap(), "ID=inside\n");
        assert_eq!(
            read(r, "/etc/top/usr/lib/os-release", 1024).unwrap(),
            "ID=inside\n"
        );
        assert_eq!(
            read(r, "/../../etc/../usr/lib/os-release", 1024).unwrap(),
            "ID=inside\n"
        );
        assert_eq!(resolve(r, "/etc/top").unwrap(), r.to_path_buf());
    }

    /// The kernel-side open follows no link and stays beneath the root:
    /// a link where a resolved path had a directory is refused.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_open_follows_no_link() {
        let root = tree();
        let r = root.path();
        symlink("/usr/lib", r.join("etc/lib")).unwrap();
        match openat2_beneath(r, Path::new("etc/lib/os-release")) {
            None => eprintln!("openat2 is not available here; O_NOFOLLOW is used"),
            Some(res) => {
                assert_eq!(res.err(), Some(ReadError::Loop));
                let mut s = String::new();
                openat2_beneath(r, Path::new("usr/lib/os-release"))
                    .unwrap()
                    .unwrap()
                    .read_to_string(&mut s)
                    .unwrap();
                assert_eq!(s, "ID=inside\n");
                assert_eq!(
                    openat2_beneath(r, Path::new("../etc")).unwrap().err(),
                    Some(ReadError::OutsideRoot)
                );
            }
        }
        // Both ways, a swapped-in link on the last component is refused.
        assert_eq!(
            read_regular(r, &r.join("etc/lib"), 10, &mut Vec::new(), false),
            Err(ReadError::NotRegular("a symbolic link"))
        );
        assert!(open_nonblocking(&r.join("etc/lib")).is_err());
    }

    #[test]
    fn loops_fifos_devices_and_size() {
        let root = tree();
        let r = root.path();
        symlink("/etc/b", r.join("etc/a")).unwrap();
        symlink("/etc/a", r.join("etc/b")).unwrap();
        assert_eq!(read(r, "/etc/a", 10), Err(ReadError::Loop));
        let fifo = r.join("etc/fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        assert_eq!(
            read(r, "/etc/fifo", 10),
            Err(ReadError::NotRegular("a FIFO"))
        );
        symlink("/dev/null", r.join("etc/null")).unwrap();
        // Resolved inside the root, where there is no /dev/null.
        assert_eq!(read(r, "/etc/null", 10), Err(ReadError::NotFound));
        assert_eq!(
            read_file(Path::new("/dev/null"), 10),
            Err(ReadError::NotRegular("a character device"))
        );
        assert_eq!(
            read(r, "/etc", 10),
            Err(ReadError::NotRegular("a directory"))
        );
        std::fs::write(r.join("etc/big"), vec![b'x'; 100]).unwrap();
        assert_eq!(read(r, "/etc/big", 99), Err(ReadError::TooLarge(99)));
        assert_eq!(read(r, "/etc/big", 100).unwrap().len(), 100);
        std::fs::write(r.join("etc/bin"), [0xff, b'a']).unwrap();
        assert_eq!(read(r, "/etc/bin", 10).unwrap(), "\u{fffd}a");
    }
}
