//! Why a chart could not be listed or vendored, told apart by what helm
//! said, as whole CLI runs with a real helm against the test chart
//! repository on 127.0.0.1: a chart that fails to render with the bundle's
//! values (`fail`, `required` on an unset value, its values schema) exits
//! 2 with helm's message trimmed to its informative lines; a version the
//! repository does not hold 3; a repository that is stopped 6; an OCI
//! registry (the htpasswd one of the air-gap tests) that refuses anonymous
//! helm 4. The test chart is tests/fixtures/charts-airgap/broken.

mod cli_airgap_support;
mod common;

use std::path::Path;

use cli_airgap_support::{ChartRepo, HelmEnv};
use common::{code, stderr, stdout};

/// tests/fixtures/airgap/recipe-small.yaml with its one component's chart
/// the test chart `broken` at `version` from `repo_url`.
fn recipe(dir: &Path, repo_url: &str, version: &str) -> String {
    let mut r = common::read_yaml(&common::fixture("airgap/recipe-small.yaml"));
    let c = &mut r["componentRefs"][0];
    c["chart"] = "broken".into();
    c["source"] = repo_url.into();
    c["version"] = version.into();
    let path = dir.join(format!("recipe-{version}.yaml"));
    std::fs::write(&path, serde_yaml_ng::to_string(&r).unwrap()).unwrap();
    path.to_string_lossy().into_owned()
}

/// The last line of stderr: the error.
fn error_line(out: &std::process::Output) -> String {
    stderr(out)
        .trim_end()
        .lines()
        .last()
        .unwrap_or_default()
        .to_string()
}

#[test]
#[ignore = "needs helm"]
fn a_chart_that_fails_to_render_with_the_bundles_values_is_invalid_input() {
    let env = HelmEnv::new();
    let repo = ChartRepo::start_from(&env, &[("broken", "0.1.0", "broken")]);
    let work = tempfile::tempdir().unwrap();
    let r = recipe(work.path(), &repo.url, "0.1.0");
    let helm = env.helm.to_str().unwrap();

    // With its own values the chart renders.
    let out = env
        .aicr()
        .args(["mirror", "list", "-r", &r, "--helm", helm])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "registry.test/broken/main:1.0.0\n");

    for (mode, want) in [
        (
            "fail",
            "rendering the chart of aws-efa: the chart fails to render with the bundle's values: execution error at (broken/templates/workload.yaml:1:35): boom".to_string(),
        ),
        (
            "required",
            "rendering the chart of aws-efa: the chart fails to render with the bundle's values: execution error at (broken/templates/workload.yaml:3:49): digest is required with mode: required".to_string(),
        ),
        (
            "bogus",
            "rendering the chart of aws-efa: the chart fails to render with the bundle's values: values don't meet the specifications of the schema(s) in the following chart(s):\nbroken:\n- at '/mode': value must be one of 'ok', 'fail', 'required'".to_string(),
        ),
    ] {
        let bundle = work.path().join(format!("bundle-{mode}"));
        let out = env
            .aicr()
            .args(["bundle", "-r", &r, "-o", bundle.to_str().unwrap()])
            .args(["--set", &format!("aws-efa:mode={mode}")])
            .output()
            .unwrap();
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let out = env
            .aicr()
            .args(["mirror", "list", "-b", bundle.to_str().unwrap(), "--helm", helm])
            .output()
            .unwrap();
        assert_eq!(code(&out), 2, "{mode}: {}", stderr(&out));
        assert!(stderr(&out).contains(&want), "{mode}: {}", stderr(&out));
        // Helm's chatter is trimmed.
        assert!(!stderr(&out).contains("--debug"), "{}", stderr(&out));
        assert!(!stderr(&out).contains("Error: execution"), "{}", stderr(&out));
        assert!(stdout(&out).is_empty());
    }
}

#[test]
#[ignore = "needs helm"]
fn a_version_the_repository_lacks_is_not_found_and_a_stopped_repository_unavailable() {
    let env = HelmEnv::new();
    let mut repo = ChartRepo::start_from(&env, &[("broken", "0.1.0", "broken")]);
    let work = tempfile::tempdir().unwrap();
    let helm = env.helm.to_str().unwrap();
    let missing = recipe(work.path(), &repo.url, "9.9.9");
    let good = recipe(work.path(), &repo.url, "0.1.0");

    // Not in the index: 3, for mirror list and for --vendor-charts.
    let out = env
        .aicr()
        .args(["mirror", "list", "-r", &missing, "--helm", helm])
        .output()
        .unwrap();
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let want = format!(
        "the chart repository does not hold this chart or version: chart \"broken\" version \"9.9.9\" not found in {} repository",
        repo.url
    );
    assert!(
        error_line(&out).ends_with(&format!("rendering the chart of aws-efa: {want}")),
        "{}",
        stderr(&out)
    );
    let bundle = work.path().join("bundle");
    let out = env
        .aicr()
        .args(["bundle", "-r", &missing, "-o", bundle.to_str().unwrap()])
        .args(["--vendor-charts", "--helm", helm])
        .output()
        .unwrap();
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(
        error_line(&out).ends_with(&format!(
            "--vendor-charts: pulling the chart of aws-efa: {want}"
        )),
        "{}",
        stderr(&out)
    );
    assert!(!bundle.exists(), "nothing is written");

    // The repository stopped: 6, with helm's reason.
    repo.stop();
    let port = repo.url.rsplit(':').next().unwrap();
    let want = format!(
        "the chart repository cannot be reached: looks like \"{0}\" is not a valid chart repository or cannot be reached: Get \"{0}/index.yaml\": dial tcp 127.0.0.1:{port}: connect: connection refused",
        repo.url
    );
    let out = env
        .aicr()
        .args(["mirror", "list", "-r", &good, "--helm", helm])
        .output()
        .unwrap();
    assert_eq!(code(&out), 6, "{}", stderr(&out));
    assert!(
        error_line(&out).ends_with(&format!("rendering the chart of aws-efa: {want}")),
        "{}",
        stderr(&out)
    );
    let out = env
        .aicr()
        .args(["bundle", "-r", &good, "-o", bundle.to_str().unwrap()])
        .args(["--vendor-charts", "--helm", helm])
        .output()
        .unwrap();
    assert_eq!(code(&out), 6, "{}", stderr(&out));
    assert!(
        error_line(&out).ends_with(&format!(
            "--vendor-charts: pulling the chart of aws-efa: {want}"
        )),
        "{}",
        stderr(&out)
    );
}

#[test]
#[ignore = "needs helm and the test OCI registry (.ci/run builds it)"]
fn an_oci_registry_that_refuses_the_credentials_is_unauthorized() {
    let registry =
        cli_airgap_support::OciRegistry::start_with(Some(&common::fixture("airgap/htpasswd")));
    // The user of tests/fixtures/airgap/htpasswd (published on purpose),
    // logged in in one helm environment only.
    let logged_in = HelmEnv::new();
    logged_in.helm(&[
        "registry",
        "login",
        &registry.host,
        "-u",
        "aicr",
        "-p",
        "airgap-test-password",
        "--plain-http",
    ]);
    let repo = ChartRepo::start_from(&logged_in, &[("broken", "0.1.0", "broken")]);
    let tgz = repo.dir.path().join("broken-0.1.0.tgz");
    let oci = format!("oci://{}/charts", registry.host);
    logged_in.helm(&["push", tgz.to_str().unwrap(), &oci, "--plain-http"]);
    drop(repo);
    let work = tempfile::tempdir().unwrap();
    let good = recipe(work.path(), &oci, "0.1.0");
    let missing = recipe(work.path(), &oci, "9.9.9");

    let list = |env: &HelmEnv, r: &str| {
        env.aicr()
            .args([
                "mirror",
                "list",
                "-r",
                r,
                "--helm",
                env.helm.to_str().unwrap(),
            ])
            .output()
            .unwrap()
    };
    let out = list(&logged_in, &good);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "registry.test/broken/main:1.0.0\n");
    // Not in the registry: 3.
    let out = list(&logged_in, &missing);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(
        error_line(&out).ends_with(&format!(
            "rendering the chart of aws-efa: the chart repository does not hold this chart or version: failed to perform \"FetchReference\" on source: {}/charts/broken:9.9.9: not found",
            registry.host
        )),
        "{}",
        stderr(&out)
    );
    // Without credentials: 4 (the redaction of messages takes helm's
    // "basic credential" for an Authorization header).
    let anonymous = HelmEnv::new();
    let out = list(&anonymous, &good);
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert!(
        error_line(&out).ends_with(&format!(
            "rendering the chart of aws-efa: the chart repository refused the credentials: failed to perform \"FetchReference\" on source: GET \"http://{}/v2/charts/broken/manifests/0.1.0\": basic [REDACTED] not found",
            registry.host
        )),
        "{}",
        stderr(&out)
    );
}
