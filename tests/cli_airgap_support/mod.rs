//! What the air-gap tests share: a Helm chart repository on 127.0.0.1
//! built from the test chart of `tests/fixtures/charts-airgap/mini` (one
//! copy per chart name and version, packaged and indexed with the test
//! environment's helm) and served by a small HTTP server the test starts and
//! can stop; a helm environment of its own per test (cache, config, data);
//! and the eks/h100/training/ubuntu recipe pointed at the repository.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::common::{self, cluster};

/// The charts of the eks/h100/training/ubuntu recipe: name and version.
pub const EKS_CHARTS: [(&str, &str); 11] = [
    ("aws-ebs-csi-driver", "2.55.0"),
    ("aws-efa-k8s-device-plugin", "v0.5.3"),
    ("cert-manager", "v1.17.2"),
    ("gpu-operator", "v25.10.1"),
    ("k8s-ephemeral-storage-metrics", "1.19.2"),
    ("kai-scheduler", "v0.13.0"),
    ("kube-prometheus-stack", "82.8.0"),
    ("nvidia-dra-driver-gpu", "25.12.0"),
    ("nvsentinel", "v1.1.0"),
    ("prometheus-adapter", "5.3.0"),
    ("skyhook-operator", "v0.14.0"),
];

/// A test's own helm environment: helm's cache, config and data in a
/// temporary directory, so parallel tests never share a repository cache.
pub struct HelmEnv {
    pub dir: tempfile::TempDir,
    pub helm: PathBuf,
}

impl HelmEnv {
    pub fn new() -> HelmEnv {
        HelmEnv {
            dir: tempfile::tempdir().unwrap(),
            helm: cluster::tool("helm"),
        }
    }

    pub fn vars(&self) -> Vec<(&'static str, PathBuf)> {
        vec![
            ("HELM_CACHE_HOME", self.dir.path().join("cache")),
            ("HELM_CONFIG_HOME", self.dir.path().join("config")),
            ("HELM_DATA_HOME", self.dir.path().join("data")),
        ]
    }

    /// `aicr` with this environment.
    pub fn aicr(&self) -> assert_cmd::Command {
        let mut cmd = common::aicr();
        for (k, v) in self.vars() {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs helm; panics with its output when it fails.
    pub fn helm(&self, args: &[&str]) -> String {
        let out = Command::new(&self.helm)
            .envs(self.vars())
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "helm {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

/// A chart repository served on 127.0.0.1 until [`ChartRepo::stop`] (or
/// drop).
pub struct ChartRepo {
    pub url: String,
    pub dir: tempfile::TempDir,
    stop: Arc<AtomicBool>,
    addr: std::net::SocketAddr,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ChartRepo {
    /// Packages the test chart once per `(name, version)` and serves the
    /// repository.
    pub fn start(env: &HelmEnv, charts: &[(&str, &str)]) -> ChartRepo {
        let charts: Vec<(&str, &str, &str)> =
            charts.iter().map(|(n, v)| (*n, *v, "mini")).collect();
        ChartRepo::start_from(env, &charts)
    }

    /// Packages `(name, version, chart)`, `chart` a test chart of
    /// `tests/fixtures/charts-airgap`, and serves the repository.
    pub fn start_from(env: &HelmEnv, charts: &[(&str, &str, &str)]) -> ChartRepo {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let url = format!("http://{addr}");
        let dir = tempfile::tempdir().unwrap();
        for (name, version, from) in charts {
            let src = common::fixture(&format!("charts-airgap/{from}"));
            let work = tempfile::tempdir().unwrap();
            let chart = work.path().join(name);
            copy_dir(&src, &chart);
            let meta = std::fs::read_to_string(chart.join("Chart.yaml")).unwrap();
            let meta = meta
                .replace(&format!("name: {from}"), &format!("name: {name}"))
                .replace("version: 0.1.0", &format!("version: {version}"));
            std::fs::write(chart.join("Chart.yaml"), meta).unwrap();
            env.helm(&[
                "package",
                chart.to_str().unwrap(),
                "-d",
                dir.path().to_str().unwrap(),
            ]);
        }
        env.helm(&["repo", "index", dir.path().to_str().unwrap(), "--url", &url]);
        let stop = Arc::new(AtomicBool::new(false));
        let root = dir.path().to_path_buf();
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(conn) = conn {
                    serve(&root, conn);
                }
            }
        });
        ChartRepo {
            url,
            dir,
            stop,
            addr,
            thread: Some(thread),
        }
    }

    /// Stops serving: the port refuses connections from now on.
    pub fn stop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.stop.store(true, Ordering::SeqCst);
            let _ = TcpStream::connect(self.addr);
            t.join().unwrap();
        }
        assert!(
            TcpStream::connect(self.addr).is_err(),
            "the chart repository still answers"
        );
    }
}

impl Drop for ChartRepo {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.stop.store(true, Ordering::SeqCst);
            let _ = TcpStream::connect(self.addr);
            let _ = t.join();
        }
    }
}

/// One GET: a file of the repository, or 404.
fn serve(root: &Path, mut conn: TcpStream) {
    let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(10)));
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    // Drain the headers.
    loop {
        let mut h = String::new();
        match reader.read_line(&mut h) {
            Ok(0) | Err(_) => break,
            Ok(_) if h == "\r\n" || h == "\n" => break,
            Ok(_) => {}
        }
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/");
    let name = path.trim_start_matches('/').split('?').next().unwrap_or("");
    let body = (!name.is_empty() && !name.contains('/') && !name.contains(".."))
        .then(|| std::fs::read(root.join(name)).ok())
        .flatten();
    let _ = match body {
        Some(b) => conn
            .write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    b.len()
                )
                .as_bytes(),
            )
            .and_then(|()| conn.write_all(&b)),
        None => conn
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
    };
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// The eks/h100/training/ubuntu recipe with every chart's source pointed
/// at `repo_url` (OCI charts included: the test repository is a classic
/// one), written to `dir/recipe.yaml`.
pub fn eks_recipe(dir: &Path, repo_url: &str) -> PathBuf {
    let out = common::run(&[
        "recipe",
        "--service",
        "eks",
        "--accelerator",
        "h100",
        "--intent",
        "training",
        "--os",
        "ubuntu",
    ]);
    assert_eq!(common::code(&out), 0, "{}", common::stderr(&out));
    let mut recipe = common::parse_yaml(&common::stdout(&out));
    for c in recipe["componentRefs"].as_array_mut().unwrap() {
        if c.get("source")
            .and_then(|s| s.as_str())
            .is_some_and(|s| !s.is_empty())
        {
            c["source"] = repo_url.into();
        }
    }
    let path = dir.join("recipe.yaml");
    std::fs::write(&path, serde_yaml_ng::to_string(&recipe).unwrap()).unwrap();
    path
}

/// Checks `doc` (YAML, one or more documents) against a vendored JSON
/// schema with python3's jsonschema; fails the test when python3 or
/// jsonschema is missing.
pub fn check_schema(schema: &str, doc: &str) {
    let schema = common::fixture("airgap").join(schema);
    let script = "import sys, json, yaml, jsonschema\n\
        schema = json.load(open(sys.argv[1]))\n\
        docs = [d for d in yaml.safe_load_all(sys.stdin) if d is not None]\n\
        assert docs, 'no document'\n\
        for d in docs:\n    jsonschema.Draft202012Validator(schema).validate(d)\n\
        print(len(docs))\n";
    let mut child = Command::new("python3")
        .args(["-c", script])
        .arg(&schema)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs (this test needs python3 with PyYAML and jsonschema)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(doc.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{} rejects the document: {}\n{doc}",
        schema.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The OCI registry of the air-gap tests: distribution's `registry`, which
/// `.ci/run` builds from Go modules into this directory.
pub fn registry_binary() -> PathBuf {
    let p = PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
        .join(".cache/aicr-test-registry/registry");
    assert!(
        p.is_file(),
        "{} is missing: .ci/run builds it (github.com/distribution/distribution/v3/cmd/registry, .ci/registry/)",
        p.display()
    );
    p
}

/// An OCI registry on 127.0.0.1 (plain HTTP, no authentication), storing
/// into a temporary directory; killed and reaped when dropped.
pub struct OciRegistry {
    pub host: String,
    child: std::process::Child,
    dir: tempfile::TempDir,
}

impl OciRegistry {
    pub fn start() -> OciRegistry {
        OciRegistry::start_with(None)
    }

    /// With `htpasswd`: HTTP basic authentication against that file.
    pub fn start_with(htpasswd: Option<&Path>) -> OciRegistry {
        let bin = registry_binary();
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let host = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {host}\n{}",
                dir.path().join("data").display(),
                htpasswd.map_or(String::new(), |p| format!(
                    "auth:\n  htpasswd:\n    realm: aicr-test\n    path: {}\n",
                    p.display()
                ))
            ),
        )
        .unwrap();
        let child = Command::new(bin)
            .args(["serve", config.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let reg = OciRegistry { host, child, dir };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while TcpStream::connect(&reg.host).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "the test registry did not start on {}",
                reg.host
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        reg
    }
}

impl OciRegistry {
    /// Every blob the registry stores: its data file on disk.
    pub fn blobs(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let root = self.dir.path().join("data/docker/registry/v2/blobs/sha256");
        for a in std::fs::read_dir(&root).unwrap() {
            for b in std::fs::read_dir(a.unwrap().path()).unwrap() {
                out.push(b.unwrap().path().join("data"));
            }
        }
        out
    }
}

impl Drop for OciRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
