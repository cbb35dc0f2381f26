//! aicr: AI Cluster Runtime. Parses the command line, sets up logging, runs
//! the command, and maps its outcome to the exit-code table in `error`.

use aicr::{cli, error, logging};

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            logging::report_usage_error(json_requested(), &e.render().to_string());
            return ExitCode::from(error::Class::InvalidInput.exit_code());
        }
    };
    let mode = logging::Mode::new(cli.debug, cli.log_json);
    logging::init(mode);
    match cli::run(cli) {
        Ok(status) => ExitCode::from(status.code()),
        Err(err) if error::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            let class = error::classify(&err);
            logging::report_error(mode, &err, class);
            ExitCode::from(class.exit_code())
        }
    }
}

/// Whether JSON logs were asked for, read from the raw command line and the
/// environment (used when the command line itself did not parse).
fn json_requested() -> bool {
    std::env::args_os().any(|a| a == "--log-json")
        || std::env::var("AICR_LOG_JSON")
            .is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false" | "no" | "off"))
}
