//! `aicr config show`: the effective settings of every command (or of one,
//! with its flags), each with its source (flag, env, file, default), as a
//! table, YAML or JSON.

use std::ffi::OsString;

use clap::builder::ArgAction;
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, Command, Subcommand};
use serde_json::{json, Map, Value};

use super::file::{clap_message, configurable, is_switch, section_names};
use super::layer::{display, env_name, layer, Layered};
use super::{command, ConfigError, FileOrigin, Origin, Setting, Sources, ACTIONS, CLUSTER, GLOBAL};
use crate::cli::ExitStatus;
use crate::error::Result;
use crate::serializer::{self, table, Format, Output};

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
        if ACTIONS.contains(&(section, a.get_id().as_str())) {
            continue;
        }
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
    let file = sources.file.as_ref().and_then(|s| s.file.as_ref());
    let (name, rest) = match show.command.split_first() {
        Some((c, rest)) => (Some(c.to_string_lossy().into_owned()), rest),
        None => (None, &[][..]),
    };
    let mut all: Vec<(String, Vec<Setting>)> = Vec::new();
    for section in sections_to_show(&cmd, name)? {
        // The global flags are read from a command line of no command.
        let mut argv = vec![OsString::from("aicr")];
        if section == GLOBAL {
            argv.extend(["config", "show"].map(OsString::from));
        } else {
            argv.push(OsString::from(&section));
            argv.extend(rest.iter().cloned());
        }
        let m = cmd
            .clone()
            .ignore_errors(true)
            .try_get_matches_from(&argv)
            .map_err(|e| crate::error::UsageError(clap_message(&e)))?;
        let layered = layer(&cmd, &argv, m, file, true)?;
        let shown = file.map(|f| f.shown.as_str()).unwrap_or_default();
        let settings = match (cmd.find_subcommand(&section), layered.matches.subcommand()) {
            _ if section == GLOBAL => settings_of(&cmd, GLOBAL, &layered.matches, &layered, shown),
            (Some(sub), Some((_, sm))) => settings_of(sub, &section, sm, &layered, shown),
            _ => continue,
        };
        all.push((section, settings));
    }
    let (path, origin, loaded) = match &sources.file {
        Some(s) => (
            s.path.as_ref().map(|p| p.display().to_string()),
            s.origin.name(),
            s.file.is_some(),
        ),
        None => (None, FileOrigin::Default.name(), false),
    };
    let text = match show.format {
        Format::Table => render_table(path.as_deref(), origin, loaded, &all),
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

/// The sections to show: `global` and every command, or the one named.
fn sections_to_show(cmd: &Command, name: Option<String>) -> Result<Vec<String>> {
    let names: Vec<String> = section_names(cmd)
        .into_iter()
        .filter(|n| n != CLUSTER)
        .collect();
    match name {
        None => Ok(names),
        Some(c) if c != GLOBAL && names.contains(&c) => Ok(vec![c]),
        Some(c) => Err(ConfigError::UnknownCommand(
            c,
            names
                .iter()
                .filter(|n| *n != GLOBAL)
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
        )
        .into()),
    }
}

/// The settings as a table under a line naming the file.
fn render_table(
    path: Option<&str>,
    origin: &str,
    loaded: bool,
    all: &[(String, Vec<Setting>)],
) -> String {
    let mut s = match path {
        Some(p) if loaded => format!("config file: {p} ({origin})\n\n"),
        Some(p) => format!("config file: none ({p} does not exist)\n\n"),
        None => "config file: none (neither XDG_CONFIG_HOME nor HOME is set)\n\n".into(),
    };
    let mut rows = vec![["COMMAND", "FLAG", "VALUE", "SOURCE"]
        .map(String::from)
        .to_vec()];
    for (name, settings) in all {
        for st in settings {
            let value = match &st.value {
                Value::Array(items) => items.iter().map(display).collect::<Vec<_>>().join(","),
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
