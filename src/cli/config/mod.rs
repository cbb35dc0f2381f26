//! The configuration file and `aicr config show`. This module owns the
//! layering of every command's settings: flags > environment (`AICR_*`,
//! declared with clap's `env` beside each flag) > the `AICRConfig` file >
//! built-in defaults. The file is `--config FILE`, else `$AICR_CONFIG`, else
//! `$XDG_CONFIG_HOME/aicr/config.yaml` (`~/.config/aicr/config.yaml`); only
//! that default location may be missing. Its sections are named after the
//! commands (plus `cluster`, shared by every command with cluster flags, and
//! `global`), and its keys are the flags' long names, so every flag of every
//! command can be set there, and a key that is not a flag is refused.
//!
//! How: the command line is parsed once; for each flag whose value came
//! from neither the command line nor the environment, the file's value is
//! inserted as `--flag=value` right after the subcommand, and the line is
//! parsed again, so clap checks file values exactly as it checks flags.
//! The result, [`Parsed`], also says where each setting came from.
//! `file` reads and checks the file, `layer` lays it under the command
//! line, `show` is `aicr config show`.

mod file;
mod layer;
mod show;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{ArgMatches, Command, CommandFactory, FromArgMatches};

use super::Cli;
use crate::error::{Class, Classify, Error, Result};
use crate::serializer;
use serde_json::Value;

pub use file::ConfigFile;
pub use show::{run, ConfigAction, ConfigArgs, ShowArgs};

/// The `kind` of a configuration file.
pub const CONFIG_KIND: &str = "AICRConfig";

/// The cap on a configuration file, in bytes.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// The section of the global flags (`--debug`, `--log-json`).
pub(crate) const GLOBAL: &str = "global";

/// The section shared by every command that has cluster flags; a
/// command's own section wins over it.
pub(crate) const CLUSTER: &str = "cluster";

/// The ids of the global flags.
const GLOBAL_IDS: [&str; 3] = ["debug", "log_json", "config"];

/// Flags that choose another action rather than set a value: not
/// settings, though they are named flags (section, id).
pub(crate) const ACTIONS: [(&str, &str); 1] = [("bundle", "verify")];

/// Commands that take no settings from the file.
pub(crate) const NOT_CONFIGURABLE: [&str; 3] = ["config", "completion", "help"];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: unknown key {key:?}{line}; allowed {where_}: {allowed}")]
    UnknownKey {
        file: String,
        key: String,
        line: String,
        where_: String,
        allowed: String,
    },
    #[error("{file}: {key}{line}: {what}")]
    BadValue {
        file: String,
        key: String,
        line: String,
        what: String,
    },
    #[error("{file}: {detail} (one of them set in this file; change it, or override it on the command line)")]
    Rejected { file: String, detail: String },
    #[error("unknown command {0:?} for `aicr config show`; commands: {1}")]
    UnknownCommand(String, String),
}

impl Classify for ConfigError {
    fn class(&self) -> Class {
        Class::InvalidInput
    }
}

/// Where the configuration file was named.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileOrigin {
    Flag,
    Env,
    Default,
}

impl FileOrigin {
    fn name(self) -> &'static str {
        match self {
            FileOrigin::Flag => "--config",
            FileOrigin::Env => "env AICR_CONFIG",
            FileOrigin::Default => "default location",
        }
    }
}

/// The configuration file of a run: where it is, and whether it was there.
#[derive(Debug)]
pub struct FileState {
    pub path: Option<PathBuf>,
    pub origin: FileOrigin,
    /// `None` when no file was named and the default location holds none.
    pub file: Option<ConfigFile>,
}

/// Where one setting came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    Flag,
    Env(String),
    File(String),
    Default,
}

impl Origin {
    fn text(&self) -> String {
        match self {
            Origin::Flag => "flag".into(),
            Origin::Env(v) => format!("env {v}"),
            Origin::File(p) => format!("file {p}"),
            Origin::Default => "default".into(),
        }
    }
}

/// One effective setting of a command.
#[derive(Clone, Debug)]
pub struct Setting {
    /// The flag's long name (the key in the file).
    pub key: String,
    pub value: Value,
    pub origin: Origin,
}

/// The sources of a run's settings, for the checks that apply only to
/// flags the user typed (an agent option without `--agent` is refused on
/// the command line, but an `AICR_IMAGE` or a file value is kept for
/// when `--agent` is given).
#[derive(Debug, Default)]
pub struct Sources {
    /// The ids of the arguments given on the command line, and how each
    /// is shown (`--flag`).
    given: BTreeMap<String, String>,
    pub file: Option<FileState>,
}

impl Sources {
    /// Whether the argument `id` (clap's id: the field name) was typed on
    /// the command line, rather than taken from the environment, the file
    /// or a default.
    pub fn typed(&self, id: &str) -> bool {
        self.given.contains_key(id)
    }

    /// The first typed argument of the command other than `ids` and the
    /// global flags, as shown (`--flag`): for a flag that takes no other.
    pub fn typed_besides(&self, ids: &[&str]) -> Option<&str> {
        self.given
            .iter()
            .find(|(id, _)| !ids.contains(&id.as_str()) && !GLOBAL_IDS.contains(&id.as_str()))
            .map(|(_, shown)| shown.as_str())
    }
}

/// A parsed command line with the file laid under it.
pub struct Parsed {
    pub cli: Cli,
    pub sources: Sources,
    /// What came from where, for `--debug`.
    pub notes: Vec<String>,
}

/// Why a command line could not be parsed.
pub enum ParseFailure {
    /// Clap refused the command line itself (or asked for help).
    Usage(clap::Error),
    /// The configuration file was missing, malformed or refused; `debug`
    /// and `json` are the logging switches of the command line.
    Config {
        error: Error,
        debug: bool,
        json: bool,
    },
}

/// The clap command of the whole CLI, built (global flags propagated).
/// An `AICR_*` variable set to the empty string counts as unset, as it
/// always has for the agent's variables.
pub fn command() -> Command {
    let mut cmd = without_empty_env(Cli::command());
    cmd.build();
    cmd
}

fn without_empty_env(cmd: Command) -> Command {
    // The tree is walked only when some variable is set and empty.
    if !std::env::vars_os().any(|(_, v)| v.is_empty()) {
        return cmd;
    }
    strip_empty_env(cmd)
}

fn strip_empty_env(cmd: Command) -> Command {
    cmd.mut_args(|a| {
        let empty = a
            .get_env()
            .and_then(std::env::var_os)
            .is_some_and(|v| v.is_empty());
        if empty {
            a.env(None)
        } else {
            a
        }
    })
    .mut_subcommands(strip_empty_env)
}

/// Parses `argv`, reads the configuration file, and lays it under the
/// command line and the environment.
pub fn parse(argv: Vec<OsString>) -> std::result::Result<Parsed, ParseFailure> {
    // Parsing builds only the commands on its path; the whole tree is
    // built when a configuration file is read (see `load`), so a run
    // without one pays for its own command alone.
    let mut cmd = without_empty_env(Cli::command());
    let matches = cmd
        .try_get_matches_from_mut(&argv)
        .map_err(ParseFailure::Usage)?;
    let debug = matches.get_flag("debug");
    let json = matches.get_flag("log_json");
    let fail = |error| ParseFailure::Config { error, debug, json };
    let state = locate(&matches, &ProcessEnv);
    let state = load(state, &mut cmd).map_err(fail)?;
    let layered = layer::layer(&cmd, &argv, matches, state.file.as_ref(), false).map_err(fail)?;
    let cli = Cli::from_arg_matches(&layered.matches).map_err(ParseFailure::Usage)?;
    Ok(Parsed {
        cli,
        sources: Sources {
            given: layered.given,
            file: Some(state),
        },
        notes: layered.notes,
    })
}

/// The environment variables the file's location depends on.
pub trait LocationEnv {
    fn var(&self, name: &str) -> Option<OsString>;
}

struct ProcessEnv;

impl LocationEnv for ProcessEnv {
    fn var(&self, name: &str) -> Option<OsString> {
        std::env::var_os(name).filter(|v| !v.is_empty())
    }
}

/// Where the configuration file is: `--config`, `AICR_CONFIG`, or the
/// default location (`None` when not even `HOME` is set).
fn locate(matches: &ArgMatches, env: &dyn LocationEnv) -> FileState {
    let named = matches.get_one::<PathBuf>("config");
    let (path, origin) = match (matches.value_source("config"), named) {
        // (clap refuses an empty --config; an empty AICR_CONFIG is unset,
        // see `command`.)
        (Some(ValueSource::CommandLine), Some(p)) => (Some(p.clone()), FileOrigin::Flag),
        (Some(ValueSource::EnvVariable), Some(p)) => (Some(p.clone()), FileOrigin::Env),
        _ => (default_path(env), FileOrigin::Default),
    };
    FileState {
        path,
        origin,
        file: None,
    }
}

/// `$XDG_CONFIG_HOME/aicr/config.yaml`, else `$HOME/.config/aicr/config.yaml`.
/// A relative `XDG_CONFIG_HOME` is ignored, as the XDG Base Directory
/// specification asks.
pub fn default_path(env: &dyn LocationEnv) -> Option<PathBuf> {
    if let Some(xdg) = env.var("XDG_CONFIG_HOME").map(PathBuf::from) {
        if xdg.is_absolute() {
            return Some(xdg.join("aicr/config.yaml"));
        }
    }
    env.var("HOME")
        .map(|h| PathBuf::from(h).join(".config/aicr/config.yaml"))
}

/// Reads and checks the file; a file missing at the default location is
/// no file, one named by `--config` or `AICR_CONFIG` is an error (exit 3).
fn load(mut state: FileState, cmd: &mut Command) -> Result<FileState> {
    let Some(path) = state.path.clone() else {
        return Ok(state);
    };
    let bytes = match serializer::read_capped(&path, MAX_CONFIG_BYTES, "config file") {
        Err(serializer::Error::Read { io, .. })
            if state.origin == FileOrigin::Default && io.kind() == std::io::ErrorKind::NotFound =>
        {
            return Ok(state)
        }
        Err(serializer::Error::Read { path: shown, io }) => {
            return Err(serializer::Error::Read {
                path: format!("the config file {shown} ({})", state.origin.name()),
                io,
            }
            .into())
        }
        r => r?,
    };
    cmd.build();
    state.file = Some(ConfigFile::parse(cmd, &bytes, &path.display().to_string())?);
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct FakeEnv(Vec<(&'static str, &'static str)>);

    impl LocationEnv for FakeEnv {
        fn var(&self, name: &str) -> Option<OsString> {
            self.0
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn the_default_location_follows_xdg_then_home() {
        let p = default_path(&FakeEnv(vec![("XDG_CONFIG_HOME", "/x"), ("HOME", "/h")]));
        assert_eq!(p, Some(PathBuf::from("/x/aicr/config.yaml")));
        let p = default_path(&FakeEnv(vec![("HOME", "/h")]));
        assert_eq!(p, Some(PathBuf::from("/h/.config/aicr/config.yaml")));
        assert_eq!(default_path(&FakeEnv(vec![])), None);
        let p = default_path(&FakeEnv(vec![("XDG_CONFIG_HOME", "rel"), ("HOME", "/h")]));
        assert_eq!(p, Some(PathBuf::from("/h/.config/aicr/config.yaml")));
    }
}
