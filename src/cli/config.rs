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

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::PathBuf;

use clap::builder::{ArgAction, Resettable};
use clap::parser::ValueSource;
use clap::{Arg, ArgMatches, Args, Command, CommandFactory, FromArgMatches, Subcommand};
use serde_json::{json, Map, Value};

use super::{Cli, ExitStatus};
use crate::error::{Class, Classify, Error, Result};
use crate::serializer::{self, table, Format, Output};

/// The `kind` of a configuration file.
pub const CONFIG_KIND: &str = "AICRConfig";

/// The environment variable naming the configuration file.
pub const CONFIG_ENV: &str = "AICR_CONFIG";

/// The cap on a configuration file, in bytes.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// The section of the global flags (`--debug`, `--log-json`).
const GLOBAL: &str = "global";

/// The section shared by every command that has cluster flags; a
/// command's own section wins over it.
const CLUSTER: &str = "cluster";

/// Commands that take no settings from the file.
const NOT_CONFIGURABLE: [&str; 3] = ["config", "completion", "help"];

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
    #[error("$XDG_CONFIG_HOME is {0:?}, a relative path; give an absolute path or unset it")]
    RelativeXdg(String),
    #[error("unknown command {0:?} for `aicr config show`; commands: {1}")]
    UnknownCommand(String, String),
}

impl Classify for ConfigError {
    fn class(&self) -> Class {
        Class::InvalidInput
    }
}

/// `aicr config`.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub action: ConfigAction,
}

#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Print the effective settings of every command, or of COMMAND with ARGS, and where each came from (flag, env, file, default)
    Show(ShowArgs),
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Output format
    #[arg(
        short = 't',
        long,
        value_enum,
        value_name = "FORMAT",
        default_value = "table",
        help_heading = "Output"
    )]
    pub format: Format,

    /// COMMAND [ARGS...]: only this command's settings, with its flags as
    /// they would be given to it (these come after COMMAND)
    #[arg(
        value_name = "COMMAND",
        trailing_var_arg = true,
        allow_hyphen_values = true,
        num_args = 0..
    )]
    pub command: Vec<OsString>,
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

/// A configuration file, read and checked.
#[derive(Debug)]
pub struct ConfigFile {
    /// The path as shown in messages.
    pub shown: String,
    /// Section name to its keys and values, as written (checked).
    sections: BTreeMap<String, Map<String, Value>>,
    text: String,
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
    /// The ids of the arguments given on the command line.
    given: BTreeSet<String>,
    pub file: Option<FileState>,
}

impl Sources {
    /// Whether the argument `id` (clap's id: the field name) was typed on
    /// the command line, rather than taken from the environment, the file
    /// or a default.
    pub fn typed(&self, id: &str) -> bool {
        self.given.contains(id)
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
    .mut_subcommands(without_empty_env)
}

/// Parses `argv`, reads the configuration file, and lays it under the
/// command line and the environment.
pub fn parse(argv: Vec<OsString>) -> std::result::Result<Parsed, ParseFailure> {
    let cmd = command();
    let matches = cmd
        .clone()
        .try_get_matches_from(&argv)
        .map_err(ParseFailure::Usage)?;
    let debug = matches.get_flag("debug");
    let json = matches.get_flag("log_json");
    let fail = |error| ParseFailure::Config { error, debug, json };
    let state = locate(&matches, &ProcessEnv).map_err(fail)?;
    let state = load(state).map_err(fail)?;
    let layered = layer(&cmd, &argv, matches, state.file.as_ref(), false).map_err(fail)?;
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
fn locate(matches: &ArgMatches, env: &dyn LocationEnv) -> Result<FileState> {
    let origin = match matches.value_source("config") {
        Some(ValueSource::CommandLine) => FileOrigin::Flag,
        Some(ValueSource::EnvVariable) => FileOrigin::Env,
        _ => FileOrigin::Default,
    };
    let named = matches
        .get_one::<PathBuf>("config")
        .filter(|p| !p.as_os_str().is_empty());
    let path = match (origin, named) {
        (FileOrigin::Flag | FileOrigin::Env, Some(p)) => Some(p.clone()),
        _ => default_path(env)?,
    };
    let origin = if named.is_none() {
        FileOrigin::Default
    } else {
        origin
    };
    Ok(FileState {
        path,
        origin,
        file: None,
    })
}

/// `$XDG_CONFIG_HOME/aicr/config.yaml`, else `$HOME/.config/aicr/config.yaml`.
pub fn default_path(env: &dyn LocationEnv) -> Result<Option<PathBuf>> {
    if let Some(xdg) = env.var("XDG_CONFIG_HOME") {
        let xdg = PathBuf::from(xdg);
        if !xdg.is_absolute() {
            return Err(ConfigError::RelativeXdg(xdg.display().to_string()).into());
        }
        return Ok(Some(xdg.join("aicr/config.yaml")));
    }
    Ok(env
        .var("HOME")
        .map(|h| PathBuf::from(h).join(".config/aicr/config.yaml")))
}

/// Reads and checks the file; a file missing at the default location is
/// no file, one named by `--config` or `AICR_CONFIG` is an error (exit 3).
fn load(mut state: FileState) -> Result<FileState> {
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
    state.file = Some(ConfigFile::parse(&bytes, &path.display().to_string())?);
    Ok(state)
}

impl ConfigFile {
    /// Parses an `AICRConfig` document and checks every key and the type
    /// of every value against the flags of the commands.
    pub fn parse(bytes: &[u8], shown: &str) -> Result<ConfigFile> {
        let value = serializer::parse_value(bytes, shown, CONFIG_KIND)?;
        let value: Value = serializer::typed_document(value, shown, CONFIG_KIND, false)?;
        let text = String::from_utf8_lossy(bytes).into_owned();
        let cmd = command();
        let mut sections = BTreeMap::new();
        let Value::Object(top) = value else {
            return Ok(ConfigFile {
                shown: shown.into(),
                sections,
                text,
            });
        };
        let names = section_names(&cmd);
        let file = ConfigFile {
            shown: shown.into(),
            sections: BTreeMap::new(),
            text,
        };
        for (name, body) in top {
            if name == "apiVersion" || name == "kind" {
                continue;
            }
            if !names.contains(&name) {
                return Err(ConfigError::UnknownKey {
                    file: shown.into(),
                    key: name.clone(),
                    line: file.line(None, &name),
                    where_: "at the top level".into(),
                    allowed: format!("apiVersion, kind, {}", names.join(", ")),
                }
                .into());
            }
            let Value::Object(body) = body else {
                return Err(file.bad(&name, None, "expected a mapping of flag names to values"));
            };
            let args = section_args(&cmd, &name);
            for (key, v) in &body {
                let Some(arg) = args.iter().find(|a| a.get_long() == Some(key.as_str())) else {
                    let mut allowed: Vec<&str> = args.iter().filter_map(|a| a.get_long()).collect();
                    allowed.sort_unstable();
                    return Err(ConfigError::UnknownKey {
                        file: shown.into(),
                        key: format!("{name}.{key}"),
                        line: file.line(Some(&name), key),
                        where_: format!("in {name}"),
                        allowed: allowed.join(", "),
                    }
                    .into());
                };
                for text in words(arg, v).map_err(|what| file.bad(&name, Some(key), &what))? {
                    check_value(arg, &text).map_err(|what| file.bad(&name, Some(key), &what))?;
                }
            }
            sections.insert(name, body);
        }
        Ok(ConfigFile { sections, ..file })
    }

    fn bad(&self, section: &str, key: Option<&str>, what: &str) -> Error {
        let (dotted, line) = match key {
            Some(k) => (format!("{section}.{k}"), self.line(Some(section), k)),
            None => (section.to_string(), self.line(None, section)),
        };
        ConfigError::BadValue {
            file: self.shown.clone(),
            key: dotted,
            line,
            what: what.into(),
        }
        .into()
    }

    /// ` (line N)` of `key` (in `section`), when the file is in the block
    /// style where it can be found; else nothing.
    fn line(&self, section: Option<&str>, key: &str) -> String {
        line_of(&self.text, section, key).map_or_else(String::new, |n| format!(" (line {n})"))
    }

    /// The file's values for `command`: its `cluster` section's keys the
    /// command has, then its own section's, which win.
    fn values_for(&self, cmd: &Command, command: &str) -> Vec<(String, &Value)> {
        let mut out: BTreeMap<String, &Value> = BTreeMap::new();
        if command != GLOBAL {
            if let Some(cluster) = self.sections.get(CLUSTER) {
                let longs: BTreeSet<&str> = section_args(cmd, command)
                    .iter()
                    .filter_map(|a| a.get_long())
                    .collect();
                for (k, v) in cluster {
                    if longs.contains(k.as_str()) {
                        out.insert(k.clone(), v);
                    }
                }
            }
        }
        if let Some(own) = self.sections.get(command) {
            for (k, v) in own {
                out.insert(k.clone(), v);
            }
        }
        out.into_iter().collect()
    }
}

/// The 1-based line of `key:` (under `section:` when given) in a
/// block-style YAML or a JSON file.
fn line_of(text: &str, section: Option<&str>, key: &str) -> Option<usize> {
    let is_key = |line: &str, k: &str| {
        let t = line.trim_start();
        let t = t.strip_prefix("- ").unwrap_or(t);
        let (t, quoted) = match t.strip_prefix(['"', '\'']) {
            Some(rest) => (rest, true),
            None => (t, false),
        };
        t.strip_prefix(k).is_some_and(|rest| {
            let rest = if quoted {
                rest.trim_start_matches(['"', '\''])
            } else {
                rest
            };
            rest.trim_start().starts_with(':')
        })
    };
    let top_level = |line: &str| !line.starts_with([' ', '\t']) && !line.trim().is_empty();
    let mut in_section = section.is_none();
    for (i, line) in text.lines().enumerate() {
        match section {
            None if top_level(line) && is_key(line, key) => return Some(i + 1),
            None => {}
            Some(s) => {
                if in_section && is_key(line, key) && !top_level(line) {
                    return Some(i + 1);
                }
                if is_key(line, s) {
                    in_section = true;
                } else if top_level(line) && !line.trim_start().starts_with('#') {
                    in_section = false;
                }
            }
        }
    }
    None
}

/// The file's sections: `global`, `cluster`, and each command that takes
/// settings.
fn section_names(cmd: &Command) -> Vec<String> {
    let mut names = vec![GLOBAL.to_string(), CLUSTER.to_string()];
    names.extend(
        cmd.get_subcommands()
            .map(|c| c.get_name().to_string())
            .filter(|n| !NOT_CONFIGURABLE.contains(&n.as_str())),
    );
    names
}

/// The flags a section may set.
fn section_args<'a>(cmd: &'a Command, section: &str) -> Vec<&'a Arg> {
    match section {
        GLOBAL => cmd
            .get_arguments()
            .filter(|a| a.is_global_set() && a.get_id() != "config")
            .filter(|a| configurable(a))
            .collect(),
        CLUSTER => {
            let shared = super::cluster::ClusterArgs::augment_args(Command::new(CLUSTER));
            let longs: BTreeSet<String> = shared
                .get_arguments()
                .filter_map(|a| a.get_long().map(str::to_string))
                .collect();
            // The first command that has each shared flag stands for it.
            let mut out: Vec<&Arg> = Vec::new();
            for sub in cmd.get_subcommands() {
                for a in sub.get_arguments().filter(|a| configurable(a)) {
                    let long = a.get_long().unwrap_or_default();
                    if longs.contains(long) && !out.iter().any(|o| o.get_long() == Some(long)) {
                        out.push(a);
                    }
                }
            }
            out
        }
        name => cmd
            .find_subcommand(name)
            .map(|sub| {
                sub.get_arguments()
                    .filter(|a| !a.is_global_set())
                    .filter(|a| configurable(a))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// A flag the file can set: a named option or switch (not a positional
/// argument, help, version, or an action that excludes every other flag).
fn configurable(a: &Arg) -> bool {
    !a.is_positional()
        && a.get_long().is_some()
        && !a.is_exclusive_set()
        && matches!(
            a.get_action(),
            ArgAction::Set | ArgAction::Append | ArgAction::SetTrue | ArgAction::SetFalse
        )
}

/// Whether a flag is a switch (`--force`), whose file value is a boolean.
fn is_switch(a: &Arg) -> bool {
    matches!(a.get_action(), ArgAction::SetTrue | ArgAction::SetFalse)
}

/// The values of a file key as command-line words: a switch takes a
/// boolean, a repeatable flag a list (or one value), any other flag one
/// string, number or boolean.
fn words(arg: &Arg, v: &Value) -> std::result::Result<Vec<String>, String> {
    let scalar = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    let kind = |v: &Value| match v {
        Value::Null => "nothing (null)",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    };
    if is_switch(arg) {
        return match v {
            Value::Bool(b) => Ok(vec![b.to_string()]),
            other => Err(format!("expected true or false, got {}", kind(other))),
        };
    }
    if matches!(arg.get_action(), ArgAction::Append) {
        return match v {
            Value::Array(items) => items
                .iter()
                .map(|i| {
                    scalar(i).ok_or_else(|| {
                        format!(
                            "expected a list of strings, numbers or booleans; an item is {}",
                            kind(i)
                        )
                    })
                })
                .collect(),
            other => scalar(other).map(|s| vec![s]).ok_or_else(|| {
                format!(
                    "expected a list (or one value) of strings, numbers or booleans, got {}",
                    kind(other)
                )
            }),
        };
    }
    scalar(v).map(|s| vec![s]).ok_or_else(|| {
        format!(
            "expected one value (a string, number or boolean), got {}",
            kind(v)
        )
    })
}

/// Checks one value with the flag's own parser, so a file value is held
/// to exactly the rules of the flag.
fn check_value(arg: &Arg, text: &str) -> std::result::Result<(), String> {
    // The flag itself, alone: its parser, case rule and value name,
    // without the relations to other flags, which the second parse checks.
    let probe = arg
        .clone()
        .conflicts_with(Resettable::Reset)
        .requires(Resettable::Reset)
        .required_unless_present(Resettable::Reset)
        .required(false)
        .exclusive(false)
        .global(false)
        .env(None)
        .default_value(None)
        .default_missing_value(None)
        .value_delimiter(None)
        .action(ArgAction::Set)
        .num_args(1)
        .require_equals(false)
        .allow_hyphen_values(true);
    let long = arg.get_long().unwrap_or_default();
    Command::new("aicr")
        .no_binary_name(true)
        .arg(probe)
        .try_get_matches_from([format!("--{long}={text}")])
        .map(|_| ())
        .map_err(|e| clap_message(&e))
}

/// A clap error as one line, without its `error:` and help hints.
fn clap_message(e: &clap::Error) -> String {
    e.render()
        .to_string()
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.starts_with("For more information") && !l.starts_with("Usage:")
        })
        .map(|l| l.strip_prefix("error: ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A command line with the file laid under it.
struct Layered {
    matches: ArgMatches,
    /// The ids typed on the command line.
    given: BTreeSet<String>,
    notes: Vec<String>,
    /// The ids whose values came from the file, per section.
    from_file: BTreeSet<String>,
}

/// Lays the file's values under the command line: a flag that was typed
/// or set in the environment keeps its value; a flag the file sets and
/// that excludes (or is excluded by) a typed flag is left out.
fn layer(
    cmd: &Command,
    argv: &[OsString],
    matches: ArgMatches,
    file: Option<&ConfigFile>,
    lenient: bool,
) -> Result<Layered> {
    let sub_name = matches.subcommand_name().map(str::to_string);
    let mut given = typed_ids(cmd, &matches);
    let sub = sub_name.as_deref().and_then(|n| cmd.find_subcommand(n));
    if let (Some(sub), Some((_, sm))) = (sub, matches.subcommand()) {
        given.extend(typed_ids(sub, sm));
    }
    let mut layered = Layered {
        matches: matches.clone(),
        given,
        notes: Vec::new(),
        from_file: BTreeSet::new(),
    };
    let Some(file) = file else {
        return Ok(layered);
    };
    let mut global_words = Vec::new();
    let mut sub_words = Vec::new();
    let sections: Vec<(&str, &Command, &ArgMatches)> = {
        let mut s = vec![(GLOBAL, cmd, &matches)];
        if let (Some(sub), Some((name, sm))) = (sub, matches.subcommand()) {
            if !NOT_CONFIGURABLE.contains(&name) {
                s.push((sub.get_name(), sub, sm));
            }
        }
        s
    };
    for (section, owner, m) in sections {
        let args = section_args(cmd, section);
        for (key, value) in file.values_for(cmd, section) {
            let Some(arg) = args.iter().find(|a| a.get_long() == Some(key.as_str())) else {
                continue;
            };
            let id = arg.get_id().as_str();
            let shown = display(value);
            match m.value_source(id) {
                Some(ValueSource::CommandLine) => {
                    layered.notes.push(format!(
                        "{section} --{key}: the command line overrides {shown} from {}",
                        file.shown
                    ));
                    continue;
                }
                Some(ValueSource::EnvVariable) => {
                    layered.notes.push(format!(
                        "{section} --{key}: {} overrides {shown} from {}",
                        env_name(arg),
                        file.shown
                    ));
                    continue;
                }
                _ => {}
            }
            if let Some(other) = excluded_by(owner, arg, m) {
                layered.notes.push(format!(
                    "{section} --{key} {shown} from {} is not used: --{other} was given, which excludes it",
                    file.shown
                ));
                continue;
            }
            let default = arg
                .get_default_values()
                .iter()
                .map(|d| d.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(",");
            layered.notes.push(if default.is_empty() {
                format!("{section} --{key} {shown} from {}", file.shown)
            } else {
                format!(
                    "{section} --{key} {shown} from {} (over the default {default})",
                    file.shown
                )
            });
            layered.from_file.insert(id.to_string());
            let out = if section == GLOBAL {
                &mut global_words
            } else {
                &mut sub_words
            };
            let texts = words(arg, value).unwrap_or_default();
            if is_switch(arg) {
                let on = texts.first().map(String::as_str) == Some("true");
                let set_true = matches!(arg.get_action(), ArgAction::SetTrue);
                if on == set_true {
                    out.push(OsString::from(format!("--{key}")));
                }
            } else {
                for t in texts {
                    out.push(OsString::from(format!("--{key}={t}")));
                }
            }
        }
    }
    if global_words.is_empty() && sub_words.is_empty() {
        return Ok(layered);
    }
    let mut argv2: Vec<OsString> = Vec::with_capacity(argv.len() + sub_words.len() + 2);
    let at = subcommand_index(argv);
    for (i, a) in argv.iter().enumerate() {
        argv2.push(a.clone());
        if i == 0 {
            argv2.extend(global_words.iter().cloned());
        }
        if Some(i) == at {
            argv2.extend(sub_words.iter().cloned());
        }
    }
    let parser = if lenient {
        cmd.clone().ignore_errors(true)
    } else {
        cmd.clone()
    };
    layered.matches = parser
        .try_get_matches_from(&argv2)
        .map_err(|e| ConfigError::Rejected {
            file: file.shown.clone(),
            detail: clap_message(&e),
        })?;
    Ok(layered)
}

/// The ids of `cmd`'s own arguments that were typed on the command line.
fn typed_ids(cmd: &Command, m: &ArgMatches) -> BTreeSet<String> {
    cmd.get_arguments()
        .map(|a| a.get_id().as_str())
        .filter(|id| m.value_source(id) == Some(ValueSource::CommandLine))
        .map(str::to_string)
        .collect()
}

/// A flag given on the command line or in the environment that excludes
/// `arg` (or that `arg` excludes).
fn excluded_by(owner: &Command, arg: &Arg, m: &ArgMatches) -> Option<String> {
    let explicit = |a: &Arg| {
        matches!(
            m.value_source(a.get_id().as_str()),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        )
    };
    let long = |a: &Arg| a.get_long().unwrap_or(a.get_id().as_str()).to_string();
    if let Some(other) = owner
        .get_arg_conflicts_with(arg)
        .into_iter()
        .find(|o| explicit(o))
    {
        return Some(long(other));
    }
    owner
        .get_arguments()
        .filter(|o| explicit(o))
        .find(|o| {
            o.is_exclusive_set()
                || owner
                    .get_arg_conflicts_with(o)
                    .iter()
                    .any(|c| c.get_id() == arg.get_id())
        })
        .map(long)
}

/// Where the subcommand's name is in `argv` (after the global flags).
fn subcommand_index(argv: &[OsString]) -> Option<usize> {
    let mut i = 1;
    while i < argv.len() {
        let a = argv[i].to_string_lossy();
        if a == "--config" {
            i += 2;
            continue;
        }
        if a.starts_with('-') {
            i += 1;
            continue;
        }
        return Some(i);
    }
    None
}

fn env_name(arg: &Arg) -> String {
    arg.get_env().map_or_else(
        || "the environment".into(),
        |e| e.to_string_lossy().into_owned(),
    )
}

/// A file value as one short text for messages.
fn display(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    crate::error::excerpt(&s).into_owned()
}

/// The effective settings of a command in `m` (its own matches) and where
/// each came from; flags without a value are left out.
fn settings_of(
    sub: &Command,
    section: &str,
    m: &ArgMatches,
    layered: &Layered,
    file: &str,
) -> Vec<Setting> {
    let mut out = Vec::new();
    for a in sub.get_arguments().filter(|a| configurable(a)) {
        if section != GLOBAL && a.is_global_set() {
            continue;
        }
        if section == GLOBAL && (!a.is_global_set() || a.get_id() == "config") {
            continue;
        }
        let id = a.get_id().as_str();
        let origin = match m.value_source(id) {
            _ if layered.from_file.contains(id) => Origin::File(file.to_string()),
            Some(ValueSource::CommandLine) => Origin::Flag,
            Some(ValueSource::EnvVariable) => Origin::Env(env_name(a)),
            Some(ValueSource::DefaultValue) => Origin::Default,
            _ => continue,
        };
        let raw: Vec<String> = m
            .get_raw(id)
            .map(|r| r.map(|v| v.to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        let value = if is_switch(a) {
            Value::Bool(m.get_flag(id))
        } else if matches!(a.get_action(), ArgAction::Append) {
            Value::Array(raw.into_iter().map(Value::String).collect())
        } else {
            match raw.into_iter().next() {
                Some(s) => Value::String(s),
                None => continue,
            }
        };
        out.push(Setting {
            key: a.get_long().unwrap_or(id).to_string(),
            value,
            origin,
        });
    }
    out
}

/// `aicr config show`.
pub fn run(args: ConfigArgs, sources: &Sources) -> Result<ExitStatus> {
    let ConfigAction::Show(show) = args.action;
    let cmd = command();
    let state = sources.file.as_ref();
    let file = state.and_then(|s| s.file.as_ref());
    let shown = file.map(|f| f.shown.clone()).unwrap_or_default();
    let (command, args) = match show.command.split_first() {
        Some((c, rest)) => (Some(c.to_string_lossy().into_owned()), rest.to_vec()),
        None => (None, Vec::new()),
    };
    let commands: Vec<String> = match &command {
        Some(c) => {
            let names = section_names(&cmd);
            if c == GLOBAL || c == CLUSTER || !names.contains(c) {
                return Err(ConfigError::UnknownCommand(
                    c.clone(),
                    names
                        .iter()
                        .filter(|n| *n != GLOBAL && *n != CLUSTER)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", "),
                )
                .into());
            }
            vec![c.clone()]
        }
        None => section_names(&cmd)
            .into_iter()
            .filter(|n| n != CLUSTER)
            .collect(),
    };
    let mut all: Vec<(String, Vec<Setting>)> = Vec::new();
    for name in &commands {
        if name == GLOBAL {
            let argv = vec![
                OsString::from("aicr"),
                OsString::from("config"),
                OsString::from("show"),
            ];
            let m = cmd
                .clone()
                .ignore_errors(true)
                .try_get_matches_from(&argv)
                .map_err(|e| crate::error::UsageError(clap_message(&e)))?;
            let layered = layer(&cmd, &argv, m, file, true)?;
            all.push((
                name.clone(),
                settings_of(&cmd, GLOBAL, &layered.matches, &layered, &shown),
            ));
            continue;
        }
        let mut argv = vec![OsString::from("aicr"), OsString::from(name)];
        argv.extend(args.iter().cloned());
        let lenient = cmd.clone().ignore_errors(true);
        let m = lenient
            .try_get_matches_from(&argv)
            .map_err(|e| crate::error::UsageError(clap_message(&e)))?;
        let layered = layer(&cmd, &argv, m, file, true)?;
        let Some(sub) = cmd.find_subcommand(name) else {
            continue;
        };
        let Some((_, sm)) = layered.matches.subcommand() else {
            continue;
        };
        all.push((name.clone(), settings_of(sub, name, sm, &layered, &shown)));
    }
    let (path, origin, loaded) = match state {
        Some(s) => (
            s.path.as_ref().map(|p| p.display().to_string()),
            s.origin.name(),
            s.file.is_some(),
        ),
        None => (None, FileOrigin::Default.name(), false),
    };
    let text = match show.format {
        Format::Table => {
            let mut s = match &path {
                Some(p) if loaded => format!("config file: {p} ({origin})\n\n"),
                Some(p) => format!("config file: none ({p} does not exist)\n\n"),
                None => "config file: none (neither XDG_CONFIG_HOME nor HOME is set)\n\n".into(),
            };
            let mut rows = vec![["COMMAND", "FLAG", "VALUE", "SOURCE"]
                .map(String::from)
                .to_vec()];
            for (name, settings) in &all {
                for st in settings {
                    let value = match &st.value {
                        Value::Array(items) => {
                            items.iter().map(display).collect::<Vec<_>>().join(",")
                        }
                        v => display(v),
                    };
                    rows.push(vec![
                        name.clone(),
                        format!("--{}", st.key),
                        value,
                        st.origin.text(),
                    ]);
                }
            }
            s.push_str(&table::render(&rows));
            s
        }
        f => {
            let mut commands = Map::new();
            for (name, settings) in &all {
                let mut m = Map::new();
                for st in settings {
                    m.insert(
                        st.key.clone(),
                        json!({"value": st.value, "source": st.origin.text()}),
                    );
                }
                commands.insert(name.clone(), Value::Object(m));
            }
            let doc = json!({
                "configFile": {"path": path, "source": origin, "loaded": loaded},
                "settings": commands,
            });
            serializer::render(&doc, f)
        }
    };
    Output::Stdout.write(text.as_bytes())?;
    Ok(ExitStatus::Success)
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
        let p = default_path(&FakeEnv(vec![("XDG_CONFIG_HOME", "/x"), ("HOME", "/h")])).unwrap();
        assert_eq!(p, Some(PathBuf::from("/x/aicr/config.yaml")));
        let p = default_path(&FakeEnv(vec![("HOME", "/h")])).unwrap();
        assert_eq!(p, Some(PathBuf::from("/h/.config/aicr/config.yaml")));
        assert_eq!(default_path(&FakeEnv(vec![])).unwrap(), None);
        let err = default_path(&FakeEnv(vec![("XDG_CONFIG_HOME", "rel")])).unwrap_err();
        assert_eq!(err.class(), Class::InvalidInput);
    }

    #[test]
    fn lines_are_found_in_block_style_and_json() {
        let yaml = "kind: AICRConfig\nrecipe:\n  service: eks\nbundle:\n  # c\n  service: gke\n";
        assert_eq!(line_of(yaml, Some("bundle"), "service"), Some(6));
        assert_eq!(line_of(yaml, Some("recipe"), "service"), Some(3));
        assert_eq!(line_of(yaml, None, "bundle"), Some(4));
        let json = "{\n \"bundle\": {\n  \"deployer\": 3\n }\n}\n";
        assert_eq!(line_of(json, Some("bundle"), "deployer"), Some(3));
        assert_eq!(line_of("{bundle: {x: 1}}", Some("bundle"), "x"), None);
    }

    #[test]
    fn every_command_with_flags_has_a_section() {
        let cmd = command();
        let names = section_names(&cmd);
        for c in [
            "recipe", "query", "bundle", "validate", "snapshot", "verify", "diff",
        ] {
            assert!(names.contains(&c.to_string()), "{c}");
        }
        let cluster: Vec<_> = section_args(&cmd, CLUSTER)
            .iter()
            .filter_map(|a| a.get_long())
            .collect();
        assert!(
            cluster.contains(&"kubeconfig") && cluster.contains(&"context"),
            "{cluster:?}"
        );
    }
}
