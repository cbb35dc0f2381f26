//! Running `helm` for the air-gap work: `helm template` to render a chart
//! with a bundle's values, `helm pull` to vendor it. Every run has a
//! deadline; the child runs in its own process group, is killed at the
//! deadline and always reaped (through [`crate::collector::process::run`]).
//! Its output is capped. Errors carry their class: a helm that is missing is
//! unavailable (exit 6), one that runs past its deadline a timeout (exit 5),
//! a chart helm cannot fetch or render unavailable (exit 6).

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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
    Failed { what: String, reason: String },
    #[error("{what}: {reason}")]
    Output { what: String, reason: String },
}

impl Classify for Error {
    fn class(&self) -> Class {
        match self {
            Error::Missing { .. } | Error::Failed { .. } => Class::Unavailable,
            Error::Timeout { .. } => Class::Timeout,
            Error::Output { .. } => Class::InvalidInput,
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

    fn run(&self, what: &str, args: &[&str]) -> Result<String, Error> {
        let started = Instant::now();
        crate::collector::process::run(&self.program, args, self.timeout).map_err(|reason| {
            if started.elapsed() >= self.timeout {
                Error::Timeout {
                    what: what.to_string(),
                    timeout: self.timeout,
                }
            } else {
                Error::Failed {
                    what: what.to_string(),
                    reason,
                }
            }
        })
    }

    /// `helm template`: the chart rendered with `values_file`, as YAML text.
    pub fn template(
        &self,
        release: &str,
        namespace: &str,
        source: &ChartSource,
        version: &str,
        values_file: &Path,
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
        self.run(&format!("rendering the chart of {release}"), &args)
    }

    /// `helm pull` into `dest` (an empty directory); `untar` unpacks it
    /// there. Returns the one entry helm wrote.
    pub fn pull(
        &self,
        component: &str,
        source: &ChartSource,
        version: &str,
        dest: &Path,
        untar: bool,
    ) -> Result<PathBuf, Error> {
        let what = format!("pulling the chart of {component}");
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
        self.run(&what, &args)?;
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

#[cfg(test)]
mod tests {
    use super::plain_http_args;

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
