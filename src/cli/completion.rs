//! `aicr completion SHELL`: prints a completion script generated from the same
//! clap definition as the help text, with what completion needs added on top
//! ([`command`]): the values of every criteria flag, the component names of
//! `--set`, and file or directory completion where a flag takes a path.
//! Completing never runs a command. The generated reference documentation
//! (docs/cli, docs/man) is made from the same [`command`].

use crate::error::{Class, Error, Result};
use crate::recipe::criteria::{Accelerator, Intent, Os, Platform, Service};
use crate::recipe::DataStore;
use clap::builder::{PossibleValue, StringValueParser, TypedValueParser};
use clap::{Arg, Args, CommandFactory, ValueEnum, ValueHint};
use clap_complete::Shell as Generator;

use super::{Cli, ExitStatus};

#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell to generate for
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    #[value(alias = "pwsh")]
    Powershell,
}

pub fn run(args: CompletionArgs) -> Result<ExitStatus> {
    let generator = match args.shell {
        Shell::Bash => Generator::Bash,
        Shell::Zsh => Generator::Zsh,
        Shell::Fish => Generator::Fish,
        Shell::Powershell => Generator::PowerShell,
    };
    let mut buf = Vec::new();
    clap_complete::generate(generator, &mut command()?, "aicr", &mut buf);
    crate::serializer::Output::Stdout.write(&buf)?;
    Ok(ExitStatus::Success)
}

/// The clap tree with the values completion offers. Criteria flags take
/// free text on the command line (case-insensitive, with aliases, checked
/// by the recipe module with its own message), so their values are hints
/// here, not a restriction: [`Hinted`] accepts any string. The component
/// names come from the embedded registry, read only when a script or the
/// documentation is generated, never on an ordinary run.
pub fn command() -> Result<clap::Command> {
    let registry = DataStore::embedded().registry()?;
    let components: Vec<String> = registry
        .names()
        .into_iter()
        .map(|n| format!("{n}:"))
        .collect();
    let hints = Hints {
        by_long: vec![
            (
                "service",
                criterion(Service::ALL.iter().map(|v| v.as_str())),
            ),
            (
                "accelerator",
                criterion(Accelerator::ALL.iter().map(|v| v.as_str())),
            ),
            ("intent", criterion(Intent::ALL.iter().map(|v| v.as_str()))),
            ("os", criterion(Os::ALL.iter().map(|v| v.as_str()))),
            (
                "platform",
                criterion(Platform::ALL.iter().map(|v| v.as_str())),
            ),
            ("set", components.clone()),
            ("set-string", components.clone()),
            ("set-json", components),
            ("report", vec!["ctrf".into(), "junit".into()]),
            ("filter", collectors()),
            ("exclude", collectors()),
        ],
    };
    if hints.by_long.iter().any(|(_, v)| v.is_empty()) {
        return Err(Error::new(
            Class::Internal,
            std::io::Error::other("the embedded recipe data lists no components"),
        ));
    }
    Ok(augment(Cli::command(), &hints))
}

fn collectors() -> Vec<String> {
    crate::collector::names()
        .into_iter()
        .map(str::to_string)
        .collect()
}

fn criterion<'a>(values: impl Iterator<Item = &'a str>) -> Vec<String> {
    values.map(str::to_string).chain(["any".into()]).collect()
}

struct Hints {
    /// A flag's long name and the values it completes to.
    by_long: Vec<(&'static str, Vec<String>)>,
}

/// Adds the hints to every argument of `cmd` and of its subcommands.
fn augment(mut cmd: clap::Command, hints: &Hints) -> clap::Command {
    let ids: Vec<clap::Id> = cmd.get_arguments().map(|a| a.get_id().clone()).collect();
    for id in ids {
        cmd = cmd.mut_arg(id, |a| hint(a, hints));
    }
    let subs: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    for s in subs {
        cmd = cmd.mut_subcommand(s, |c| augment(c, hints));
    }
    cmd
}

fn hint(arg: Arg, hints: &Hints) -> Arg {
    let values = arg
        .get_long()
        .and_then(|l| hints.by_long.iter().find(|(name, _)| *name == l));
    if let Some((_, values)) = values {
        return arg.value_parser(Hinted(
            values
                .iter()
                .map(|v| PossibleValue::new(v.clone()))
                .collect(),
        ));
    }
    // A PathBuf flag is AnyPath by default: its value name may say more.
    if !arg.get_action().takes_values()
        || !matches!(
            arg.get_value_hint(),
            ValueHint::Unknown | ValueHint::AnyPath
        )
        || !arg.get_possible_values().is_empty()
    {
        return arg;
    }
    // The path a flag takes, by its value name: FILE, DIR or PATH (also
    // `FILE|CM` and the like: a cm:// reference is typed, a file completed).
    let names: Vec<String> = arg
        .get_value_names()
        .unwrap_or_default()
        .iter()
        .flat_map(|n| {
            n.as_str()
                .split('|')
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    let has = |w: &str| names.iter().any(|n| n == w);
    let value_hint = if has("FILE") {
        ValueHint::FilePath
    } else if has("DIR") {
        ValueHint::DirPath
    } else if has("PATH") {
        ValueHint::AnyPath
    } else {
        return arg;
    };
    arg.value_hint(value_hint)
}

/// Any string, with the values completion and the documentation offer.
#[derive(Clone)]
struct Hinted(Vec<PossibleValue>);

impl TypedValueParser for Hinted {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&Arg>,
        value: &std::ffi::OsStr,
    ) -> std::result::Result<String, clap::Error> {
        StringValueParser::new().parse_ref(cmd, arg, value)
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(self.0.iter().cloned()))
    }
}
