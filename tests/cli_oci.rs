//! OCI bundles as whole CLI runs against distribution's registry on
//! 127.0.0.1 with htpasswd authentication (built by .ci/run): `aicr bundle
//! -o oci://...` pushes, `aicr verify oci://...` pulls and verifies; a blob
//! changed in the registry's storage fails verify, naming the file; bad or
//! missing credentials exit 4, an unreachable registry 6. Credentials come
//! from `--registry-auth` or the auth files, never the command line.

mod cli_airgap_support;
mod common;

use std::path::{Path, PathBuf};

use cli_airgap_support::OciRegistry;
use common::{code, stderr, stdout};

/// The test user of tests/fixtures/airgap/htpasswd (published on purpose).
const USER: &str = "aicr";
const PASSWORD: &str = "airgap-test-password";

/// A Docker auth file (`~/.docker/config.json` layout) for `host`.
fn auth_file(dir: &Path, name: &str, host: &str, user: &str, password: &str) -> PathBuf {
    use base64::Engine;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let p = dir.join(name);
    std::fs::write(
        &p,
        serde_json::json!({"auths": {host: {"auth": auth}}}).to_string(),
    )
    .unwrap();
    p
}

fn recipe() -> String {
    common::fixture("airgap/recipe-small.yaml")
        .to_string_lossy()
        .into_owned()
}

/// `aicr` with no auth file of the user's (an empty HOME).
fn aicr(home: &Path) -> assert_cmd::Command {
    let mut cmd = common::aicr();
    cmd.env("HOME", home)
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("XDG_RUNTIME_DIR");
    cmd
}

#[test]
#[ignore = "needs the test OCI registry (.ci/run builds it)"]
fn push_pull_verify_and_a_tampered_blob() {
    let reg = OciRegistry::start_with(Some(&common::fixture("airgap/htpasswd")));
    let work = tempfile::tempdir().unwrap();
    let home = work.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let good = auth_file(work.path(), "good.json", &reg.host, USER, PASSWORD);
    let target = format!("oci://{}/aicr/bundle:v1", reg.host);

    let out = aicr(&home)
        .args(["bundle", "-r", &recipe(), "-o", &target])
        .args(["--registry-auth", good.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with(&format!("Bundle pushed to {target} (sha256:")),
        "{text}"
    );
    assert!(
        text.contains(": 1 components, 7 files, helm deployer.\n"),
        "{text}"
    );
    let digest = text
        .split("(sha256:")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .unwrap();
    assert!(!text.contains(PASSWORD));

    // Pulled and verified, by tag and by digest.
    for r in [
        target.clone(),
        format!("oci://{}/aicr/bundle@sha256:{digest}", reg.host),
    ] {
        let out = aicr(&home)
            .args(["verify", &r, "--registry-auth", good.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        assert_eq!(stdout(&out), "verified: 6 files match checksums.txt\n");
    }
    // The auth file found through $REGISTRY_AUTH_FILE.
    let out = aicr(&home)
        .env("REGISTRY_AUTH_FILE", &good)
        .args(["verify", &target, "-t", "json"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["verified"], true);

    // Bad credentials, and none at all: unauthorized (exit 4).
    let bad = auth_file(work.path(), "bad.json", &reg.host, USER, "wrong");
    for extra in [vec!["--registry-auth", bad.to_str().unwrap()], vec![]] {
        let out = aicr(&home)
            .args(["verify", &target])
            .args(&extra)
            .output()
            .unwrap();
        assert_eq!(code(&out), 4, "{extra:?}: {}", stderr(&out));
        assert!(!stderr(&out).contains("wrong"));
        let out = aicr(&home)
            .args(["bundle", "-r", &recipe(), "-o", &target])
            .args(&extra)
            .output()
            .unwrap();
        assert_eq!(code(&out), 4, "{extra:?}: {}", stderr(&out));
    }

    // One blob changed in the registry's storage: the file it holds is
    // named, exit 1.
    let blob = reg
        .blobs()
        .into_iter()
        .find(|b| {
            std::fs::read_to_string(b)
                .is_ok_and(|t| t.starts_with("#!/usr/bin/env bash\n# Deploys"))
        })
        .expect("deploy.sh is a blob");
    let mut bytes = std::fs::read(&blob).unwrap();
    let last = bytes.len() - 2;
    bytes[last] ^= 1;
    std::fs::write(&blob, bytes).unwrap();
    let out = aicr(&home)
        .args(["verify", &target, "--registry-auth", good.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "changed  deploy.sh\nFAILED: 1 changed, 0 missing, 0 extra (5 files match)\n"
    );
}

#[test]
fn unreachable_registries_and_bad_references() {
    let work = tempfile::tempdir().unwrap();
    // Nothing listens on port 1: unavailable (exit 6).
    let out = aicr(work.path())
        .args(["verify", "oci://127.0.0.1:1/aicr/bundle:v1"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 6, "{}", stderr(&out));
    let out = aicr(work.path())
        .args([
            "bundle",
            "-r",
            &recipe(),
            "-o",
            "oci://127.0.0.1:1/aicr/bundle:v1",
        ])
        .output()
        .unwrap();
    assert_eq!(code(&out), 6, "{}", stderr(&out));

    for (args, want) in [
        (
            vec!["bundle", "-r", &recipe(), "-o", "oci://reg.example.com/aicr/bundle"],
            "oci://reg.example.com/aicr/bundle: name a tag (oci://REGISTRY/REPOSITORY:TAG) or, to verify, a digest (@sha256:...)",
        ),
        (
            vec!["bundle", "-r", &recipe(), "-o", "./b", "--plain-http"],
            "--registry-auth and --plain-http apply to -o oci://...; the bundle is written to a directory",
        ),
        (
            vec!["verify", "./b", "--registry-auth", "/dev/null"],
            "--registry-auth and --plain-http apply to an OCI bundle (oci://...), not a directory",
        ),
    ] {
        let out = aicr(work.path()).args(&args).output().unwrap();
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(want), "{args:?}: {}", stderr(&out));
    }
    // An auth file that is not one: refused, naming it.
    let junk = work.path().join("junk.json");
    std::fs::write(&junk, "not json").unwrap();
    let out = aicr(work.path())
        .args([
            "verify",
            "oci://127.0.0.1:1/aicr/bundle:v1",
            "--registry-auth",
        ])
        .arg(&junk)
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("not a Docker/Podman auth file (JSON)"));
}
