//! The CLI as a whole: version, help, completions, commands not built yet,
//! log modes, colour and broken pipes.

mod common;

use std::io::Read;
use std::process::Stdio;

use common::*;

#[test]
fn version_flags() {
    for flag in ["-v", "--version"] {
        let out = run(&[flag]);
        assert_eq!(code(&out), 0);
        let text = stdout(&out);
        assert!(
            text.starts_with(&format!("aicr {} (commit: ", env!("CARGO_PKG_VERSION"))),
            "{text}"
        );
        assert!(text.contains(", date: "), "{text}");
    }
}

#[test]
fn help_lists_commands_and_exit_codes() {
    let out = run(&["--help"]);
    assert_eq!(code(&out), 0);
    let text = stdout(&out);
    for cmd in [
        "snapshot",
        "recipe",
        "query",
        "validate",
        "bundle",
        "completion",
    ] {
        assert!(text.contains(cmd), "{cmd} missing from help");
    }
    assert!(
        text.contains("Exit codes: 0 ok, 1 validation findings, 2 invalid input"),
        "{text}"
    );
    let out = run(&["recipe", "--help"]);
    assert_eq!(code(&out), 0);
    assert!(stdout(&out).contains("--gpu"), "alias shown");
}

#[test]
fn no_arguments_is_a_usage_error() {
    let out = run(&[]);
    assert_eq!(code(&out), 2);
    assert!(
        out.stdout.is_empty(),
        "help goes to stderr on a usage error"
    );
}

#[test]
fn completions_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "powershell", "pwsh"] {
        let out = run(&["completion", shell]);
        assert_eq!(code(&out), 0, "{shell}: {}", stderr(&out));
        let text = stdout(&out);
        assert!(text.contains("aicr"), "{shell}");
        assert!(
            text.contains("accelerator"),
            "{shell} completes recipe flags"
        );
    }
    let out = run(&["completion", "tcsh"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("[possible values: bash, zsh, fish, powershell]"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn commands_not_built_yet() {
    // validate is built; Go aicr's GPU-Job phases are not.
    let all = transcript(&["validate", "-r", "r.yaml", "--phase", "performance"]);
    settings().bind(|| insta::assert_snapshot!("not_built", all));
}

#[test]
fn unknown_command_is_a_usage_error() {
    let out = run(&["frobnicate"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("unrecognized subcommand 'frobnicate'"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn json_logs_make_errors_json_lines() {
    for args in [
        &["--log-json", "recipe", "--service", "oke"][..],
        &["recipe", "--service", "oke", "--log-json"][..],
        &["recipe", "--bogus", "--log-json"][..],
    ] {
        let out = run(args);
        assert_eq!(code(&out), 2, "{args:?}");
        let err = stderr(&out);
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 1, "one JSON line: {err}");
        let v: serde_json::Value =
            serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("{e}: {err}"));
        assert_eq!(v["level"], "ERROR");
        assert_eq!(v["exit_code"], 2);
        assert_eq!(v["class"], "INVALID_INPUT");
    }
    let out = aicr()
        .env("AICR_LOG_JSON", "1")
        .args(["recipe", "--service", "oke"])
        .output()
        .unwrap();
    assert!(
        stderr(&out).starts_with('{'),
        "env var turns JSON on: {}",
        stderr(&out)
    );
    let out = aicr()
        .env("AICR_LOG_JSON", "false")
        .args(["recipe", "--service", "oke"])
        .output()
        .unwrap();
    assert!(
        stderr(&out).starts_with("error: "),
        "false keeps it off: {}",
        stderr(&out)
    );
}

#[test]
fn debug_logs_go_to_stderr_only() {
    let plain = run(&["recipe", "--service", "eks", "--intent", "training"]);
    let debug = run(&words("--debug recipe --service eks --intent training"));
    assert_eq!(code(&debug), 0);
    assert_eq!(plain.stdout, debug.stdout, "logs never reach stdout");
    assert!(stderr(&debug).contains("DEBUG"), "{}", stderr(&debug));
    assert!(
        stderr(&plain).is_empty(),
        "a quiet success says nothing: {}",
        stderr(&plain)
    );
}

#[test]
fn no_colour_when_stderr_is_not_a_terminal() {
    let out = run(&["recipe", "--service", "oke"]);
    assert!(!stderr(&out).contains('\x1b'), "{:?}", stderr(&out));
    let out = run(&["--debug", "recipe", "--service", "oke"]);
    assert!(!stderr(&out).contains('\x1b'), "{:?}", stderr(&out));
}

/// A reader that goes away early is not an error.
#[test]
fn broken_pipe_is_success() {
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("aicr"))
        .args(words("query --service eks --gpu gb200 --intent inference --os ubuntu --platform dynamo --selector ."))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(0), "stderr: {err}");
    assert!(err.is_empty(), "nothing reported: {err}");
}
