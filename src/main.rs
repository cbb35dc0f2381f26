//! aicr: AI Cluster Runtime. Parses the command line, sets up logging, runs
//! the command, and maps its outcome to the exit-code table in `error`.

use aicr::{cli, error, logging, serializer};

use std::io::Write;
use std::process::ExitCode;

use cli::config::ParseFailure;

fn main() -> ExitCode {
    let parsed = match cli::config::parse(std::env::args_os().collect()) {
        Ok(parsed) => parsed,
        Err(ParseFailure::Usage(e)) => return parse_failure(&e),
        Err(ParseFailure::Config { error, debug, json }) => {
            let mode = logging::Mode::new(debug, json);
            logging::init(mode);
            return fail(mode, &error);
        }
    };
    let cli = parsed.cli;
    let mode = logging::Mode::new(cli.debug, cli.log_json);
    logging::init(mode);
    for note in &parsed.notes {
        tracing::debug!("config: {note}");
    }
    match cli::run(cli, &parsed.sources) {
        Ok(status) => ExitCode::from(status.code()),
        Err(err) => fail(mode, &err),
    }
}

/// Reports the error that ends the command and gives its exit code; a
/// broken pipe (the reader went away) is success.
fn fail(mode: logging::Mode, err: &error::Error) -> ExitCode {
    if err.is_broken_pipe() {
        return ExitCode::SUCCESS;
    }
    logging::report_error(mode, err);
    ExitCode::from(err.class().exit_code())
}

/// `--help` and `--version` print and succeed, unless stdout cannot take
/// them; anything else clap refused is a usage error.
fn parse_failure(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let json = json_requested();
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        // `aicr recipe --version` prints the same line as `aicr --version`.
        let printed = if e.kind() == ErrorKind::DisplayVersion {
            writeln!(std::io::stdout(), "aicr {}", cli::LONG_VERSION)
        } else {
            e.print()
        };
        let printed = printed.and_then(|()| std::io::stdout().flush());
        return match printed {
            Ok(()) => ExitCode::SUCCESS,
            Err(io) => {
                let mode = logging::Mode::new(false, json);
                logging::init(mode);
                let err = serializer::Error::Write {
                    path: "standard output".into(),
                    io,
                };
                fail(mode, &err.into())
            }
        };
    }
    logging::report_usage_error(json, &e.render().to_string());
    ExitCode::from(error::Class::InvalidInput.exit_code())
}

/// Whether JSON logs were asked for, read from the raw command line and the
/// environment (used when the command line itself did not parse), by the
/// same rule clap applies to the flag.
fn json_requested() -> bool {
    std::env::args_os().any(|a| a == "--log-json")
        || std::env::var("AICR_LOG_JSON").is_ok_and(|v| logging::parse_switch(&v).unwrap_or(false))
}
