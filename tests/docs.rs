//! The reference documentation is generated from the clap definitions (the
//! same tree, with completion's values, that `aicr completion` uses):
//! docs/cli/<command>.md and docs/man/<command>.1 for `aicr` and every
//! subcommand, with every flag's environment variable, default and values,
//! the exit codes and the environment variables. `docs_match_the_code` fails
//! when the committed files differ from what the code generates; `make docs`
//! (`UPDATE_DOCS=1 cargo test --test docs`) rewrites them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use aicr::error::Class;
use clap::{Arg, Command};

const REGENERATE: &str = "make docs";

/// The exit codes, from the class table (README "Exit codes" says the same).
fn exit_codes() -> Vec<(u8, &'static str, &'static str)> {
    let mut rows = vec![(0, "", "ok (a broken pipe on stdout included)")];
    for (class, meaning) in [
        (
            Class::Validation,
            "findings: constraints or checks failed, a bundle that fails verify, drift with diff --fail-on-drift",
        ),
        (
            Class::InvalidInput,
            "invalid input or usage: a bad flag or value, a malformed or wrong-kind file, an unsupported combination",
        ),
        (Class::NotFound, "not found: a missing file, query key, ConfigMap or node"),
        (Class::Unauthorized, "unauthorized: permission denied, a request the cluster refused"),
        (Class::Timeout, "timeout: a deadline passed"),
        (Class::Unavailable, "unavailable: a service could not be reached, the disk is full"),
        (Class::RateLimited, "rate limited"),
        (Class::Internal, "internal error"),
    ] {
        rows.push((class.exit_code(), class.name(), meaning));
    }
    rows
}

/// Environment variables read without being a flag's `env` (one that
/// becomes a flag's `env` is listed with its flag instead).
const OTHER_ENV: &[(&str, &str)] = &[
    ("AICR_NAMESPACE", "snapshot --agent: the namespace of the agent's objects (-n/--namespace)"),
    ("AICR_IMAGE", "snapshot --agent: the agent's image (--image)"),
    ("AICR_REQUIRE_GPU", "snapshot --agent: request one nvidia.com/gpu (--require-gpu)"),
    ("AICR_RUNTIME_CLASS", "snapshot --agent: the pod's RuntimeClass (--runtime-class)"),
    (
        "KUBECONFIG",
        "kubeconfig files (colon-separated, merged) when -k/--kubeconfig is not given; then ~/.kube/config, then the in-cluster service account",
    ),
    (
        "KUBERNETES_SERVICE_HOST",
        "set inside a pod: the in-cluster configuration is used when no kubeconfig is found",
    ),
    ("NO_COLOR", "set and not empty: no colour on stderr (colour is only ever used on a terminal)"),
    ("SSL_CERT_FILE", "CA certificates for validate's https:// inputs, besides the system's"),
    ("SSL_CERT_DIR", "a directory of CA certificates for validate's https:// inputs"),
];

/// The command tree the docs describe. The version is the package's alone
/// (no commit or build date), so the files change only when the code does.
fn tree() -> Command {
    let mut cmd = aicr::cli::completion::command()
        .expect("the command tree builds")
        .version(env!("CARGO_PKG_VERSION"))
        .disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// `aicr` and each visible subcommand, depth first, with its full name.
fn commands(cmd: &Command, name: &str, out: &mut Vec<(String, Command)>) {
    out.push((name.to_string(), cmd.clone()));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        commands(sub, &format!("{name} {}", sub.get_name()), out);
    }
}

fn file_stem(name: &str) -> String {
    name.replace(' ', "-")
}

fn text(s: Option<&clap::builder::StyledStr>) -> String {
    s.map(|s| s.to_string()).unwrap_or_default()
}

/// Every `aicr ...` line of the README's code blocks, by the command it
/// runs (the word after `aicr`).
fn readme_examples() -> BTreeMap<String, Vec<String>> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md reads");
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut in_code = false;
    for line in readme.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
            continue;
        }
        let line = line.trim();
        if in_code && line.starts_with("aicr ") {
            let sub = line
                .split_whitespace()
                .nth(1)
                .unwrap_or_default()
                .to_string();
            let list = out.entry(sub).or_default();
            if !list.iter().any(|l| l == line) {
                list.push(line.to_string());
            }
        }
    }
    out
}

fn flag_title(a: &Arg) -> String {
    let mut names = Vec::new();
    if let Some(s) = a.get_short() {
        names.push(format!("-{s}"));
    }
    if let Some(l) = a.get_long() {
        names.push(format!("--{l}"));
    }
    for alias in a.get_visible_aliases().unwrap_or_default() {
        names.push(format!("--{alias}"));
    }
    let mut title = names.join(", ");
    if a.get_action().takes_values() {
        let value = a
            .get_value_names()
            .map(|v| {
                v.iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_else(|| a.get_id().to_string().to_uppercase());
        if title.is_empty() {
            title = format!("<{value}>");
        } else {
            title.push_str(&format!(" <{value}>"));
        }
    }
    title
}

fn markdown(name: &str, cmd: &Command, examples: &BTreeMap<String, Vec<String>>) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<!-- Generated from the clap definitions by tests/docs.rs: do not edit; run `{REGENERATE}`. -->\n"
    );
    let _ = writeln!(s, "# {name}\n");
    let about = text(cmd.get_long_about().or(cmd.get_about()));
    if !about.is_empty() {
        let _ = writeln!(s, "{about}\n");
    }
    let usage = cmd.clone().render_usage().to_string();
    let usage = usage.trim_start_matches("Usage: ").trim();
    let _ = writeln!(s, "## Usage\n\n```\n{usage}\n```\n");

    let subs: Vec<&Command> = cmd.get_subcommands().filter(|c| !c.is_hide_set()).collect();
    if !subs.is_empty() {
        let _ = writeln!(s, "## Commands\n");
        for c in subs {
            let full = format!("{name} {}", c.get_name());
            let _ = writeln!(
                s,
                "- [`{full}`]({}.md): {}",
                file_stem(&full),
                text(c.get_about())
            );
        }
        s.push('\n');
    }

    // Arguments by help heading, in the order clap lists them.
    let mut headings: Vec<(String, Vec<&Arg>)> = Vec::new();
    for a in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
        let heading = if a.is_positional() {
            "Arguments".to_string()
        } else {
            a.get_help_heading().unwrap_or("Options").to_string()
        };
        match headings.iter_mut().find(|(h, _)| *h == heading) {
            Some((_, list)) => list.push(a),
            None => headings.push((heading, vec![a])),
        }
    }
    for (heading, args) in headings {
        let _ = writeln!(s, "## {heading}\n");
        for a in args {
            let help = text(a.get_long_help().or(a.get_help()));
            let _ = writeln!(s, "- `{}`: {}", flag_title(a), help.trim());
            let mut facts = Vec::new();
            if a.is_required_set() {
                facts.push("required".to_string());
            }
            if let Some(env) = a.get_env() {
                facts.push(format!("env: `{}`", env.to_string_lossy()));
            }
            let defaults: Vec<String> = a
                .get_default_values()
                .iter()
                .map(|d| d.to_string_lossy().into_owned())
                .collect();
            if !defaults.is_empty() && a.get_action().takes_values() {
                facts.push(format!("default: `{}`", defaults.join(",")));
            }
            let values: Vec<String> = a
                .get_possible_values()
                .iter()
                .filter(|v| !v.is_hide_set())
                .map(|v| format!("`{}`", v.get_name()))
                .collect();
            if !values.is_empty() && a.get_action().takes_values() {
                facts.push(format!("values: {}", values.join(", ")));
            }
            if matches!(a.get_action(), clap::ArgAction::Append) {
                facts.push("repeatable".to_string());
            }
            if a.is_global_set() {
                facts.push("global: accepted before or after the subcommand".to_string());
            }
            for f in facts {
                let _ = writeln!(s, "  - {f}");
            }
        }
        s.push('\n');
    }

    let key = name.split(' ').nth(1).unwrap_or("");
    if let Some(lines) = examples.get(key) {
        let _ = writeln!(s, "## Examples\n\n```sh");
        for l in lines {
            let _ = writeln!(s, "{l}");
        }
        let _ = writeln!(s, "```\n");
    }

    if name == "aicr" {
        let _ = writeln!(s, "## Exit codes\n\nThe same in every command.\n");
        let _ = writeln!(s, "| code | class | meaning |\n|---|---|---|");
        for (code, class, meaning) in exit_codes() {
            let _ = writeln!(s, "| {code} | {class} | {meaning} |");
        }
        let _ = writeln!(s, "\n## Environment\n");
        let _ = writeln!(s, "| variable | flag | command |\n|---|---|---|");
        for (env, flag, command) in flag_envs() {
            let _ = writeln!(s, "| `{env}` | `{flag}` | {command} |");
        }
        s.push('\n');
        for (env, what) in other_env() {
            let _ = writeln!(s, "- `{env}`: {what}");
        }
        s.push('\n');
    }
    let _ = writeln!(s, "See also: `man {}`.", file_stem(name));
    s
}

/// [`OTHER_ENV`] less the variables a flag declares.
fn other_env() -> Vec<(&'static str, &'static str)> {
    let flags = flag_envs();
    OTHER_ENV
        .iter()
        .filter(|(env, _)| !flags.iter().any(|(e, _, _)| e == env))
        .copied()
        .collect()
}

/// Every flag's environment variable: (variable, flag, commands).
fn flag_envs() -> Vec<(String, String, String)> {
    let root = tree();
    let mut all = Vec::new();
    commands(&root, "aicr", &mut all);
    let mut by_env: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for (name, cmd) in &all {
        for a in cmd.get_arguments() {
            if let Some(env) = a.get_env() {
                let flag = a
                    .get_long()
                    .map(|l| format!("--{l}"))
                    .unwrap_or_else(|| a.get_id().to_string());
                let list = by_env
                    .entry((env.to_string_lossy().into_owned(), flag))
                    .or_default();
                if a.is_global_set() {
                    if list.is_empty() {
                        list.push("every command".into());
                    }
                } else {
                    list.push(format!("`{name}`"));
                }
            }
        }
    }
    by_env
        .into_iter()
        .map(|((env, flag), cmds)| (env, flag, cmds.join(", ")))
        .collect()
}

fn roff_escape(s: &str) -> String {
    s.replace('\\', "\\e").replace('-', "\\-")
}

fn man(name: &str, cmd: &Command) -> String {
    let page = clap_mangen::Man::new(cmd.clone()).title(file_stem(name).to_uppercase());
    let mut buf = Vec::new();
    page.render(&mut buf).expect("the man page renders");
    let mut s = String::from_utf8(buf).expect("roff is UTF-8");
    if name == "aicr" {
        s.push_str(".SH \"EXIT STATUS\"\n");
        for (code, class, meaning) in exit_codes() {
            let class = if class.is_empty() {
                String::new()
            } else {
                format!(" ({class})")
            };
            let _ = write!(
                s,
                ".TP\n\\fB{code}\\fR{}\n{}\n",
                roff_escape(&class),
                roff_escape(meaning)
            );
        }
        s.push_str(".SH ENVIRONMENT\n");
        for (env, flag, command) in flag_envs() {
            let _ = write!(
                s,
                ".TP\n\\fB{env}\\fR\n{} ({})\n",
                roff_escape(&flag),
                roff_escape(&command.replace('`', ""))
            );
        }
        for (env, what) in other_env() {
            let _ = write!(s, ".TP\n\\fB{env}\\fR\n{}\n", roff_escape(what));
        }
    }
    let subs: Vec<String> = cmd
        .get_subcommands()
        .filter(|c| !c.is_hide_set())
        .map(|c| format!("{}-{}(1)", file_stem(name), c.get_name()))
        .collect();
    let see_also = if name == "aicr" {
        subs
    } else {
        vec!["aicr(1)".to_string()]
    };
    if !see_also.is_empty() {
        let _ = write!(
            s,
            ".SH \"SEE ALSO\"\n{}\n",
            roff_escape(&see_also.join(", "))
        );
    }
    s
}

/// Every generated file: its path under the checkout and its text.
fn generate() -> BTreeMap<PathBuf, String> {
    let root = tree();
    let mut all = Vec::new();
    commands(&root, "aicr", &mut all);
    let examples = readme_examples();
    let mut files = BTreeMap::new();
    for (name, cmd) in &all {
        let stem = file_stem(name);
        files.insert(
            PathBuf::from(format!("docs/cli/{stem}.md")),
            markdown(name, cmd, &examples),
        );
        files.insert(PathBuf::from(format!("docs/man/{stem}.1")), man(name, cmd));
    }
    files
}

/// Files in `dir` with extension `ext` (the generated kinds only).
fn existing(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == ext))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn docs_match_the_code() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = generate();
    let stale: Vec<PathBuf> = existing(&root.join("docs/cli"), "md")
        .into_iter()
        .chain(existing(&root.join("docs/man"), "1"))
        .filter_map(|p| p.strip_prefix(root).ok().map(Path::to_path_buf))
        .filter(|p| !files.contains_key(p))
        .collect();
    if std::env::var_os("UPDATE_DOCS").is_some() {
        for dir in ["docs/cli", "docs/man"] {
            std::fs::create_dir_all(root.join(dir)).expect("docs directory");
        }
        for p in &stale {
            std::fs::remove_file(root.join(p)).expect("remove a stale page");
        }
        for (p, text) in &files {
            let path = root.join(p);
            if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                std::fs::write(&path, text).expect("write a page");
            }
        }
        return;
    }
    let mut problems = Vec::new();
    for (p, text) in &files {
        match std::fs::read_to_string(root.join(p)) {
            Ok(old) if old == *text => {}
            Ok(_) => problems.push(format!(
                "{} differs from what the code generates",
                p.display()
            )),
            Err(e) => problems.push(format!("{} cannot be read: {e}", p.display())),
        }
    }
    for p in stale {
        problems.push(format!("{} is not generated by any command", p.display()));
    }
    assert!(
        problems.is_empty(),
        "the generated documentation is out of date; run `{REGENERATE}`:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn every_command_has_a_page_with_every_flag() {
    let files = generate();
    for name in [
        "aicr",
        "aicr recipe",
        "aicr bundle",
        "aicr snapshot",
        "aicr validate",
    ] {
        let stem = file_stem(name);
        assert!(
            files.contains_key(Path::new(&format!("docs/man/{stem}.1"))),
            "{stem}.1"
        );
        assert!(
            files.contains_key(Path::new(&format!("docs/cli/{stem}.md"))),
            "{stem}.md"
        );
    }
    let recipe = &files[Path::new("docs/cli/aicr-recipe.md")];
    for want in [
        "`--service <SERVICE>`",
        "values: `eks`, `gke`, `aks`, `oke`, `kind`, `any`",
        "`-t, --format <FORMAT>`",
        "env: `AICR_DEBUG`",
        "aicr recipe --service eks --accelerator h100 --intent training --os ubuntu",
    ] {
        assert!(
            recipe.contains(want),
            "aicr-recipe.md lacks {want:?}:\n{recipe}"
        );
    }
    let root = &files[Path::new("docs/cli/aicr.md")];
    for want in [
        "| 2 | INVALID_INPUT |",
        "| 8 | INTERNAL |",
        "`AICR_LOG_JSON`",
        "`KUBECONFIG`",
    ] {
        assert!(root.contains(want), "aicr.md lacks {want:?}");
    }
    let man = &files[Path::new("docs/man/aicr.1")];
    assert!(man.contains(".SH \"EXIT STATUS\"") && man.contains(".SH ENVIRONMENT"));
}

/// `man -l` renders every page without a warning.
#[test]
#[ignore = "needs man (man-db)"]
fn man_pages_render() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let pages = existing(&root.join("docs/man"), "1");
    assert!(
        pages.len() > 5,
        "no man pages in docs/man: run `{REGENERATE}`"
    );
    for page in pages {
        let out = std::process::Command::new("man")
            .args(["--warnings", "-l"])
            .arg(&page)
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "80")
            .output()
            .unwrap_or_else(|e| panic!("man cannot be run (this test needs man-db): {e}"));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "man -l {}: {stderr}", page.display());
        assert!(
            stderr.trim().is_empty(),
            "man -l {} warns: {stderr}",
            page.display()
        );
        assert!(stdout.contains("SYNOPSIS"), "{}: {stdout}", page.display());
    }
    let recipe = std::process::Command::new("man")
        .args(["-l", "docs/man/aicr-recipe.1"])
        .current_dir(root)
        .env("MANPAGER", "cat")
        .output()
        .expect("man runs");
    let text = String::from_utf8_lossy(&recipe.stdout);
    assert!(text.contains("--service") && text.contains("eks"), "{text}");
}

#[test]
fn regenerate_is_one_make_target() {
    let make = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Makefile"))
        .expect("Makefile");
    assert!(make.contains("\ndocs:"), "the Makefile has no docs target");
    assert!(
        make.contains("UPDATE_DOCS=1"),
        "make docs does not regenerate"
    );
}
