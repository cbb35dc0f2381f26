//! The test cluster of `.ci/kube/start.sh`: a real kube-apiserver + etcd on
//! 127.0.0.1, with kubectl and helm beside it. The tests that need it are
//! `#[ignore = "needs the test cluster (.ci/kube)"]` (or `"needs helm"`), so
//! a plain `cargo test` lists them as ignored; run with `--include-ignored`
//! (`make test-all`, which `.ci/run` runs) they fail when it is missing,
//! never skip.

use std::path::PathBuf;
use std::process::Command;

/// Where `.ci/kube/install.sh` put the test environment.
pub fn kube_dir() -> PathBuf {
    std::env::var_os("KUBE_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/aicr-test-kube"))
        })
        .expect("KUBE_DIR or HOME is set")
}

/// A tool of the test environment (`helm`, `kubectl`); fails the test when
/// it is not installed.
pub fn tool(name: &str) -> PathBuf {
    let p = kube_dir().join("bin").join(name);
    assert!(
        p.is_file(),
        "{} is missing: .ci/kube/install.sh installs it",
        p.display()
    );
    p
}

pub struct Cluster {
    pub kubeconfig: PathBuf,
    pub kubectl: PathBuf,
}

/// The test cluster of `.ci/kube/start.sh`; fails the test when it is not
/// running.
pub fn cluster() -> Cluster {
    let dir = kube_dir();
    let c = Cluster {
        kubeconfig: dir.join("kubeconfig"),
        kubectl: dir.join("bin/kubectl"),
    };
    let up = c.kubeconfig.is_file()
        && c.kubectl.is_file()
        && Command::new(&c.kubectl)
            .arg("--kubeconfig")
            .arg(&c.kubeconfig)
            .args(["get", "--raw", "/readyz"])
            .output()
            .is_ok_and(|o| o.status.success());
    assert!(
        up,
        "the test kube-apiserver is not running at {}: run .ci/kube/install.sh and .ci/kube/start.sh (.ci/run does)",
        dir.display()
    );
    c
}

impl Cluster {
    /// Runs kubectl with `stdin`; returns success and stdout+stderr.
    pub fn try_kubectl(&self, args: &[&str], stdin: &str) -> (bool, String) {
        use std::io::Write;
        let mut child = Command::new(&self.kubectl)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> String {
        use std::io::Write;
        let mut cmd = Command::new(&self.kubectl);
        cmd.arg("--kubeconfig").arg(&self.kubeconfig).args(args);
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.unwrap_or("").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() || err.contains("AlreadyExists"),
            "kubectl {args:?}: {err}"
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

/// A name no earlier run used: the server keeps deleted namespaces.
pub fn unique(prefix: &str) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    format!("{prefix}-{}-{}", std::process::id(), t.subsec_nanos())
}
