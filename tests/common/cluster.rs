//! The test cluster of `.ci/kube/start.sh`: a current Kubernetes control
//! plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, and
//! kwok playing the kubelet of nodes labelled `type=kwok`) on 127.0.0.1, with
//! kubectl and helm beside it. The tests that need it are
//! `#[ignore = "needs the test cluster (.ci/kube)"]` (or `"needs helm"`, or
//! `"needs the test cluster v1.25+ (.ci/kube)"` for those that need a current
//! server), so a plain `cargo test` lists them as ignored; run with
//! `--include-ignored` (`make test-all`, which `.ci/run` runs) they fail when
//! it is missing, never skip.
//!
//! Beside the cluster: a namespace guard ([`Namespace`]) and kubeconfigs
//! of other identities ([`Cluster::user_kubeconfig`] for a user with a
//! client certificate signed by the cluster's CA,
//! [`Cluster::token_kubeconfig`] for a ServiceAccount's token).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where `.ci/kube/install.sh` put the test environment: `$KUBE_DIR`, by
/// default its default (`.ci/run` sets it, to the old cluster of
/// `.ci/kube/legacy/` when it has to fall back to that one).
pub fn kube_dir() -> PathBuf {
    std::env::var_os("KUBE_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/aicr-test-kube-modern"))
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

#[derive(Clone, Debug)]
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
    /// The API server's URL, as the kubeconfig names it
    /// (`https://127.0.0.1:26443`).
    pub fn server(&self) -> String {
        self.kubectl(
            &[
                "config",
                "view",
                "--minify",
                "-o",
                "jsonpath={.clusters[0].cluster.server}",
            ],
            None,
        )
        .trim()
        .to_string()
    }

    /// The URL of the cluster's etcd, which `.ci/kube/start.sh` records in
    /// `$KUBE_DIR/run/etcd-endpoint`.
    pub fn etcd_url(&self) -> String {
        let p = kube_dir().join("run/etcd-endpoint");
        std::fs::read_to_string(&p)
            .unwrap_or_else(|e| {
                panic!(
                    "{}: {e}: start the cluster with .ci/kube/start.sh",
                    p.display()
                )
            })
            .trim()
            .to_string()
    }

    /// The server's Kubernetes version, as `(minor, "v1.37.2")`.
    pub fn server_version(&self) -> (u32, String) {
        let out = self.kubectl(&["version", "-o", "json"], None);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let git = v["serverVersion"]["gitVersion"].as_str().unwrap_or("?");
        let minor = v["serverVersion"]["minor"]
            .as_str()
            .and_then(|m| m.trim_end_matches('+').parse().ok())
            .unwrap_or_else(|| panic!("no server version in kubectl's answer: {out}"));
        (minor, git.to_string())
    }

    /// Fails the test, never skips it, when the server is older than
    /// Kubernetes 1.`min`: `what` is what the test checks that an older
    /// server cannot.
    pub fn require_minor(&self, min: u32, what: &str) {
        let (minor, git) = self.server_version();
        assert!(
            minor >= min,
            "{what} needs Kubernetes 1.{min}+, but the test cluster at {} is {git}: \
             start the current one (.ci/kube/install.sh and .ci/kube/start.sh); the old \
             v1.20.2 cluster of .ci/kube/legacy/ cannot run this test (.ci/run skips it \
             by name when it falls back to that one)",
            kube_dir().display()
        );
    }

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

    /// Waits until the CRD `plural.group` is Established and its resource
    /// answers a list. `kubectl wait --for=condition=Established` is not
    /// enough: it fails at once ("accessor error: <nil>") when it reads the
    /// CRD before the server has written any condition, and under load
    /// discovery serves the new kind a moment after Established.
    pub fn wait_crd_served(&self, crd: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let mut last = String::new();
        while std::time::Instant::now() < deadline {
            let (ok, out) = self.try_kubectl(
                &[
                    "get",
                    "crd",
                    crd,
                    "-o",
                    "jsonpath={.status.conditions[?(@.type==\"Established\")].status}",
                ],
                "",
            );
            if ok && out.starts_with("True") {
                let (ok, out) = self.try_kubectl(&["get", crd, "-A"], "");
                if ok {
                    return;
                }
                last = out;
            } else {
                last = out;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("CRD {crd} is not Established and served after 60 s: {last}");
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

impl Cluster {
    /// The CA file of the API server's certificate, as the kubeconfig
    /// names it.
    pub fn ca_file(&self) -> String {
        self.kubectl(
            &[
                "config",
                "view",
                "--minify",
                "--raw",
                "-o",
                "jsonpath={.clusters[0].cluster.certificate-authority}",
            ],
            None,
        )
        .trim()
        .to_string()
    }

    /// Writes `dir/NAME.kubeconfig` for this cluster's server with the
    /// credentials `user` (a YAML flow mapping, such as `{token: T}`) in
    /// its one context, current.
    pub fn kubeconfig_as(&self, dir: &Path, name: &str, user: &str) -> PathBuf {
        let p = dir.join(format!("{name}.kubeconfig"));
        std::fs::write(
            &p,
            format!(
                "apiVersion: v1
kind: Config
current-context: {name}
clusters:
- name: local
  cluster: {{server: '{server}', certificate-authority: '{ca}'}}
users:
- name: {name}
  user: {user}
contexts:
- name: {name}
  context: {{cluster: local, user: {name}}}
",
                server = self.server(),
                ca = self.ca_file(),
            ),
        )
        .unwrap();
        p
    }

    /// A kubeconfig (in `dir`) for the user `user`: a v3 client
    /// certificate (rustls refuses v1) with that common name, signed by
    /// the cluster's CA (`$KUBE_DIR/pki`) with openssl. The user has no
    /// rights until the test binds some.
    pub fn user_kubeconfig(&self, user: &str, dir: &Path) -> PathBuf {
        let pki = kube_dir().join("pki");
        let key = dir.join("user.key");
        let csr = dir.join("user.csr");
        let crt = dir.join("user.crt");
        let ext = dir.join("ext.cnf");
        std::fs::write(
            &ext,
            "[ext]\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n",
        )
        .unwrap();
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .output()
                .expect("openssl runs");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let path = |p: &Path| p.to_str().unwrap().to_string();
        openssl(&["genrsa", "-out", &path(&key), "2048"]);
        openssl(&[
            "req",
            "-new",
            "-key",
            &path(&key),
            "-subj",
            &format!("/CN={user}"),
            "-out",
            &path(&csr),
        ]);
        openssl(&[
            "x509",
            "-req",
            "-in",
            &path(&csr),
            "-CA",
            &path(&pki.join("ca.crt")),
            "-CAkey",
            &path(&pki.join("ca.key")),
            "-CAcreateserial",
            "-CAserial",
            &path(&dir.join("ca.srl")),
            "-days",
            "1",
            "-out",
            &path(&crt),
            "-extfile",
            &path(&ext),
            "-extensions",
            "ext",
        ]);
        self.kubeconfig_as(
            dir,
            "user",
            &format!(
                "{{client-certificate: '{}', client-key: '{}'}}",
                crt.display(),
                key.display()
            ),
        )
    }

    /// A kubeconfig (in `dir`) holding a token of the ServiceAccount `sa`
    /// in `ns`.
    pub fn token_kubeconfig(&self, dir: &Path, ns: &str, sa: &str) -> PathBuf {
        let token = self.kubectl(&["create", "token", sa, "-n", ns], None);
        self.kubeconfig_as(dir, "sa", &format!("{{token: '{}'}}", token.trim()))
    }
}

/// A namespace of the test's own (a [`unique`] name), deleted when the
/// guard goes.
pub struct Namespace {
    pub c: Cluster,
    pub name: String,
}

impl Namespace {
    pub fn new(c: &Cluster, prefix: &str) -> Namespace {
        let name = unique(prefix);
        c.kubectl(&["create", "namespace", &name], None);
        Namespace { c: c.clone(), name }
    }
}

impl Namespace {
    /// A Role `name` in the namespace allowing `verbs` (comma-separated)
    /// on `resource`, bound to `subject` (`--user=U` or
    /// `--serviceaccount=NS:SA`).
    pub fn grant(&self, name: &str, verbs: &str, resource: &str, subject: &str) {
        self.c.kubectl(
            &[
                "-n",
                &self.name,
                "create",
                "role",
                name,
                &format!("--verb={verbs}"),
                &format!("--resource={resource}"),
            ],
            None,
        );
        self.c.kubectl(
            &[
                "-n",
                &self.name,
                "create",
                "rolebinding",
                name,
                &format!("--role={name}"),
                subject,
            ],
            None,
        );
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = self
            .c
            .try_kubectl(&["delete", "namespace", &self.name, "--wait=false"], "");
    }
}

/// A name no earlier run used: the server keeps deleted namespaces.
pub fn unique(prefix: &str) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    format!("{prefix}-{}-{}", std::process::id(), t.subsec_nanos())
}

/// A port on 127.0.0.1 nothing listens on (bound, then let go).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A kubeconfig for `https://127.0.0.1:PORT` (no test cluster: a closed
/// or silent port) with the token `hunter2-token`, which no message may
/// quote, and the contexts `local` (current) and `other`.
pub fn kubeconfig_for(port: u16) -> String {
    format!(
        "apiVersion: v1
kind: Config
current-context: local
clusters:
- name: local
  cluster: {{server: 'https://127.0.0.1:{port}', insecure-skip-tls-verify: true}}
users:
- name: u
  user: {{token: hunter2-token}}
contexts:
- name: local
  context: {{cluster: local, user: u}}
- name: other
  context: {{cluster: local, user: u}}
"
    )
}
