//! Running a collector's program (`systemctl`, `nvidia-smi`) so that it can
//! neither hang a snapshot nor outlive it: the child gets its own process
//! group, its stdout and stderr are drained concurrently (stdout capped,
//! stderr kept to a short tail), and at the deadline the whole group is
//! killed and reaped. A guard kills the group when the caller goes away
//! early, [`kill_all`] kills whatever is still running when the collectors'
//! deadline passes, and on Linux the child is also killed when aicr dies.
//! While a command holds SIGINT, SIGTERM and SIGHUP back
//! ([`crate::bundler::output::HeldSignals`]), a wait also ends when one of
//! them arrives: the group is killed and reaped, and the caller cleans up
//! before the signal ends aicr.

use std::collections::BTreeSet;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

/// The most a program may print on stdout.
pub const MAX_STDOUT: usize = 16 << 20;
/// How much of a program's stderr is kept for an error message.
pub const STDERR_KEPT: usize = 2048;
/// How often a wait looks for a held-back signal.
const SIGNAL_POLL: Duration = Duration::from_millis(25);

/// Process groups of the programs running now.
static RUNNING: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());

fn running() -> std::sync::MutexGuard<'static, BTreeSet<i32>> {
    RUNNING.lock().unwrap_or_else(|p| p.into_inner())
}

/// Kills every program a collector still runs (their process groups).
pub fn kill_all() {
    for pgid in running().iter() {
        // SAFETY: kill(2) with a negative pid signals that process group.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
}

/// A started child: killed (its whole group) and reaped when dropped.
struct Guard {
    child: Child,
    pgid: i32,
}

impl Guard {
    fn new(child: Child) -> Guard {
        let pgid = i32::try_from(child.id()).unwrap_or(0);
        if pgid > 0 {
            running().insert(pgid);
        }
        Guard { child, pgid }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.pgid > 0 {
            // SAFETY: kill(2) with a negative pid signals the child's group,
            // which it leads (process_group(0)) and which is not yet reaped.
            unsafe {
                libc::kill(-self.pgid, libc::SIGKILL);
            }
            running().remove(&self.pgid);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The program printed more than [`MAX_STDOUT`] (or its stdout broke).
struct Overflow;

enum Stream {
    Out(Result<Vec<u8>, Overflow>),
    Err(Stderr),
}

/// Runs `program args` and returns its stdout; an error when it cannot
/// start, fails, prints too much or is still running at `timeout`.
pub fn run(program: &Path, args: &[&str], timeout: Duration) -> Result<String, String> {
    let shown = program.display();
    match run_with(program, args, None, timeout) {
        Ok(out) => String::from_utf8(out.stdout)
            .map_err(|_| format!("{shown} printed text that is not UTF-8")),
        Err(Failure::Spawn(e)) => Err(format!(
            "cannot run {shown}: {}",
            super::rootfs::ReadError::from(e)
        )),
        Err(Failure::Timeout) => Err(format!(
            "{shown} did not finish within {}",
            humantime::format_duration(timeout)
        )),
        Err(Failure::Overflow) => Err(format!(
            "{shown} printed more than {} MiB",
            MAX_STDOUT >> 20
        )),
        Err(Failure::Exit { status, stderr, .. }) => Err(format!(
            "{shown} {} failed ({status}): {}",
            args.join(" "),
            super::redact::text(stderr.head.trim())
        )),
        Err(Failure::Interrupted(signal)) => Err(format!("{shown}: interrupted by {signal}")),
        Err(Failure::Other(e)) => Err(e),
    }
}

/// What a program wrote on stderr: its start, and its end when there was
/// more (a failing program often says why last).
#[derive(Debug, Default)]
pub struct Stderr {
    /// The first [`STDERR_KEPT`] bytes.
    pub head: String,
    /// The head and up to [`STDERR_KEPT`] bytes more: the rest, or its
    /// last part after a line `…` when there was more.
    pub text: String,
}

/// What a successful run printed.
#[derive(Debug)]
pub struct Output {
    pub stdout: Vec<u8>,
    pub stderr: Stderr,
}

/// How a run went wrong, for callers that classify it.
#[derive(Debug)]
pub enum Failure {
    /// The program could not be started (not there, not executable).
    Spawn(std::io::Error),
    /// Still running at the deadline: its group was killed and reaped.
    Timeout,
    /// It printed more than [`MAX_STDOUT`] on stdout.
    Overflow,
    /// It exited unsuccessfully (or was killed by a signal).
    Exit {
        status: std::process::ExitStatus,
        /// Its stdout (capped), which some programs use for errors.
        stdout: Vec<u8>,
        stderr: Stderr,
    },
    /// A held-back signal arrived (its name): the group was killed and
    /// reaped.
    Interrupted(&'static str),
    /// Anything else (a thread that cannot start, a failed wait).
    Other(String),
}

/// Runs `program args` with `input` written to its stdin (closed after;
/// stdin is /dev/null without input) and returns what it printed.
pub fn run_with(
    program: &Path,
    args: &[&str],
    input: Option<Vec<u8>>,
    timeout: Duration,
) -> Result<Output, Failure> {
    run_env(program, args, input, timeout, &[])
}

/// [`run_with`], with `env` added to the program's environment.
pub fn run_env(
    program: &Path,
    args: &[&str],
    input: Option<Vec<u8>>,
    timeout: Duration,
    env: &[(&str, &Path)],
) -> Result<Output, Failure> {
    let started = Instant::now();
    let deadline = started.checked_add(timeout).unwrap_or(started);
    let shown = program.display();
    let mut cmd = Command::new(program);
    cmd.args(args)
        .envs(env.iter().copied())
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    #[cfg(target_os = "linux")]
    // SAFETY: prctl(2) is async-signal-safe and touches only the child.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(Failure::Spawn)?;
    let mut guard = Guard::new(child);
    if let (Some(mut stdin), Some(input)) = (guard.child.stdin.take(), input) {
        // In a thread: a program that never reads its input must not
        // block us past the deadline. A program that exits without reading
        // it all breaks the pipe, which is its business.
        spawn(move || {
            use std::io::Write;
            let _ = stdin.write_all(&input);
        })
        .map_err(Failure::Other)?;
    }
    let (tx, rx) = mpsc::channel();
    if let Some(mut out) = guard.child.stdout.take() {
        let tx = tx.clone();
        spawn(move || {
            let mut buf = Vec::new();
            let r = match (&mut out).take(MAX_STDOUT as u64 + 1).read_to_end(&mut buf) {
                Ok(_) if buf.len() > MAX_STDOUT => Err(Overflow),
                Ok(_) => Ok(buf),
                Err(_) => Err(Overflow),
            };
            let overflow = r.is_err();
            let _ = tx.send(Stream::Out(r));
            if overflow {
                // Keep the pipe empty until the program is killed.
                let _ = std::io::copy(&mut out, &mut std::io::sink());
            }
        })
        .map_err(Failure::Other)?;
    }
    if let Some(mut err) = guard.child.stderr.take() {
        let tx = tx.clone();
        spawn(move || {
            // Drained to the end, so a chatty program never blocks on a
            // full pipe; only the start and the end are kept.
            let mut head = Vec::new();
            let mut tail: std::collections::VecDeque<u8> = std::collections::VecDeque::new();
            let mut cut = false;
            let mut chunk = [0u8; 8192];
            loop {
                match err.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => {
                        let room = STDERR_KEPT.saturating_sub(head.len()).min(n);
                        head.extend_from_slice(&chunk[..room]);
                        tail.extend(&chunk[room..n]);
                        while tail.len() > STDERR_KEPT {
                            tail.pop_front();
                            cut = true;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            let tail: Vec<u8> = tail.into_iter().collect();
            let tail = String::from_utf8_lossy(&tail);
            let text = if cut {
                format!("{head}\n…\n{tail}")
            } else {
                format!("{head}{tail}")
            };
            let stderr = Stderr { head, text };
            let _ = tx.send(Stream::Err(stderr));
        })
        .map_err(Failure::Other)?;
    }
    drop(tx);
    let (mut stdout, mut stderr) = (None, Stderr::default());
    let mut overflow = false;
    loop {
        if let Some(s) = crate::bundler::output::pending_signal() {
            return Err(Failure::Interrupted(crate::bundler::output::signal_name(s)));
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(Failure::Timeout);
        }
        let left = deadline.saturating_duration_since(now).min(SIGNAL_POLL);
        match rx.recv_timeout(left) {
            Ok(Stream::Out(Ok(out))) => stdout = Some(out),
            Ok(Stream::Out(Err(Overflow))) => overflow = true,
            Ok(Stream::Err(e)) => stderr = e,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
        }
        if overflow {
            return Err(Failure::Overflow);
        }
    }
    let status = loop {
        match guard.child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => return Err(Failure::Timeout),
            Ok(None) if crate::bundler::output::pending_signal().is_some() => {
                let s = crate::bundler::output::pending_signal().unwrap_or(libc::SIGINT);
                return Err(Failure::Interrupted(crate::bundler::output::signal_name(s)));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(e) => return Err(Failure::Other(format!("waiting for {shown}: {e}"))),
        }
    };
    drop(guard);
    let stdout = stdout.unwrap_or_default();
    if !status.success() {
        return Err(Failure::Exit {
            status,
            stdout,
            stderr,
        });
    }
    Ok(Output { stdout, stderr })
}

fn spawn(f: impl FnOnce() + Send + 'static) -> Result<(), String> {
    std::thread::Builder::new()
        .name("collector-pipe".into())
        .spawn(f)
        .map(|_| ())
        .map_err(|e| format!("cannot start a thread: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script(body: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("prog");
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        (dir, p)
    }

    /// `run`, retried while another test's fork holds the fresh script open.
    fn run_retrying(p: &Path, timeout: Duration) -> Result<String, String> {
        for _ in 0..40 {
            match run(p, &[], timeout) {
                Err(e) if e.contains("Text file busy") => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                other => return other,
            }
        }
        run(p, &[], timeout)
    }

    #[test]
    fn floods_of_stderr_do_not_block() {
        // 1 MiB on stderr, far more than a pipe holds.
        let (_d, p) = script("head -c 1048576 /dev/zero | tr '\\0' x >&2; echo done");
        let t = Instant::now();
        assert_eq!(run_retrying(&p, Duration::from_secs(20)).unwrap(), "done\n");
        assert!(t.elapsed() < Duration::from_secs(10));
    }

    /// Whether process `pid` has ended (gone, or a zombie) within two
    /// seconds.
    fn ended_soon(pid: i32) -> bool {
        (0..100).any(|_| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let dead = stat.is_empty() || stat.contains(") Z ");
            if !dead {
                std::thread::sleep(Duration::from_millis(20));
            }
            dead
        })
    }

    #[test]
    fn a_held_signal_stops_the_wait_and_kills_the_program() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let (_d, p) = script(&format!(
            "sleep 30 &\necho $! > '{}'\nwait",
            pidfile.display()
        ));
        let held = crate::bundler::output::HeldSignals::hold();
        // Sent to this thread only, once the script has started its child,
        // so no other test sees it.
        // SAFETY: pthread_self has no preconditions.
        let me = unsafe { libc::pthread_self() } as usize;
        let watch = pidfile.clone();
        std::thread::spawn(move || {
            for _ in 0..1000 {
                if std::fs::read_to_string(&watch).is_ok_and(|s| s.ends_with('\n')) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            // SAFETY: the test thread lives until it has taken the signal.
            unsafe { libc::pthread_kill(me as libc::pthread_t, libc::SIGHUP) };
        });
        let t = Instant::now();
        let mut got = run_with(&p, &[], None, Duration::from_secs(20));
        for _ in 0..40 {
            match &got {
                Err(Failure::Spawn(e)) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                    std::thread::sleep(Duration::from_millis(50));
                    got = run_with(&p, &[], None, Duration::from_secs(20));
                }
                _ => break,
            }
        }
        // Taken, so that ending the hold does not deliver it.
        // SAFETY: sigset_t initialised by sigemptyset; sigtimedwait takes
        // the pending SIGHUP of this thread.
        let taken = unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGHUP);
            let zero = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            libc::sigtimedwait(&set, std::ptr::null_mut(), &zero)
        };
        drop(held);
        assert_eq!(taken, libc::SIGHUP);
        assert!(
            matches!(got, Err(Failure::Interrupted("SIGHUP"))),
            "{got:?}"
        );
        assert!(t.elapsed() < Duration::from_secs(10));
        // The script's own child went with its group (if it had started).
        if let Some(pid) = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        {
            assert!(ended_soon(pid), "sleep {pid} outlived the signal");
        }
    }

    #[test]
    fn a_hung_program_and_its_children_are_killed_at_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let (_d, p) = script(&format!(
            "sleep 30 &\necho $! > '{}'\nwait",
            pidfile.display()
        ));
        let t = Instant::now();
        // Long enough for a loaded machine to start the script and its child.
        let err = run_retrying(&p, Duration::from_millis(1500)).unwrap_err();
        assert!(err.ends_with("did not finish within 1s 500ms"), "{err}");
        assert!(t.elapsed() < Duration::from_secs(5));
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The grandchild is gone (reaped by init, or a zombie for a moment).
        assert!(ended_soon(pid), "sleep {pid} outlived the deadline");
    }

    #[test]
    fn failures_carry_a_short_redacted_stderr() {
        let (_d, p) =
            script("echo 'token: hunter2' >&2; head -c 100000 /dev/zero | tr '\\0' y >&2; exit 3");
        let err = run_retrying(&p, Duration::from_secs(20)).unwrap_err();
        assert!(
            err.contains("failed (exit status: 3): token: [REDACTED]"),
            "{err}"
        );
        assert!(!err.contains("hunter2"));
        assert!(err.len() < STDERR_KEPT + 200, "{}", err.len());
    }

    #[test]
    fn input_reaches_the_program_and_a_failure_keeps_stdout_and_the_end_of_stderr() {
        let (_d, p) = script(
            "read -r x; echo \"got $x\"; head -c 10000 /dev/zero | tr '\\0' y >&2; echo 'the reason' >&2; exit 4",
        );
        let mut got = run_with(&p, &[], Some(b"abc".to_vec()), Duration::from_secs(20));
        for _ in 0..40 {
            match &got {
                Err(Failure::Spawn(e)) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                    std::thread::sleep(Duration::from_millis(50));
                    got = run_with(&p, &[], Some(b"abc".to_vec()), Duration::from_secs(20));
                }
                _ => break,
            }
        }
        let Err(Failure::Exit {
            status,
            stdout,
            stderr,
        }) = got
        else {
            panic!("{got:?}");
        };
        assert_eq!(status.code(), Some(4));
        assert_eq!(stdout, b"got abc\n");
        assert_eq!(stderr.head, "y".repeat(STDERR_KEPT));
        assert!(stderr.text.ends_with("yythe reason\n"));
        assert!(stderr.text.contains("\n…\n"));
        assert!(stderr.text.len() < 2 * STDERR_KEPT + 10);
        let missing = run_with(
            Path::new("/nonexistent/prog"),
            &[],
            None,
            Duration::from_secs(1),
        );
        assert!(
            matches!(&missing, Err(Failure::Spawn(e)) if e.kind() == std::io::ErrorKind::NotFound),
            "{missing:?}"
        );
    }

    #[test]
    fn too_much_stdout_is_an_error() {
        let (_d, p) = script("head -c 17000000 /dev/zero");
        let err = run_retrying(&p, Duration::from_secs(20)).unwrap_err();
        assert!(err.ends_with("prog printed more than 16 MiB"), "{err}");
    }
}
