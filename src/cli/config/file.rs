//! Reading an `AICRConfig` file: its sections (`global`, `cluster`, one
//! per command) and keys (the long names of the flags a section may set),
//! every value checked for its type and with its flag's own clap parser,
//! and errors that name the key, the file and, where it can be found, the
//! line.

use std::collections::{BTreeMap, BTreeSet};

use clap::builder::{ArgAction, Resettable};
use clap::{Arg, Args, Command};
use serde_json::{Map, Value};

use super::{ConfigError, ACTIONS, CLUSTER, CONFIG_KIND, GLOBAL, NOT_CONFIGURABLE};
use crate::error::{Error, Result};
use crate::serializer;

/// A configuration file, read and checked.
#[derive(Debug)]
pub struct ConfigFile {
    /// The path as shown in messages.
    pub shown: String,
    /// Section name to its keys and values, as written (checked).
    sections: BTreeMap<String, Map<String, Value>>,
    text: String,
}

impl ConfigFile {
    /// Parses an `AICRConfig` document and checks every key and the type
    /// of every value against the flags of the commands.
    /// `cmd` is the whole CLI, built ([`super::command`]).
    pub fn parse(cmd: &Command, bytes: &[u8], shown: &str) -> Result<ConfigFile> {
        let value = serializer::parse_value(bytes, shown, CONFIG_KIND)?;
        let value: Value = serializer::typed_document(value, shown, CONFIG_KIND, false)?;
        let text = String::from_utf8_lossy(bytes).into_owned();
        let mut sections = BTreeMap::new();
        let Value::Object(top) = value else {
            return Ok(ConfigFile {
                shown: shown.into(),
                sections,
                text,
            });
        };
        let names = section_names(cmd);
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
            file.check_section(cmd, &name, &body)?;
            sections.insert(name, body);
        }
        Ok(ConfigFile { sections, ..file })
    }

    /// Checks that each key of a section is a flag it may set, and each
    /// value one that flag takes.
    fn check_section(&self, cmd: &Command, name: &str, body: &Map<String, Value>) -> Result<()> {
        let args = section_args(cmd, name);
        for (key, v) in body {
            let Some(arg) = args.iter().find(|a| a.get_long() == Some(key.as_str())) else {
                let mut allowed: Vec<&str> = args.iter().filter_map(|a| a.get_long()).collect();
                allowed.sort_unstable();
                return Err(ConfigError::UnknownKey {
                    file: self.shown.clone(),
                    key: format!("{name}.{key}"),
                    line: self.line(Some(name), key),
                    where_: format!("in {name}"),
                    allowed: allowed.join(", "),
                }
                .into());
            };
            for text in words(arg, v).map_err(|what| self.bad(name, Some(key), &what))? {
                check_value(arg, &text).map_err(|what| self.bad(name, Some(key), &what))?;
            }
        }
        Ok(())
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
    pub(super) fn values_for(&self, cmd: &Command, command: &str) -> Vec<(String, &Value)> {
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
pub(super) fn line_of(text: &str, section: Option<&str>, key: &str) -> Option<usize> {
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
pub(super) fn section_names(cmd: &Command) -> Vec<String> {
    let mut names = vec![GLOBAL.to_string(), CLUSTER.to_string()];
    names.extend(
        cmd.get_subcommands()
            .map(|c| c.get_name().to_string())
            .filter(|n| !NOT_CONFIGURABLE.contains(&n.as_str())),
    );
    names
}

/// The flags a section may set.
pub(super) fn section_args<'a>(cmd: &'a Command, section: &str) -> Vec<&'a Arg> {
    match section {
        GLOBAL => cmd
            .get_arguments()
            .filter(|a| a.is_global_set() && a.get_id() != "config")
            .filter(|a| configurable(a))
            .collect(),
        CLUSTER => {
            let shared = crate::cli::cluster::ClusterArgs::augment_args(Command::new(CLUSTER));
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
                    .filter(|a| !ACTIONS.contains(&(name, a.get_id().as_str())))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// A flag the file can set: a named option or switch (not a positional
/// argument, help, version, or an action that excludes every other flag).
pub(super) fn configurable(a: &Arg) -> bool {
    !a.is_positional()
        && a.get_long().is_some()
        && !a.is_exclusive_set()
        && matches!(
            a.get_action(),
            ArgAction::Set | ArgAction::Append | ArgAction::SetTrue | ArgAction::SetFalse
        )
}

/// Whether a flag is a switch (`--force`), whose file value is a boolean.
pub(super) fn is_switch(a: &Arg) -> bool {
    matches!(a.get_action(), ArgAction::SetTrue | ArgAction::SetFalse)
}

/// The values of a file key as command-line words: a switch takes a
/// boolean, a repeatable flag a list (or one value), any other flag one
/// string, number or boolean.
pub(super) fn words(arg: &Arg, v: &Value) -> std::result::Result<Vec<String>, String> {
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
pub(super) fn check_value(arg: &Arg, text: &str) -> std::result::Result<(), String> {
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
pub(super) fn clap_message(e: &clap::Error) -> String {
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

#[cfg(test)]
mod tests {
    use super::super::command;
    use super::*;

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
