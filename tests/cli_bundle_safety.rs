//! The bundle directory under attack: what aicr may replace, what it keeps,
//! and what an interrupted or concurrent run leaves. Whole CLI runs; the
//! tree around the output is compared before and after.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command as Std;

use common::*;

/// Every entry under `dir` (not following links): path -> what it is
/// (`dir`, `link -> target`, or the file's bytes).
fn tree(dir: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, d: &Path, out: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            let rel = e.path().strip_prefix(root).unwrap().display().to_string();
            let ft = e.file_type().unwrap();
            if ft.is_symlink() {
                let to = std::fs::read_link(e.path()).unwrap();
                out.insert(rel, format!("link -> {}", to.display()));
            } else if ft.is_dir() {
                out.insert(rel, "dir".into());
                walk(root, &e.path(), out);
            } else if !ft.is_file() {
                out.insert(rel, "special".into());
            } else {
                let bytes = std::fs::read(e.path()).unwrap_or_default();
                out.insert(rel, String::from_utf8_lossy(&bytes).into_owned());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// A recipe file in `dir`, made by aicr itself.
fn recipe(dir: &Path) -> PathBuf {
    let path = dir.join("recipe.yaml");
    let mut args = vec!["recipe"];
    args.extend(words(EKS_H100_TRAINING));
    args.extend(["-o", path.to_str().unwrap()]);
    let out = run(&args);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    path
}

fn bundle_into(recipe: &Path, out: &str, cwd: &Path) -> std::process::Output {
    aicr()
        .current_dir(cwd)
        .args(["bundle", "-r", recipe.to_str().unwrap(), "-o", out])
        .output()
        .unwrap()
}

/// What aicr left beside the output: `.NAME.aicr-*` entries.
fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("aicr-"))
        .collect()
}

fn verified(dir: &Path) -> bool {
    code(&run(&["verify", dir.to_str().unwrap()])) == 0
}

#[test]
fn a_directory_with_a_stray_checksums_file_is_not_a_bundle() {
    let tmp = tempfile::tempdir().unwrap();
    let r = recipe(tmp.path());
    let d = tmp.path().join("d");
    std::fs::create_dir_all(d.join(".git")).unwrap();
    std::fs::write(d.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
    std::fs::write(d.join("notes.doc"), "mine").unwrap();
    std::fs::write(d.join("checksums.txt"), "").unwrap();
    let before = tree(tmp.path());
    let out = bundle_into(&r, d.to_str().unwrap(), tmp.path());
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        format!(
            "error: output {}: checksums.txt was not written by aicr, and the new bundle writes that path; move it away, or bundle into a new directory\n",
            d.display()
        )
    );
    assert_eq!(tree(tmp.path()), before);
}

#[test]
fn a_bundle_in_a_git_checkout_keeps_git_and_the_users_files() {
    let tmp = tempfile::tempdir().unwrap();
    let r = recipe(tmp.path());
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(repo.join(".git/refs")).unwrap();
    std::fs::write(repo.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
    std::fs::write(repo.join("OWNERS"), "me\n").unwrap();
    let p = repo.to_str().unwrap();
    // The first bundle into the checkout of the GitOps repository.
    let out = bundle_into(&r, p, tmp.path());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // verify passes over .git, and names the user's file as extra.
    let out = run(&["verify", p, "-t", "json"]);
    assert_eq!(code(&out), 1);
    assert_eq!(
        parse_yaml(&stdout(&out))["extra"],
        serde_json::json!(["OWNERS"])
    );
    std::fs::rename(repo.join("OWNERS"), repo.join(".git/OWNERS")).unwrap();
    assert!(verified(&repo));
    // Re-bundling (with a change) keeps them again, and leaves nothing beside.
    std::fs::write(repo.join(".git/refs/x"), "1\n").unwrap();
    let out = aicr()
        .args(["bundle", "-r", r.to_str().unwrap(), "-o", p])
        .args(["--set", "aws-efa:enabled=false"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!repo.join("aws-efa").exists());
    assert_eq!(
        std::fs::read_to_string(repo.join(".git/refs/x")).unwrap(),
        "1\n"
    );
    assert_eq!(
        std::fs::read_to_string(repo.join(".git/OWNERS")).unwrap(),
        "me\n"
    );
    assert!(verified(&repo));
    let beside: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(beside.len(), 2, "{beside:?}");
    // The bundle's own README.md edited by hand: refused and kept, unless
    // --force.
    std::fs::write(repo.join("README.md"), "my readme\n").unwrap();
    let before = tree(&repo);
    let out = bundle_into(&r, p, tmp.path());
    assert_eq!(code(&out), 2);
    assert_eq!(
        stderr(&out),
        format!("error: output {p}: README.md changed since aicr wrote them (they no longer match checksums.txt; `aicr verify {p}` lists them); keep your changes elsewhere, or give --force to overwrite them\n")
    );
    assert_eq!(tree(&repo), before);
    let out = aicr()
        .args(["bundle", "-r", r.to_str().unwrap(), "-o", p, "--force"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(verified(&repo));
    // A user file where the bundle writes one is refused, and kept.
    let git = tmp.path().join("git2");
    std::fs::create_dir_all(git.join(".git")).unwrap();
    std::fs::write(git.join("README.md"), "my readme\n").unwrap();
    let before = tree(&git);
    let out = bundle_into(&r, git.to_str().unwrap(), tmp.path());
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out)
            .contains("README.md was not written by aicr, and the new bundle writes that path"),
        "{}",
        stderr(&out)
    );
    assert_eq!(tree(&git), before);
}

#[test]
fn the_directory_checked_is_the_directory_replaced() {
    // a/link -> x/y, so a/link/.. is x for the kernel (and a, lexically).
    let tmp = tempfile::tempdir().unwrap();
    let r = recipe(tmp.path());
    let x = tmp.path().join("x");
    std::fs::create_dir_all(x.join("y")).unwrap();
    let a = tmp.path().join("a");
    std::fs::create_dir(&a).unwrap();
    std::fs::write(a.join("mine.txt"), "keep").unwrap();
    symlink(x.join("y"), a.join("link")).unwrap();
    let before_a = tree(&a);
    let out = bundle_into(&r, "a/link/..", tmp.path());
    // x holds only y/, which is not ours: refused, and `a` untouched.
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is a directory that is not an aicr bundle"),
        "{}",
        stderr(&out)
    );
    assert_eq!(tree(&a), before_a);
    // a/link/../new is x/new for the kernel, and so for aicr.
    let out = bundle_into(&r, "a/link/../new", tmp.path());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(verified(&x.join("new")));
    assert_eq!(tree(&a), before_a);
}

#[test]
fn links_devices_and_fifos_are_never_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let r = recipe(tmp.path());
    let target = tmp.path().join("target");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("precious"), "p").unwrap();
    symlink(&target, tmp.path().join("link")).unwrap();
    let fifo = tmp.path().join("fifo");
    assert!(Std::new("mkfifo").arg(&fifo).status().unwrap().success());
    let before = tree(tmp.path());
    for (o, why) in [
        ("link", "is a symbolic link; give the real directory"),
        ("fifo", "exists and is not a directory"),
        ("/dev/null", "exists and is not a directory"),
    ] {
        let out = bundle_into(&r, o, tmp.path());
        assert_eq!(code(&out), 2, "{o}: {}", stderr(&out));
        assert_eq!(stderr(&out), format!("error: output {o}: {why}\n"));
    }
    assert_eq!(tree(tmp.path()), before);
    assert!(std::fs::metadata("/dev/null")
        .unwrap()
        .file_type()
        .is_char_device_like());
}

trait CharDevice {
    fn is_char_device_like(&self) -> bool;
}
impl CharDevice for std::fs::FileType {
    fn is_char_device_like(&self) -> bool {
        use std::os::unix::fs::FileTypeExt;
        self.is_char_device()
    }
}

#[test]
fn planted_leftovers_are_not_followed_or_deleted() {
    let tmp = tempfile::tempdir().unwrap();
    let r = recipe(tmp.path());
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("precious"), "p").unwrap();
    // Names an interrupted run would leave, planted by someone else: a
    // link to another directory, and a directory without aicr's marker.
    symlink(&elsewhere, tmp.path().join(".out.aicr-0000000000000000")).unwrap();
    std::fs::create_dir(tmp.path().join(".out.aicr-1111111111111111")).unwrap();
    std::fs::write(tmp.path().join(".out.aicr-1111111111111111/x"), "x").unwrap();
    let out = bundle_into(&r, "out", tmp.path());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(".out.aicr-1111111111111111 looks like an aicr leftover but aicr did not write it; left it as it is"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(elsewhere.join("precious")).unwrap(),
        "p"
    );
    assert!(tmp
        .path()
        .join(".out.aicr-0000000000000000")
        .symlink_metadata()
        .is_ok());
    assert!(tmp.path().join(".out.aicr-1111111111111111/x").exists());
    assert!(verified(&tmp.path().join("out")));
}

#[test]
fn concurrent_bundles_into_one_directory_both_finish() {
    let tmp = tempfile::tempdir().unwrap();
    let r = recipe(tmp.path());
    let bin = assert_cmd::cargo::cargo_bin("aicr");
    for round in 0..5 {
        let set = format!("gpu-operator:round={round}");
        let a = Std::new(&bin)
            .current_dir(tmp.path())
            .args([
                "bundle",
                "-r",
                r.to_str().unwrap(),
                "-o",
                "out",
                "--set",
                &set,
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let b = Std::new(&bin)
            .current_dir(tmp.path())
            .args([
                "bundle",
                "-r",
                r.to_str().unwrap(),
                "-o",
                "out",
                "-d",
                "argocd",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        for kid in [a, b] {
            let out = kid.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert!(verified(&tmp.path().join("out")));
        let beside = leftovers(tmp.path());
        assert!(beside.is_empty(), "{beside:?}");
    }
}

#[test]
fn a_killed_run_never_leaves_the_destination_without_a_bundle() {
    // SIGKILL at varying moments: the destination is always a complete
    // bundle (the old or the new one), and the next run tidies up.
    let tmp = tempfile::tempdir().unwrap();
    let r = recipe(tmp.path());
    let out_dir = tmp.path().join("out");
    let first = bundle_into(&r, "out", tmp.path());
    assert_eq!(code(&first), 0);
    std::fs::create_dir(out_dir.join(".git")).unwrap();
    std::fs::write(out_dir.join(".git/HEAD"), "ref\n").unwrap();
    let bin = assert_cmd::cargo::cargo_bin("aicr");
    for i in 0..40u64 {
        let deployer = if i % 2 == 0 { "argocd" } else { "helm" };
        let mut kid = Std::new(&bin)
            .current_dir(tmp.path())
            .args([
                "bundle",
                "-r",
                r.to_str().unwrap(),
                "-o",
                "out",
                "-d",
                deployer,
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_micros(500 * (i % 20)));
        let _ = kid.kill();
        let _ = kid.wait();
        // Whenever it was killed, the destination is a whole bundle.
        assert!(
            std::fs::read_dir(&out_dir)
                .unwrap()
                .any(|e| e.unwrap().file_name() == "checksums.txt"),
            "round {i}"
        );
        let listed = std::fs::read_to_string(out_dir.join("checksums.txt")).unwrap();
        for line in listed.lines() {
            let (_, p) = line.split_once("  ").unwrap();
            assert!(out_dir.join(p).is_file(), "round {i}: {p} missing");
        }
        // .git is in the destination, or (mid-carry) recoverable by the
        // next run; the destination is a whole bundle or the next run
        // completes it.
        let out = bundle_into(&r, "out", tmp.path());
        assert_eq!(code(&out), 0, "round {i}: {}", stderr(&out));
        assert!(verified(&out_dir), "round {i}");
        assert_eq!(
            std::fs::read_to_string(out_dir.join(".git/HEAD")).unwrap(),
            "ref\n",
            "round {i}"
        );
        let beside = leftovers(tmp.path());
        assert!(
            beside.is_empty(),
            "round {i}: {beside:?}: {:?}; the next run said: {}",
            beside.first().map(|b| tree(&tmp.path().join(b))),
            stderr(&out)
        );
    }
}

#[test]
fn sigint_during_a_bundle_leaves_the_old_bundle_or_the_new_one() {
    let tmp = tempfile::tempdir().unwrap();
    let r = recipe(tmp.path());
    let out_dir = tmp.path().join("out");
    assert_eq!(code(&bundle_into(&r, "out", tmp.path())), 0);
    let bin = assert_cmd::cargo::cargo_bin("aicr");
    for i in 0..20u64 {
        let kid = Std::new(&bin)
            .current_dir(tmp.path())
            .args([
                "bundle",
                "-r",
                r.to_str().unwrap(),
                "-o",
                "out",
                "-d",
                "argocd",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_micros(700 * (i % 10)));
        let _ = Std::new("kill")
            .args(["-INT", &kid.id().to_string()])
            .status();
        let mut kid = kid;
        let _ = kid.wait();
        // No leftovers at all after SIGINT: it is acted on only once the
        // directory is consistent and the temporary one is gone.
        let beside = leftovers(tmp.path());
        assert!(beside.is_empty(), "round {i}: {beside:?}");
        assert!(verified(&out_dir), "round {i}");
        assert_eq!(code(&bundle_into(&r, "out", tmp.path())), 0);
    }
}

#[test]
#[ignore = "needs root: mounts a tmpfs"]
fn a_mount_point_is_refused_not_an_internal_error() {
    let tmp = tempfile::tempdir().unwrap();
    let r = recipe(tmp.path());
    let mp = tmp.path().join("mnt");
    std::fs::create_dir(&mp).unwrap();
    let mounted = Std::new("mount")
        .args(["-t", "tmpfs", "none", mp.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(mounted.success(), "mount needs root");
    let out = bundle_into(&r, "mnt", tmp.path());
    let _ = Std::new("umount").arg(&mp).status();
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "error: output mnt: is a mount point or in use, so it cannot be replaced; give a directory inside it, such as DIR/bundle\n"
    );
    let beside = leftovers(tmp.path());
    assert!(beside.is_empty(), "{beside:?}");
}
