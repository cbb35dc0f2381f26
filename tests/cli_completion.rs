//! Completion scripts offer values, not file names, where a flag takes a
//! value from a set: bash completion is run for real (the script from
//! `aicr completion bash` sourced, COMP_WORDS/COMP_CWORD set, the function
//! called, COMPREPLY read) for every flag of every command that has values;
//! the zsh and fish scripts are checked for the same values.

mod common;

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use common::{code, run, stdout};

/// One completion request: the words typed so far, the last one being
/// completed (may be empty).
struct Case {
    words: Vec<String>,
}

/// Runs bash completion for every case in one bash process; returns each
/// case's COMPREPLY, sorted.
fn complete(cases: &[Case], cwd: &Path) -> Vec<Vec<String>> {
    let script = stdout(&run(&["completion", "bash"]));
    let mut body = script;
    body.push('\n');
    for (i, c) in cases.iter().enumerate() {
        let quoted: Vec<String> = c.words.iter().map(|w| format!("'{w}'")).collect();
        let cword = c.words.len() - 1;
        let cur = &c.words[cword];
        let prev = &c.words[cword - 1];
        let _ = writeln!(
            body,
            "COMP_WORDS=({words}); COMP_CWORD={cword}; COMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}; \
             COMPREPLY=(); _aicr aicr '{cur}' '{prev}'; \
             printf 'case {i}:'; printf ' %s' \"${{COMPREPLY[@]}}\"; printf '\\n'",
            words = quoted.join(" "),
            line = c.words.join(" "),
        );
    }
    let out = Command::new("bash")
        .arg("--norc")
        .arg("--noprofile")
        .arg("-c")
        .arg(&body)
        .current_dir(cwd)
        .output()
        .expect("bash runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "bash failed: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut replies = vec![Vec::new(); cases.len()];
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("case ") else {
            continue;
        };
        let (n, words) = rest.split_once(':').expect("case N:");
        let mut words: Vec<String> = words.split_whitespace().map(str::to_string).collect();
        words.sort();
        replies[n.parse::<usize>().expect("case number")] = words;
    }
    replies
}

fn case(words: &[&str]) -> Case {
    Case {
        words: std::iter::once("aicr")
            .chain(words.iter().copied())
            .map(str::to_string)
            .collect(),
    }
}

fn sorted(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// Every flag with values, in every command: its values are what bash
/// offers after it.
#[test]
fn bash_offers_the_values_of_every_enum_flag() {
    let root = aicr::cli::completion::command().expect("command tree");
    let mut cases = Vec::new();
    let mut want = Vec::new();
    for sub in root.get_subcommands() {
        for a in sub.get_arguments() {
            let values: Vec<String> = a
                .get_possible_values()
                .iter()
                .filter(|v| !v.is_hide_set())
                .map(|v| v.get_name().to_string())
                .collect();
            if values.is_empty() || !a.get_action().takes_values() {
                continue;
            }
            let mut flags = Vec::new();
            if let Some(l) = a.get_long() {
                flags.push(format!("--{l}"));
            }
            if let Some(s) = a.get_short() {
                flags.push(format!("-{s}"));
            }
            if flags.is_empty() {
                // A positional value (`aicr completion SHELL`): offered
                // beside the command's flags.
                cases.push(case(&[sub.get_name(), ""]));
                want.push((format!("{} <{}>", sub.get_name(), a.get_id()), values));
                continue;
            }
            for f in flags {
                cases.push(case(&[sub.get_name(), &f, ""]));
                let mut v = values.clone();
                v.sort();
                want.push((format!("{} {f}", sub.get_name()), v));
            }
        }
    }
    // The flags the issue names are among them.
    for must in [
        "recipe --service",
        "recipe --accelerator",
        "recipe --intent",
        "recipe --os",
        "recipe --platform",
        "recipe -t",
        "bundle --deployer",
        "bundle --set",
        "validate --phase",
        "query --service",
        "snapshot --format",
        "snapshot --filter",
        "snapshot --exclude",
        "completion <shell>",
    ] {
        assert!(
            want.iter().any(|(name, _)| name == must),
            "{must} has no values to complete; have: {:?}",
            want.iter().map(|(n, _)| n).collect::<Vec<_>>()
        );
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let got = complete(&cases, dir.path());
    let mut wrong = Vec::new();
    for ((name, values), got) in want.iter().zip(&got) {
        let mut values = values.clone();
        values.sort();
        let offered = if name.contains(" <") {
            got.iter()
                .filter(|w| !w.starts_with('-'))
                .cloned()
                .collect()
        } else {
            got.clone()
        };
        if offered != values {
            wrong.push(format!("{name}: offered {got:?}, want {values:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn bash_completes_prefixes_components_subcommands_and_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("criteria.yaml"), "kind: RecipeCriteria\n").expect("write");
    std::fs::create_dir(dir.path().join("crit-dir")).expect("mkdir");
    let cases = [
        case(&["recipe", "--service", "g"]),
        case(&["recipe", "--gpu", "h"]),
        case(&["bundle", "--set", "gpu"]),
        case(&["bundle", "--set-json", "nvidia"]),
        case(&["bundle", "-d", ""]),
        case(&["re"]),
        case(&["recipe", "-c", "cri"]),
        case(&["bundle", "--verify", "cri"]),
        case(&["validate", "--report", ""]),
    ];
    let got = complete(&cases, dir.path());
    assert_eq!(got[0], sorted(&["gke"]));
    assert_eq!(got[1], sorted(&["h100", "h200"]));
    assert_eq!(got[2], sorted(&["gpu-operator:"]));
    assert_eq!(got[3], sorted(&["nvidia-dra-driver-gpu:"]));
    assert_eq!(got[4], sorted(&["argocd", "flux", "helm", "helmfile"]));
    assert_eq!(got[5], sorted(&["recipe"]));
    // A file flag completes files; a directory flag directories.
    assert_eq!(got[6], sorted(&["crit-dir", "criteria.yaml"]));
    // (bash adds the directories itself, `compopt -o plusdirs`, after the
    // function returns no candidate).
    assert_eq!(got[7], Vec::<String>::new());
    let script = stdout(&run(&["completion", "bash"]));
    let verify = script
        .split("--verify)")
        .nth(1)
        .and_then(|rest| rest.split(";;").next())
        .expect("bash completes bundle --verify");
    assert!(verify.contains("compopt -o plusdirs"), "{verify}");
    assert_eq!(got[8], sorted(&["ctrf", "junit"]));
}

#[test]
fn zsh_and_fish_scripts_carry_the_values() {
    for shell in ["zsh", "fish"] {
        let out = run(&["completion", shell]);
        assert_eq!(code(&out), 0, "{shell}");
        let script = stdout(&out);
        for want in [
            "eks",
            "gke",
            "kind",
            "h100",
            "gb200",
            "training",
            "inference",
            "ubuntu",
            "amazonlinux",
            "dynamo",
            "argocd",
            "flux",
            "deployment",
            "conformance",
            "gpu-operator",
        ] {
            assert!(script.contains(want), "{shell} script lacks {want}");
        }
    }
    let zsh = stdout(&run(&["completion", "zsh"]));
    assert!(
        zsh.contains("--service=[") && zsh.contains(":(eks gke aks oke kind any)"),
        "zsh does not offer --service's values"
    );
    let fish = stdout(&run(&["completion", "fish"]));
    let service = fish
        .lines()
        .find(|l| l.contains("__fish_aicr_using_subcommand recipe") && l.contains("-l service"))
        .expect("fish completes recipe --service");
    assert!(
        service.contains("eks") && service.contains("-f"),
        "{service}"
    );
}
