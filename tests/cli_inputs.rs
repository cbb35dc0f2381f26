//! Reading inputs and writing outputs, run through the whole CLI: what is
//! refused as input (devices, directories, oversized files and streams,
//! duplicate keys), what is accepted (pipes, a byte-order mark, flow-style
//! YAML), how `-o` treats symlinks, FIFOs and permissions, and that a closed
//! stderr or a full stdout never aborts or passes for success.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;

const CRITERIA: &str = "kind: RecipeCriteria\napiVersion: aicr.nvidia.com/v1alpha1\nspec:\n  service: eks\n  accelerator: h100\n  intent: training\n  os: ubuntu\n";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn mkfifo(p: &Path) {
    let c = std::ffi::CString::new(s(p)).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

/// The binary as a plain `std::process::Command` (for stdio of our own),
/// without the switches of the environment the tests run in.
fn bare() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_aicr"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    for k in ["AICR_LOG_JSON", "AICR_DEBUG", "NO_COLOR"] {
        cmd.env_remove(k);
    }
    cmd
}

/// The recipe of [`CRITERIA`], as `aicr recipe` prints it.
fn expected_recipe() -> String {
    let mut args = vec!["recipe"];
    args.extend(words(EKS_H100_TRAINING));
    let out = run(&args);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    stdout(&out)
}

/// Every refused input: exit code and exact message, nothing on stdout.
#[test]
fn refused_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let dup_yaml = write(
        d,
        "dup.yaml",
        "kind: RecipeCriteria\napiVersion: aicr.nvidia.com/v1alpha1\nspec:\n  service: eks\n  service: gke\n",
    );
    let dup_json = write(
        d,
        "dup.json",
        r#"{"kind": "RecipeCriteria", "apiVersion": "aicr.nvidia.com/v1alpha1", "kind": "RecipeCriteria", "spec": {}}"#,
    );
    let dup_flow = write(
        d,
        "dup-flow.yaml",
        "{kind: RecipeCriteria, kind: RecipeCriteria}\n",
    );
    let dup_snapshot = write(
        d,
        "dup-snapshot.yaml",
        "kind: Snapshot\napiVersion: aicr.nvidia.com/v1alpha1\nmeasurements: []\nmeasurements: []\n",
    );
    let broken_json = write(d, "broken.json", "{\"kind\": \"RecipeCriteria\",, }\n");
    let huge_kind = write(
        d,
        "huge-kind.yaml",
        &format!("kind: {}\nspec: {{}}\n", "K".repeat(1_000_000)),
    );
    let huge_value = write(
        d,
        "huge-value.yaml",
        &format!(
            "kind: RecipeCriteria\napiVersion: aicr.nvidia.com/v1alpha1\nspec:\n  service: {}\n",
            "e".repeat(1_000_000)
        ),
    );
    let big = d.join("big.yaml");
    {
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(16 * 1024 * 1024 + 1).unwrap();
    }
    let recipe = "tests/fixtures/diff/recipe-eks-h100-training.yaml";
    let bundle = d.join("bundle");
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("criteria_device", vec!["recipe", "-c", "/dev/zero"]),
        ("snapshot_device", vec!["recipe", "-s", "/dev/zero"]),
        (
            "recipe_device",
            vec!["bundle", "-r", "/dev/zero", "-o", s(&bundle)],
        ),
        ("diff_device", vec!["diff", "/dev/zero", recipe]),
        ("criteria_directory", vec!["recipe", "-c", s(d)]),
        ("criteria_empty_path", vec!["recipe", "-c", ""]),
        ("criteria_over_the_cap", vec!["recipe", "-c", s(&big)]),
        ("duplicate_key_yaml", vec!["recipe", "-c", s(&dup_yaml)]),
        ("duplicate_key_json", vec!["recipe", "-c", s(&dup_json)]),
        (
            "duplicate_key_flow_yaml",
            vec!["recipe", "-c", s(&dup_flow)],
        ),
        (
            "duplicate_key_diff",
            vec!["diff", s(&dup_snapshot), s(&dup_snapshot)],
        ),
        ("broken_json", vec!["recipe", "-c", s(&broken_json)]),
        ("huge_kind_cut", vec!["recipe", "-c", s(&huge_kind)]),
        ("huge_value_cut", vec!["recipe", "-c", s(&huge_value)]),
    ];
    let mut all = String::new();
    for (name, args) in &cases {
        let out = run(args);
        assert_eq!(code(&out), 2, "{name}: {}", stderr(&out));
        assert!(out.stdout.is_empty(), "{name}: nothing on stdout");
        assert!(stderr(&out).len() < 600, "{name}: the message is short");
        all.push_str(&format!("### {name}\n{}\n", transcript(args)));
    }
    assert!(!d.join("bundle").exists());
    settings().bind(|| insta::assert_snapshot!("inputs_refused", all));
}

/// A byte-order mark, flow-style YAML, JSON and a pipe all give the recipe
/// the plain YAML file gives.
#[test]
fn accepted_input_forms_give_the_same_recipe() {
    let want = expected_recipe();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let forms = [
        ("plain.yaml", CRITERIA.to_string()),
        ("bom.yaml", format!("\u{feff}{CRITERIA}")),
        (
            "flow.yaml",
            "{kind: RecipeCriteria, apiVersion: aicr.nvidia.com/v1alpha1, spec: {service: eks, accelerator: h100, intent: training, os: ubuntu}}\n".into(),
        ),
        (
            "criteria.json",
            r#"{"kind": "RecipeCriteria", "apiVersion": "aicr.nvidia.com/v1alpha1", "spec": {"service": "eks", "accelerator": "h100", "intent": "training", "os": "ubuntu"}}"#.into(),
        ),
    ];
    for (name, text) in &forms {
        let p = write(d, name, text);
        let out = run(&["recipe", "-c", s(&p)]);
        assert_eq!(code(&out), 0, "{name}: {}", stderr(&out));
        assert_eq!(stdout(&out), want, "{name}");
    }
    // A FIFO, as `<(cat criteria.yaml)` gives: read, capped, accepted.
    let fifo = d.join("fifo");
    mkfifo(&fifo);
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
            f.write_all(CRITERIA.as_bytes()).unwrap();
        })
    };
    let out = run(&["recipe", "-c", s(&fifo)]);
    writer.join().unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), want);
}

/// Standard input is read up to the cap and no further.
#[test]
fn standard_input_over_the_cap_is_refused() {
    let mut child = bare()
        .args(["recipe", "-c", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let chunk = vec![b'#'; 1 << 20];
        // aicr stops reading at the cap; the broken pipe that follows ends this.
        for _ in 0..32 {
            if stdin.write_all(&chunk).is_err() {
                return;
            }
        }
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    assert_eq!(code(&out), 2);
    assert!(out.stdout.is_empty());
    assert_eq!(
        stderr(&out),
        "error: standard input is larger than 16 MiB, the limit for a document\n"
    );
}

/// `-o` over a regular file replaces it atomically and keeps its mode; no
/// temporary file is left; a symlink stays a symlink and its target gets
/// the data; a FIFO gets the data and stays a FIFO.
#[test]
fn output_files_symlinks_and_fifos() {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let want = expected_recipe();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut args = vec!["recipe"];
    args.extend(words(EKS_H100_TRAINING));

    let file = write(d, "out.yaml", "old");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
    let out = run(&[&args[..], &["-o", s(&file)]].concat());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), want);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
    assert_eq!(names(d), ["out.yaml"]);

    let target = write(d, "target.yaml", "old content that is longer than nothing");
    let link = d.join("link.yaml");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let out = run(&[&args[..], &["-o", s(&link)]].concat());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read_to_string(&target).unwrap(), want);

    let fifo = d.join("fifo");
    mkfifo(&fifo);
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut text = String::new();
            std::fs::File::open(fifo)
                .unwrap()
                .read_to_string(&mut text)
                .unwrap();
            text
        })
    };
    // The reader must be waiting before aicr opens the FIFO without blocking.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let out = run(&[&args[..], &["-o", s(&fifo)]].concat());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(reader.join().unwrap(), want);
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
    assert_eq!(names(d), ["fifo", "link.yaml", "out.yaml", "target.yaml"]);
}

/// Refused outputs: exit 2, the message, and nothing written.
#[test]
fn refused_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fifo = d.join("fifo");
    mkfifo(&fifo);
    let mut all = String::new();
    for (name, out) in [("empty_path", ""), ("fifo_without_reader", s(&fifo))] {
        let mut args = vec!["recipe"];
        args.extend(words(EKS_H100_TRAINING));
        args.extend(["-o", out]);
        let o = run(&args);
        assert_eq!(code(&o), 2, "{name}");
        assert!(o.stdout.is_empty(), "{name}");
        all.push_str(&format!("### {name}\n{}\n", transcript(&args)));
    }
    let o = run(&[
        "diff",
        "-o",
        "",
        "tests/fixtures/diff/snapshot-before.yaml",
        "tests/fixtures/diff/snapshot-after.yaml",
    ]);
    assert_eq!(code(&o), 2);
    assert_eq!(
        stderr(&o),
        "error: the output path is empty; give a file path, or - for standard output\n"
    );
    assert_eq!(names(d), ["fifo"]);
    settings().bind(|| insta::assert_snapshot!("outputs_refused", all));
}

/// Writing to a full device fails with the reason; `--help` and
/// `--version` too.
#[test]
fn a_full_stdout_is_a_failure() {
    let full = || {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap()
    };
    let mut recipe = vec!["recipe"];
    recipe.extend(words(EKS_H100_TRAINING));
    for args in [
        &recipe[..],
        &["--help"],
        &["--version"],
        &["recipe", "--help"],
    ] {
        let out = bare().args(args).stdout(full()).output().unwrap();
        assert_eq!(code(&out), 6, "{args:?}: {}", stderr(&out));
        assert_eq!(
            stderr(&out),
            "error: cannot write standard output: No space left on device (os error 28); the file system is full or over quota: free some space, or write elsewhere\n",
            "{args:?}"
        );
    }
}

/// A pipe whose reader is gone, for stdout and stderr at once, as in
/// `aicr ... 2>&1 | true`.
fn closed_pipe() -> std::io::PipeWriter {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    writer
}

/// A closed stderr never aborts: the exit code is the command's own.
#[test]
fn a_closed_stderr_never_aborts() {
    let mut recipe = vec!["recipe"];
    recipe.extend(words(EKS_H100_TRAINING));
    let cases: [(&[&str], i32); 6] = [
        (&["recipe", "--intent", "x"], 2),
        (&["recipe", "--bogus"], 2),
        (&["--debug", "recipe", "--intent", "x"], 2),
        (&["--log-json", "recipe", "--intent", "x"], 2),
        (&recipe, 0),
        (&["--help"], 0),
    ];
    for (args, want) in cases {
        let w = closed_pipe();
        let status = bare()
            .args(args)
            .stdout(w.try_clone().unwrap())
            .stderr(w)
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(want), "{args:?}: {status}");
    }
}

/// `AICR_LOG_JSON` and `AICR_DEBUG` follow one rule, whether the command
/// line parsed or not; a value that is neither on nor off is refused.
#[test]
fn switch_environment_variables_have_one_rule() {
    for (value, json) in [
        ("1", true),
        ("TRUE", true),
        ("yes", true),
        ("On", true),
        ("y", true),
        ("0", false),
        ("False", false),
        ("N", false),
        ("off", false),
        ("", false),
    ] {
        for args in [
            &["recipe", "--service", "oke"][..],
            &["recipe", "--bogus"][..],
        ] {
            let out = aicr()
                .env("AICR_LOG_JSON", value)
                .args(args)
                .output()
                .unwrap();
            assert_eq!(code(&out), 2, "{value:?} {args:?}");
            assert_eq!(
                stderr(&out).starts_with('{'),
                json,
                "AICR_LOG_JSON={value:?} {args:?}: {}",
                stderr(&out)
            );
        }
    }
    let out = aicr()
        .env("AICR_LOG_JSON", "banana")
        .args(["recipe", "--service", "eks"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).starts_with("error: invalid value 'banana' for '--log-json': \"banana\" is not on or off; use true or false (also 1/0, yes/no, on/off)\n"),
        "{}",
        stderr(&out)
    );
    let out = aicr()
        .env("AICR_DEBUG", "maybe")
        .args(["recipe", "--service", "eks"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "{}", stderr(&out));
}

/// A value with characters YAML 1.1 readers take for line breaks is written
/// escaped and reads back the same, as `-t json` gives it.
#[test]
fn yaml_output_escapes_line_breaks_and_controls() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let doc = |v: &str| {
        format!(
            "kind: Snapshot\napiVersion: aicr.nvidia.com/v1alpha1\nmeasurements:\n  - type: OS\n    subtypes:\n      - subtype: grub\n        data:\n          cmdline: \"{v}\"\n"
        )
    };
    let a = write(d, "a.yaml", &doc("quiet"));
    let b = write(d, "b.yaml", &doc("a\\Lb\\Pc\\Nd\\uFEFFe\\x1Bf\\x00g"));
    let yaml = run(&["diff", s(&a), s(&b), "-t", "yaml"]);
    assert_eq!(code(&yaml), 0, "{}", stderr(&yaml));
    let text = stdout(&yaml);
    assert!(
        text.contains(r#"new: "a\Lb\Pc\Nd\uFEFFe\x1Bf\x00g""#),
        "{text}"
    );
    let json = run(&["diff", s(&a), s(&b), "-t", "json"]);
    let want: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
    assert_eq!(parse_yaml(&text), want);
    assert_eq!(
        want[0]["new"],
        "a\u{2028}b\u{2029}c\u{85}d\u{feff}e\u{1b}f\u{0}g"
    );
}

/// A permission error is exit 4 wherever the file is read: `-c`, `-r`,
/// a `--data` file. Root reads anything, so there it cannot be shown.
#[test]
fn permission_denied_is_exit_4_for_every_input() {
    use std::os::unix::fs::PermissionsExt;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        eprintln!("skipped: root reads files whatever their mode");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let locked = write(d, "locked.yaml", CRITERIA);
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    let data = d.join("data");
    std::fs::create_dir(&data).unwrap();
    let registry = write(
        &data,
        "registry.yaml",
        "kind: ComponentRegistry\napiVersion: aicr.nvidia.com/v1alpha1\ncomponents: []\n",
    );
    std::fs::set_permissions(&registry, std::fs::Permissions::from_mode(0o000)).unwrap();
    for args in [
        vec!["recipe", "-c", s(&locked)],
        vec!["bundle", "-r", s(&locked), "-o", s(&d.join("b"))],
        vec!["diff", s(&locked), s(&locked)],
        vec!["recipe", "--data", s(&data), "--service", "eks"],
    ] {
        let out = run(&args);
        assert_eq!(code(&out), 4, "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("Permission denied"),
            "{}",
            stderr(&out)
        );
    }
}

/// Runs `mount ARGS`; false where this environment may not mount.
fn try_mount(args: &[&str]) -> bool {
    Command::new("mount")
        .args(args)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Unmounts when dropped, also when an assertion fails.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A file bind-mounted over the `-o` path (rename: EBUSY) and a read-only
/// file system (EROFS) are exit 2 with what to do, and leave nothing
/// behind. Needs the right to mount (root in a privileged container);
/// elsewhere the test says it skipped.
#[test]
fn busy_and_read_only_destinations_are_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = write(d, "src.yaml", "src\n");
    let dst = write(d, "dst.yaml", "dst\n");
    if !try_mount(&["--bind", s(&src), s(&dst)]) {
        eprintln!("skipped: cannot mount here");
        return;
    }
    let busy = Mounted(dst.clone());
    let mut args = vec!["recipe"];
    args.extend(words(EKS_H100_TRAINING));
    let out = run(&[&args[..], &["-o", s(&dst)]].concat());
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        format!(
            "error: cannot write {}: Device or resource busy (os error 16); the path is a mount point or busy: give a file path inside it, or another path\n",
            s(&dst)
        )
    );
    assert_eq!(std::fs::read_to_string(&dst).unwrap(), "src\n");
    drop(busy);
    assert_eq!(names(d), ["dst.yaml", "src.yaml"]);

    let ro = d.join("ro");
    std::fs::create_dir(&ro).unwrap();
    assert!(try_mount(&["-t", "tmpfs", "-o", "ro", "tmpfs", s(&ro)]));
    let _ro = Mounted(ro.clone());
    let target = ro.join("x.yaml");
    let out = run(&[&args[..], &["-o", s(&target)]].concat());
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        format!(
            "error: cannot write {}: Read-only file system (os error 30); the file system is read-only: give a path on a writable one\n",
            s(&target)
        )
    );
}
