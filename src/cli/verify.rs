//! `aicr verify DIR`: checks a bundle against its `checksums.txt` and lists
//! missing, changed and extra files. Findings exit 1.

use std::path::{Path, PathBuf};

use crate::error::{Class, Error, Result};
use clap::{Args, ValueEnum};

use super::ExitStatus;
use crate::bundler::checksum;
use crate::serializer::{self, Output};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum VerifyFormat {
    Text,
    Json,
    Yaml,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The bundle directory
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,

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
    check(&args.dir, args.format)
}

pub fn check(dir: &Path, format: VerifyFormat) -> Result<ExitStatus> {
    let report = checksum::verify(dir)?;
    let value = || serde_json::to_value(&report).map_err(|e| Error::new(Class::Internal, e));
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
