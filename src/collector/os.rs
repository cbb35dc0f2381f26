//! OS collector: os-release (`release`), kernel release (`kernel`), the kernel
//! command line (`grub`, from /proc/cmdline), loaded modules (`kmod`, from
//! /proc/modules) and every readable sysctl (`sysctl`, a walk of /proc/sys
//! keyed `/proc/sys/...` like Go aicr). A missing source makes its subtype
//! unavailable with the reason; the others still come out. Values that are
//! different on every read (random UUIDs, entropy and usage counters) are
//! left out so two snapshots of an unchanged node are identical.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{redact, rootfs};
use super::{Collector, Context};
use crate::measurement::{Measurement, MeasurementType, Reading, Subtype};

pub struct Os;

impl Collector for Os {
    fn name(&self) -> &'static str {
        "os"
    }

    fn kinds(&self) -> &'static [MeasurementType] {
        &[MeasurementType::Os]
    }

    fn collect(&self, ctx: &Context) -> Result<Vec<Measurement>, String> {
        let subtypes = vec![release(ctx), kernel(ctx), grub(ctx), kmod(ctx), sysctl(ctx)];
        Ok(vec![Measurement::new(MeasurementType::Os, subtypes)])
    }
}

/// The most read of one file: os-release, the command line, a sysctl entry.
const MAX_FILE: u64 = 64 * 1024;
/// The most read of /proc/modules (a few hundred lines on a real node).
const MAX_MODULES: u64 = 4 << 20;
/// The most sysctl entries walked, and how deep.
const MAX_SYSCTL_ENTRIES: usize = 20_000;
const MAX_SYSCTL_DEPTH: usize = 12;

fn read(ctx: &Context, abs: &str, cap: u64) -> Result<String, String> {
    ctx.read(abs, cap)
        .map_err(|e| format!("cannot read {abs}: {e}"))
}

fn release(ctx: &Context) -> Subtype {
    let text = read(ctx, "/etc/os-release", MAX_FILE)
        .or_else(|e| read(ctx, "/usr/lib/os-release", MAX_FILE).map_err(|_| e));
    match text {
        Ok(t) => Subtype::new("release", parse_os_release(&t)),
        Err(e) => Subtype::unavailable("release", e),
    }
}

fn kernel(ctx: &Context) -> Subtype {
    match read(ctx, "/proc/sys/kernel/osrelease", MAX_FILE) {
        Ok(t) => {
            let mut data = BTreeMap::new();
            data.insert("release".to_string(), Reading::from(t.trim()));
            Subtype::new("kernel", data)
        }
        Err(e) => Subtype::unavailable("kernel", e),
    }
}

fn grub(ctx: &Context) -> Subtype {
    match read(ctx, "/proc/cmdline", MAX_FILE) {
        Ok(t) => Subtype::new("grub", parse_cmdline(&t)),
        Err(e) => Subtype::unavailable("grub", e),
    }
}

fn kmod(ctx: &Context) -> Subtype {
    match read(ctx, "/proc/modules", MAX_MODULES) {
        Ok(t) => Subtype::new("kmod", parse_modules(&t)),
        Err(e) => Subtype::unavailable("kmod", e),
    }
}

fn sysctl(ctx: &Context) -> Subtype {
    let dir = match ctx.resolve("/proc/sys") {
        Ok(d) if d.is_dir() => d,
        Ok(_) => return Subtype::unavailable("sysctl", "/proc/sys is not a directory"),
        Err(rootfs::ReadError::NotFound) => {
            return Subtype::unavailable("sysctl", "/proc/sys is absent")
        }
        Err(e) => return Subtype::unavailable("sysctl", format!("cannot read /proc/sys: {e}")),
    };
    let mut files = Vec::with_capacity(2048);
    let mut unreadable = 0usize;
    list_sysctl(&dir, "/proc/sys", 0, &mut files, &mut unreadable);
    // Reading ~1,300 small files is the bulk of a snapshot: spread it over
    // a few threads, each with one reused buffer and one read per file.
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4);
    let chunk = files.len().div_ceil(threads).max(1);
    let part_len = chunk;
    let root = ctx.root.as_path();
    let results: Vec<(Vec<(String, Reading)>, usize)> = std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| scope.spawn(move || read_sysctl_files(root, part)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| (Vec::new(), part_len)))
            .collect()
    });
    let mut data = BTreeMap::new();
    for (readings, failed) in results {
        data.extend(readings);
        unreadable += failed;
    }
    let mut sub = Subtype::new("sysctl", data);
    if unreadable > 0 {
        sub.context.insert(
            "unreadable".into(),
            format!("{unreadable} entries could not be read"),
        );
    }
    sub
}

/// Entries that change on every read or with every process and file opened.
const VOLATILE: &[&str] = &[
    "/proc/sys/kernel/random/uuid",
    "/proc/sys/kernel/random/boot_id",
    "/proc/sys/kernel/random/entropy_avail",
    "/proc/sys/kernel/ns_last_pid",
    "/proc/sys/kernel/pty/nr",
    "/proc/sys/fs/dentry-state",
    "/proc/sys/fs/inode-nr",
    "/proc/sys/fs/inode-state",
    "/proc/sys/fs/file-nr",
    "/proc/sys/fs/aio-nr",
    "/proc/sys/fs/dquot-nr",
    "/proc/sys/fs/quota",
    "/proc/sys/fs/binfmt_misc",
    "/proc/sys/net/netfilter/nf_conntrack_count",
];

/// Lists the entries under `dir` (already resolved under the root): links
/// are not followed, and the walk stops at [`MAX_SYSCTL_ENTRIES`] entries
/// and [`MAX_SYSCTL_DEPTH`] levels (what is left is counted unreadable).
fn list_sysctl(
    dir: &Path,
    key: &str,
    depth: usize,
    files: &mut Vec<(String, PathBuf)>,
    unreadable: &mut usize,
) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        *unreadable += 1;
        return;
    };
    if depth > MAX_SYSCTL_DEPTH {
        *unreadable += 1;
        return;
    }
    for entry in entries.flatten() {
        if files.len() >= MAX_SYSCTL_ENTRIES {
            *unreadable += 1;
            return;
        }
        let k = format!("{key}/{}", entry.file_name().to_string_lossy());
        if VOLATILE.contains(&k.as_str()) {
            continue;
        }
        let Ok(ft) = entry.file_type() else { continue };
        if ft.is_dir() {
            list_sysctl(&entry.path(), &k, depth + 1, files, unreadable);
        } else if ft.is_file() {
            files.push((k, entry.path()));
        } else {
            // A link, FIFO or device is not followed or opened.
            *unreadable += 1;
        }
    }
}

/// Reads sysctl files; write-only entries (stat_refresh, compact_memory ...),
/// those that need privileges and anything not a small regular file are
/// counted, not read.
fn read_sysctl_files(root: &Path, files: &[(String, PathBuf)]) -> (Vec<(String, Reading)>, usize) {
    let mut out = Vec::with_capacity(files.len());
    let mut failed = 0;
    let mut buf = Vec::with_capacity(16 * 1024);
    for (key, path) in files {
        // procfs returns a whole small entry in one read.
        let one_read = path.starts_with("/proc/");
        match rootfs::read_regular(root, path, MAX_FILE, &mut buf, one_read) {
            Ok(()) => out.push((
                key.clone(),
                Reading::from(String::from_utf8_lossy(&buf).trim()),
            )),
            Err(_) => failed += 1,
        }
    }
    (out, failed)
}

/// `KEY=value` lines; values may be quoted with `"` or `'`.
pub fn parse_os_release(text: &str) -> BTreeMap<String, Reading> {
    let mut out = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim();
        let v = if v.len() >= 2
            && ((v.starts_with('"') && v.ends_with('"'))
                || (v.starts_with('\'') && v.ends_with('\'')))
        {
            let inner = &v[1..v.len() - 1];
            let mut s = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    if let Some(n) = chars.next() {
                        s.push(n);
                    }
                } else {
                    s.push(c);
                }
            }
            s
        } else {
            v.to_string()
        };
        out.insert(k.trim().to_string(), Reading::from(v));
    }
    out
}

/// The key of the init arguments: the words after a bare `--` on the
/// kernel command line, which the kernel passes to init untouched.
pub const INIT_ARGS: &str = "--";

/// Kernel command line: `key=value` pairs (repeated keys joined with `,`)
/// and bare flags (`true`). Double quotes group words. A flag that names a
/// secret (`--password`, `token:`, `Bearer`) takes the next word as its
/// value. Everything after a bare `--` is init's, not the kernel's: it is
/// one reading, [`INIT_ARGS`], the words joined by spaces as given.
pub fn parse_cmdline(text: &str) -> BTreeMap<String, Reading> {
    let mut tokens = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in text.trim().chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    tokens.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        tokens.push(cur);
    }
    let mut out: BTreeMap<String, Reading> = BTreeMap::new();
    if let Some(at) = tokens.iter().position(|t| t == INIT_ARGS) {
        let init = tokens.split_off(at);
        out.insert(INIT_ARGS.to_string(), Reading::from(init[1..].join(" ")));
    }
    let mut tokens = tokens.into_iter();
    while let Some(t) = tokens.next() {
        match t.split_once('=') {
            // `AUTH=Basic dXNl...`: a scheme takes the next word with it.
            Some((k, v)) if v.eq_ignore_ascii_case("basic") || v.eq_ignore_ascii_case("bearer") => {
                let v = match tokens.next() {
                    Some(next) => format!("{v} {next}"),
                    None => v.to_string(),
                };
                out.insert(k.to_string(), Reading::from(v));
            }
            Some((k, v)) => {
                let v = match out.get(k) {
                    Some(Reading::Text(prev)) => format!("{prev},{v}"),
                    _ => v.to_string(),
                };
                out.insert(k.to_string(), Reading::from(v));
            }
            // `--password x` (an init argument after `--`): the flag's
            // value is the next word, so it is redacted with the flag.
            None if redact::names_next_secret(&t) => {
                let v = tokens.next().unwrap_or_default();
                out.insert(t, Reading::from(v));
            }
            // `api_key:hunter2`: a secret name and its value in one word.
            None if t.split_once(':').is_some_and(|(k, v)| {
                !v.is_empty() && !v.starts_with("//") && redact::sensitive_key(k)
            }) =>
            {
                let (k, v) = t.split_once(':').unwrap_or_default();
                out.insert(k.to_string(), Reading::from(v));
            }
            None => {
                out.insert(t, Reading::Bool(true));
            }
        }
    }
    out
}

/// `/proc/modules`: the first field of each line is a loaded module.
pub fn parse_modules(text: &str) -> BTreeMap<String, Reading> {
    text.lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(|m| (m.to_string(), Reading::Bool(true)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdline_secrets_in_one_word_or_after_a_scheme_are_paired_and_redacted() {
        let r = parse_cmdline("ro api_key:hunter2 AUTH=Basic dXNlcjpwYXNz quiet url=http://x:80\n");
        let text = |k: &str| match &r[k] {
            Reading::Text(t) => t.clone(),
            other => panic!("{k}: {other:?}"),
        };
        assert_eq!(text("api_key"), "hunter2");
        assert_eq!(text("AUTH"), "Basic dXNlcjpwYXNz");
        assert!(!r.contains_key("dXNlcjpwYXNz"));
        assert_eq!(r["quiet"], Reading::Bool(true));
        assert_eq!(
            redact::check("api_key", "hunter2").as_deref(),
            Some(redact::REDACTED)
        );
        assert_eq!(
            redact::check("AUTH", "Basic dXNlcjpwYXNz").as_deref(),
            Some("Basic [REDACTED]")
        );
    }

    #[test]
    fn os_release_quotes_and_escapes() {
        let r = parse_os_release("NAME=\"Ubuntu\"\nVERSION_ID=\"24.04\"\nID=ubuntu\n# c\nX='a b'\nY=\"say \\\"hi\\\"\"\n");
        assert_eq!(r["NAME"], Reading::from("Ubuntu"));
        assert_eq!(r["VERSION_ID"], Reading::from("24.04"));
        assert_eq!(r["ID"], Reading::from("ubuntu"));
        assert_eq!(r["X"], Reading::from("a b"));
        assert_eq!(r["Y"], Reading::from("say \"hi\""));
    }

    #[test]
    fn cmdline_pairs_flags_quotes_and_repeats() {
        let c = parse_cmdline(
            "BOOT_IMAGE=/vmlinuz root=UUID=abc ro quiet console=tty0 console=ttyS0 foo=\"a b\"\n",
        );
        assert_eq!(c["root"], Reading::from("UUID=abc"));
        assert_eq!(c["ro"], Reading::Bool(true));
        assert_eq!(c["console"], Reading::from("tty0,ttyS0"));
        assert_eq!(c["foo"], Reading::from("a b"));
    }

    #[test]
    fn secrets_on_the_command_line_are_redacted_visibly() {
        let sub = redact::subtype(Subtype::new(
            "grub",
            parse_cmdline(
                "ro registry_token=abc123 x=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.abcdefghijkl \
                 -- --addr 0.0.0.0:2024 --password hunter2 --quiet --api-token",
            ),
        ));
        let r = || Reading::from(redact::REDACTED);
        assert_eq!(sub.data["registry_token"], r());
        assert_eq!(sub.data["x"], r());
        assert_eq!(sub.data["ro"], Reading::Bool(true));
        // After `--`: init's arguments, one reading, never kernel parameters.
        assert_eq!(
            sub.data[INIT_ARGS],
            Reading::from("--addr 0.0.0.0:2024 --password [REDACTED] --quiet --api-token")
        );
        for not_kernel in ["--addr", "0.0.0.0:2024", "--password", "--quiet", "hunter2"] {
            assert!(!sub.data.contains_key(not_kernel), "{not_kernel}");
        }
        assert_eq!(sub.context["redacted"], "--, registry_token, x");
    }

    #[test]
    fn init_arguments_after_a_bare_dash_dash_are_one_reading() {
        let c = parse_cmdline("ro quiet -- single init=/bin/sh\n");
        assert_eq!(c["ro"], Reading::Bool(true));
        assert_eq!(c[INIT_ARGS], Reading::from("single init=/bin/sh"));
        assert!(!c.contains_key("single") && !c.contains_key("init"));
        // `--` at the end: init gets nothing; a quoted "a -- b" is a value.
        let c = parse_cmdline("ro --");
        assert_eq!(c[INIT_ARGS], Reading::from(""));
        let c = parse_cmdline("x=\"a -- b\"");
        assert_eq!(c["x"], Reading::from("a -- b"));
        assert!(!c.contains_key(INIT_ARGS));
    }
}
