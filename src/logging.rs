//! Logging to stderr, in the three modes of Go aicr: concise lines by default
//! (`warning: …`, `error: …`), full text with timestamps and sources under
//! `--debug`, JSON lines under `--log-json`. Colour only when stderr is a
//! terminal and NO_COLOR is unset. Errors that end a command go through here
//! too, so `--log-json` makes them JSON as well.

use std::fmt;
use std::io::IsTerminal;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::error::Class;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Concise,
    Debug,
    Json,
}

impl Mode {
    pub fn new(debug: bool, json: bool) -> Mode {
        match (debug, json) {
            (_, true) => Mode::Json,
            (true, false) => Mode::Debug,
            _ => Mode::Concise,
        }
    }
}

/// True when colour may be written to stderr.
pub fn colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

pub fn init(mode: Mode) {
    let builder = tracing_subscriber::fmt().with_writer(std::io::stderr);
    let _ = match mode {
        Mode::Concise => builder
            .with_max_level(Level::INFO)
            .event_format(Concise { colour: colour() })
            .try_init(),
        Mode::Debug => builder
            .with_max_level(Level::DEBUG)
            .with_ansi(colour())
            .with_file(true)
            .with_line_number(true)
            .try_init(),
        Mode::Json => builder
            .with_max_level(Level::INFO)
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_target(false)
            .try_init(),
    };
}

/// Reports the error that ends the command.
pub fn report_error(mode: Mode, err: &anyhow::Error, class: Class) {
    let message = format!("{err:#}");
    match mode {
        Mode::Concise => {
            let (on, off) = if colour() {
                ("\x1b[1;31m", "\x1b[0m")
            } else {
                ("", "")
            };
            eprintln!("{on}error{off}: {message}");
        }
        _ => tracing::error!(
            class = class.name(),
            exit_code = class.exit_code(),
            "{message}"
        ),
    }
}

/// Reports a command-line parse error before logging is set up.
pub fn report_usage_error(json: bool, rendered: &str) {
    if json {
        let line = serde_json::json!({
            "level": "ERROR",
            "message": rendered.trim_end(),
            "class": Class::InvalidInput.name(),
            "exit_code": Class::InvalidInput.exit_code(),
        });
        eprintln!("{line}");
    } else {
        eprint!("{rendered}");
    }
}

/// `warning: message k=v` / `error: message` / `message k=v`.
struct Concise {
    colour: bool,
}

impl<S, N> FormatEvent<S, N> for Concise
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let (label, code) = match *event.metadata().level() {
            Level::ERROR => ("error: ", "1;31"),
            Level::WARN => ("warning: ", "1;33"),
            Level::INFO => ("", ""),
            _ => ("debug: ", "2"),
        };
        if !label.is_empty() {
            if self.colour {
                write!(writer, "\x1b[{code}m{label}\x1b[0m")?;
            } else {
                writer.write_str(label)?;
            }
        }
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}
