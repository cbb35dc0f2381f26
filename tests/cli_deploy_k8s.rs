//! `deploy.sh` and `undeploy.sh` against the test cluster with the real
//! helm: small test charts (tests/fixtures/charts: `widget`, a Deployment, a
//! ConfigMap and a CRD in `crds/`; `gadget`, a Deployment and a ConfigMap
//! whose `data.state` says whether it is ready; `broken`, which fails to
//! render) are packaged and served from a chart repository on 127.0.0.1 that
//! the test starts, and from an OCI registry (TLS, the test-only CA of
//! tests/fixtures/https) it starts too; a recipe and a `--data` registry written by the test
//! point its components at them. The cluster runs no workload controllers,
//! so a thread plays the Deployment controller for the test's namespaces
//! (it writes each Deployment's status as ready). Every object a test makes
//! has a unique name and is deleted at the end, pass or fail.
//!
//! Ignored by default (`needs the test cluster (.ci/kube)`); run with
//! `--include-ignored` they fail when the cluster or helm is missing.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::cluster::{cluster, kube_dir, tool, unique, Cluster};
use common::*;

/// A chart repository on 127.0.0.1: a thread answering GET with the files of
/// one directory (the packaged charts and index.yaml).
fn serve(dir: PathBuf) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let dir = dir.clone();
            std::thread::spawn(move || answer(stream, &dir));
        }
    });
    port
}

fn answer(mut stream: TcpStream, dir: &Path) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(clone) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(clone);
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    loop {
        let mut header = String::new();
        match reader.read_line(&mut header) {
            Ok(0) | Err(_) => break,
            Ok(_) if header == "\r\n" || header == "\n" => break,
            Ok(_) => {}
        }
    }
    let path = request.split(' ').nth(1).unwrap_or("/");
    let name = path.trim_start_matches('/').split('?').next().unwrap_or("");
    let body = if name.is_empty() || name.contains('/') || name.contains("..") {
        None
    } else {
        std::fs::read(dir.join(name)).ok()
    };
    let _ = match body {
        Some(b) => stream
            .write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    b.len()
                )
                .as_bytes(),
            )
            .and_then(|_| stream.write_all(&b)),
        None => stream
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
    };
}

/// A read-only OCI registry on 127.0.0.1 over TLS (the test-only CA of
/// tests/fixtures/https, which helm trusts through SSL_CERT_FILE): it serves
/// each packaged chart `NAME-VERSION.tgz` of `dir` as
/// `charts/NAME:VERSION`, the way `helm push` lays a chart out (an OCI
/// manifest, a Helm config blob, the chart as its one layer).
fn serve_oci(dir: PathBuf) -> u16 {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let https = fixture("https");
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(https.join("server.pem"))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
    let key = PrivateKeyDer::from_pem_file(https.join("server.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let config = config.clone();
            let dir = dir.clone();
            std::thread::spawn(move || {
                let _ = answer_oci(config, tcp, &dir);
            });
        }
    });
    port
}

fn sha256(b: &[u8]) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(b);
    format!(
        "sha256:{}",
        d.iter().map(|x| format!("{x:02x}")).collect::<String>()
    )
}

/// The manifest, config and layer of `charts/NAME:VERSION`.
fn oci_chart(dir: &Path, name: &str, version: &str) -> Option<(Vec<u8>, Vec<u8>, Vec<u8>)> {
    let layer = std::fs::read(dir.join(format!("{name}-{version}.tgz"))).ok()?;
    let config =
        format!(r#"{{"apiVersion":"v2","name":"{name}","version":"{version}"}}"#).into_bytes();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.cncf.helm.config.v1+json","digest":"{}","size":{}}},"layers":[{{"mediaType":"application/vnd.cncf.helm.chart.content.v1.tar+gzip","digest":"{}","size":{}}}]}}"#,
        sha256(&config),
        config.len(),
        sha256(&layer),
        layer.len()
    )
    .into_bytes();
    Some((manifest, config, layer))
}

fn answer_oci(
    config: Arc<rustls::ServerConfig>,
    tcp: TcpStream,
    dir: &Path,
) -> std::io::Result<()> {
    use std::io::Read;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let conn = rustls::ServerConnection::new(config).map_err(std::io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tls.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        request.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&request).into_owned();
    let mut words = text.split_whitespace();
    let method = words.next().unwrap_or("GET").to_string();
    let path = words.next().unwrap_or("/").to_string();
    let path = path.split('?').next().unwrap_or("").to_string();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    // /v2/, /v2/charts/NAME/manifests/REF, /v2/charts/NAME/blobs/DIGEST,
    // /v2/charts/NAME/tags/list
    let mut found: Option<(&str, Vec<u8>, Option<String>)> = None;
    match parts.as_slice() {
        ["v2", ""] | ["v2"] => found = Some(("application/json", b"{}".to_vec(), None)),
        ["v2", "charts", name, "tags", "list"] => {
            let mut tags = Vec::new();
            for e in std::fs::read_dir(dir)?.flatten() {
                let f = e.file_name().to_string_lossy().into_owned();
                if let Some(v) = f
                    .strip_prefix(&format!("{name}-"))
                    .and_then(|r| r.strip_suffix(".tgz"))
                {
                    tags.push(format!("\"{v}\""));
                }
            }
            let body = format!(r#"{{"name":"charts/{name}","tags":[{}]}}"#, tags.join(","));
            found = Some(("application/json", body.into_bytes(), None));
        }
        ["v2", "charts", name, kind, reference] => {
            for e in std::fs::read_dir(dir)?.flatten() {
                let f = e.file_name().to_string_lossy().into_owned();
                let Some(version) = f
                    .strip_prefix(&format!("{name}-"))
                    .and_then(|r| r.strip_suffix(".tgz"))
                else {
                    continue;
                };
                let Some((manifest, config, layer)) = oci_chart(dir, name, version) else {
                    continue;
                };
                let digest = sha256(&manifest);
                if *kind == "manifests" && (*reference == version || *reference == digest) {
                    found = Some((
                        "application/vnd.oci.image.manifest.v1+json",
                        manifest,
                        Some(digest),
                    ));
                } else if *kind == "blobs" {
                    for b in [config, layer] {
                        if sha256(&b) == *reference {
                            let d = sha256(&b);
                            found = Some(("application/octet-stream", b, Some(d)));
                        }
                    }
                }
                if found.is_some() {
                    break;
                }
            }
        }
        _ => {}
    }
    let response = match found {
        Some((kind, body, digest)) => {
            let mut head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            if let Some(d) = digest {
                head += &format!("Docker-Content-Digest: {d}\r\n");
            }
            head += "Docker-Distribution-Api-Version: registry/2.0\r\n\r\n";
            let mut r = head.into_bytes();
            if method != "HEAD" {
                r.extend_from_slice(&body);
            }
            r
        }
        None => b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}".to_vec(),
    };
    tls.write_all(&response)?;
    tls.flush()?;
    tls.conn.send_close_notify();
    let _ = tls.flush();
    Ok(())
}

/// One component of a test recipe.
struct Comp {
    name: &'static str,
    chart: &'static str,
    /// From the OCI registry (else the chart repository).
    oci: bool,
    version: &'static str,
    namespace: String,
    deps: &'static [&'static str],
    /// Registry readiness, as YAML lines under `readiness:`.
    readiness: String,
    values: &'static str,
}

/// A test's world: its temporary directory, helm's own homes, the chart
/// repository, the CRD group of its `widget` chart, and what to delete at
/// the end.
struct World {
    tmp: tempfile::TempDir,
    c: Cluster,
    port: u16,
    oci_port: u16,
    group: String,
    namespaces: Vec<String>,
    cleanup: Vec<Vec<String>>,
    controller: Arc<AtomicBool>,
}

impl World {
    fn new(prefix: &str) -> World {
        let c = cluster();
        tool("helm");
        let tmp = tempfile::tempdir().unwrap();
        let id = unique(prefix);
        let group = format!("{id}.aicr.test");
        let repo = tmp.path().join("repo");
        let src = tmp.path().join("charts");
        std::fs::create_dir_all(&repo).unwrap();
        copy_dir(&fixture("charts"), &src);
        let crd = src.join("widget/crds/widgets.yaml");
        let text = std::fs::read_to_string(&crd).unwrap();
        std::fs::write(&crd, text.replace("GROUP", &group)).unwrap();
        let port = serve(repo.clone());
        let oci_port = serve_oci(repo.clone());
        let w = World {
            tmp,
            c,
            port,
            oci_port,
            group,
            namespaces: Vec::new(),
            cleanup: vec![vec![
                "delete".into(),
                "crd".into(),
                format!("widgets.{id}.aicr.test"),
                "--ignore-not-found".into(),
                "--wait=false".into(),
            ]],
            controller: Arc::new(AtomicBool::new(true)),
        };
        for chart in ["widget", "gadget", "broken"] {
            w.helm(&[
                "package",
                src.join(chart).to_str().unwrap(),
                "-d",
                repo.to_str().unwrap(),
            ]);
        }
        w.helm(&[
            "repo",
            "index",
            repo.to_str().unwrap(),
            "--url",
            &format!("http://127.0.0.1:{port}"),
        ]);
        w
    }

    fn crd(&self) -> String {
        format!("widgets.{}", self.group)
    }

    /// A namespace for this test (deleted at the end).
    fn namespace(&mut self, suffix: &str) -> String {
        let ns = format!("{}-{suffix}", self.group.split('.').next().unwrap());
        self.namespaces.push(ns.clone());
        self.cleanup.push(vec![
            "delete".into(),
            "namespace".into(),
            ns.clone(),
            "--ignore-not-found".into(),
            "--wait=false".into(),
        ]);
        ns
    }

    fn env(&self, cmd: &mut std::process::Command) {
        let home = self.tmp.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        cmd.env(
            "PATH",
            format!("{}:/usr/bin:/bin", kube_dir().join("bin").display()),
        )
        .env("HOME", &home)
        .env("KUBECONFIG", &self.c.kubeconfig)
        .env("HELM_CACHE_HOME", home.join("helm-cache"))
        .env("HELM_CONFIG_HOME", home.join("helm-config"))
        .env("HELM_DATA_HOME", home.join("helm-data"))
        .env("SSL_CERT_FILE", fixture("https/ca.pem"));
    }

    fn helm(&self, args: &[&str]) -> String {
        let (ok, out) = self.try_helm(args);
        assert!(ok, "helm {args:?}: {out}");
        out
    }

    fn try_helm(&self, args: &[&str]) -> (bool, String) {
        let mut cmd = std::process::Command::new(tool("helm"));
        self.env(&mut cmd);
        let out = cmd.args(args).output().unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    /// The revision of a deployed release, or None.
    fn revision(&self, release: &str, ns: &str) -> Option<u64> {
        let (ok, out) = self.try_helm(&["status", release, "--namespace", ns, "-o", "json"]);
        if !ok {
            return None;
        }
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["info"]["status"], "deployed", "{out}");
        v["version"].as_u64()
    }

    /// Writes the registry, values and recipe of `comps`, bundles them with
    /// `extra` flags into `dir` and returns it.
    fn bundle(&self, dir: &str, comps: &[Comp], extra: &[&str]) -> PathBuf {
        self.bundle_with(dir, comps, extra, &[])
    }

    /// [`World::bundle`], with manifest files: `(component, file, text)`.
    fn bundle_with(
        &self,
        dir: &str,
        comps: &[Comp],
        extra: &[&str],
        manifests: &[(&str, &str, &str)],
    ) -> PathBuf {
        let data = self.tmp.path().join(format!("{dir}-data"));
        let mut registry = String::from(
            "apiVersion: aicr.nvidia.com/v1alpha1\nkind: ComponentRegistry\ncomponents:\n",
        );
        let mut recipe = String::from(
            "kind: RecipeResult\napiVersion: aicr.nvidia.com/v1alpha1\nmetadata:\n  version: 0.1.0\ncriteria:\n  service: any\ncomponentRefs:\n",
        );
        for c in comps {
            let source = if c.oci {
                format!("oci://127.0.0.1:{}/charts", self.oci_port)
            } else {
                format!("http://127.0.0.1:{}", self.port)
            };
            let values = data.join(format!("components/{}/values.yaml", c.name));
            std::fs::create_dir_all(values.parent().unwrap()).unwrap();
            std::fs::write(&values, c.values).unwrap();
            if c.chart.is_empty() {
                // Manifests only.
                registry += &format!(
                    "  - name: {}\n    helm:\n      defaultRepository: \"\"\n    readiness:\n{}\n",
                    c.name, c.readiness
                );
                recipe += &format!(
                    "  - name: {}\n    namespace: {}\n    type: Helm\n    valuesFile: components/{}/values.yaml\n    dependencyRefs: [{}]\n",
                    c.name, c.namespace, c.name, c.deps.join(", ")
                );
            } else {
                registry += &format!(
                    "  - name: {}\n    helm:\n      defaultRepository: {source}\n      defaultChart: {}\n    readiness:\n{}\n",
                    c.name, c.chart, c.readiness
                );
                recipe += &format!(
                    "  - name: {}\n    namespace: {}\n    chart: {}\n    type: Helm\n    source: {source}\n    version: {}\n    valuesFile: components/{}/values.yaml\n    dependencyRefs: [{}]\n",
                    c.name, c.namespace, c.chart, c.version, c.name, c.deps.join(", ")
                );
            }
            let files: Vec<String> = manifests
                .iter()
                .filter(|(comp, _, _)| *comp == c.name)
                .map(|(comp, file, text)| {
                    let rel = format!("components/{comp}/manifests/{file}");
                    std::fs::create_dir_all(data.join(&rel).parent().unwrap()).unwrap();
                    std::fs::write(data.join(&rel), text).unwrap();
                    rel
                })
                .collect();
            if !files.is_empty() {
                recipe += &format!("    manifestFiles: [{}]\n", files.join(", "));
            }
        }
        recipe += &format!(
            "deploymentOrder: [{}]\n",
            comps.iter().map(|c| c.name).collect::<Vec<_>>().join(", ")
        );
        std::fs::write(data.join("registry.yaml"), registry).unwrap();
        let recipe_file = self.tmp.path().join(format!("{dir}-recipe.yaml"));
        std::fs::write(&recipe_file, recipe).unwrap();
        let out_dir = self.tmp.path().join(dir);
        let mut args = vec![
            "bundle",
            "-r",
            recipe_file.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "-o",
            out_dir.to_str().unwrap(),
        ];
        args.extend(extra);
        let out = run(&args);
        assert_eq!(code(&out), 0, "bundle: {}", stderr(&out));
        out_dir
    }

    /// Runs a script of a bundle; returns (exit code, stdout, stderr).
    fn script(&self, dir: &Path, name: &str, args: &[&str]) -> (i32, String, String) {
        let mut cmd = std::process::Command::new("timeout");
        self.env(&mut cmd);
        cmd.args(["-k", "10", "400", "bash"])
            .arg(dir.join(name))
            .args(["--retries", "1"])
            .args(args);
        let out = cmd.output().unwrap();
        let (o, e) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        let code = out.status.code().unwrap_or(-1);
        assert_ne!(code, 124, "{name} {args:?} ran past 400 s:\n{o}\n{e}");
        (code, o, e)
    }

    /// Plays the Deployment controller in the test's namespaces: each
    /// Deployment whose status is behind its generation is written as
    /// rolled out, so that `helm --wait` and `kubectl rollout status` see it
    /// ready.
    fn start_controller(&self) {
        let namespaces = self.namespaces.clone();
        let kubeconfig = self.c.kubeconfig.clone();
        let kubectl = self.c.kubectl.clone();
        let on = self.controller.clone();
        std::thread::spawn(move || {
            let c = Cluster {
                kubeconfig,
                kubectl,
            };
            while on.load(Ordering::Relaxed) {
                for ns in &namespaces {
                    let (ok, out) = c.try_kubectl(
                        &[
                            "get",
                            "deployments",
                            "-n",
                            ns,
                            "-o",
                            "jsonpath={range .items[*]}{.metadata.name} {.metadata.generation} {.status.observedGeneration}{\"\\n\"}{end}",
                        ],
                        "",
                    );
                    if !ok {
                        continue;
                    }
                    for line in out.lines() {
                        let f: Vec<&str> = line.split(' ').collect();
                        if f.len() < 2 || f.get(2) == Some(&f[1]) {
                            continue;
                        }
                        let patch = format!(
                            r#"{{"status":{{"observedGeneration":{},"replicas":1,"updatedReplicas":1,"readyReplicas":1,"availableReplicas":1,"conditions":[{{"type":"Available","status":"True","reason":"MinimumReplicasAvailable"}},{{"type":"Progressing","status":"True","reason":"NewReplicaSetAvailable"}}]}}}}"#,
                            f[1]
                        );
                        c.try_kubectl(
                            &[
                                "patch",
                                "deployment",
                                f[0],
                                "-n",
                                ns,
                                "--subresource=status",
                                "--type=merge",
                                "-p",
                                &patch,
                            ],
                            "",
                        );
                    }
                }
                std::thread::sleep(Duration::from_millis(300));
            }
        });
    }

    fn kubectl_ok(&self, args: &[&str]) -> bool {
        self.c.try_kubectl(args, "").0
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.controller.store(false, Ordering::Relaxed);
        for args in self.cleanup.iter().rev() {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            self.c.try_kubectl(&args, "");
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

fn current_context(c: &Cluster) -> String {
    c.kubectl(&["config", "current-context"], None)
        .trim()
        .to_string()
}

/// The result column of a component's row in a script's summary table.
fn result_of(stdout: &str, component: &str) -> String {
    stdout
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.first() == Some(&component) && f.len() >= 3).then(|| {
                // "not run" is two words.
                if f[2] == "not" {
                    "not run".to_string()
                } else {
                    f[2].to_string()
                }
            })
        })
        .unwrap_or_else(|| panic!("no row for {component} in:\n{stdout}"))
}

const SYNC: &str = "      workloads:\n        - {kind: Deployment, name: wa}";

fn lifecycle_components(ns: &str) -> Vec<Comp> {
    vec![
        Comp {
            name: "wa",
            chart: "widget",
            oci: false,
            version: "0.1.0",
            namespace: ns.to_string(),
            deps: &[],
            readiness: SYNC.into(),
            values: "message: hello\n",
        },
        Comp {
            name: "wb",
            chart: "gadget",
            oci: false,
            version: "0.2.0",
            namespace: ns.to_string(),
            deps: &["wa"],
            readiness: "      async: true\n      workloads:\n        - {kind: Deployment, name: wb}\n      fields:\n        - {apiVersion: v1, kind: ConfigMap, resource: configmaps, name: wb-config, field: data.state, equals: ready}".into(),
            values: "state: ready\n",
        },
    ]
}

#[test]
#[ignore = "needs the test cluster (.ci/kube)"]
fn install_rerun_upgrade_and_undeploy_with_a_real_helm() {
    let mut w = World::new("dlife");
    let ns = w.namespace("a");
    w.start_controller();
    let b1 = w.bundle("b1", &lifecycle_components(&ns), &[]);

    // --only wb: wa, its dependency, is neither selected nor deployed.
    let (code, out, err) = w.script(&b1, "deploy.sh", &["--only", "wb"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains("pre-flight dependencies: FAILED: wb depends on wa, which is not selected and not deployed: add it to --only (or drop it from --skip), or deploy it first"), "{out}");
    assert!(
        err.contains("error: pre-flight checks failed (above); nothing was changed."),
        "{err}"
    );
    assert!(
        !w.kubectl_ok(&["get", "namespace", &ns]),
        "a refused run created {ns}"
    );

    // Install: the context is printed, every step logged with its time.
    let (code, out, err) = w.script(&b1, "deploy.sh", &["--timeout", "120"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains(&format!(
            "] context: {} (server {})",
            current_context(&w.c),
            w.c.server()
        )),
        "{out}"
    );
    for check in ["cluster", "namespaces", "webhooks", "crds", "dependencies"] {
        assert!(out.contains(&format!("] pre-flight {check}: ok")), "{out}");
    }
    assert!(
        out.contains("] wa: helm install wa (widget 0.1.0) ("),
        "{out}"
    );
    assert!(
        out.contains("] wb: helm install wb (gadget 0.2.0, no wait) ("),
        "{out}"
    );
    assert!(
        out.contains(&format!("] wb: await deployment/wb in {ns} rolled out (")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "] wb: await configmaps/wb-config in {ns} {{.data.state}} = ready ("
        )),
        "{out}"
    );
    assert_eq!(result_of(&out, "wa"), "installed");
    assert_eq!(result_of(&out, "wb"), "installed");
    assert_eq!(w.revision("wa", &ns), Some(1));
    assert_eq!(w.revision("wb", &ns), Some(1));
    let label = w.c.kubectl(
        &[
            "get",
            "namespace",
            &ns,
            "-o",
            "jsonpath={.metadata.labels.aicr\\.nvidia\\.com/created-by}",
        ],
        None,
    );
    assert_eq!(label, "deploy.sh");
    let owner = w.c.kubectl(&["get", "crd", &w.crd(), "-o", "jsonpath={.metadata.labels.aicr\\.nvidia\\.com/component}/{.metadata.labels.aicr\\.nvidia\\.com/namespace}"], None);
    assert_eq!(owner, format!("wa/{ns}"));
    let message = w.c.kubectl(
        &[
            "get",
            "configmap",
            "wa-config",
            "-n",
            &ns,
            "-o",
            "jsonpath={.data.message}",
        ],
        None,
    );
    assert_eq!(message, "hello");

    // Again, nothing changed: no new revision.
    let (code, out, err) = w.script(&b1, "deploy.sh", &["--timeout", "120"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("] wa: release wa unchanged (same chart, version and values; --always-upgrade to upgrade anyway)"), "{out}");
    assert_eq!(result_of(&out, "wa"), "unchanged");
    assert_eq!(result_of(&out, "wb"), "unchanged");
    assert_eq!(w.revision("wa", &ns), Some(1));
    assert_eq!(w.revision("wb", &ns), Some(1));

    // A changed value: wa is upgraded, and the cluster has the new value.
    let b2 = w.bundle(
        "b2",
        &lifecycle_components(&ns),
        &["--set", "wa:message=changed"],
    );
    let (code, out, err) = w.script(&b2, "deploy.sh", &["--timeout", "120s"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("] wa: helm upgrade wa (widget 0.1.0) ("),
        "{out}"
    );
    assert_eq!(result_of(&out, "wa"), "upgraded");
    assert_eq!(result_of(&out, "wb"), "unchanged");
    assert_eq!(w.revision("wa", &ns), Some(2));
    let message = w.c.kubectl(
        &[
            "get",
            "configmap",
            "wa-config",
            "-n",
            &ns,
            "-o",
            "jsonpath={.data.message}",
        ],
        None,
    );
    assert_eq!(message, "changed");

    // --only wb now: its dependency wa is deployed, so it is allowed.
    let (code, out, err) = w.script(
        &b2,
        "deploy.sh",
        &["--only", "wb", "--always-upgrade", "--timeout", "2m"],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("] pre-flight dependencies: wb depends on wa, not selected but deployed"),
        "{out}"
    );
    assert_eq!(result_of(&out, "wa"), "skipped");
    assert_eq!(result_of(&out, "wb"), "upgraded");
    assert_eq!(w.revision("wb", &ns), Some(2));

    // Undeploy: releases and the namespace deploy.sh created are gone; the
    // CRD stays, and the report says so.
    let (code, out, err) = w.script(&b2, "undeploy.sh", &["--timeout", "120"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(result_of(&out, "wa"), "removed");
    assert_eq!(result_of(&out, "wb"), "removed");
    assert!(out.contains(&format!("] namespaces: {ns} gone (")), "{out}");
    assert!(out.contains(&format!("Left behind:\n  CRD {} (of wa): CRDs are kept; --delete-crds deletes them with every object of theirs\n", w.crd())), "{out}");
    assert_eq!(w.revision("wa", &ns), None);
    assert_eq!(w.revision("wb", &ns), None);
    assert!(
        !w.kubectl_ok(&["get", "namespace", &ns]),
        "{ns} is still there"
    );
    assert!(
        w.kubectl_ok(&["get", "crd", &w.crd()]),
        "the CRD went without --delete-crds"
    );

    // Deploying again over the kept CRD: it is labelled as wa's, so the
    // pre-flight check lets it be.
    let (code, out, err) = w.script(&b2, "deploy.sh", &["--timeout", "120"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("] pre-flight crds: ok"), "{out}");
    assert_eq!(result_of(&out, "wa"), "installed");
    assert_eq!(w.revision("wa", &ns), Some(1));

    // --delete-crds deletes it.
    let (code, out, err) = w.script(&b2, "undeploy.sh", &["--delete-crds", "--timeout", "60"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains(&format!("] crds: delete CRD {} (", w.crd())),
        "{out}"
    );
    assert!(
        !w.kubectl_ok(&["get", "crd", &w.crd()]),
        "the CRD is still there"
    );
}

#[test]
#[ignore = "needs the test cluster (.ci/kube)"]
fn each_preflight_check_refuses_and_can_be_skipped_by_name() {
    let mut w = World::new("dpre");
    let ns_a = w.namespace("a");
    let ns_b = w.namespace("b");
    let comps = vec![
        Comp {
            name: "wa",
            chart: "widget",
            oci: false,
            version: "0.1.0",
            namespace: ns_a.clone(),
            deps: &[],
            readiness: SYNC.into(),
            values: "message: hello\n",
        },
        Comp {
            name: "wb",
            chart: "gadget",
            oci: false,
            version: "0.2.0",
            namespace: ns_b.clone(),
            deps: &[],
            readiness: "      workloads:\n        - {kind: Deployment, name: wb}".into(),
            values: "state: ready\n",
        },
    ];
    let b = w.bundle("b", &comps, &[]);

    // A Terminating namespace: held by a finalizer the test controls.
    w.c.kubectl(
        &["create", "-f", "-"],
        Some(&format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns_b}\n  finalizers: [aicr.test/hold]\n")),
    );
    w.c.kubectl(&["delete", "namespace", &ns_b, "--wait=false"], None);
    let release_ns = vec![
        "patch".to_string(),
        "namespace".into(),
        ns_b.clone(),
        "--type=json".into(),
        "-p".into(),
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#.into(),
    ];
    w.cleanup.push(release_ns);
    // A stale webhook: it calls a service that does not exist, in a target
    // namespace (its rules match nothing real: it disturbs no one).
    let webhook = format!("{}-stale", ns_a);
    w.c.kubectl(
        &["create", "-f", "-"],
        Some(&format!(
            "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\nmetadata:\n  name: {webhook}\nwebhooks:\n  - name: stale.aicr.test\n    clientConfig:\n      service: {{namespace: {ns_a}, name: missing}}\n    rules:\n      - {{apiGroups: [aicr-test.invalid], apiVersions: [v1], operations: [CREATE], resources: [nothings]}}\n    failurePolicy: Ignore\n    sideEffects: None\n    admissionReviewVersions: [v1]\n"
        )),
    );
    w.cleanup.push(vec![
        "delete".into(),
        "validatingwebhookconfiguration".into(),
        webhook.clone(),
        "--ignore-not-found".into(),
    ]);
    // The chart's CRD, owned by another release.
    let crd = std::fs::read_to_string(w.tmp.path().join("charts/widget/crds/widgets.yaml"))
        .unwrap()
        .replace(
            "metadata:\n",
            "metadata:\n  annotations:\n    meta.helm.sh/release-name: other\n    meta.helm.sh/release-namespace: elsewhere\n",
        );
    w.c.kubectl(&["create", "-f", "-"], Some(&crd));

    let (code, out, err) = w.script(&b, "deploy.sh", &["--timeout", "30"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains(&format!("] pre-flight namespaces: FAILED: namespace {ns_b} is Terminating (left from an earlier removal): wait until it is gone; `kubectl get namespace {ns_b} -o yaml` shows what holds it\n")), "{out}");
    assert!(out.contains(&format!("] pre-flight webhooks: FAILED: validatingwebhookconfigurations {webhook} calls service {ns_a}/missing, which does not exist: every request it matches would fail; delete it with `kubectl delete validatingwebhookconfigurations {webhook}` if it is stale\n")), "{out}");
    assert!(out.contains(&format!("] pre-flight crds: FAILED: CRD {}, which wa installs, belongs to Helm release other in namespace elsewhere\n", w.crd())), "{out}");
    assert!(err.contains("error: pre-flight checks failed (above); nothing was changed. Fix them, or skip a check with --skip-preflight=NAME"), "{err}");
    assert!(
        !w.kubectl_ok(&["get", "namespace", &ns_a]),
        "a refused run created {ns_a}"
    );
    assert_eq!(w.revision("wa", &ns_a), None);

    // Skipped by name, the others still refuse.
    let (code, out, err) = w.script(&b, "deploy.sh", &["--skip-preflight=webhooks,crds"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        out.contains("] pre-flight webhooks: skipped (--skip-preflight)"),
        "{out}"
    );
    assert!(
        out.contains("] pre-flight crds: skipped (--skip-preflight)"),
        "{out}"
    );
    assert!(
        out.contains("] pre-flight namespaces: FAILED: namespace"),
        "{out}"
    );
    assert!(!out.contains("webhooks: FAILED"), "{out}");

    // A CRD no release owns, while wa is not installed: left over.
    w.c.kubectl(
        &[
            "annotate",
            "crd",
            &w.crd(),
            "meta.helm.sh/release-name-",
            "meta.helm.sh/release-namespace-",
        ],
        None,
    );
    let (code, out, err) = w.script(&b, "deploy.sh", &["--skip-preflight=namespaces,webhooks"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains(&format!("] pre-flight crds: FAILED: CRD {}, which wa installs, is left over from another install (no release owns it, and helm would keep it as it is): delete it, or --skip-preflight=crds to keep it\n", w.crd())), "{out}");

    // A context that does not exist, a check that does not exist.
    let (code, out, err) = w.script(&b, "deploy.sh", &["--context", "nope"]);
    assert_eq!(code, 3, "{out}\n{err}");
    let contexts = w.c.kubectl(&["config", "get-contexts", "-o", "name"], None);
    let contexts: Vec<&str> = contexts.lines().collect();
    assert!(
        err.contains(&format!(
            "error: --context nope: no such context in the kubeconfig; its contexts: {} \n",
            contexts.join(" ")
        )),
        "{err}"
    );
    let (code, _, err) = w.script(&b, "deploy.sh", &["--skip-preflight=bogus"]);
    assert_eq!(code, 2);
    assert_eq!(err, "error: --skip-preflight: no check bogus; the checks: cluster, namespaces, webhooks, crds, dependencies\n");
    // The context named is printed.
    assert!(contexts.len() > 1, "{contexts:?}");
    let (code, out, err) = w.script(
        &b,
        "deploy.sh",
        &["--context", contexts[1], "--skip-preflight=webhooks,crds"],
    );
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        out.contains(&format!(
            "] context: {} (server {})",
            contexts[1],
            w.c.server()
        )),
        "{out}"
    );
}

#[test]
#[ignore = "needs the test cluster (.ci/kube)"]
fn best_effort_goes_on_past_a_broken_chart_and_names_it() {
    let mut w = World::new("dbest");
    let ns = w.namespace("a");
    w.start_controller();
    let gadget = |name: &'static str, async_: bool, state: &'static str| {
        Comp {
        name,
        chart: "gadget",
        oci: false,
        version: "0.2.0",
        namespace: ns.clone(),
        deps: &[],
        readiness: format!(
            "      async: {async_}\n      fields:\n        - {{apiVersion: v1, kind: ConfigMap, resource: configmaps, name: {name}-config, field: data.state, equals: ready}}"
        ),
        values: state,
    }
    };
    let comps = vec![
        gadget("g1", false, "state: ready\n"),
        Comp {
            name: "bad",
            chart: "broken",
            oci: false,
            version: "0.3.0",
            namespace: ns.clone(),
            deps: &[],
            readiness: "      workloads: []".into(),
            values: "{}\n",
        },
        gadget("slow", true, "state: pending\n"),
        gadget("g2", false, "state: ready\n"),
        // Its readiness selector matches nothing: kubectl rollout status
        // -l exits 0 then, so deploy.sh must see that nothing is there.
        Comp {
            name: "ghost",
            chart: "gadget",
            oci: false,
            version: "0.2.0",
            namespace: ns.clone(),
            deps: &[],
            readiness: "      async: true\n      workloads:\n        - {kind: Deployment, selector: app=ghost-matches-nothing}".into(),
            values: "state: ready\n",
        },
    ];
    let b = w.bundle("b", &comps, &[]);

    // Without --best-effort the first failure stops the run.
    let (code, out, err) = w.script(&b, "deploy.sh", &["--retries", "0", "--timeout", "60"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert_eq!(result_of(&out, "g1"), "installed");
    assert_eq!(result_of(&out, "bad"), "FAILED");
    assert_eq!(result_of(&out, "slow"), "not run");
    assert_eq!(result_of(&out, "g2"), "not run");
    assert_eq!(result_of(&out, "ghost"), "not run");
    assert!(err.contains("this chart is broken on purpose"), "{err}");
    assert!(err.contains("error: failed: bad (after "), "{err}");

    // With it, every other component is tried; the summary names both
    // failures (the broken chart, and the asynchronous one never ready).
    let (code, out, err) = w.script(
        &b,
        "deploy.sh",
        &["--best-effort", "--retries", "0", "--timeout", "15"],
    );
    assert_eq!(code, 1, "{out}\n{err}");
    assert_eq!(result_of(&out, "g1"), "unchanged");
    assert_eq!(result_of(&out, "bad"), "FAILED");
    assert_eq!(result_of(&out, "slow"), "FAILED");
    assert_eq!(result_of(&out, "g2"), "installed");
    assert!(
        out.contains("] bad failed; going on (--best-effort)"),
        "{out}"
    );
    assert!(out.contains(&format!("] slow: await configmaps/slow-config in {ns} {{.data.state}} = ready FAILED: not after 15s (last seen: pending)")), "{out}");
    assert_eq!(result_of(&out, "ghost"), "FAILED");
    assert!(out.contains(&format!("] ghost: await every deployment matching app=ghost-matches-nothing in {ns} rolled out FAILED: not after 15s (last seen: nothing)")), "{out}");
    assert!(
        err.contains("error: failed: bad slow ghost (after "),
        "{err}"
    );
    assert_eq!(w.revision("g2", &ns), Some(1));

    let (code, out, err) = w.script(&b, "undeploy.sh", &["--timeout", "120"]);
    assert_eq!(code, 0, "{out}\n{err}");
    for c in ["g1", "bad", "slow", "g2", "ghost"] {
        assert_eq!(result_of(&out, c), "removed", "{out}");
    }
    assert!(
        !w.kubectl_ok(&["get", "namespace", &ns]),
        "{ns} is still there"
    );
}

#[test]
#[ignore = "needs the test cluster (.ci/kube)"]
fn undeploy_keeps_what_it_did_not_create_and_says_why() {
    let mut w = World::new("dkeep");
    let ns = w.namespace("a");
    let ns_pvc = w.namespace("p");
    let comps = vec![
        Comp {
            name: "g1",
            chart: "gadget",
            oci: false,
            version: "0.2.0",
            namespace: ns.clone(),
            deps: &[],
            readiness: "      workloads: []".into(),
            values: "state: ready\n",
        },
        Comp {
            name: "g2",
            chart: "gadget",
            oci: false,
            version: "0.2.0",
            namespace: ns_pvc.clone(),
            deps: &[],
            readiness: "      workloads: []".into(),
            values: "state: ready\n",
        },
    ];
    let b = w.bundle("b", &comps, &[]);
    // ns exists before deploy.sh: it is not deploy.sh's to delete.
    w.c.kubectl(&["create", "namespace", &ns], None);
    let (code, out, err) = w.script(&b, "deploy.sh", &["--no-wait"]);
    assert_eq!(code, 0, "{out}\n{err}");
    // A PVC in the namespace deploy.sh created keeps it, without --delete-pvcs.
    w.c.kubectl(
        &["create", "-n", &ns_pvc, "-f", "-"],
        Some("apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: data\nspec:\n  accessModes: [ReadWriteOnce]\n  resources: {requests: {storage: 1Gi}}\n"),
    );
    let (code, out, err) = w.script(&b, "undeploy.sh", &["--timeout", "60"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains(&format!("Left behind:\n  namespace {ns}: not created by deploy.sh (no label aicr.nvidia.com/created-by=deploy.sh)\n  namespace {ns_pvc}: holds 1 PVCs (data ); --delete-pvcs deletes them\n")), "{out}");
    assert!(w.kubectl_ok(&["get", "namespace", &ns]));
    assert!(w.kubectl_ok(&["get", "pvc", "data", "-n", &ns_pvc]));
    assert_eq!(w.revision("g1", &ns), None);

    // --keep-namespaces keeps it even so; --delete-pvcs then removes both.
    let (code, out, err) = w.script(&b, "undeploy.sh", &["--keep-namespaces", "--delete-pvcs"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains(&format!("  namespace {ns_pvc}: --keep-namespaces\n")),
        "{out}"
    );
    let (code, out, err) = w.script(&b, "undeploy.sh", &["--delete-pvcs", "--timeout", "60"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains(&format!("] namespaces: delete the PVCs in {ns_pvc} (")),
        "{out}"
    );
    assert!(
        !w.kubectl_ok(&["get", "namespace", &ns_pvc]),
        "{ns_pvc} is still there"
    );
}

#[test]
#[ignore = "needs the test cluster (.ci/kube)"]
fn charts_from_an_oci_registry_install_rerun_and_uninstall() {
    let mut w = World::new("doci");
    let ns = w.namespace("a");
    w.start_controller();
    let comps = vec![Comp {
        name: "wo",
        chart: "gadget",
        oci: true,
        version: "0.2.0",
        namespace: ns.clone(),
        deps: &[],
        readiness: "      workloads:\n        - {kind: Deployment, name: wo}".into(),
        values: "state: ready\n",
    }];
    let b = w.bundle("b", &comps, &[]);
    let script = std::fs::read_to_string(b.join("deploy.sh")).unwrap();
    assert!(script.contains(&format!("'oci://127.0.0.1:{}/charts/gadget'", w.oci_port)));
    let (code, out, err) = w.script(&b, "deploy.sh", &["--timeout", "120"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("] wo: helm install wo (gadget 0.2.0) ("),
        "{out}"
    );
    assert_eq!(w.revision("wo", &ns), Some(1));
    let state = w.c.kubectl(
        &[
            "get",
            "configmap",
            "wo-config",
            "-n",
            &ns,
            "-o",
            "jsonpath={.data.state}",
        ],
        None,
    );
    assert_eq!(state, "ready");
    let (code, out, err) = w.script(&b, "deploy.sh", &["--timeout", "120"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(result_of(&out, "wo"), "unchanged");
    let (code, out, err) = w.script(&b, "undeploy.sh", &["--timeout", "120"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(w.revision("wo", &ns), None);
    assert!(
        !w.kubectl_ok(&["get", "namespace", &ns]),
        "{ns} is still there"
    );
}

/// helmfile, built from its Go module into ~/.cache/aicr-helmfile (or
/// $HELMFILE); a missing one fails the test that asked for it.
fn helmfile() -> PathBuf {
    let p = std::env::var_os("HELMFILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
                .join(".cache/aicr-helmfile/bin/helmfile")
        });
    assert!(
        p.is_file(),
        "helmfile is missing at {}: build it from its Go module (see .ci/helmfile.sh), or set HELMFILE",
        p.display()
    );
    p
}

impl World {
    fn helmfile(&self, dir: &Path, args: &[&str]) -> (i32, String, String) {
        let mut cmd = std::process::Command::new("timeout");
        self.env(&mut cmd);
        cmd.current_dir(dir)
            .args(["-k", "10", "400"])
            .arg(helmfile())
            .args(args);
        let out = cmd.output().unwrap();
        let (o, e) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        let code = out.status.code().unwrap_or(-1);
        assert_ne!(code, 124, "helmfile {args:?} ran past 400 s:\n{o}\n{e}");
        (code, o, e)
    }
}

#[test]
#[ignore = "needs helmfile and the test cluster (.ci/kube)"]
fn helmfile_lints_templates_syncs_and_destroys_the_bundle() {
    let mut w = World::new("dhf");
    let ns = w.namespace("a");
    w.start_controller();
    let mut comps = lifecycle_components(&ns);
    comps.push(Comp {
        name: "wm",
        chart: "",
        oci: false,
        version: "",
        namespace: ns.clone(),
        deps: &["wb"],
        readiness: "      workloads: []".into(),
        values: "{}\n",
    });
    let b = w.bundle_with(
        "b",
        &comps,
        &["-d", "helmfile"],
        &[
            ("wa", "extra.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: wa-extra\ndata:\n  from: manifest\n"),
            ("wm", "only.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: wm-only\ndata:\n  from: manifests-only\n"),
        ],
    );
    let (code, out, err) = w.helmfile(&b, &["lint"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, out, err) = w.helmfile(&b, &["template"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("name: wa-config"), "{out}");
    assert!(out.contains("message: \"hello\""), "{out}");
    assert!(out.contains("name: wb-config"), "{out}");

    let (code, out, err) = w.helmfile(&b, &["sync"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(w.revision("wa", &ns), Some(1));
    assert_eq!(w.revision("wb", &ns), Some(1));
    // The manifest came through its presync hook, wb's readiness through
    // its postsync hooks.
    let from = w.c.kubectl(
        &[
            "get",
            "configmap",
            "wa-extra",
            "-n",
            &ns,
            "-o",
            "jsonpath={.data.from}",
        ],
        None,
    );
    assert_eq!(from, "manifest");
    assert!(
        w.kubectl_ok(&["get", "crd", &w.crd()]),
        "the chart's CRD is missing"
    );
    // The manifests-only component is a release of its manifests directory.
    let from = w.c.kubectl(
        &[
            "get",
            "configmap",
            "wm-only",
            "-n",
            &ns,
            "-o",
            "jsonpath={.data.from}",
        ],
        None,
    );
    assert_eq!(from, "manifests-only");

    let (code, out, err) = w.helmfile(&b, &["destroy"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(w.revision("wa", &ns), None);
    assert_eq!(w.revision("wb", &ns), None);
    assert!(
        !w.kubectl_ok(&["get", "configmap", "wa-extra", "-n", &ns]),
        "the manifest outlived destroy"
    );
    assert!(
        !w.kubectl_ok(&["get", "configmap", "wm-only", "-n", &ns]),
        "the manifests-only release outlived destroy"
    );
}
