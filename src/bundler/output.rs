//! The bundle directory: what aicr may replace, and replacing it safely.
//!
//! A bundle is written into a new directory with an unpredictable name beside
//! the destination, created exclusively, and every file is created relative
//! to that directory's descriptor (never through a path an attacker with
//! write access to the parent could redirect). It then takes the
//! destination's place in one step (`renameat2(RENAME_EXCHANGE)`, or
//! `RENAME_NOREPLACE` when there is no destination yet): at every instant the
//! destination is the earlier bundle or the new one, never nothing.
//!
//! What aicr owns, and so may delete: in a directory marked as a bundle by
//! its [`OWNER`] file, the files listed in its `checksums.txt`, the
//! directories holding them, the checksums file and the marker. Nothing else
//! is ever deleted. Other top-level entries (`.git`, a user's notes) are
//! carried into the new bundle by rename; an entry the new bundle would write
//! itself, or a stray file inside one of the bundle's own directories, is
//! refused before anything is written. A directory that is not a bundle is
//! used only when it is empty or the root of a git work tree (its entries are
//! then carried the same way).
//!
//! Runs on one destination are serialised by an advisory lock (`flock`) on
//! the parent directory. SIGINT, SIGTERM and SIGHUP are held back while the
//! directory is written and swapped, and acted on once it is consistent
//! again (commands that run helm or reach a registry hold them from their
//! start, and their waits stop early at one: [`pending_signal`]); what a SIGKILL or a power loss leaves (a `.NAME.aicr-*` directory
//! beside the destination) is recovered by the next run: carried entries are
//! moved back, the rest removed.
//!
//! Files are not fsynced one by one: a bundle is regenerated from its recipe
//! in milliseconds, and 30-odd fsyncs would cost more than the rest of the
//! run. After a power loss, `aicr verify` tells a damaged bundle.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::{self as rfs, AtFlags, FileType, FlockOperation, Mode, OFlags, RenameFlags};
use rustix::io::Errno;

use crate::error::{Class, Classify};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("output {path}: {reason}")]
    Path { path: String, reason: String },
    #[error(
        "output {path}: another aicr is writing a bundle beside it (lock on {parent} held for {waited}s); try again when it has finished"
    )]
    InUse {
        path: String,
        parent: String,
        waited: u64,
    },
    #[error("output {path}: interrupted by a signal; nothing was changed")]
    Interrupted { path: String },
    #[error("cannot write {path}: {io}")]
    Write { path: String, io: std::io::Error },
}

impl Classify for Error {
    fn class(&self) -> Class {
        match self {
            Error::Path { .. } => Class::InvalidInput,
            Error::InUse { .. } => Class::Timeout,
            Error::Interrupted { .. } => Class::Internal,
            Error::Write { io, .. } => match io.raw_os_error() {
                Some(code) if code == Errno::BUSY.raw_os_error() => Class::InvalidInput,
                Some(code) if code == Errno::ROFS.raw_os_error() => Class::Unauthorized,
                _ => Class::of_io(io.kind()),
            },
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

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The checksums file of a bundle: every other file of it, by SHA-256.
pub const MARKER: &str = "checksums.txt";
/// The file that marks a directory as written by `aicr bundle`.
pub const OWNER: &str = ".aicr-bundle";
/// While a bundle is being written: the top-level entries carried over from
/// the directory it replaces, one name a line (so a crash can put them back).
pub const CARRIED: &str = ".aicr-carried";
/// The content of [`OWNER`].
const OWNER_TEXT: &str = "This directory was written by `aicr bundle`. A later run replaces the files\nlisted in checksums.txt and keeps everything else.\n";

/// The largest `checksums.txt` read from an earlier bundle.
pub const CHECKSUMS_CAP: u64 = 4 << 20;
/// The largest bundle file read back to compare or verify.
pub const FILE_CAP: u64 = 64 << 20;
/// How long a run waits for another run's lock on the same parent.
const LOCK_WAIT: Duration = Duration::from_secs(30);
/// The deepest directory tree walked when removing a leftover.
const MAX_DEPTH: usize = 32;

/// What `write` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    /// The directory was created or replaced.
    Written,
    /// The directory already held exactly these files: left untouched.
    Unchanged,
}

/// The destination, resolved once: the parent directory as a descriptor
/// and the final name in it. Every later step works relative to these.
struct Target {
    /// The path as the user gave it, for messages.
    shown: String,
    parent: OwnedFd,
    parent_shown: String,
    name: OsString,
}

impl Target {
    fn resolve(dest: &Path) -> Result<Target, Error> {
        let shown = dest.display().to_string();
        let err = |reason: String| Error::Path {
            path: shown.clone(),
            reason,
        };
        if dest.as_os_str().is_empty() {
            return Err(err(
                "is empty; give a directory for the bundle, such as ./bundle".into(),
            ));
        }
        // `a/link/..` means what the kernel makes of it: the parent of the
        // link's target. A path ending in `.` or `..` is resolved whole;
        // any other is split into its parent (resolved by the kernel as
        // it is opened) and a final name that is never followed.
        let ends_odd = dest.as_os_str().as_bytes().ends_with(b"/.")
            || matches!(
                dest.components().next_back(),
                Some(std::path::Component::ParentDir | std::path::Component::CurDir)
                    | Some(std::path::Component::RootDir)
            );
        let (parent_path, name) = if ends_odd {
            let real =
                std::fs::canonicalize(dest).map_err(|e| err(format!("cannot be resolved: {e}")))?;
            match (real.parent(), real.file_name()) {
                (Some(p), Some(n)) => (p.to_path_buf(), n.to_os_string()),
                _ => return Err(err("is the root directory".into())),
            }
        } else {
            let name = dest
                .file_name()
                .ok_or_else(|| err("has no final name".into()))?
                .to_os_string();
            let parent = match dest.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            (parent, name)
        };
        let parent_shown = parent_path.display().to_string();
        let parent = rfs::open(
            &parent_path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            Errno::NOENT => err(format!("parent directory {parent_shown} does not exist")),
            Errno::NOTDIR => err(format!("parent {parent_shown} is not a directory")),
            e => Error::Write {
                path: parent_shown.clone(),
                io: e.into(),
            },
        })?;
        let target = Target {
            shown,
            parent,
            parent_shown,
            name,
        };
        // The bundle directory is replaced as a whole: never the directory
        // we run in, or one above it.
        if let (Some(real), Ok(cwd)) = (target.real_path(), std::env::current_dir()) {
            if cwd.starts_with(&real) {
                return Err(target.refuse(
                    "is the current directory or one above it; give a directory for the bundle, such as ./bundle",
                ));
            }
        }
        Ok(target)
    }

    /// The destination's absolute path as the kernel resolved the parent.
    fn real_path(&self) -> Option<PathBuf> {
        let fd = rustix::fd::AsRawFd::as_raw_fd(&self.parent);
        let parent = std::fs::read_link(format!("/proc/self/fd/{fd}"))
            .or_else(|_| std::fs::canonicalize(&self.parent_shown))
            .ok()?;
        Some(parent.join(&self.name))
    }

    fn refuse(&self, reason: impl Into<String>) -> Error {
        Error::Path {
            path: self.shown.clone(),
            reason: reason.into(),
        }
    }

    fn io(&self, what: &str) -> impl Fn(Errno) -> Error + '_ {
        let path = if what.is_empty() {
            self.shown.clone()
        } else {
            format!("{}/{what}", self.shown.trim_end_matches('/'))
        };
        move |e| Error::Write {
            path: path.clone(),
            io: e.into(),
        }
    }

    /// A name beside the destination for a new or retired directory.
    fn sibling_prefix(&self) -> Vec<u8> {
        let mut p = b".".to_vec();
        p.extend_from_slice(self.name.as_bytes());
        p.extend_from_slice(b".aicr-");
        p
    }

    /// Takes the advisory lock on the parent, waiting up to [`LOCK_WAIT`].
    /// Filesystems without locks (some network mounts) go unlocked.
    fn lock(&self) -> Result<(), Error> {
        let start = Instant::now();
        loop {
            match rfs::flock(&self.parent, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => return Ok(()),
                // A command holding signals back stops waiting at one.
                Err(Errno::WOULDBLOCK) if pending_signal().is_some() => {
                    return Err(Error::Interrupted {
                        path: self.shown.clone(),
                    })
                }
                Err(Errno::WOULDBLOCK) if start.elapsed() < LOCK_WAIT => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(Errno::WOULDBLOCK) => {
                    return Err(Error::InUse {
                        path: self.shown.clone(),
                        parent: self.parent_shown.clone(),
                        waited: LOCK_WAIT.as_secs(),
                    })
                }
                Err(e) => {
                    tracing::debug!("no lock on {}: {e}; going on unlocked", self.parent_shown);
                    return Ok(());
                }
            }
        }
    }
}

/// An existing destination directory, inspected.
struct Existing {
    dir: OwnedFd,
    dev_ino: (u64, u64),
    mode: u32,
    /// Files aicr wrote (listed in its checksums, plus the checksums file,
    /// the marker and a stale carried-list), relative paths.
    ours: BTreeSet<String>,
    /// Directories holding them, deepest last.
    our_dirs: BTreeSet<String>,
    /// Top-level entries aicr did not write: carried into the new bundle.
    foreign: Vec<OsString>,
    /// The earlier bundle's checksums: path -> SHA-256.
    listed: BTreeMap<String, String>,
}

fn stat_id(st: &rfs::Stat) -> (u64, u64) {
    (st.st_dev, st.st_ino)
}

/// Looks at what is at the destination now. `None` when nothing is there.
fn inspect(t: &Target) -> Result<Option<Existing>, Error> {
    inspect_to(t, true)
}

/// [`inspect`], reading an earlier bundle's `checksums.txt` and directories
/// only when `deep`.
fn inspect_to(t: &Target, deep: bool) -> Result<Option<Existing>, Error> {
    let st = match rfs::statat(&t.parent, &t.name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Ok(None),
        Err(e) => return Err(t.io("")(e)),
    };
    match FileType::from_raw_mode(st.st_mode) {
        FileType::Directory => {}
        FileType::Symlink => return Err(t.refuse("is a symbolic link; give the real directory")),
        _ => return Err(t.refuse("exists and is not a directory")),
    }
    let dir = rfs::openat(
        &t.parent,
        &t.name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(t.io(""))?;
    let st = rfs::fstat(&dir).map_err(t.io(""))?;
    let top = list_dir(dir.as_fd()).map_err(t.io(""))?;
    let mut existing = Existing {
        dev_ino: stat_id(&st),
        mode: st.st_mode & 0o7777,
        dir,
        ours: BTreeSet::new(),
        our_dirs: BTreeSet::new(),
        foreign: Vec::new(),
        listed: BTreeMap::new(),
    };
    if top.is_empty() {
        return Ok(Some(existing));
    }
    let is = |name: &str| top.iter().any(|(n, _)| n.as_bytes() == name.as_bytes());
    let owner_is_file = is(OWNER)
        && matches!(
            rfs::statat(&existing.dir, OWNER, AtFlags::SYMLINK_NOFOLLOW),
            Ok(s) if FileType::from_raw_mode(s.st_mode) == FileType::RegularFile
        );
    if !owner_is_file {
        if is(".git") {
            existing.foreign = top.into_iter().map(|(n, _)| n).collect();
            check_removable(t, &existing)?;
            return Ok(Some(existing));
        }
        let what = if is(MARKER) {
            format!("it has a {MARKER} but no {OWNER} marker, so aicr did not write it")
        } else {
            "it is not empty and aicr did not write it".to_string()
        };
        return Err(t.refuse(format!(
            "is a directory that is not an aicr bundle ({what}); give a new or empty directory, or remove this one first"
        )));
    }
    if !deep {
        return Ok(Some(existing));
    }
    // An earlier bundle: what it lists is ours.
    let listed = if is(MARKER) {
        let text = read_capped(existing.dir.as_fd(), MARKER, CHECKSUMS_CAP)
            .map_err(|e| t.refuse(format!("its {MARKER}: {e}")))?;
        let text = String::from_utf8(text)
            .map_err(|_| t.refuse(format!("its {MARKER} is not UTF-8 text")))?;
        super::checksum::parse(&text, &format!("{}/{MARKER}", t.shown))
            .map_err(|e| t.refuse(e.to_string()))?
    } else {
        BTreeMap::new()
    };
    for rel in listed.keys() {
        let mut acc = String::new();
        let mut parts = rel.split('/').peekable();
        while let Some(part) = parts.next() {
            if parts.peek().is_some() {
                if !acc.is_empty() {
                    acc.push('/');
                }
                acc.push_str(part);
                existing.our_dirs.insert(acc.clone());
            }
        }
        existing.ours.insert(rel.clone());
    }
    for own in [MARKER, OWNER, CARRIED] {
        if is(own) {
            existing.ours.insert(own.to_string());
        }
    }
    // Every entry inside the bundle's own directories must be its own.
    for d in existing.our_dirs.clone() {
        let fd = match open_beneath(existing.dir.as_fd(), &d) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => continue, // gone: nothing of the user's inside
            // A link or a file where the bundle had a directory is not
            // aicr's: replacing it would move it aside, or lose it.
            Err(Errno::NOTDIR | Errno::LOOP) => {
                return Err(t.refuse(format!(
                    "{d} is not the directory aicr wrote (a link or a file is in its place); move it out of {}, or bundle into a new directory",
                    t.shown
                )))
            }
            Err(e) => return Err(t.io(&d)(e)),
        };
        for (n, _) in list_dir(fd.as_fd()).map_err(t.io(&d))? {
            let rel = format!("{d}/{}", n.to_string_lossy());
            if !existing.ours.contains(&rel) && !existing.our_dirs.contains(&rel) {
                return Err(t.refuse(format!(
                    "{rel} was not written by aicr, and aicr replaces the bundle's own directories whole; move it out of {}, or bundle into a new directory",
                    t.shown
                )));
            }
        }
    }
    for (n, _) in top {
        let s = n.to_string_lossy();
        if !existing.ours.contains(s.as_ref()) && !existing.our_dirs.contains(s.as_ref()) {
            existing.foreign.push(n);
        }
    }
    check_removable(t, &existing)?;
    existing.listed = listed;
    Ok(Some(existing))
}

/// An earlier bundle is replaced by moving it aside and removing what aicr
/// wrote: each of its directories must let this user do that, or the run
/// would end with the old bundle left beside the new one. Refused up front
/// instead, with the permission error (exit 4).
fn check_removable(t: &Target, e: &Existing) -> Result<(), Error> {
    let can = |fd: BorrowedFd<'_>, rel: &str| {
        rfs::accessat(
            fd,
            ".",
            rfs::Access::WRITE_OK | rfs::Access::EXEC_OK,
            AtFlags::EACCESS,
        )
        .map_err(t.io(rel))
    };
    can(e.dir.as_fd(), "")?;
    for d in &e.our_dirs {
        if let Ok(fd) = open_beneath(e.dir.as_fd(), d) {
            can(fd.as_fd(), d)?;
        }
    }
    Ok(())
}

/// Checks, before any work, that `dest` can receive a bundle: absent, an
/// empty directory, an earlier bundle, or a git work tree; and that its
/// parent exists. These checks, and those of the earlier bundle's contents,
/// run again under the lock when writing, before anything is written.
pub fn check_destination(dest: &Path) -> Result<(), Error> {
    let t = Target::resolve(dest)?;
    inspect_to(&t, false).map(|_| ())
}

/// Writes `files` as the directory `dest`, replacing an earlier bundle
/// there. A bundle that already holds exactly these files is left as it is
/// (same bytes, and its timestamps stay).
pub fn write(dest: &Path, files: &Files, force: bool) -> Result<Written, Error> {
    let t = Target::resolve(dest)?;
    t.lock()?;
    recover_leftovers(&t);
    let existing = inspect(&t)?;
    let mut same = BTreeSet::new();
    if let Some(e) = &existing {
        check_collisions(&t, e, files)?;
        if !force {
            check_edits(&t, e)?;
        }
        same = same_files(e, files);
        if unchanged(e, files, &same) {
            return Ok(Written::Unchanged);
        }
    }
    let signals = HeldSignals::hold();
    let result = replace(&t, existing.as_ref(), files, &same, &signals);
    drop(signals);
    result.map(|()| Written::Written)
}

/// Files of the earlier bundle edited since aicr wrote them (their bytes no
/// longer match its `checksums.txt`) are someone's work: refused unless
/// `--force`. A missing file lost nothing and is written again.
fn check_edits(t: &Target, e: &Existing) -> Result<(), Error> {
    let mut dirs = Dirs::new(e.dir.as_fd());
    let mut edited = Vec::new();
    for (rel, sum) in &e.listed {
        // Only a regular file holds work; a FIFO or device in its place
        // (or a link, refused by the open) holds nothing to lose.
        let Some((fd, _)) = dirs.open_regular(rel) else {
            continue;
        };
        let mut bytes = Vec::new();
        let read = std::fs::File::from(fd)
            .take(FILE_CAP + 1)
            .read_to_end(&mut bytes)
            .is_ok();
        if !read || bytes.len() as u64 > FILE_CAP || &super::checksum::sha256_hex(&bytes) != sum {
            edited.push(rel.as_str());
        }
    }
    if edited.is_empty() {
        return Ok(());
    }
    let shown: Vec<&str> = edited.iter().take(10).copied().collect();
    let more = if edited.len() > 10 {
        format!(" and {} more", edited.len() - 10)
    } else {
        String::new()
    };
    Err(t.refuse(format!(
        "{}{more} changed since aicr wrote them (they no longer match checksums.txt; `aicr verify {}` lists them); keep your changes elsewhere, or give --force to overwrite them",
        shown.join(", "),
        t.shown
    )))
}

/// A top-level entry aicr did not write must not be one the new bundle
/// writes.
fn check_collisions(t: &Target, e: &Existing, files: &Files) -> Result<(), Error> {
    let new_top: BTreeSet<&str> = files
        .0
        .keys()
        .map(|k| k.split('/').next().unwrap_or(k))
        .chain([MARKER, OWNER, CARRIED])
        .collect();
    for n in &e.foreign {
        let s = n.to_string_lossy();
        if new_top.contains(s.as_ref()) {
            return Err(t.refuse(format!(
                "{s} was not written by aicr, and the new bundle writes that path; move it away, or bundle into a new directory"
            )));
        }
    }
    Ok(())
}

/// The new files the earlier bundle already holds, with the same bytes
/// and executable bit.
fn same_files<'f>(e: &Existing, files: &'f Files) -> BTreeSet<&'f str> {
    let mut dirs = Dirs::new(e.dir.as_fd());
    files
        .0
        .iter()
        .filter(|(rel, f)| e.ours.contains(rel.as_str()) && same_file(&mut dirs, rel, f))
        .map(|(rel, _)| rel.as_str())
        .collect()
}

/// Does the earlier bundle hold exactly `files` (all in `same`) and none of
/// its own files besides?
fn unchanged(e: &Existing, files: &Files, same: &BTreeSet<&str>) -> bool {
    same.len() == files.len()
        && e.ours.contains(OWNER)
        && !e.ours.contains(CARRIED)
        && e.ours.len() == files.len() + 1
}

/// Writes the new directory beside the destination and swaps it in.
fn replace(
    t: &Target,
    existing: Option<&Existing>,
    files: &Files,
    same: &BTreeSet<&str>,
    signals: &HeldSignals,
) -> Result<(), Error> {
    let (tmp_name, tmp) = make_sibling(t)?;
    // On failure the new directory goes, but never an entry of the user's
    // that could not be moved back: that stays, with the carried list, for
    // the next run to recover.
    let cleanup = |err: Error| {
        let keep: BTreeSet<OsString> = existing
            .map(|e| {
                e.foreign
                    .iter()
                    .filter(|n| rfs::statat(&tmp, n.as_os_str(), AtFlags::SYMLINK_NOFOLLOW).is_ok())
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let _ = remove_all(t, &tmp_name, &tmp, &keep);
        err
    };
    let linkable = existing.map(|e| (e.dir.as_fd(), same));
    write_tree(t, tmp.as_fd(), files, linkable).map_err(cleanup)?;
    if let Some(e) = existing {
        // Keep the directory's own permissions.
        rfs::fchmod(&tmp, Mode::from_raw_mode(e.mode))
            .map_err(t.io(""))
            .map_err(cleanup)?;
    }
    if signals.pending() {
        return Err(cleanup(Error::Interrupted {
            path: t.shown.clone(),
        }));
    }
    let Some(e) = existing else {
        return install_new(t, &tmp_name).map_err(cleanup);
    };
    // Carry the user's entries: first the list (durably), then the moves.
    if !e.foreign.is_empty() {
        let mut list = Vec::new();
        for n in &e.foreign {
            list.extend_from_slice(n.as_bytes());
            list.push(b'\n');
        }
        write_file(tmp.as_fd(), CARRIED, &list, false, true)
            .map_err(t.io(CARRIED))
            .map_err(cleanup)?;
        let _ = rfs::fsync(&tmp);
        for (i, n) in e.foreign.iter().enumerate() {
            if let Err(err) = rfs::renameat(&e.dir, n.as_os_str(), &tmp, n.as_os_str()) {
                // Put back what was moved, then give up.
                for back in &e.foreign[..i] {
                    let _ = rfs::renameat(&tmp, back.as_os_str(), &e.dir, back.as_os_str());
                }
                return Err(cleanup(t.io(&n.to_string_lossy())(err)));
            }
        }
    }
    let swapped = rfs::renameat_with(
        &t.parent,
        &tmp_name,
        &t.parent,
        &t.name,
        RenameFlags::EXCHANGE,
    );
    match swapped {
        Ok(()) => {}
        Err(err) => {
            for back in &e.foreign {
                let _ = rfs::renameat(&tmp, back.as_os_str(), &e.dir, back.as_os_str());
            }
            let err = if err == Errno::BUSY {
                t.refuse("is a mount point or in use, so it cannot be replaced; give a directory inside it, such as DIR/bundle")
            } else {
                t.io("")(err)
            };
            return Err(cleanup(err));
        }
    }
    // The new bundle is in place; the carried list has done its job.
    let _ = rfs::unlinkat(&tmp, CARRIED, AtFlags::empty());
    // The earlier bundle now sits at the temporary name: remove what of it
    // is ours, and only if it is still the directory inspected.
    if rfs::fstat(&e.dir).map(|s| stat_id(&s)) == Ok(e.dev_ino) {
        remove_ours(t, &tmp_name, e);
    }
    Ok(())
}

/// Moves the new directory to a destination that did not exist.
fn install_new(t: &Target, tmp_name: &OsStr) -> Result<(), Error> {
    match rfs::renameat_with(
        &t.parent,
        tmp_name,
        &t.parent,
        &t.name,
        RenameFlags::NOREPLACE,
    ) {
        Ok(()) => Ok(()),
        Err(Errno::EXIST) | Err(Errno::NOTEMPTY) => Err(t.refuse(
            "appeared while the bundle was being written; nothing was replaced, run again",
        )),
        Err(Errno::INVAL) | Err(Errno::NOSYS) => {
            // A filesystem without renameat2 flags: check, then rename.
            match rfs::statat(&t.parent, &t.name, AtFlags::SYMLINK_NOFOLLOW) {
                Err(Errno::NOENT) => {
                    rfs::renameat(&t.parent, tmp_name, &t.parent, &t.name).map_err(t.io(""))
                }
                _ => Err(t.refuse(
                    "appeared while the bundle was being written; nothing was replaced, run again",
                )),
            }
        }
        Err(e) => Err(t.io("")(e)),
    }
}

/// Creates `.NAME.aicr-XXXXXXXXXXXXXXXX` beside the destination, with an
/// unpredictable suffix, exclusively, and opens it without following links.
fn make_sibling(t: &Target) -> Result<(OsString, OwnedFd), Error> {
    for _ in 0..16 {
        let mut name = t.sibling_prefix();
        let mut random = [0u8; 8];
        rustix::rand::getrandom(&mut random, rustix::rand::GetRandomFlags::empty())
            .map_err(t.io(""))?;
        for b in random {
            name.extend_from_slice(format!("{b:02x}").as_bytes());
        }
        let name = OsString::from(OsStr::from_bytes(&name));
        match rfs::mkdirat(&t.parent, name.as_os_str(), Mode::from_raw_mode(0o755)) {
            Ok(()) => {}
            Err(Errno::EXIST) => continue,
            Err(e) => {
                return Err(Error::Write {
                    path: t.parent_shown.clone(),
                    io: e.into(),
                })
            }
        }
        let fd = rfs::openat(
            &t.parent,
            name.as_os_str(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(t.io(""))?;
        // Not synced: after a power loss a directory without it is left
        // for the user, never taken for aicr's.
        write_file(fd.as_fd(), OWNER, OWNER_TEXT.as_bytes(), false, false).map_err(t.io(OWNER))?;
        return Ok((name, fd));
    }
    Err(t.refuse("could not create a temporary directory beside it"))
}

/// Writes the tree under the directory `root`. A file that the earlier
/// bundle already holds with the same bytes and mode (in `previous`) is
/// hard-linked from it rather than written again.
fn write_tree(
    t: &Target,
    root: BorrowedFd<'_>,
    files: &Files,
    previous: Option<(BorrowedFd<'_>, &BTreeSet<&str>)>,
) -> Result<(), Error> {
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
    let results = super::parallel::map(&groups, |group| {
        let mut made: BTreeSet<&str> = BTreeSet::new();
        let same = previous.map(|(_, same)| same);
        let mut prev_dirs = previous.map(|(prev, _)| Dirs::new(prev));
        for (rel, f) in group {
            // Directories on the way, each once.
            let mut end = 0;
            while let Some(i) = rel[end..].find('/') {
                end += i;
                let dir = &rel[..end];
                if made.insert(dir) {
                    match rfs::mkdirat(root, dir, Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(t.io(dir)(e)),
                    }
                }
                end += 1;
            }
            if let (Some(same), Some(prev)) = (same, prev_dirs.as_mut()) {
                if same.contains(rel.as_str()) {
                    let (dir, base) = split_rel(rel);
                    let linked = prev.get(dir).is_some_and(|from| {
                        rfs::linkat(from, base, root, rel.as_str(), AtFlags::empty()).is_ok()
                    });
                    if linked {
                        continue;
                    }
                }
            }
            write_file(root, rel, &f.bytes, f.executable, false).map_err(t.io(rel))?;
        }
        Ok(())
    });
    results.into_iter().collect()
}

/// Creates the file `rel` under `dir` exclusively, never through a link.
fn write_file(
    dir: BorrowedFd<'_>,
    rel: &str,
    bytes: &[u8],
    executable: bool,
    sync: bool,
) -> Result<(), Errno> {
    // Files 0644 and scripts 0755, less the umask, set as they are created.
    let mode = if executable { 0o755 } else { 0o644 };
    let fd = rfs::openat(
        dir,
        rel,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(mode),
    )?;
    let mut file = std::fs::File::from(fd);
    file.write_all(bytes)
        .map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO))?;
    if sync {
        file.sync_all()
            .map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO))?;
    }
    Ok(())
}

/// Reads the regular file `rel` under `dir`, never through a link and never
/// more than `cap` bytes. A FIFO or device is refused without opening it
/// for blocking reads.
pub fn read_capped(dir: BorrowedFd<'_>, rel: &str, cap: u64) -> Result<Vec<u8>, String> {
    let fd = open_file_beneath(dir, rel).map_err(|e| match e {
        Errno::LOOP => "is a symbolic link".to_string(),
        e => std::io::Error::from(e).to_string(),
    })?;
    let st = rfs::fstat(&fd).map_err(|e| std::io::Error::from(e).to_string())?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err("is not a regular file".into());
    }
    if st.st_size as u64 > cap {
        return Err(format!("is larger than the limit of {} MiB", cap >> 20));
    }
    let mut bytes = Vec::with_capacity(st.st_size as usize);
    std::fs::File::from(fd)
        .take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > cap {
        return Err(format!("is larger than the limit of {} MiB", cap >> 20));
    }
    Ok(bytes)
}

/// Does the regular file `rel` (under the root of `dirs`) hold `want`'s
/// bytes and executable bit?
fn same_file(dirs: &mut Dirs<'_>, rel: &str, want: &File) -> bool {
    let Some((fd, st)) = dirs.open_regular(rel) else {
        return false;
    };
    if st.st_size as u64 != want.bytes.len() as u64 || (st.st_mode & 0o100 != 0) != want.executable
    {
        return false;
    }
    let mut bytes = Vec::with_capacity(want.bytes.len() + 1);
    std::fs::File::from(fd)
        .take(want.bytes.len() as u64 + 1)
        .read_to_end(&mut bytes)
        .is_ok()
        && bytes == want.bytes
}

/// Directory descriptors under one root, each opened once, none through a
/// link: a bundle's files are read, linked and removed by name relative to
/// the directory holding them.
struct Dirs<'a> {
    root: BorrowedFd<'a>,
    open: std::collections::HashMap<String, Option<OwnedFd>>,
}

impl<'a> Dirs<'a> {
    fn new(root: BorrowedFd<'a>) -> Dirs<'a> {
        Dirs {
            root,
            open: std::collections::HashMap::new(),
        }
    }

    /// The directory `rel` (`""` for the root), or `None` when it is not a
    /// directory reached without links.
    fn get(&mut self, rel: &str) -> Option<BorrowedFd<'_>> {
        if rel.is_empty() {
            return Some(self.root);
        }
        if !self.open.contains_key(rel) {
            let (parent, base) = split_rel(rel);
            let fd = match self.get(parent) {
                Some(p) if base != ".." => rfs::openat(
                    p,
                    base,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .ok(),
                _ => None,
            };
            self.open.insert(rel.to_string(), fd);
        }
        self.open
            .get(rel)
            .and_then(|fd| fd.as_ref().map(|fd| fd.as_fd()))
    }
}

impl Dirs<'_> {
    /// The regular file `rel`, opened without following a link and without
    /// blocking, with its status; `None` for anything else.
    fn open_regular(&mut self, rel: &str) -> Option<(OwnedFd, rfs::Stat)> {
        let (dir, base) = split_rel(rel);
        let fd = rfs::openat(
            self.get(dir)?,
            base,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ok()?;
        let st = rfs::fstat(&fd).ok()?;
        (FileType::from_raw_mode(st.st_mode) == FileType::RegularFile).then_some((fd, st))
    }
}

/// Opens the directory `rel` under `root` one component at a time, never
/// following a symbolic link (a bundle may sit in a git checkout, and a
/// checkout can hold links pointing anywhere).
fn open_beneath(root: BorrowedFd<'_>, rel: &str) -> Result<OwnedFd, Errno> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut cur = rfs::openat(root, ".", flags, Mode::empty())?;
    for part in rel.split('/').filter(|p| !p.is_empty()) {
        if part == ".." {
            return Err(Errno::PERM);
        }
        cur = rfs::openat(&cur, part, flags, Mode::empty())?;
    }
    Ok(cur)
}

/// `rel` split into the directory holding it and its own name.
fn split_rel(rel: &str) -> (&str, &str) {
    rel.rsplit_once('/').unwrap_or(("", rel))
}

/// Opens the file `rel` under `root` without following any link.
fn open_file_beneath(root: BorrowedFd<'_>, rel: &str) -> Result<OwnedFd, Errno> {
    let (dir, base) = split_rel(rel);
    let parent = open_beneath(root, dir)?;
    rfs::openat(
        &parent,
        base,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// The entries of a directory, without `.` and `..`, with their types.
fn list_dir(dir: BorrowedFd<'_>) -> Result<Vec<(OsString, FileType)>, Errno> {
    let mut out = Vec::new();
    for entry in rfs::Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        out.push((OsStr::from_bytes(name).to_os_string(), entry.file_type()));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Removes from the retired bundle `e` (now at `name` beside the
/// destination) the files and directories aicr wrote, then the directory
/// itself if that left it empty. Anything else is left, with a warning.
fn remove_ours(t: &Target, name: &OsStr, e: &Existing) {
    // The marker goes last: until then, a run killed half-way leaves a
    // leftover the next run recognises as its own and finishes removing.
    let mut groups: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for rel in e.ours.iter().filter(|p| *p != OWNER) {
        let top = rel.split('/').next().unwrap_or(rel);
        groups.entry(top).or_default().push(rel);
    }
    let groups: Vec<Vec<&str>> = groups.into_values().collect();
    super::parallel::map(&groups, |group| {
        let mut dirs = Dirs::new(e.dir.as_fd());
        for rel in group {
            let (dir, base) = split_rel(rel);
            if let Some(d) = dirs.get(dir) {
                let _ = rfs::unlinkat(d, base, AtFlags::empty());
            }
        }
    });
    let mut dirs = Dirs::new(e.dir.as_fd());
    for d in e.our_dirs.iter().rev() {
        let (parent, base) = split_rel(d);
        if let Some(p) = dirs.get(parent) {
            let _ = rfs::unlinkat(p, base, AtFlags::REMOVEDIR);
        }
    }
    let _ = rfs::unlinkat(&e.dir, OWNER, AtFlags::empty());
    retire(t, name, e.dir.as_fd());
}

/// Removes the directory `name` beside the destination if it is still the
/// one open as `fd` and is empty; warns otherwise.
fn retire(t: &Target, name: &OsStr, fd: BorrowedFd<'_>) {
    let same = match (
        rfs::fstat(fd),
        rfs::statat(&t.parent, name, AtFlags::SYMLINK_NOFOLLOW),
    ) {
        (Ok(a), Ok(b)) => stat_id(&a) == stat_id(&b),
        _ => false,
    };
    let left = Path::new(&t.parent_shown).join(name);
    if !same {
        tracing::warn!(
            "{} changed while aicr was removing the earlier bundle; left it as it is",
            left.display()
        );
        return;
    }
    match rfs::unlinkat(&t.parent, name, AtFlags::REMOVEDIR) {
        Ok(()) | Err(Errno::NOENT) => {}
        Err(_) => tracing::warn!("left {}: it holds files aicr did not write", left.display()),
    }
}

/// Removes everything under the directory `fd` (named `name` beside the
/// destination) except the top-level entries in `keep`, then the directory
/// itself when nothing is kept.
fn remove_all(
    t: &Target,
    name: &OsStr,
    fd: &OwnedFd,
    keep: &BTreeSet<OsString>,
) -> Result<(), Errno> {
    fn inner(dir: BorrowedFd<'_>, depth: usize, keep: &BTreeSet<OsString>) -> Result<(), Errno> {
        if depth > MAX_DEPTH {
            return Err(Errno::LOOP);
        }
        for (n, ty) in list_dir(dir)? {
            // The marker goes last (below), as in `remove_ours`.
            if depth == 0 && (keep.contains(&n) || n == OWNER) {
                continue;
            }
            if ty == FileType::Directory {
                let sub = rfs::openat(
                    dir,
                    n.as_os_str(),
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                inner(sub.as_fd(), depth + 1, &BTreeSet::new())?;
                rfs::unlinkat(dir, n.as_os_str(), AtFlags::REMOVEDIR)?;
            } else {
                rfs::unlinkat(dir, n.as_os_str(), AtFlags::empty())?;
            }
        }
        Ok(())
    }
    let mut keep = keep.clone();
    if !keep.is_empty() {
        // What the next run needs to recover the kept entries.
        keep.insert(OWNER.into());
        keep.insert(CARRIED.into());
    }
    inner(fd.as_fd(), 0, &keep)?;
    if keep.is_empty() {
        rfs::unlinkat(fd, OWNER, AtFlags::empty())?;
        retire(t, name, fd.as_fd());
    }
    Ok(())
}

/// Recovers what an interrupted run left beside the destination
/// (`.NAME.aicr-*` directories carrying aicr's marker, owned by this user):
/// entries it had carried away from the destination are moved back, then
/// the leftover is removed. Anything that cannot be recovered is reported
/// and left.
fn recover_leftovers(t: &Target) {
    let prefix = t.sibling_prefix();
    let Ok(entries) = list_dir(t.parent.as_fd()) else {
        return;
    };
    let me = rustix::process::geteuid().as_raw();
    for (name, ty) in entries {
        if !name.as_bytes().starts_with(&prefix) || ty != FileType::Directory {
            continue;
        }
        let shown = Path::new(&t.parent_shown).join(&name).display().to_string();
        let Ok(fd) = rfs::openat(
            &t.parent,
            name.as_os_str(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) else {
            continue;
        };
        let owned_by_me = rfs::fstat(&fd).is_ok_and(|s| s.st_uid == me);
        let marked = matches!(
            rfs::statat(&fd, OWNER, AtFlags::SYMLINK_NOFOLLOW),
            Ok(s) if FileType::from_raw_mode(s.st_mode) == FileType::RegularFile
        );
        // A run killed just after creating its directory (or just before
        // removing it) leaves it empty: removing an empty directory loses
        // nothing, whoever made it.
        if owned_by_me
            && !marked
            && rfs::unlinkat(&t.parent, name.as_os_str(), AtFlags::REMOVEDIR).is_ok()
        {
            continue;
        }
        if !owned_by_me || !marked {
            tracing::warn!(
                "{shown} looks like an aicr leftover but aicr did not write it; left it as it is"
            );
            continue;
        }
        // Entries carried away from the destination go back to it.
        let mut kept = BTreeSet::new();
        if let Ok(list) = read_capped(fd.as_fd(), CARRIED, CHECKSUMS_CAP) {
            let dest = rfs::openat(
                &t.parent,
                &t.name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            );
            for n in list.split(|b| *b == b'\n').filter(|n| !n.is_empty()) {
                let n = OsStr::from_bytes(n);
                if rfs::statat(&fd, n, AtFlags::SYMLINK_NOFOLLOW).is_err() {
                    continue; // not here: it was never moved, or is back
                }
                let moved = match &dest {
                    Ok(d) => rfs::renameat_with(&fd, n, d, n, RenameFlags::NOREPLACE)
                        .or_else(|e| match e {
                            Errno::INVAL => match rfs::statat(d, n, AtFlags::SYMLINK_NOFOLLOW) {
                                Err(Errno::NOENT) => rfs::renameat(&fd, n, d, n),
                                _ => Err(Errno::EXIST),
                            },
                            e => Err(e),
                        })
                        .is_ok(),
                    Err(_) => false,
                };
                if moved {
                    tracing::warn!(
                        "an interrupted aicr run had moved {} into {shown}: moved it back to {}",
                        n.to_string_lossy(),
                        t.shown
                    );
                } else {
                    kept.insert(n.to_os_string());
                }
            }
        }
        if !kept.is_empty() {
            let names: Vec<_> = kept.iter().map(|n| n.to_string_lossy()).collect();
            tracing::warn!(
                "{shown} holds {} from an interrupted aicr run, which could not be moved back to {}; move them yourself, then remove {shown}",
                names.join(", "),
                t.shown
            );
            continue;
        }
        match remove_all(t, &name, &fd, &BTreeSet::new()) {
            Ok(()) => tracing::debug!("removed {shown}, left by an interrupted aicr run"),
            Err(e) => {
                tracing::warn!("could not remove {shown}, left by an interrupted aicr run: {e}")
            }
        }
    }
}

/// SIGINT, SIGTERM and SIGHUP held back (blocked) for as long as this
/// lives; one that arrived meanwhile is delivered when it is dropped, once
/// the directory is consistent again.
pub struct HeldSignals {
    old: libc::sigset_t,
}

/// The signals [`HeldSignals`] holds back.
const HELD: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// The held-back signal (SIGINT, SIGTERM or SIGHUP) that has arrived, if
/// any. Any thread may ask: a signal sent to the process while every thread
/// holds it back stays pending for the process. Long waits (a child
/// process, a registry) poll this to stop early; without a [`HeldSignals`]
/// these signals are never pending (they end the process at once).
pub fn pending_signal() -> Option<libc::c_int> {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset before
    // use; sigpending writes the set it is given.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigpending(&mut set);
        HELD.iter()
            .copied()
            .find(|s| libc::sigismember(&set, *s) == 1)
    }
}

/// The name of a held-back signal, for messages.
pub fn signal_name(signal: libc::c_int) -> &'static str {
    match signal {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}

impl HeldSignals {
    /// Ends the hold; when a signal arrived meanwhile, first calls `say`
    /// with its name (to report what the run left), then lets it take its
    /// default action: the process ends by that signal (a shell shows 130
    /// for SIGINT), as if it had not been held.
    pub fn release(self, say: impl FnOnce(&'static str)) {
        if let Some(s) = pending_signal() {
            say(signal_name(s));
        }
        drop(self);
    }

    pub fn hold() -> HeldSignals {
        // SAFETY: sigset_t is plain data, initialised by sigemptyset before
        // use; pthread_sigmask only reads `held` and writes `old`.
        unsafe {
            let mut held: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut held);
            for s in HELD {
                libc::sigaddset(&mut held, s);
            }
            libc::pthread_sigmask(libc::SIG_BLOCK, &held, &mut old);
            HeldSignals { old }
        }
    }

    /// Whether one of the held signals has arrived.
    pub fn pending(&self) -> bool {
        pending_signal().is_some()
    }
}

impl Drop for HeldSignals {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved by `hold`.
        unsafe {
            libc::pthread_sigmask(libc::SIG_SETMASK, &self.old, std::ptr::null_mut());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(list: &[(&str, &str)]) -> Files {
        let mut f = Files::default();
        for (p, t) in list {
            f.add(*p, *t);
        }
        let sums = super::super::checksum::render(&f);
        f.add(MARKER, sums);
        f
    }

    fn tree(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        for e in walk(dir) {
            out.push(e);
        }
        out
    }

    fn walk(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        fn inner(root: &Path, rel: &Path, out: &mut Vec<String>) {
            let mut es: Vec<_> = std::fs::read_dir(root.join(rel))
                .unwrap()
                .map(|e| e.unwrap())
                .collect();
            es.sort_by_key(|e| e.file_name());
            for e in es {
                let r = rel.join(e.file_name());
                out.push(r.display().to_string());
                if e.file_type().unwrap().is_dir() {
                    inner(root, &r, out);
                }
            }
        }
        inner(dir, Path::new(""), &mut out);
        out
    }

    #[test]
    fn new_then_unchanged_then_changed() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("b");
        let a = files(&[("x/values.yaml", "a: 1\n"), ("README.md", "hi\n")]);
        assert_eq!(write(&out, &a, false).unwrap(), Written::Written);
        assert_eq!(
            tree(&out),
            [
                ".aicr-bundle",
                "README.md",
                "checksums.txt",
                "x",
                "x/values.yaml"
            ]
        );
        assert_eq!(write(&out, &a, false).unwrap(), Written::Unchanged);
        let b = files(&[("y/values.yaml", "b: 2\n"), ("README.md", "hi\n")]);
        assert_eq!(write(&out, &b, false).unwrap(), Written::Written);
        assert_eq!(
            tree(&out),
            [
                ".aicr-bundle",
                "README.md",
                "checksums.txt",
                "y",
                "y/values.yaml"
            ]
        );
        // Nothing left beside it.
        assert_eq!(tree(tmp.path()).len(), 6);
    }

    #[test]
    fn keeps_foreign_top_level_entries_and_refuses_nested_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("b");
        let a = files(&[("x/values.yaml", "a: 1\n")]);
        write(&out, &a, false).unwrap();
        std::fs::create_dir(out.join(".git")).unwrap();
        std::fs::write(out.join(".git/HEAD"), "ref\n").unwrap();
        std::fs::write(out.join("notes.doc"), "mine\n").unwrap();
        let b = files(&[("y/values.yaml", "b: 2\n")]);
        assert_eq!(write(&out, &b, false).unwrap(), Written::Written);
        assert_eq!(
            std::fs::read_to_string(out.join(".git/HEAD")).unwrap(),
            "ref\n"
        );
        assert_eq!(
            std::fs::read_to_string(out.join("notes.doc")).unwrap(),
            "mine\n"
        );
        assert!(!out.join("x").exists());
        assert!(!out.join(CARRIED).exists());
        std::fs::write(out.join("y/mine.txt"), "mine\n").unwrap();
        let err = write(&out, &a, false).unwrap_err().to_string();
        assert!(err.contains("y/mine.txt was not written by aicr"), "{err}");
        assert_eq!(
            std::fs::read_to_string(out.join("y/mine.txt")).unwrap(),
            "mine\n"
        );
    }

    #[test]
    fn refuses_a_directory_with_only_a_checksums_file() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("d");
        std::fs::create_dir(&out).unwrap();
        std::fs::write(out.join(MARKER), "").unwrap();
        std::fs::write(out.join("notes.doc"), "mine\n").unwrap();
        let err = write(&out, &files(&[("a.yaml", "a: 1\n")]), false).unwrap_err();
        assert!(err.to_string().contains("no .aicr-bundle marker"), "{err}");
        assert_eq!(tree(&out), ["checksums.txt", "notes.doc"]);
    }

    #[test]
    fn recovers_carried_entries_after_a_crash() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("b");
        let a = files(&[("x/values.yaml", "a: 1\n")]);
        write(&out, &a, false).unwrap();
        // A run killed after carrying .git into its new directory.
        let left = tmp.path().join(".b.aicr-0123456789abcdef");
        std::fs::create_dir(&left).unwrap();
        std::fs::write(left.join(OWNER), OWNER_TEXT).unwrap();
        std::fs::write(left.join(CARRIED), ".git\n").unwrap();
        std::fs::create_dir(left.join(".git")).unwrap();
        std::fs::write(left.join(".git/HEAD"), "ref\n").unwrap();
        std::fs::write(left.join("half.yaml"), "x").unwrap();
        let b = files(&[("y/values.yaml", "b: 2\n")]);
        write(&out, &b, false).unwrap();
        assert!(!left.exists());
        assert_eq!(
            std::fs::read_to_string(out.join(".git/HEAD")).unwrap(),
            "ref\n"
        );
    }
}
