//! `aicr verify DIR`: checks a bundle against its `checksums.txt` and lists
//! missing, changed and extra files; `aicr verify oci://...` pulls an OCI
//! bundle and checks it the same way (see `bundler::oci`). Findings exit 1.

use std::path::{Path, PathBuf};

use crate::error::{Class, Error, Result};
use clap::{Args, ValueEnum};

use super::ExitStatus;
use crate::bundler::{checksum, oci};
use crate::serializer::{self, Output};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum VerifyFormat {
    Text,
    Json,
    Yaml,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The bundle directory, or an OCI bundle: oci://REGISTRY/REPOSITORY:TAG (or @sha256:DIGEST)
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,

    /// Docker/Podman auth file with the registry's credentials [default: $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json, ~/.docker/config.json]
    #[arg(long, value_name = "FILE", help_heading = "OCI")]
    pub registry_auth: Option<PathBuf>,

    /// Reach the registry over plain HTTP (always so for one on 127.0.0.1, ::1 or localhost)
    #[arg(long, help_heading = "OCI")]
    pub plain_http: bool,

    /// Report format
    #[arg(
        short = 't',
        long,
        value_enum,
        default_value = "text",
        help_heading = "Output"
    )]
    pub format: VerifyFormat,
}

pub fn run(args: VerifyArgs) -> Result<ExitStatus> {
    let text = args.dir.to_string_lossy();
    if text.starts_with("oci://") {
        // Held back (from before any thread or helper starts) while the
        // bundle is pulled into a temporary directory, which goes before a
        // signal ends aicr.
        let signals = crate::bundler::output::HeldSignals::hold();
        let result = oci::Target::parse(&text, args.plain_http, false).and_then(|target| {
            let creds =
                oci::credentials(target.reference.registry(), args.registry_auth.as_deref())?;
            Ok((target, creds))
        });
        let result = result
            .map_err(crate::error::Error::from)
            .and_then(|(target, creds)| check_oci(&target, &creds, args.format));
        signals.release(|signal| {
            tracing::error!(
                "interrupted by {signal}: stopped pulling {text}; its temporary copy was removed"
            )
        });
        return result;
    }
    if args.registry_auth.is_some() || args.plain_http {
        return Err(crate::error::UsageError(
            "--registry-auth and --plain-http apply to an OCI bundle (oci://...), not a directory"
                .into(),
        )
        .into());
    }
    check(&args.dir, args.format)
}

/// Pulls an OCI bundle into a temporary directory and verifies it: every
/// blob against its digest, the files against `checksums.txt`, and
/// `checksums.txt` against the manifest's annotation.
fn check_oci(
    target: &oci::Target,
    creds: &oci::Credentials,
    format: VerifyFormat,
) -> Result<ExitStatus> {
    let temp = tempfile::Builder::new()
        .prefix("aicr-verify-")
        .tempdir()
        .map_err(|e| Error::new(Class::Internal, e))?;
    let pulled = oci::pull(target, creds, temp.path(), OCI_TIMEOUT)?;
    tracing::info!("pulled {} ({})", target.shown, pulled.digest);
    let mut report = checksum::verify(temp.path())?;
    for t in &pulled.tampered {
        report.missing.retain(|m| m != t);
        if !report.changed.contains(t) {
            report.changed.push(t.clone());
        }
    }
    report.changed.sort();
    let on_disk = std::fs::read_to_string(temp.path().join(crate::bundler::output::MARKER))
        .unwrap_or_default();
    if checksum::parse(&on_disk, crate::bundler::output::MARKER).ok() != Some(pulled.checksums) {
        report.changed.push(format!(
            "{} (differs from the manifest's {} annotation)",
            crate::bundler::output::MARKER,
            oci::CHECKSUMS_ANNOTATION
        ));
    }
    report.verified =
        report.missing.is_empty() && report.changed.is_empty() && report.extra.is_empty();
    emit(&report, format)
}

/// How long a pull or push of an OCI bundle may take.
pub const OCI_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

pub fn check(dir: &Path, format: VerifyFormat) -> Result<ExitStatus> {
    let report = checksum::verify(dir)?;
    emit(&report, format)
}

fn emit(report: &checksum::Report, format: VerifyFormat) -> Result<ExitStatus> {
    let value = || serde_json::to_value(report).map_err(|e| Error::new(Class::Internal, e));
    let text = match format {
        VerifyFormat::Json => serializer::to_json(&value()?),
        VerifyFormat::Yaml => serializer::yaml::to_string(&value()?),
        VerifyFormat::Text => {
            let mut s = String::new();
            for (what, list) in [
                ("changed", &report.changed),
                ("missing", &report.missing),
                ("extra", &report.extra),
            ] {
                for p in list {
                    s.push_str(&format!("{what:<8} {p}\n"));
                }
            }
            if report.verified {
                s.push_str(&format!(
                    "verified: {} files match checksums.txt\n",
                    report.files
                ));
            } else {
                s.push_str(&format!(
                    "FAILED: {} changed, {} missing, {} extra ({} files match)\n",
                    report.changed.len(),
                    report.missing.len(),
                    report.extra.len(),
                    report.files
                ));
            }
            s
        }
    };
    let verdict = if report.verified {
        ExitStatus::Success
    } else {
        ExitStatus::Findings
    };
    super::emit_verdict(&Output::Stdout, &text, verdict)
}
