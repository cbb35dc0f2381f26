//! `aicr completion SHELL`: prints a completion script generated from the same
//! clap definition as the help text. Completing never runs a command.

use crate::error::Result;
use clap::{Args, CommandFactory, ValueEnum};
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
    clap_complete::generate(generator, &mut Cli::command(), "aicr", &mut buf);
    crate::serializer::Output::Stdout.write(&buf)?;
    Ok(ExitStatus::Success)
}
