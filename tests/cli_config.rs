//! The configuration file (`--config`, `AICR_CONFIG`, the XDG default
//! location) and `aicr config show`: the file gives the same output as the
//! equivalent flags; each layer beats the next (flag > env > file >
//! default) for a flag of every command; unknown keys, bad types and
//! missing files are refused with their exit code and exact message.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;
use serde_json::Value;

const EXAMPLE: &str = "examples/aicr.yaml";
const HEADER: &str = "apiVersion: aicr.nvidia.com/v1alpha1\nkind: AICRConfig\n";
const RECIPE: &str = "tests/fixtures/go-aicr-v0.11.1/golden/recipe-eks-h100-training-ubuntu.yaml";
const SNAPSHOT: &str = "tests/fixtures/go-aicr-v0.11.1/golden/mock-snapshot-cuj1.yaml";

/// Writes an `AICRConfig` file with `body` under the header.
fn config_file(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("{HEADER}{body}")).unwrap();
    p
}

fn run_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = aicr();
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args(args).output().expect("binary runs")
}

/// Every file under `dir`, relative, with its bytes.
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_path_buf();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out
}

#[test]
fn the_example_file_gives_the_output_of_the_equivalent_flags() {
    // recipe
    let by_file = run(&["--config", EXAMPLE, "recipe"]);
    let by_flags = run(&[
        "recipe",
        "--service",
        "eks",
        "--accelerator",
        "h100",
        "--intent",
        "training",
        "--os",
        "ubuntu",
        "-t",
        "yaml",
    ]);
    assert_eq!(code(&by_file), 0, "{}", stderr(&by_file));
    assert_eq!(code(&by_flags), 0, "{}", stderr(&by_flags));
    assert!(stdout(&by_file).contains("kind: RecipeResult"));
    assert_eq!(stdout(&by_file), stdout(&by_flags));

    // validate
    let by_file = run(&["--config", EXAMPLE, "validate"]);
    let by_flags = run(&[
        "validate",
        "-r",
        RECIPE,
        "-s",
        SNAPSHOT,
        "--phase",
        "constraints",
        "-t",
        "yaml",
    ]);
    assert_eq!(code(&by_flags), 0, "{}", stderr(&by_flags));
    assert_eq!(code(&by_file), code(&by_flags), "{}", stderr(&by_file));
    assert!(stdout(&by_file).contains("checks:"), "{}", stdout(&by_file));
    assert_eq!(stdout(&by_file), stdout(&by_flags));
    assert_eq!(stderr(&by_file), stderr(&by_flags));

    // bundle: each run in its own working directory, as the example
    // writes ./bundle there.
    let (wa, wb) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join(EXAMPLE);
    let by_file = aicr()
        .current_dir(wa.path())
        .args(["--config", example.to_str().unwrap(), "bundle"])
        .output()
        .unwrap();
    let by_flags = aicr()
        .current_dir(wb.path())
        .args([
            "bundle",
            "--service",
            "eks",
            "--accelerator",
            "h100",
            "--intent",
            "training",
            "--os",
            "ubuntu",
            "-d",
            "argocd",
            "--repo",
            "https://github.com/example/gpu-stack.git",
            "--revision",
            "main",
            "--set",
            "gpu-operator:driver.version=570.86.15",
            "--system-node-selector",
            "node-role.kubernetes.io/system=true",
            "--accelerated-node-toleration",
            "nvidia.com/gpu:NoSchedule",
        ])
        .output()
        .unwrap();
    assert_eq!(code(&by_file), 0, "{}", stderr(&by_file));
    assert_eq!(code(&by_flags), 0, "{}", stderr(&by_flags));
    let (a, b) = (wa.path().join("bundle"), wb.path().join("bundle"));
    let shown = |out: &Output, dir: &Path| stdout(out).replace(&dir.display().to_string(), "[DIR]");
    assert!(
        stdout(&by_file).contains("argocd deployer"),
        "{}",
        stdout(&by_file)
    );
    assert_eq!(shown(&by_file, wa.path()), shown(&by_flags, wb.path()));
    assert_eq!(stderr(&by_file), stderr(&by_flags));
    let (ta, tb) = (tree(&a), tree(&b));
    assert!(ta.len() > 10, "{} files", ta.len());
    assert_eq!(
        ta.iter().map(|(p, _)| p).collect::<Vec<_>>(),
        tb.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
    for ((p, x), (_, y)) in ta.iter().zip(&tb) {
        assert!(x == y, "{} differs", p.display());
    }
    let values = std::fs::read_to_string(a.join("gpu-operator/values.yaml")).unwrap();
    assert!(values.contains("570.86.15"), "--set from the file applied");
}

/// The value and source `aicr config show COMMAND ARGS -t json` gives for
/// `key`, or `None` when it is unset.
fn shown(
    command: &str,
    key: &str,
    config: Option<&Path>,
    env: &[(&str, &str)],
    args: &[&str],
) -> Option<(Value, String)> {
    let mut argv: Vec<&str> = Vec::new();
    if let Some(c) = config {
        argv.extend(["--config", c.to_str().unwrap()]);
    }
    argv.extend(["config", "show", "-t", "json", command]);
    argv.extend(args);
    let out = run_env(&argv, env);
    assert_eq!(code(&out), 0, "{argv:?}: {}", stderr(&out));
    let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let s = &doc["settings"][command][key];
    if s.is_null() {
        return None;
    }
    Some((
        s["value"].clone(),
        s["source"].as_str().unwrap().to_string(),
    ))
}

/// One flag of a command through the four layers: unset (or its default),
/// then the file, then the environment over the file, then the flag over
/// both.
struct Layers<'a> {
    command: &'a str,
    key: &'a str,
    default: Option<&'a str>,
    section: &'a str,
    file: &'a str,
    env: Option<(&'a str, &'a str)>,
    flag: [&'a str; 2],
}

impl Layers<'_> {
    fn check(&self) {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = config_file(
            tmp.path(),
            "c.yaml",
            &format!("{}:\n  {}: {}\n", self.section, self.key, self.file),
        );
        let cfg_shown = format!("file {}", cfg.display());
        let ctx = format!("{} --{}", self.command, self.key);
        let none = shown(self.command, self.key, None, &[], &[]);
        match self.default {
            Some(d) => assert_eq!(none, Some((Value::from(d), "default".into())), "{ctx}"),
            None => assert_eq!(none, None, "{ctx}"),
        }
        let file = shown(self.command, self.key, Some(&cfg), &[], &[]);
        assert_eq!(file, Some((Value::from(self.file), cfg_shown)), "{ctx}");
        let env: Vec<(&str, &str)> = self.env.iter().copied().collect();
        if let Some((var, value)) = self.env {
            let got = shown(self.command, self.key, Some(&cfg), &env, &[]);
            assert_eq!(
                got,
                Some((Value::from(value), format!("env {var}"))),
                "{ctx}"
            );
        }
        let got = shown(self.command, self.key, Some(&cfg), &env, &self.flag);
        assert_eq!(
            got,
            Some((Value::from(self.flag[1]), "flag".into())),
            "{ctx}"
        );
    }
}

#[test]
fn each_layer_beats_the_next_for_a_flag_of_every_command() {
    let cases = [
        Layers {
            command: "recipe",
            key: "data",
            default: None,
            section: "recipe",
            file: "from-file",
            env: Some(("AICR_DATA", "from-env")),
            flag: ["--data", "from-flag"],
        },
        Layers {
            command: "query",
            key: "data",
            default: None,
            section: "query",
            file: "from-file",
            env: Some(("AICR_DATA", "from-env")),
            flag: ["--data", "from-flag"],
        },
        Layers {
            command: "bundle",
            key: "deployer",
            default: Some("helm"),
            section: "bundle",
            file: "argocd",
            env: Some(("AICR_DEPLOYER", "flux")),
            flag: ["-d", "helm"],
        },
        Layers {
            command: "validate",
            key: "kubeconfig",
            default: None,
            section: "validate",
            file: "from-file",
            env: Some(("AICR_KUBECONFIG", "from-env")),
            flag: ["-k", "from-flag"],
        },
        Layers {
            command: "snapshot",
            key: "namespace",
            default: None,
            section: "snapshot",
            file: "from-file",
            env: Some(("AICR_NAMESPACE", "from-env")),
            flag: ["-n", "from-flag"],
        },
        // The shared cluster section reaches every command with the flag.
        Layers {
            command: "diff",
            key: "context",
            default: None,
            section: "cluster",
            file: "from-file",
            env: Some(("AICR_CONTEXT", "from-env")),
            flag: ["--context", "from-flag"],
        },
        // verify's one flag is a per-run output choice: no variable.
        Layers {
            command: "verify",
            key: "format",
            default: Some("text"),
            section: "verify",
            file: "json",
            env: None,
            flag: ["-t", "yaml"],
        },
    ];
    for c in &cases {
        c.check();
    }
}

/// The layers as the commands see them, not only as `config show` says.
#[test]
fn the_layers_reach_the_commands() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config_file(
        tmp.path(),
        "c.yaml",
        "recipe:\n  service: eks\n  format: json\nbundle:\n  recipe: tests/fixtures/go-aicr-v0.11.1/golden/recipe-eks-h100-training-ubuntu.yaml\n  deployer: argocd\n",
    );
    let c = cfg.to_str().unwrap();
    // file over the default: JSON; the flag over the file: YAML.
    let out = run(&["--config", c, "recipe"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).starts_with('{'), "{}", stdout(&out));
    assert!(stdout(&out).contains("\"service\": \"eks\""));
    let out = run(&["--config", c, "recipe", "-t", "yaml", "--service", "aks"]);
    assert!(
        stdout(&out).starts_with("kind: RecipeResult"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("service: aks"));
    // bundle: file argocd, env flux, flag helm.
    let deployer = |env: &[(&str, &str)], extra: &[&str]| {
        let dir = tmp.path().join("b");
        let mut args = vec!["--config", c, "bundle", "-o", dir.to_str().unwrap()];
        args.extend(extra);
        let out = run_env(&args, env);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let text = stdout(&out);
        ["helm", "argocd", "flux"]
            .into_iter()
            .find(|d| text.contains(&format!(" {d} deployer.")))
            .unwrap_or_else(|| panic!("{text}"))
    };
    assert_eq!(deployer(&[], &[]), "argocd");
    assert_eq!(deployer(&[("AICR_DEPLOYER", "flux")], &[]), "flux");
    assert_eq!(
        deployer(&[("AICR_DEPLOYER", "flux")], &["-d", "helm"]),
        "helm"
    );

    // query: --selector (not clap-required, so the file can give it).
    let cfg = config_file(
        tmp.path(),
        "q.yaml",
        "query:\n  service: eks\n  selector: kind\n",
    );
    let out = run(&["--config", cfg.to_str().unwrap(), "query"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "RecipeResult\n");

    // The global section: JSON logs from the file, text from the flag's
    // variable over it.
    let cfg = config_file(tmp.path(), "g.yaml", "global:\n  log-json: true\n");
    let g = cfg.to_str().unwrap();
    let out = run(&["--config", g, "recipe", "--service", "nope"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).starts_with("{\"timestamp\":"),
        "{}",
        stderr(&out)
    );
    let out = run_env(
        &["--config", g, "recipe", "--service", "nope"],
        &[("AICR_LOG_JSON", "false")],
    );
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).starts_with("error: "), "{}", stderr(&out));
}

#[test]
fn the_default_file_is_found_through_xdg_config_home_then_home() {
    let flags = run(&["recipe", "--service", "aks", "-t", "json"]);
    assert_eq!(code(&flags), 0);
    let xdg = tempfile::tempdir().unwrap();
    std::fs::create_dir(xdg.path().join("aicr")).unwrap();
    config_file(
        &xdg.path().join("aicr"),
        "config.yaml",
        "recipe:\n  service: aks\n  format: json\n",
    );
    let xdg_dir = xdg.path().to_str().unwrap();
    let out = run_env(&["recipe"], &[("XDG_CONFIG_HOME", xdg_dir)]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), stdout(&flags));

    // Without XDG_CONFIG_HOME: ~/.config/aicr/config.yaml.
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".config/aicr")).unwrap();
    config_file(
        &home.path().join(".config/aicr"),
        "config.yaml",
        "recipe:\n  service: aks\n  format: json\n",
    );
    let out = aicr()
        .env_remove("XDG_CONFIG_HOME")
        .env("HOME", home.path())
        .arg("recipe")
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), stdout(&flags));

    // A missing default file is no file.
    let empty = tempfile::tempdir().unwrap();
    let out = run_env(
        &["config", "show", "recipe"],
        &[("XDG_CONFIG_HOME", empty.path().to_str().unwrap())],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).starts_with(&format!(
        "config file: none ({}/aicr/config.yaml does not exist)\n",
        empty.path().display()
    )));

    // AICR_CONFIG beats the default file; --config beats AICR_CONFIG.
    let other = config_file(xdg.path(), "other.yaml", "recipe:\n  service: eks\n");
    let third = config_file(xdg.path(), "third.yaml", "recipe:\n  service: oke\n");
    let service = |args: &[&str], env: &[(&str, &str)]| {
        let mut argv = args.to_vec();
        argv.extend(["config", "show", "-t", "json", "recipe"]);
        let out = run_env(&argv, env);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();
        (
            doc["settings"]["recipe"]["service"]["value"].clone(),
            doc["configFile"]["source"].clone(),
        )
    };
    let env = [
        ("XDG_CONFIG_HOME", xdg_dir),
        ("AICR_CONFIG", other.to_str().unwrap()),
    ];
    assert_eq!(
        service(&[], &env[..1]),
        ("aks".into(), "default location".into())
    );
    assert_eq!(service(&[], &env), ("eks".into(), "env AICR_CONFIG".into()));
    assert_eq!(
        service(&["--config", third.to_str().unwrap()], &env),
        ("oke".into(), "--config".into())
    );
}

/// A transcript of a run with the given environment.
fn transcript_env(args: &[&str], env: &[(&str, &str)]) -> String {
    let out = run_env(args, env);
    format!(
        "$ aicr {}\nexit: {}\n--- stdout\n{}--- stderr\n{}",
        args.join(" "),
        code(&out),
        stdout(&out),
        stderr(&out)
    )
}

#[test]
fn bad_files_are_refused_with_the_key_the_file_and_the_exit_code() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let files = [
        ("unknown-top.yaml", "recipes:\n  service: eks\n"),
        (
            "unknown-key.yaml",
            "recipe:\n  service: eks\n  acelerator: h100\n",
        ),
        ("unknown-cluster-key.yaml", "cluster:\n  namespace-x: a\n"),
        ("not-configurable.yaml", "completion:\n  shell: bash\n"),
        ("list-for-one.yaml", "bundle:\n  deployer: [helm]\n"),
        ("map-for-list.yaml", "bundle:\n  set: {a: b}\n"),
        ("string-for-switch.yaml", "bundle:\n  force: yes please\n"),
        ("bad-enum.yaml", "bundle:\n  deployer: heml\n"),
        ("bad-number.yaml", "recipe:\n  nodes: many\n"),
        ("null-value.yaml", "recipe:\n  service:\n"),
        ("section-not-mapping.yaml", "recipe: eks\n"),
        (
            "conflict.yaml",
            "bundle:\n  recipe: r.yaml\n  service: eks\n",
        ),
    ];
    let mut all = String::new();
    for (name, body) in files {
        let p = config_file(dir, name, body);
        all.push_str(&format!("## {name}\n"));
        all.push_str(&transcript(&["--config", p.to_str().unwrap(), "bundle"]));
        all.push('\n');
    }
    let json = dir.join("bad.json");
    std::fs::write(
        &json,
        "{\n  \"apiVersion\": \"aicr.nvidia.com/v1alpha1\",\n  \"kind\": \"AICRConfig\",\n  \"diff\": {\n    \"format\": 3\n  }\n}\n",
    )
    .unwrap();
    let wrong_kind = dir.join("wrong-kind.yaml");
    std::fs::write(
        &wrong_kind,
        "apiVersion: aicr.nvidia.com/v1alpha1\nkind: RecipeCriteria\n",
    )
    .unwrap();
    let big = dir.join("big.yaml");
    std::fs::write(&big, format!("{HEADER}# {}\n", "x".repeat(1024 * 1024))).unwrap();
    let missing = dir.join("missing.yaml");
    for (name, args, env) in [
        (
            "json-line",
            vec!["--config", json.to_str().unwrap(), "diff", "a", "b"],
            vec![],
        ),
        (
            "wrong-kind",
            vec!["--config", wrong_kind.to_str().unwrap(), "recipe"],
            vec![],
        ),
        (
            "too-large",
            vec!["--config", big.to_str().unwrap(), "recipe"],
            vec![],
        ),
        (
            "a-directory",
            vec!["--config", dir.to_str().unwrap(), "recipe"],
            vec![],
        ),
        (
            "missing-flag",
            vec!["--config", missing.to_str().unwrap(), "recipe"],
            vec![],
        ),
        (
            "missing-env",
            vec!["recipe"],
            vec![("AICR_CONFIG", missing.to_str().unwrap())],
        ),
        (
            "missing-log-json",
            vec![
                "--log-json",
                "--config",
                missing.to_str().unwrap(),
                "recipe",
            ],
            vec![],
        ),
    ] {
        all.push_str(&format!("## {name}\n"));
        all.push_str(&transcript_env(&args, &env));
        all.push('\n');
    }
    let mut s = settings();
    s.add_filter(&regex_escape(&dir.display().to_string()), "[DIR]");
    s.add_filter(r#""timestamp":"[^"]*""#, r#""timestamp":"[TS]""#);
    s.bind(|| insta::assert_snapshot!("config_bad_files", all));
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if "\\.+*?()|[]{}^$#&-~".contains(c) {
                vec!['\\', c]
            } else {
                vec![c]
            }
        })
        .collect()
}

#[test]
fn settings_from_the_environment_or_the_file_wait_for_the_flags_they_serve() {
    let tmp = tempfile::tempdir().unwrap();
    let root = "tests/fixtures/nodes/h200-ubuntu2404";
    // Agent options from the environment and the file are kept for
    // --agent; typed without it they are refused.
    let cfg = config_file(
        tmp.path(),
        "c.yaml",
        "snapshot:\n  image: example/aicr:file\n  namespace: from-file\n",
    );
    let c = cfg.to_str().unwrap();
    let out = run_env(
        &["--config", c, "snapshot", "--root", root, "--filter", "os"],
        &[("AICR_IMAGE", "example/aicr:env")],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = run(&["--config", c, "snapshot", "--root", root, "--image", "x"]);
    assert_eq!(code(&out), 2);
    assert_eq!(
        stderr(&out),
        "error: --image is an agent option: add --agent to capture the snapshot through a Job in the cluster\n"
    );
    let out = run_env(
        &[
            "--config",
            c,
            "snapshot",
            "--agent",
            "--dry-run",
            "--run-id",
            "t1",
        ],
        &[("AICR_IMAGE", "example/aicr:env")],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("namespace: from-file"), "{text}");
    assert!(text.contains("image: example/aicr:env"), "{text}");

    // --require-gpu and --runtime-class: AICR_REQUIRE_GPU=false is no
    // request; a typed one wins over the other's variable; both from the
    // environment (or both typed) are refused.
    let gpu = |env: &[(&str, &str)], extra: &[&str]| {
        let mut args = vec!["snapshot", "--agent", "--dry-run", "--run-id", "t1"];
        args.extend(extra);
        let out = run_env(&args, env);
        let text = stdout(&out);
        (
            code(&out),
            text.contains("nvidia.com/gpu: 1") || text.contains("nvidia.com/gpu: \"1\""),
            text.contains("runtimeClassName: nvidia"),
        )
    };
    assert_eq!(
        gpu(
            &[("AICR_REQUIRE_GPU", "false")],
            &["--runtime-class", "nvidia"]
        ),
        (0, false, true)
    );
    assert_eq!(
        gpu(
            &[("AICR_REQUIRE_GPU", "true")],
            &["--runtime-class", "nvidia"]
        ),
        (0, false, true)
    );
    assert_eq!(
        gpu(&[("AICR_RUNTIME_CLASS", "nvidia")], &["--require-gpu"]),
        (0, true, false)
    );
    assert_eq!(
        gpu(
            &[("AICR_RUNTIME_CLASS", "nvidia"), ("AICR_REQUIRE_GPU", "1")],
            &[]
        ),
        (2, false, false)
    );

    // bundle: a file --repo serves argocd and flux; helm leaves it unused,
    // while a typed --repo with helm is refused.
    let cfg = config_file(
        tmp.path(),
        "b.yaml",
        &format!("bundle:\n  recipe: {RECIPE}\n  repo: https://example.com/r.git\n"),
    );
    let dir = tmp.path().join("out");
    let b = cfg.to_str().unwrap();
    let out = run(&["--config", b, "bundle", "-o", dir.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = run(&[
        "--config",
        b,
        "bundle",
        "-o",
        dir.to_str().unwrap(),
        "--repo",
        "https://example.com/r.git",
    ]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("--repo applies to the argocd and flux deployers"),
        "{}",
        stderr(&out)
    );

    // bundle --verify takes no other typed flag, but the environment and
    // the file (which set bundle flags for every run) do not stop it.
    let out = run_env(
        &["--config", b, "bundle", "--verify", dir.to_str().unwrap()],
        &[("AICR_DATA", "recipes"), ("AICR_DEPLOYER", "flux")],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).starts_with("verified: "), "{}", stdout(&out));
    let out = run(&["bundle", "--verify", dir.to_str().unwrap(), "-d", "flux"]);
    assert_eq!(code(&out), 2);
    assert_eq!(
        stderr(&out),
        "error: --verify DIR checks a bundle and takes no other flag of bundle; drop --deployer, or drop --verify to bundle\n"
    );

    // validate: a kubeconfig in the file is kept for the runs that read a
    // cluster, not refused by --phase constraints.
    let kubeconfig = tmp.path().join("kubeconfig");
    std::fs::write(&kubeconfig, "apiVersion: v1\nkind: Config\n").unwrap();
    let cfg = config_file(
        tmp.path(),
        "v.yaml",
        &format!(
            "cluster:\n  kubeconfig: {}\nvalidate:\n  recipe: {RECIPE}\n  snapshot: {SNAPSHOT}\n",
            kubeconfig.display()
        ),
    );
    let v = cfg.to_str().unwrap();
    let out = run(&[
        "--config",
        v,
        "validate",
        "--phase",
        "constraints",
        "-t",
        "json",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // A snapshot from the file is not refused by --phase deployment
    // (it fails later, the kubeconfig naming no cluster).
    let out = run(&["--config", v, "validate", "--phase", "deployment"]);
    assert!(
        !stderr(&out).contains("-s is read only"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn debug_logs_each_override() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config_file(
        tmp.path(),
        "c.yaml",
        "bundle:\n  deployer: argocd\n  revision: v1.2.3\n  service: eks\n  data: from-file\n",
    );
    let c = cfg.to_str().unwrap();
    let dir = tmp.path().join("b");
    let out = run_env(
        &[
            "--debug",
            "--config",
            c,
            "bundle",
            "-r",
            RECIPE,
            "-o",
            dir.to_str().unwrap(),
            "-d",
            "flux",
        ],
        &[("AICR_DATA", "recipes"), ("AICR_LOG_JSON", "off")],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let notes: Vec<String> = stderr(&out)
        .lines()
        .filter_map(|l| l.split_once(" config: ").map(|(_, n)| n.to_string()))
        .collect();
    assert_eq!(
        notes,
        [
            "global --log-json off from AICR_LOG_JSON".to_string(),
            format!("bundle --data: AICR_DATA overrides from-file from {c}"),
            format!("bundle --deployer: the command line overrides argocd from {c}"),
            format!("bundle --revision v1.2.3 from {c} (over the default main)"),
            format!(
                "bundle --service eks from {c} is not used: --recipe was given, which excludes it"
            ),
        ]
    );
}

#[test]
fn config_show_prints_each_setting_and_its_source() {
    let mut all = transcript(&["--config", EXAMPLE, "config", "show"]);
    all.push('\n');
    all.push_str(&transcript_env(
        &[
            "--config", EXAMPLE, "config", "show", "-t", "yaml", "bundle", "-d", "flux", "--force",
        ],
        &[("AICR_DATA", "recipes")],
    ));
    all.push('\n');
    all.push_str(&transcript(&["config", "show", "nope"]));
    settings().bind(|| insta::assert_snapshot!("config_show", all));
}
