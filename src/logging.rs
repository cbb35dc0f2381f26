//! Logging to stderr, in the three modes of Go aicr: concise lines by default
//! (`warning: …`, `error: …`), full text with timestamps and module names under
//! `--debug`, JSON lines under `--log-json`. Colour only when stderr is a
//! terminal and NO_COLOR is unset. Errors that end a command go through here
//! too, so `--log-json` makes them JSON as well. Writing to stderr never
//! fails a command and never panics: when stderr is closed or a broken pipe,
//! the lines are dropped.

use std::fmt;
use std::io::{IsTerminal, Write};

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::error::{self, Class};

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

/// The one rule for on/off switches (`--debug`, `--log-json`) and their
/// environment variables (`AICR_DEBUG`, `AICR_LOG_JSON`): case-insensitive
/// `1`/`true`/`yes`/`on`/`y`/`t` are on; empty, `0`/`false`/`no`/`off`/`n`/`f`
/// are off; anything else is refused. clap parses the flags with it, and main
/// reads the environment with it when the command line did not parse.
pub fn parse_switch(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" | "y" | "t" => Ok(true),
        "" | "0" | "false" | "no" | "off" | "n" | "f" => Ok(false),
        _ => Err(format!(
            "{:?} is not on or off; use true or false (also 1/0, yes/no, on/off)",
            error::excerpt(s)
        )),
    }
}

/// Stderr that drops what it cannot write: logging must never fail or
/// panic because the reader of stderr went away.
#[derive(Clone, Copy, Debug, Default)]
pub struct QuietStderr;

impl Write for QuietStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

/// Writes text to stderr, dropping it when stderr cannot be written.
pub fn stderr_text(text: &str) {
    let _ = QuietStderr.write_all(text.as_bytes());
}

/// True when colour may be written to stderr.
pub fn colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

pub fn init(mode: Mode) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let builder = tracing_subscriber::fmt()
        .with_writer(|| QuietStderr)
        .log_internal_errors(false);
    // Only aicr's own events: the Kubernetes client's libraries (kube,
    // hyper, tower, rustls) log their own view of a failure that aicr
    // already reports in its words.
    let own = tracing_subscriber::filter::Targets::new().with_target("aicr", Level::DEBUG);
    let _ = match mode {
        Mode::Concise => builder
            .with_max_level(Level::INFO)
            .event_format(Concise { colour: colour() })
            .finish()
            .with(own)
            .try_init(),
        Mode::Debug => builder
            .with_max_level(Level::DEBUG)
            .with_ansi(colour())
            // The source is the module (`aicr::collector::os`), never a
            // file path: file!() is absolute when built from a registry,
            // and would print the build machine's paths.
            .with_target(true)
            .with_file(false)
            .with_line_number(false)
            .finish()
            .with(own)
            .try_init(),
        Mode::Json => builder
            .with_max_level(Level::INFO)
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_target(false)
            .finish()
            .with(own)
            .try_init(),
    };
}

/// Reports the error that ends the command.
pub fn report_error(mode: Mode, err: &error::Error) {
    let class = err.class();
    let message = format!("{err:#}");
    match mode {
        Mode::Concise => {
            let (on, off) = if colour() {
                ("\x1b[1;31m", "\x1b[0m")
            } else {
                ("", "")
            };
            stderr_text(&format!("{on}error{off}: {message}\n"));
        }
        _ => tracing::error!(
            class = class.name(),
            exit_code = class.exit_code(),
            "{message}"
        ),
    }
}

/// Reports a command-line parse error, before logging was set up. Under
/// JSON logs it goes through the same logger as every other error, so it
/// has the same fields (`timestamp`, `level`, `message`, `class`,
/// `exit_code`).
pub fn report_usage_error(json: bool, rendered: &str) {
    if json {
        init(Mode::Json);
        let class = Class::InvalidInput;
        tracing::error!(
            class = class.name(),
            exit_code = class.exit_code(),
            "{}",
            rendered.trim_end()
        );
    } else {
        stderr_text(rendered);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switches_have_one_rule() {
        for on in ["1", "true", "TRUE", "Yes", "on", "y", "t", " true "] {
            assert_eq!(parse_switch(on), Ok(true), "{on:?}");
        }
        for off in ["", "0", "false", "False", "no", "OFF", "n", "f"] {
            assert_eq!(parse_switch(off), Ok(false), "{off:?}");
        }
        assert_eq!(
            parse_switch("banana").unwrap_err(),
            "\"banana\" is not on or off; use true or false (also 1/0, yes/no, on/off)"
        );
    }
}
