//! Credential helpers for OCI bundles as whole CLI runs: auth files whose
//! `credHelpers` / `credsStore` name `docker-credential-<name>` programs,
//! played by shell scripts the test writes into a temporary directory put
//! on the child's PATH. Against the htpasswd registry of the air-gap tests
//! (built by .ci/run): push and verify through a helper, `credHelpers`
//! beats `credsStore`, a helper with nothing for the registry means
//! anonymous (then 4 from the registry), a helper that refuses exits 4.
//! Without a registry: a missing helper program exits 2, one that hangs 5
//! (killed at the deadline), one that prints garbage 2, one that returns an
//! identity token 2; the secret never appears in any output.

mod cli_airgap_support;
mod common;

use std::path::{Path, PathBuf};

use cli_airgap_support::OciRegistry;
use common::{code, stderr, stdout};

/// The test user of tests/fixtures/airgap/htpasswd (published on purpose).
const USER: &str = "aicr";
const PASSWORD: &str = "airgap-test-password";

/// A directory of fake credential helpers, to put on PATH.
struct Helpers {
    dir: tempfile::TempDir,
}

impl Helpers {
    fn new() -> Helpers {
        Helpers {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// `docker-credential-<name>`: a shell script that logs the server it
    /// was asked for (stdin) to `<name>.asked`, then runs `body`.
    fn add(&self, name: &str, body: &str) {
        use std::os::unix::fs::PermissionsExt;
        let p = self.dir.path().join(format!("docker-credential-{name}"));
        let log = self.dir.path().join(format!("{name}.asked"));
        std::fs::write(
            &p,
            format!(
                "#!/bin/sh\n[ \"$1\" = get ] || exit 9\nread -r server\necho \"$server\" >> '{}'\n{body}\n",
                log.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// The servers helper `name` was asked for, one a line.
    fn asked(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.asked"))).unwrap_or_default()
    }

    /// A helper that answers `user`/`secret` for `server` only, and "not
    /// found" (docker-credential-helpers' words, exit 1) for any other.
    fn add_answering(&self, name: &str, server: &str, user: &str, secret: &str) {
        self.add(
            name,
            &format!(
                "if [ \"$server\" = '{server}' ]; then\n  printf '{{\"ServerURL\":\"%s\",\"Username\":\"{user}\",\"Secret\":\"{secret}\"}}\\n' \"$server\"\nelse\n  echo 'credentials not found in native keychain'; exit 1\nfi"
            ),
        );
    }

    /// `aicr` with these helpers first on PATH and no auth file of the
    /// user's (an empty HOME).
    fn aicr(&self) -> assert_cmd::Command {
        let mut cmd = common::aicr();
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![self.dir.path().to_path_buf()];
        dirs.extend(std::env::split_paths(&path));
        cmd.env("PATH", std::env::join_paths(dirs).unwrap())
            .env("HOME", self.dir.path().join("no-home"))
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("XDG_RUNTIME_DIR");
        cmd
    }

    /// An auth file with `json` in it.
    fn auth_file(&self, name: &str, json: serde_json::Value) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, json.to_string()).unwrap();
        p
    }
}

fn recipe() -> String {
    common::fixture("airgap/recipe-small.yaml")
        .to_string_lossy()
        .into_owned()
}

fn arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
#[ignore = "needs the test OCI registry (.ci/run builds it)"]
fn push_and_verify_through_credential_helpers() {
    let reg = OciRegistry::start_with(Some(&common::fixture("airgap/htpasswd")));
    let h = Helpers::new();
    h.add_answering("aicrtest", &reg.host, USER, PASSWORD);
    h.add_answering("aicrwrong", &reg.host, USER, "wrong-secret");
    h.add(
        "aicrnone",
        "echo 'credentials not found in native keychain'; exit 1",
    );
    h.add(
        "aicrdeny",
        "echo 'error getting credentials - err: exit status 1, out: `User interaction is not allowed.`'; exit 1",
    );
    let target = format!("oci://{}/aicr/bundle:v1", reg.host);

    // Pushed and verified through the registry's own helper.
    let per_host = h.auth_file(
        "per-host.json",
        serde_json::json!({"credHelpers": {reg.host.clone(): "aicrtest"}}),
    );
    let out = h
        .aicr()
        .args(["bundle", "-r", &recipe(), "-o", &target])
        .args(["--registry-auth", arg(&per_host)])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with(&format!("Bundle pushed to {target} (sha256:")),
        "{}",
        stdout(&out)
    );
    let out = h
        .aicr()
        .args(["verify", &target, "--registry-auth", arg(&per_host)])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "verified: 6 files match checksums.txt\n");
    assert!(!stderr(&out).contains(PASSWORD) && !stdout(&out).contains(PASSWORD));
    // Asked with the registry host, as Docker writes it, once per command.
    assert_eq!(h.asked("aicrtest"), format!("{0}\n{0}\n", reg.host));

    // credHelpers beats credsStore (whose helper has the wrong secret),
    // and beats the auths entry; credsStore alone serves every registry.
    let both = h.auth_file(
        "both.json",
        serde_json::json!({
            "credsStore": "aicrwrong",
            "credHelpers": {reg.host.clone(): "aicrtest"},
            "auths": {reg.host.clone(): {"auth": "YWljcjp3cm9uZw=="}},
        }),
    );
    let store = h.auth_file(
        "store.json",
        serde_json::json!({"credsStore": "aicrtest", "auths": {reg.host.clone(): {}}}),
    );
    for file in [&both, &store] {
        let out = h
            .aicr()
            .args(["verify", &target, "--registry-auth", arg(file)])
            .output()
            .unwrap();
        assert_eq!(code(&out), 0, "{}: {}", file.display(), stderr(&out));
    }
    assert_eq!(h.asked("aicrwrong"), "");
    // The file found through $REGISTRY_AUTH_FILE, and a wrong secret from
    // the helper refused by the registry: 4, naming the helper.
    let wrong = h.auth_file(
        "wrong.json",
        serde_json::json!({"credHelpers": {reg.host.clone(): "aicrwrong"}}),
    );
    let out = h
        .aicr()
        .env("REGISTRY_AUTH_FILE", &wrong)
        .args(["verify", &target])
        .output()
        .unwrap();
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "{target}: the registry refused the credentials (docker-credential-aicrwrong (credHelpers.\"{}\" in {})): ",
            reg.host,
            wrong.display()
        )),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("wrong-secret"));

    // A helper with nothing for the registry: anonymous, which the
    // registry refuses (4), saying so.
    let none = h.auth_file(
        "none.json",
        serde_json::json!({"credHelpers": {reg.host.clone(): "aicrnone"}}),
    );
    let out = h
        .aicr()
        .args(["verify", &target, "--registry-auth", arg(&none)])
        .output()
        .unwrap();
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "the registry refused the credentials (docker-credential-aicrnone (credHelpers.\"{0}\" in {1}): no credentials for {0})",
            reg.host,
            none.display()
        )),
        "{}",
        stderr(&out)
    );
    assert_eq!(h.asked("aicrnone"), format!("{}\n", reg.host));

    // A helper that refuses: 4, with what it said.
    let deny = h.auth_file("deny.json", serde_json::json!({"credsStore": "aicrdeny"}));
    let out = h
        .aicr()
        .args(["bundle", "-r", &recipe(), "-o", &target])
        .args(["--registry-auth", arg(&deny)])
        .output()
        .unwrap();
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "credential helper docker-credential-aicrdeny gave no credentials for {} (exit status: 1): error getting credentials - err: exit status 1, out: `User interaction is not allowed.`",
            reg.host
        )),
        "{}",
        stderr(&out)
    );
}

/// An auth file that is a FIFO (nobody writing) or a device is refused at
/// once, never waited on: a FIFO at ~/.docker/config.json hung every push.
#[test]
fn an_auth_file_that_is_a_fifo_or_a_device_is_refused_at_once() {
    let h = Helpers::new();
    let fifo = h.dir.path().join("auth-fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    for (file, what) in [
        (fifo.as_path(), "a FIFO"),
        (Path::new("/dev/zero"), "a character device"),
    ] {
        for via_env in [false, true] {
            let mut cmd = h.aicr();
            cmd.args([
                "bundle",
                "-r",
                &recipe(),
                "-o",
                "oci://127.0.0.1:1/aicr/bundle:v1",
            ])
            .timeout(std::time::Duration::from_secs(20));
            if via_env {
                cmd.env("REGISTRY_AUTH_FILE", file);
            } else {
                cmd.args(["--registry-auth", arg(file)]);
            }
            let out = cmd.output().unwrap();
            assert_eq!(code(&out), 2, "{}", stderr(&out));
            assert!(
                stderr(&out).contains(&format!("{}: not a regular file ({what})", file.display())),
                "{}",
                stderr(&out)
            );
        }
    }
    let out = h
        .aicr()
        .args([
            "verify",
            "oci://127.0.0.1:1/aicr/bundle:v1",
            "--registry-auth",
            arg(&fifo),
        ])
        .timeout(std::time::Duration::from_secs(20))
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not a regular file (a FIFO)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn helpers_that_are_missing_hang_print_garbage_or_return_identity_tokens() {
    let h = Helpers::new();
    let host = "127.0.0.1:1";
    let target = format!("oci://{host}/aicr/bundle:v1");
    let pid_file = h.dir.path().join("hang.pid");
    h.add(
        "aicrhang",
        &format!("echo $$ > '{}'\nexec sleep 30", pid_file.display()),
    );
    h.add("aicrjunk", "echo 'hello, I am not JSON'");
    h.add(
        "aicrtoken",
        "printf '{\"ServerURL\":\"%s\",\"Username\":\"<token>\",\"Secret\":\"refresh-secret-xyz\"}' \"$server\"",
    );
    h.add(
        "aicrshort",
        "printf '{\"ServerURL\":\"%s\",\"Secret\":\"half-secret-xyz\"}' \"$server\"",
    );
    let file = |name: &str, helper: &str| {
        h.auth_file(
            name,
            serde_json::json!({"credHelpers": {host: helper}, "credsStore": "aicrjunk"}),
        )
    };

    // Not installed: 2, saying how to fix it.
    let missing = file("missing.json", "aicr-not-installed");
    let out = h
        .aicr()
        .args(["verify", &target, "--registry-auth", arg(&missing)])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "credential helper docker-credential-aicr-not-installed (named by credHelpers.\"{host}\" in {}) cannot be run: it is not on PATH; install it on PATH, or remove it from that file",
            missing.display()
        )),
        "{}",
        stderr(&out)
    );

    // Hung: stopped at the (shortened) deadline, 5; the helper is gone.
    let hang = file("hang.json", "aicrhang");
    let started = std::time::Instant::now();
    let out = h
        .aicr()
        .env("AICR_TEST_CRED_HELPER_TIMEOUT_MS", "1500")
        .args(["bundle", "-r", &recipe(), "-o", &target])
        .args(["--registry-auth", arg(&hang)])
        .output()
        .unwrap();
    assert_eq!(code(&out), 5, "{}", stderr(&out));
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert!(
        stderr(&out).contains(&format!(
            "credential helper docker-credential-aicrhang did not answer for {host} within 1s 500ms; it was stopped"
        )),
        "{}",
        stderr(&out)
    );
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        common::ended_soon(pid),
        "the hung helper {pid} outlived the deadline"
    );

    // Garbage, a missing field, an identity token: 2, never echoing what
    // the helper printed (it may hold the secret).
    for (name, helper, want) in [
        (
            "junk.json",
            "aicrjunk",
            format!("credential helper docker-credential-aicrjunk answered for {host} with output that is not a credential helper's JSON ({{\"ServerURL\",\"Username\",\"Secret\"}}): not JSON (line 1, column 1)"),
        ),
        (
            "short.json",
            "aicrshort",
            format!("credential helper docker-credential-aicrshort answered for {host} with output that is not a credential helper's JSON ({{\"ServerURL\",\"Username\",\"Secret\"}}): JSON without the string fields Username and Secret"),
        ),
        (
            "token.json",
            "aicrtoken",
            format!("docker-credential-aicrtoken (credHelpers.\"{host}\" in {}) holds an identity token for {host} (user name <token>), which aicr cannot exchange for a registry token; log in with a user name and password (or an access token as the password) instead", h.dir.path().join("token.json").display()),
        ),
    ] {
        let f = file(name, helper);
        let out = h
            .aicr()
            .args(["verify", &target, "--registry-auth", arg(&f)])
            .output()
            .unwrap();
        assert_eq!(code(&out), 2, "{helper}: {}", stderr(&out));
        assert!(stderr(&out).contains(&want), "{helper}: {}", stderr(&out));
        for printed in ["hello, I am", "refresh-secret-xyz", "half-secret-xyz"] {
            assert!(!stderr(&out).contains(printed), "{}", stderr(&out));
        }
    }

    // A helper name that is a path: refused before anything runs.
    let path_name = h.auth_file(
        "path.json",
        serde_json::json!({"credHelpers": {host: "../../bin/sh"}}),
    );
    let out = h
        .aicr()
        .args(["verify", &target, "--registry-auth", arg(&path_name)])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "{}: credHelpers.\"{host}\" in {0}: a credential helper's name is letters, digits, '-', '_' and '.' (the NAME of docker-credential-NAME)",
            path_name.display()
        )),
        "{}",
        stderr(&out)
    );
}
