//! Helpers shared by the CLI tests: run the real binary with a clean
//! environment and capture a whole run as a transcript for insta.
#![allow(dead_code)]

pub mod cluster;

use std::path::{Path, PathBuf};
use std::process::Output;

/// Go aicr v0.11.1's golden outputs, copied into tests/fixtures (see its
/// README): recipes, bundles and a mock snapshot.
pub fn golden(rel: &str) -> PathBuf {
    fixture("go-aicr-v0.11.1/golden").join(rel)
}

/// Where the tests that need Go aicr's whole recipe data directory find it:
/// beside the checkout, never copied into it. Those tests are
/// `#[ignore = "needs ../shared/reference/aicr-v0.11.1/recipes"]`.
pub const GO_RECIPES: &str = "../shared/reference/aicr-v0.11.1/recipes";

/// Go aicr v0.11.1's recipe data directory; a test that asked for it fails
/// when it is missing.
pub fn go_recipes() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(GO_RECIPES);
    assert!(
        p.is_dir(),
        "Go aicr's recipe data is missing at {}: this test needs {GO_RECIPES} beside the checkout",
        p.display()
    );
    p
}

pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// A command for the binary with no AICR_* or colour settings inherited.
pub fn aicr() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("aicr").expect("binary builds");
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("AICR_")
            || matches!(
                k.as_str(),
                "NO_COLOR" | "KUBECONFIG" | "NODE_NAME" | "KUBERNETES_SERVICE_HOST"
            )
        {
            cmd.env_remove(k);
        }
    }
    // No configuration file of the machine's user: the default location
    // is under a directory that does not exist.
    cmd.env("XDG_CONFIG_HOME", "/nonexistent/aicr-tests");
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd
}

pub fn run(args: &[&str]) -> Output {
    aicr().args(args).output().expect("binary runs")
}

pub fn code(out: &Output) -> i32 {
    out.status.code().expect("exited normally")
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("stdout is UTF-8")
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).expect("stderr is UTF-8")
}

/// A whole run: the command, its exit code, stdout and stderr.
pub fn transcript(args: &[&str]) -> String {
    let out = run(args);
    format!(
        "$ aicr {}\nexit: {}\n--- stdout\n{}--- stderr\n{}",
        args.join(" "),
        code(&out),
        stdout(&out),
        stderr(&out)
    )
}

/// The criteria flags of the eks/h100/training/ubuntu recipe, the one the
/// Go golden outputs are for.
pub const EKS_H100_TRAINING: &str =
    "--service eks --accelerator h100 --intent training --os ubuntu";

/// Command-line words from one string (no quoting: for flag lists).
pub fn words(s: &str) -> Vec<&str> {
    s.split_whitespace().collect()
}

/// Parses YAML or JSON text into a JSON value.
pub fn parse_yaml(text: &str) -> serde_json::Value {
    serde_yaml_ng::from_str(text).unwrap_or_else(|e| panic!("not YAML: {e}\n{text}"))
}

pub fn read_yaml(path: &Path) -> serde_json::Value {
    parse_yaml(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// Transcript filters: temporary directories and absolute paths.
pub fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.add_filter(r"/tmp/\.tmp[A-Za-z0-9]+", "[TMP]");
    s.add_filter(env!("CARGO_MANIFEST_DIR"), "[REPO]");
    s.set_prepend_module_to_snapshot(false);
    s
}

/// Whether process `pid` has ended (gone, or a zombie waiting for its
/// parent) within two seconds, polled every 20 ms.
pub fn ended_soon(pid: i32) -> bool {
    (0..100).any(|_| {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let dead = stat.is_empty() || stat.contains(") Z ");
        if !dead {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        dead
    })
}
