//! Laying the file under the command line: for each flag of the global
//! section and of the command that neither the command line nor the
//! environment set, and that no typed flag excludes, the file's value is
//! inserted as `--flag=value` after the subcommand and the line parsed
//! again; what was taken, overridden or left out is noted for `--debug`.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;

use clap::builder::ArgAction;
use clap::parser::ValueSource;
use clap::{Arg, ArgMatches, Command};
use serde_json::Value;

use super::file::{clap_message, is_switch, section_args, words, ConfigFile};
use super::{ConfigError, GLOBAL, NOT_CONFIGURABLE};
use crate::error::Result;

/// A command line with the file laid under it.
pub(super) struct Layered {
    pub(super) matches: ArgMatches,
    /// The ids typed on the command line, and how each is shown.
    pub(super) given: BTreeMap<String, String>,
    pub(super) notes: Vec<String>,
    /// The ids whose values came from the file.
    pub(super) from_file: BTreeSet<String>,
}

/// Lays the file's values under the command line: a flag that was typed
/// or set in the environment keeps its value; a flag the file sets and
/// that excludes (or is excluded by) a typed flag is left out. `lenient`
/// (for `config show`) lets the second parse pass over missing arguments.
pub(super) fn layer(
    cmd: &Command,
    argv: &[OsString],
    matches: ArgMatches,
    file: Option<&ConfigFile>,
    lenient: bool,
) -> Result<Layered> {
    let sub = matches
        .subcommand_name()
        .and_then(|n| cmd.find_subcommand(n));
    let mut given = typed_ids(cmd, &matches);
    if let (Some(sub), Some((_, sm))) = (sub, matches.subcommand()) {
        given.extend(typed_ids(sub, sm));
    }
    let mut layered = Layered {
        matches: matches.clone(),
        given,
        notes: Vec::new(),
        from_file: BTreeSet::new(),
    };
    let own_section = match (sub, matches.subcommand()) {
        (Some(sub), Some((name, sm))) if !NOT_CONFIGURABLE.contains(&name) => Some((name, sub, sm)),
        _ => None,
    };
    for (section, m) in
        std::iter::once((GLOBAL, &matches)).chain(own_section.map(|(n, _, sm)| (n, sm)))
    {
        let in_file: BTreeSet<String> = file
            .map(|f| {
                f.values_for(cmd, section)
                    .into_iter()
                    .map(|(k, _)| k)
                    .collect()
            })
            .unwrap_or_default();
        layered.notes.extend(env_notes(cmd, section, m, &in_file));
    }
    let Some(file) = file else {
        return Ok(layered);
    };
    let global = section_words(file, cmd, GLOBAL, cmd, &matches, &mut layered);
    let own = match own_section {
        Some((name, sub, sm)) => section_words(file, cmd, name, sub, sm, &mut layered),
        None => Vec::new(),
    };
    if global.is_empty() && own.is_empty() {
        return Ok(layered);
    }
    let parser = cmd.clone().ignore_errors(lenient);
    layered.matches = parser
        .try_get_matches_from(insert(argv, global, own))
        .map_err(|e| ConfigError::Rejected {
            file: file.shown.clone(),
            detail: clap_message(&e),
        })?;
    Ok(layered)
}

/// A note for each flag of `section` set by its environment variable,
/// except those the file also sets (noted with the file's value).
fn env_notes(
    cmd: &Command,
    section: &str,
    m: &ArgMatches,
    in_file: &BTreeSet<String>,
) -> Vec<String> {
    section_args(cmd, section)
        .into_iter()
        .filter(|a| m.value_source(a.get_id().as_str()) == Some(ValueSource::EnvVariable))
        .filter_map(|a| {
            let key = a.get_long()?;
            if in_file.contains(key) {
                return None;
            }
            let value: Vec<String> = m
                .get_raw(a.get_id().as_str())?
                .map(|v| v.to_string_lossy().into_owned())
                .collect();
            Some(format!(
                "{section} --{key} {} from {}",
                crate::error::excerpt(&value.join(",")),
                env_name(a)
            ))
        })
        .collect()
}

/// The command-line words of the file's values for one section (`owner`
/// is the command whose flags they are, `m` its matches), noting for
/// each value whether it was taken or why not.
fn section_words(
    file: &ConfigFile,
    cmd: &Command,
    section: &str,
    owner: &Command,
    m: &ArgMatches,
    layered: &mut Layered,
) -> Vec<OsString> {
    let args = section_args(cmd, section);
    let mut out = Vec::new();
    for (key, value) in file.values_for(cmd, section) {
        let Some(arg) = args.iter().find(|a| a.get_long() == Some(key.as_str())) else {
            continue;
        };
        let shown = display(value);
        let from = &file.shown;
        if let Some(why) = unused(owner, arg, m) {
            layered
                .notes
                .push(format!("{section} --{key}{}", why.note(&shown, from)));
            continue;
        }
        let default = arg
            .get_default_values()
            .iter()
            .map(|d| d.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(",");
        layered.notes.push(if default.is_empty() {
            format!("{section} --{key} {shown} from {from}")
        } else {
            format!("{section} --{key} {shown} from {from} (over the default {default})")
        });
        layered.from_file.insert(arg.get_id().to_string());
        out.extend(as_flags(arg, &key, value));
    }
    out
}

/// Why a file value is not used.
enum Unused {
    /// The flag was typed.
    Typed,
    /// The flag came from this environment variable.
    Env(String),
    /// A typed flag (or one from the environment) excludes it.
    Excluded(String),
}

impl Unused {
    /// The note for `--debug`, after the section and the flag.
    fn note(&self, value: &str, file: &str) -> String {
        match self {
            Unused::Typed => format!(": the command line overrides {value} from {file}"),
            Unused::Env(var) => format!(": {var} overrides {value} from {file}"),
            Unused::Excluded(other) => {
                format!(" {value} from {file} is not used: --{other} was given, which excludes it")
            }
        }
    }
}

/// Whether (and why) the file's value for `arg` is not used.
fn unused(owner: &Command, arg: &Arg, m: &ArgMatches) -> Option<Unused> {
    match m.value_source(arg.get_id().as_str()) {
        Some(ValueSource::CommandLine) => Some(Unused::Typed),
        Some(ValueSource::EnvVariable) => Some(Unused::Env(env_name(arg))),
        _ => excluded_by(owner, arg, m).map(Unused::Excluded),
    }
}

/// A file value as flags: `--flag=value` for each value, `--switch`
/// for a switch set to its non-default state.
fn as_flags(arg: &Arg, key: &str, value: &Value) -> Vec<OsString> {
    let texts = words(arg, value).unwrap_or_default();
    if is_switch(arg) {
        let on = texts.first().map(String::as_str) == Some("true");
        let set_true = matches!(arg.get_action(), ArgAction::SetTrue);
        return if on == set_true {
            vec![OsString::from(format!("--{key}"))]
        } else {
            Vec::new()
        };
    }
    texts
        .into_iter()
        .map(|t| OsString::from(format!("--{key}={t}")))
        .collect()
}

/// `argv` with the global words after the program name and the
/// command's words after the subcommand's name (before any `--`).
fn insert(argv: &[OsString], global: Vec<OsString>, own: Vec<OsString>) -> Vec<OsString> {
    let at = subcommand_index(argv);
    let mut out = Vec::with_capacity(argv.len() + global.len() + own.len());
    let (mut global, mut own) = (Some(global), Some(own));
    for (i, a) in argv.iter().enumerate() {
        out.push(a.clone());
        if i == 0 {
            out.extend(global.take().unwrap_or_default());
        }
        if Some(i) == at {
            out.extend(own.take().unwrap_or_default());
        }
    }
    out
}

/// The ids of `cmd`'s own arguments that were typed on the command line.
pub(super) fn typed_ids(cmd: &Command, m: &ArgMatches) -> BTreeMap<String, String> {
    cmd.get_arguments()
        .filter(|a| m.value_source(a.get_id().as_str()) == Some(ValueSource::CommandLine))
        .map(|a| {
            let shown = match a.get_long() {
                Some(l) => format!("--{l}"),
                None => a.get_id().to_string().to_uppercase(),
            };
            (a.get_id().to_string(), shown)
        })
        .collect()
}

/// A flag given on the command line or in the environment that excludes
/// `arg` (or that `arg` excludes).
pub(super) fn excluded_by(owner: &Command, arg: &Arg, m: &ArgMatches) -> Option<String> {
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
pub(super) fn subcommand_index(argv: &[OsString]) -> Option<usize> {
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

pub(super) fn env_name(arg: &Arg) -> String {
    arg.get_env().map_or_else(
        || "the environment".into(),
        |e| e.to_string_lossy().into_owned(),
    )
}

/// A file value as one short text for messages.
pub(super) fn display(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    crate::error::excerpt(&s).into_owned()
}
