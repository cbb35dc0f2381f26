//! Deployers: how a bundle is deployed. Each deployer adds its own files
//! (scripts, Argo CD Applications, Flux objects) to what the bundler shares,
//! and says how to deploy the result. `assemble` puts a whole bundle
//! together: component files, deployer files, README, recipe and checksums.

pub mod argocd;
pub mod flux;
pub mod helm;
pub mod helmfile;

use serde_json::{json, Value};

use crate::bundler::{self, render, Component, Files, Prepared, Source};
use crate::serializer;

/// The deployers `-d/--deployer` accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// deploy.sh and undeploy.sh running helm and kubectl
    Helm,
    /// An Argo CD app-of-apps with one Application per component
    Argocd,
    /// Flux HelmRepository/OCIRepository and HelmRelease objects with a kustomization.yaml
    Flux,
    /// A helmfile.yaml: releases in deployment order with needs, manifests as hooks
    Helmfile,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Helm => "helm",
            Kind::Argocd => "argocd",
            Kind::Flux => "flux",
            Kind::Helmfile => "helmfile",
        }
    }
}

/// Settings a GitOps deployer needs: where the bundle will be pushed.
#[derive(Clone, Debug)]
pub struct GitSource {
    pub repo: String,
    pub revision: Revision,
    /// `--repo` was not given: `repo` is a placeholder to be replaced.
    pub placeholder: bool,
}

/// The Git revision the GitOps deployers track (`--revision`): Argo CD
/// takes any of them as `targetRevision`; Flux needs to know which it is
/// (`ref.branch`, `ref.tag` or `ref.commit`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Revision {
    Branch(String),
    Tag(String),
    Commit(String),
}

impl Revision {
    /// `branch:NAME`, `tag:NAME`, `commit:SHA`, `refs/heads/NAME` or
    /// `refs/tags/NAME`; a bare NAME is a commit when it is a full SHA (40 or
    /// 64 hex digits), a tag when it reads as a version (`v1.2.3`, `1.4`,
    /// `v2.0.0-rc.1`), and a branch otherwise. The name is checked by
    /// [`bundler::safety::revision`].
    pub fn parse(text: &str) -> Result<Revision, bundler::Error> {
        let rev = if let Some(n) = text.strip_prefix("branch:") {
            Revision::Branch(n.to_string())
        } else if let Some(n) = text.strip_prefix("refs/heads/") {
            Revision::Branch(n.to_string())
        } else if let Some(n) = text.strip_prefix("tag:") {
            Revision::Tag(n.to_string())
        } else if let Some(n) = text.strip_prefix("refs/tags/") {
            Revision::Tag(n.to_string())
        } else if let Some(n) = text.strip_prefix("commit:") {
            if !is_sha(n) {
                return Err(bundler::Error::BadFlag {
                    flag: "--revision",
                    arg: text.to_string(),
                    reason: "a commit is a full SHA: 40 (or 64) hexadecimal digits".into(),
                });
            }
            Revision::Commit(n.to_lowercase())
        } else if is_sha(text) {
            Revision::Commit(text.to_lowercase())
        } else if is_version(text) {
            Revision::Tag(text.to_string())
        } else {
            Revision::Branch(text.to_string())
        };
        bundler::safety::revision(rev.name()).map_err(|_| bundler::Error::BadFlag {
            flag: "--revision",
            arg: text.to_string(),
            reason: "expected a branch, tag or commit (letters, digits, - _ . /), optionally written branch:NAME, tag:NAME, commit:SHA, refs/heads/NAME or refs/tags/NAME".into(),
        })?;
        Ok(rev)
    }

    /// The branch, tag or commit itself.
    pub fn name(&self) -> &str {
        match self {
            Revision::Branch(n) | Revision::Tag(n) | Revision::Commit(n) => n,
        }
    }

    /// The field of a Flux `GitRepository`'s `spec.ref` that names it.
    pub fn flux_field(&self) -> &'static str {
        match self {
            Revision::Branch(_) => "branch",
            Revision::Tag(_) => "tag",
            Revision::Commit(_) => "commit",
        }
    }
}

impl std::fmt::Display for Revision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

fn is_sha(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `v1.2`, `1.2.3`, `v2.0.0-rc.1`, `1.0.0+build`: an optional `v`, two or
/// more dot-separated numbers, then an optional `-` or `+` suffix.
fn is_version(s: &str) -> bool {
    let s = s.strip_prefix('v').unwrap_or(s);
    let core = s.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() >= 2
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        && (core.len() == s.len() || s.len() > core.len() + 1)
}

pub const REPO_PLACEHOLDER: &str = "https://github.com/YOUR-ORG/YOUR-REPO.git";

/// What each deployer does.
pub trait Deployer {
    fn kind(&self) -> Kind;
    /// Adds the deployer's files.
    fn add_files(&self, b: &Prepared, files: &mut Files) -> Result<(), bundler::Error>;
    /// The steps to deploy the bundle, for the summary on stdout.
    fn next_steps(&self, dir: &str) -> Vec<String>;
    /// Warnings about the settings (a missing `--repo`).
    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }
}

pub fn new(kind: Kind, git: GitSource) -> Box<dyn Deployer> {
    match kind {
        Kind::Helm => Box::new(helm::Helm),
        Kind::Argocd => Box::new(argocd::ArgoCd { git }),
        Kind::Flux => Box::new(flux::Flux { git }),
        Kind::Helmfile => Box::new(helmfile::Helmfile),
    }
}

/// The whole bundle: per component `values.yaml`, `manifests/*.yaml` and
/// `README.md`; the deployer's files; root `README.md`, `recipe.yaml` and
/// `checksums.txt` (covering every other file).
pub fn assemble(b: &Prepared, d: &dyn Deployer) -> Result<Files, bundler::Error> {
    assemble_with(b, d, Files::default())
}

/// [`assemble`], starting from `files` (the charts `--vendor-charts`
/// pulled), which `checksums.txt` covers too.
pub fn assemble_with(
    b: &Prepared,
    d: &dyn Deployer,
    mut files: Files,
) -> Result<Files, bundler::Error> {
    for c in &b.components {
        files.add(format!("{}/values.yaml", c.name), bundler::values_yaml(c));
        for m in &c.manifests {
            files.add(
                format!("{}/manifests/{}", c.name, m.file_name),
                m.text.clone(),
            );
        }
        files.add(
            format!("{}/README.md", c.name),
            render::template("component-README.md.j2", &component_context(c, d.kind()))?,
        );
    }
    d.add_files(b, &mut files)?;
    files.add(
        "recipe.yaml",
        serializer::yaml::to_string(&b.recipe.to_value()),
    );
    files.add(
        "README.md",
        render::template("README.md.j2", &root_context(b, d))?,
    );
    let sums = bundler::checksum::render(&files);
    files.add(bundler::output::MARKER, sums);
    Ok(files)
}

/// The Helm command line pieces of a chart component: the chart reference
/// and, for a classic repository, `--repo`.
pub fn chart_ref(c: &Component) -> (String, Option<String>) {
    if let Some(path) = &c.vendored {
        // `bundle --vendor-charts`: relative to the bundle directory.
        return (path.clone(), None);
    }
    match &c.source {
        Source::Repo(url) => (c.chart.clone(), Some(url.clone())),
        Source::Oci(url) => (format!("{url}/{}", c.chart), None),
        Source::Manifests => (String::new(), None),
    }
}

/// What the templates know of a component.
pub fn component_context(c: &Component, kind: Kind) -> Value {
    let (chart_ref, repo) = chart_ref(c);
    let mut install = Vec::new();
    if c.source != Source::Manifests {
        let mut cmd = vec![
            "helm".to_string(),
            "upgrade".into(),
            "--install".into(),
            c.name.clone(),
            chart_ref.clone(),
        ];
        if let Some(r) = &repo {
            cmd.extend(["--repo".into(), r.clone()]);
        }
        cmd.extend([
            "--version".into(),
            c.version.clone(),
            "--namespace".into(),
            c.namespace.clone(),
            "--create-namespace".into(),
            "--values".into(),
            format!("{}/values.yaml", c.name),
        ]);
        install.push(
            cmd.into_iter()
                .map(render::shell_quote_if_needed)
                .collect::<Vec<_>>()
                .join(" "),
        );
    }
    json!({
        "name": c.name,
        "display_name": c.display_name,
        "namespace": c.namespace,
        "chart": c.chart,
        "chart_ref": chart_ref,
        "repo": repo.unwrap_or_default(),
        "version": c.version,
        "source": c.source_url(),
        "manifest_only": c.source == Source::Manifests,
        "oci": matches!(c.source, Source::Oci(_)),
        "vendored": c.vendored.is_some(),
        "dependencies": c.dependencies,
        "wave": c.wave,
        "manifests": c.manifests.iter().map(|m| json!({
            "file": m.file_name,
            "pre": m.has_builtin,
            "post": !m.builtin_only,
            "tolerant": m.has_builtin && !m.builtin_only,
        })).collect::<Vec<_>>(),
        "install": install,
        "deployer": kind.name(),
        "async": c.readiness.as_ref().is_some_and(|r| r.asynchronous),
        "awaits": awaits(c),
        "crds": c.readiness.as_ref().map(|r| r.crds.clone()).unwrap_or_default(),
    })
}

/// What `deploy.sh` awaits after installing an asynchronous component, from
/// its readiness declaration: one `[check, args...]` per object, where the
/// check is `rollout` (a workload by name: `[kind, name, namespace]`),
/// `rollout-selector` (`[kind, selector, namespace]`), `crd` (`[name]`) or
/// `field` (`[resource.group, name or "", namespace or "", jsonpath,
/// value]`; an empty namespace for a cluster-scoped kind).
fn awaits(c: &Component) -> Vec<Vec<String>> {
    use crate::recipe::registry::Scope;
    let Some(r) = c.readiness.as_ref().filter(|r| r.asynchronous) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for w in &r.workloads {
        let ns = w.namespace.clone().unwrap_or_else(|| c.namespace.clone());
        let kind = w.kind.as_str().to_lowercase();
        match (&w.name, &w.selector) {
            (Some(n), _) => out.push(vec!["rollout".into(), kind, n.clone(), ns]),
            (None, Some(s)) => out.push(vec!["rollout-selector".into(), kind, s.clone(), ns]),
            (None, None) => {}
        }
    }
    for crd in &r.crds {
        out.push(vec!["crd".into(), crd.clone()]);
    }
    for f in &r.fields {
        let group = f.api_version.rsplit_once('/').map(|(g, _)| g);
        let resource = match group {
            Some(g) => format!("{}.{g}", f.resource),
            None => f.resource.clone(),
        };
        let ns = match f.scope {
            Scope::Cluster => String::new(),
            Scope::Namespaced => f.namespace.clone().unwrap_or_else(|| c.namespace.clone()),
        };
        out.push(vec![
            "field".into(),
            resource,
            f.name.clone().unwrap_or_default(),
            ns,
            format!("{{.{}}}", f.field),
            f.equals.clone(),
        ]);
    }
    out
}

fn root_context(b: &Prepared, d: &dyn Deployer) -> Value {
    let criteria: Vec<Value> = b
        .recipe
        .criteria
        .stated()
        .iter()
        .map(|s| json!({"field": s.field, "value": s.value}))
        .collect();
    json!({
        "deployer": d.kind().name(),
        "version": env!("CARGO_PKG_VERSION"),
        "criteria": criteria,
        "nodes": b.recipe.criteria.nodes,
        "overlays": b.recipe.metadata.applied_overlays,
        "components": b.components.iter().map(|c| component_context(c, d.kind())).collect::<Vec<_>>(),
        "constraints": b.recipe.constraints,
        "warnings": b.warnings.iter().cloned().chain(d.warnings()).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::Revision;

    #[test]
    fn revisions_say_what_they_are() {
        let sha = "0123456789abcdef0123456789abcdef01234567";
        for (text, want) in [
            ("main", Revision::Branch("main".into())),
            ("release-1.2", Revision::Branch("release-1.2".into())),
            ("refs/heads/v1.2.3", Revision::Branch("v1.2.3".into())),
            ("branch:v1.2.3", Revision::Branch("v1.2.3".into())),
            ("v1.2.3", Revision::Tag("v1.2.3".into())),
            ("1.4", Revision::Tag("1.4".into())),
            ("v2.0.0-rc.1", Revision::Tag("v2.0.0-rc.1".into())),
            ("refs/tags/stable", Revision::Tag("stable".into())),
            ("tag:stable", Revision::Tag("stable".into())),
            (sha, Revision::Commit(sha.into())),
            (&format!("commit:{sha}"), Revision::Commit(sha.into())),
        ] {
            assert_eq!(Revision::parse(text).unwrap(), want, "{text}");
        }
        for bad in ["commit:abc", "tag:", "branch:a..b", "tag:$(id)", ""] {
            assert!(Revision::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Revision::parse("commit:abc").unwrap_err().to_string(),
            "--revision \"commit:abc\": a commit is a full SHA: 40 (or 64) hexadecimal digits"
        );
    }
}
