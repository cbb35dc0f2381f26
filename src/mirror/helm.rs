//! Running `helm` for the air-gap work: `helm template` to render a chart
//! with a bundle's values, `helm pull` to vendor it. Every run has a
//! deadline; the child runs in its own process group, is killed at the
//! deadline or when a held-back signal arrives, and always reaped (through
//! [`crate::collector::process::run_with`]).
//! Its output is capped. Helm's own temporary files (`helm pull --untar`
//! unpacks in `$TMPDIR/helm-*`, which a killed helm leaves behind) go into
//! a directory the caller gives, inside its own temporary directory, so
//! they are removed with it on every path. Errors carry their class: a helm that is missing is
//! unavailable (exit 6), one that runs past its deadline a timeout (exit 5).
//! When helm fails, its stderr says why ([`classify`]): a chart that fails
//! to render with the bundle's values is invalid input (exit 2), a chart or
//! version the repository does not hold not found (3), credentials the
//! repository refuses unauthorized (4), a repository that cannot be reached
//! unavailable (6), as is any other failure; the message is helm's own,
//! trimmed to its informative lines.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::collector::process::{self, Failure};
use crate::collector::redact;
use crate::error::{Class, Classify};

/// How long one helm run may take unless `--helm-timeout` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "helm is needed to {purpose} but {reason}; install helm 3, or name it with --helm PATH"
    )]
    Missing {
        purpose: &'static str,
        reason: String,
    },
    #[error("{what}: helm did not finish within {}s", .timeout.as_secs())]
    Timeout { what: String, timeout: Duration },
    #[error("{what}: {reason}")]
    Failed {
        what: String,
        class: Class,
        reason: String,
    },
    #[error("{what}: {reason}")]
    Output { what: String, reason: String },
    #[error("{what}: interrupted by {signal}; helm was stopped")]
    Interrupted { what: String, signal: &'static str },
}

impl Classify for Error {
    fn class(&self) -> Class {
        match self {
            Error::Missing { .. } => Class::Unavailable,
            Error::Failed { class, .. } => *class,
            Error::Timeout { .. } => Class::Timeout,
            Error::Output { .. } => Class::InvalidInput,
            // Reached only when the signal does not end aicr.
            Error::Interrupted { .. } => Class::Internal,
        }
    }
}

/// The helm binary and the deadline of each run.
#[derive(Clone, Debug)]
pub struct Helm {
    pub program: PathBuf,
    pub timeout: Duration,
}

/// Where a chart comes from, as helm takes it.
#[derive(Clone, Debug)]
pub enum ChartSource<'a> {
    /// `CHART --repo URL`
    Repo { url: &'a str, chart: &'a str },
    /// `oci://host/path/chart`
    Oci(String),
    /// A chart archive or directory on disk.
    Local(&'a Path),
}

impl<'a> ChartSource<'a> {
    /// The chart's arguments to helm: `CHART --repo URL`, the OCI
    /// reference (with `--plain-http` for a registry on this machine), or
    /// the path of a local chart.
    fn args(&self) -> Vec<Cow<'_, str>> {
        match self {
            ChartSource::Repo { url, chart } => {
                vec![(*chart).into(), "--repo".into(), (*url).into()]
            }
            ChartSource::Oci(r) => std::iter::once(r.as_str())
                .chain(plain_http_args(r).iter().copied())
                .map(Cow::from)
                .collect(),
            ChartSource::Local(p) => vec![p.to_string_lossy()],
        }
    }
}

/// `--plain-http` for a chart in an OCI registry on this machine
/// (127.0.0.1, ::1, localhost): a local mirror or test registry. Any other
/// registry is reached over TLS.
fn plain_http_args(reference: &str) -> &'static [&'static str] {
    let rest = reference.strip_prefix("oci://").unwrap_or(reference);
    let authority = rest.split('/').next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.split(':').next().unwrap_or(""),
    };
    if matches!(host, "127.0.0.1" | "::1" | "localhost") {
        &["--plain-http"]
    } else {
        &[]
    }
}

impl Helm {
    /// `program` when given (`--helm PATH`), else `helm` from `PATH`.
    pub fn find(
        program: Option<&Path>,
        timeout: Duration,
        purpose: &'static str,
    ) -> Result<Helm, Error> {
        let program = match program {
            Some(p) => {
                if !p.is_file() {
                    return Err(Error::Missing {
                        purpose,
                        reason: format!("--helm {} is not a file", p.display()),
                    });
                }
                p.to_path_buf()
            }
            None => std::env::var_os("PATH")
                .iter()
                .flat_map(std::env::split_paths)
                .map(|d| d.join("helm"))
                .find(|p| p.is_file())
                .ok_or_else(|| Error::Missing {
                    purpose,
                    reason: "it is not on PATH".into(),
                })?,
        };
        Ok(Helm { program, timeout })
    }

    /// Runs helm with `tmp` (an empty directory) as its TMPDIR.
    fn run(&self, what: &str, args: &[&str], tmp: &Path) -> Result<String, Error> {
        let failed = |class, reason| Error::Failed {
            what: what.to_string(),
            class,
            reason,
        };
        let tmp_dir = tmp.join("tmp");
        std::fs::create_dir(&tmp_dir).map_err(|e| Error::Output {
            what: what.to_string(),
            reason: format!("cannot create {}: {e}", tmp_dir.display()),
        })?;
        let env = [("TMPDIR", tmp_dir.as_path())];
        match process::run_env(&self.program, args, None, self.timeout, &env) {
            Ok(out) => String::from_utf8(out.stdout).map_err(|_| Error::Output {
                what: what.to_string(),
                reason: "helm printed text that is not UTF-8".into(),
            }),
            Err(Failure::Timeout) => Err(Error::Timeout {
                what: what.to_string(),
                timeout: self.timeout,
            }),
            Err(Failure::Spawn(e)) => Err(failed(
                Class::Unavailable,
                format!("cannot run {}: {e}", self.program.display()),
            )),
            Err(Failure::Overflow) => Err(failed(
                Class::Unavailable,
                format!("helm printed more than {} MiB", process::MAX_STDOUT >> 20),
            )),
            Err(Failure::Exit { status, stderr, .. }) => {
                // Classified as helm said it, shown redacted (which may
                // hide a word: `basic credential` reads as a credential).
                let said = informative(&stderr.text);
                let (class, heading) = classify(&said);
                let said = redact::text(&said);
                let heading =
                    heading.map_or_else(|| format!("helm failed ({status})"), String::from);
                Err(failed(class, format!("{heading}: {said}")))
            }
            Err(Failure::Interrupted(signal)) => Err(Error::Interrupted {
                what: what.to_string(),
                signal,
            }),
            Err(Failure::Other(reason)) => Err(failed(Class::Internal, reason)),
        }
    }

    /// `helm template`: the chart rendered with `values_file`, as YAML text.
    /// `work` is a temporary directory of the caller's (helm's TMPDIR goes
    /// inside it).
    pub fn template(
        &self,
        release: &str,
        namespace: &str,
        source: &ChartSource,
        version: &str,
        values_file: &Path,
        work: &Path,
    ) -> Result<String, Error> {
        let values = values_file.to_string_lossy();
        let chart = source.args();
        let mut args = vec!["template", release];
        args.extend(chart.iter().map(AsRef::as_ref));
        if !matches!(source, ChartSource::Local(_)) {
            args.extend(["--version", version]);
        }
        args.extend(["--namespace", namespace, "--values", &values]);
        args.extend(["--skip-tests", "--include-crds"]);
        self.run(&format!("rendering the chart of {release}"), &args, work)
    }

    /// `helm pull` into `work/chart`, `work` an empty temporary directory
    /// of the caller's (helm's TMPDIR goes inside it); `untar` unpacks it
    /// there. Returns the one entry helm wrote.
    pub fn pull(
        &self,
        component: &str,
        source: &ChartSource,
        version: &str,
        work: &Path,
        untar: bool,
    ) -> Result<PathBuf, Error> {
        let what = format!("pulling the chart of {component}");
        let dest = work.join("chart");
        std::fs::create_dir(&dest).map_err(|e| Error::Output {
            what: what.clone(),
            reason: format!("cannot create {}: {e}", dest.display()),
        })?;
        let dest = dest.as_path();
        let dest_s = dest.to_string_lossy();
        if let ChartSource::Local(_) = source {
            return Err(Error::Output {
                what,
                reason: "a local chart is not pulled".into(),
            });
        }
        let chart = source.args();
        let mut args = vec!["pull"];
        args.extend(chart.iter().map(AsRef::as_ref));
        args.extend(["--version", version]);
        if untar {
            args.extend(["--untar", "--untardir", &dest_s]);
        } else {
            args.extend(["--destination", &dest_s]);
        }
        self.run(&what, &args, work)?;
        let entries: Vec<PathBuf> = std::fs::read_dir(dest)
            .and_then(|d| d.map(|e| e.map(|e| e.path())).collect())
            .map_err(|e| Error::Output {
                what: what.clone(),
                reason: format!("cannot read {}: {e}", dest.display()),
            })?;
        match entries.as_slice() {
            [one] => Ok(one.clone()),
            _ => Err(Error::Output {
                what,
                reason: format!(
                    "helm pull wrote {} entries into {}, expected one chart",
                    entries.len(),
                    dest.display()
                ),
            }),
        }
    }
}

/// The lines of helm's stderr that say what went wrong: from its first
/// `Error:` line on (warnings before it dropped), without the `Error: `
/// prefix and helm's hint about `--debug`.
fn informative(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .collect();
    let start = lines
        .iter()
        .position(|l| l.starts_with("Error:"))
        .unwrap_or(0);
    let kept: Vec<&str> = lines[start..]
        .iter()
        .filter(|l| !l.starts_with("Use --debug flag"))
        .map(|l| l.strip_prefix("Error: ").unwrap_or(l))
        .collect();
    if kept.is_empty() {
        "helm said nothing on stderr".into()
    } else {
        kept.join("\n")
    }
}

/// The class of a helm failure from what it said, and a heading for the
/// message; `None` when nothing tells (unavailable). Checked in this
/// order, so a template's own message (`fail "not found"`) stays a render
/// failure and a refused connection is never read as a missing chart.
pub fn classify(said: &str) -> (Class, Option<&'static str>) {
    let text = said.to_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| text.contains(n));
    // A status code as a word of its own, not a part of a port or digest.
    let status = |code: &str| {
        text.split(|c: char| !c.is_ascii_alphanumeric())
            .any(|w| w == code)
    };
    if has(&[
        "execution error at (",
        "parse error at (",
        "yaml parse error on",
        "values don't meet the specifications of the schema",
        "error converting yaml to json",
        "nil pointer evaluating",
    ]) || text.starts_with("template: ")
    {
        return (
            Class::InvalidInput,
            Some("the chart fails to render with the bundle's values"),
        );
    }
    if status("401")
        || status("403")
        || has(&[
            "unauthorized",
            "forbidden",
            "authentication required",
            "basic credential not found",
            "access denied",
            "denied:",
        ])
    {
        return (
            Class::Unauthorized,
            Some("the chart repository refused the credentials"),
        );
    }
    if status("429") || has(&["toomanyrequests", "too many requests"]) {
        return (
            Class::RateLimited,
            Some("the chart repository asks to slow down"),
        );
    }
    if has(&[
        "connection refused",
        "no such host",
        "i/o timeout",
        "deadline exceeded",
        "network is unreachable",
        "no route to host",
        "connection reset",
        "tls handshake timeout",
        "server misbehaving",
    ]) {
        return (
            Class::Unavailable,
            Some("the chart repository cannot be reached"),
        );
    }
    if status("404") || has(&["not found", "no chart version found", "no chart name found"]) {
        return (
            Class::NotFound,
            Some("the chart repository does not hold this chart or version"),
        );
    }
    (Class::Unavailable, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helm_failures_are_classified_from_what_helm_said() {
        // Messages of helm 4.1, as it printed them for the test charts.
        for (stderr, class) in [
            ("Error: execution error at (broken/templates/cm.yaml:1:35): boom\n\nUse --debug flag to render out invalid YAML\n", Class::InvalidInput),
            ("Error: execution error at (b/templates/x.yaml:2:3): image not found\n", Class::InvalidInput),
            ("Error: values don't meet the specifications of the schema(s) in the following chart(s):\nbroken:\n- at '/mode': got number, want string\n", Class::InvalidInput),
            ("Error: template: b/templates/x.yaml:3:14: executing \"b/templates/x.yaml\" at <.Values.a.b>: nil pointer evaluating interface {}.b\n", Class::InvalidInput),
            ("Error: chart \"broken\" version \"9.9.9\" not found in http://127.0.0.1:38123 repository\n", Class::NotFound),
            ("Error: looks like \"http://127.0.0.1:38123/sub\" is not a valid chart repository or cannot be reached: failed to fetch http://127.0.0.1:38123/sub/index.yaml : 404 File not found\n", Class::NotFound),
            ("Error: failed to perform \"FetchReference\" on source: 127.0.0.1:38931/charts/broken:9.9.9: not found\n", Class::NotFound),
            ("Error: looks like \"http://127.0.0.1:1\" is not a valid chart repository or cannot be reached: Get \"http://127.0.0.1:1/index.yaml\": dial tcp 127.0.0.1:1: connect: connection refused\n", Class::Unavailable),
            ("Error: looks like \"http://x.invalid\" is not a valid chart repository or cannot be reached: Get \"http://x.invalid/index.yaml\": dial tcp: lookup x.invalid on 10.0.0.53:53: no such host\n", Class::Unavailable),
            ("Error: failed to perform \"FetchReference\" on source: GET \"http://127.0.0.1:38931/v2/charts/broken/manifests/0.1.0\": basic credential not found\n", Class::Unauthorized),
            ("Error: looks like \"http://127.0.0.1:40401\" is not a valid chart repository or cannot be reached: failed to fetch http://127.0.0.1:40401/index.yaml : 401 Unauthorized\n", Class::Unauthorized),
            ("Error: looks like the repo is down\n", Class::Unavailable),
        ] {
            let said = informative(stderr);
            assert_eq!(classify(&said).0, class, "{stderr}");
            assert!(!said.starts_with("Error:") && !said.contains("--debug"), "{said}");
        }
        // A port that holds 404 or 401 is not a status.
        assert_eq!(
            classify("Get \"http://127.0.0.1:40401/index.yaml\": connect: connection refused").0,
            Class::Unavailable
        );
        assert_eq!(
            informative(
                "level=WARN msg=x\nError: a\nb\n\nUse --debug flag to render out invalid YAML\n"
            ),
            "a\nb"
        );
        assert_eq!(informative(""), "helm said nothing on stderr");
    }

    #[test]
    fn plain_http_only_on_this_machine() {
        for r in [
            "oci://127.0.0.1:5000/charts/x",
            "oci://localhost/x",
            "oci://[::1]:5000/x",
        ] {
            assert_eq!(plain_http_args(r), ["--plain-http"], "{r}");
        }
        for r in [
            "oci://ghcr.io/nvidia/x",
            "oci://127.0.0.1.example.com/x",
            "oci://10.0.0.1:5000/x",
        ] {
            assert!(plain_http_args(r).is_empty(), "{r}");
        }
    }
}
