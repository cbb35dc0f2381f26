//! The Flux deployer: per chart component a `HelmRepository` (or an
//! `OCIRepository` for OCI charts) and a `HelmRelease` with its values inline
//! and `dependsOn` from the recipe's `dependencyRefs`; per component with
//! manifests a Flux `Kustomization` that applies its `manifests/` directory
//! from the bundle's Git repository; and a root `kustomization.yaml` listing
//! them all, for `kubectl apply -k` or a Flux Kustomization at the root.
//! A chart vendored with `--vendor-charts` has no repository object: its
//! HelmRelease installs it from its path in the bundle's `GitRepository`.

use serde_json::{json, Value};

use super::{Deployer, GitSource, Kind};
use crate::bundler::{self, Component, Files, Prepared, Source};
use crate::serializer::yaml;

pub struct Flux {
    pub git: GitSource,
}

pub const NAMESPACE: &str = "flux-system";
pub const GIT_SOURCE: &str = "aicr-bundle";

fn meta(name: &str) -> Value {
    json!({"name": name, "namespace": NAMESPACE, "labels": {"app.kubernetes.io/managed-by": "aicr"}})
}

impl Flux {
    fn source(&self, c: &Component) -> Option<(String, Value)> {
        if c.vendored.is_some() {
            // Installed from the bundle's GitRepository.
            return None;
        }
        match &c.source {
            Source::Repo(url) => Some((
                "helmrepository.yaml".into(),
                json!({
                    "apiVersion": "source.toolkit.fluxcd.io/v1",
                    "kind": "HelmRepository",
                    "metadata": meta(&c.name),
                    "spec": {"interval": "1h", "url": url},
                }),
            )),
            Source::Oci(url) => Some((
                "ocirepository.yaml".into(),
                json!({
                    "apiVersion": "source.toolkit.fluxcd.io/v1",
                    "kind": "OCIRepository",
                    "metadata": meta(&c.name),
                    "spec": {
                        "interval": "1h",
                        "url": format!("{url}/{}", c.chart),
                        "ref": {"tag": c.version},
                        "layerSelector": {
                            "mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
                            "operation": "copy",
                        },
                    },
                }),
            )),
            Source::Manifests => None,
        }
    }

    fn release(&self, c: &Component, b: &Prepared) -> Value {
        let mut spec = json!({
            "interval": "10m",
            "releaseName": c.name,
            "targetNamespace": c.namespace,
            "storageNamespace": c.namespace,
            "install": {"createNamespace": true, "remediation": {"retries": 3}},
            "upgrade": {"remediation": {"retries": 3}},
        });
        match &c.source {
            _ if c.vendored.is_some() => {
                spec["chart"] = json!({"spec": {
                    "chart": format!("./{}", c.vendored.as_deref().unwrap_or_default()),
                    "sourceRef": {"kind": "GitRepository", "name": GIT_SOURCE},
                    "interval": "1h",
                }});
            }
            Source::Oci(_) => {
                spec["chartRef"] = json!({"kind": "OCIRepository", "name": c.name});
            }
            _ => {
                spec["chart"] = json!({"spec": {
                    "chart": c.chart,
                    "version": c.version,
                    "sourceRef": {"kind": "HelmRepository", "name": c.name},
                    "interval": "1h",
                }});
            }
        }
        // HelmReleases can only wait for HelmReleases: a dependency that is
        // manifests only is ordered by its Kustomization's retries.
        let deps: Vec<Value> = c
            .dependencies
            .iter()
            .filter(|d| {
                b.components
                    .iter()
                    .any(|o| &o.name == *d && o.source != Source::Manifests)
            })
            .map(|d| json!({"name": d}))
            .collect();
        if !deps.is_empty() {
            spec["dependsOn"] = Value::Array(deps);
        }
        if c.values.as_object().is_some_and(|m| !m.is_empty()) {
            spec["values"] = c.values.clone();
        }
        json!({
            "apiVersion": "helm.toolkit.fluxcd.io/v2",
            "kind": "HelmRelease",
            "metadata": meta(&c.name),
            "spec": spec,
        })
    }

    fn manifests(&self, c: &Component) -> Value {
        json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "metadata": meta(&format!("{}-manifests", c.name)),
            "spec": {
                "interval": "10m",
                "retryInterval": "1m",
                "path": format!("./{}/manifests", c.name),
                "prune": true,
                "targetNamespace": c.namespace,
                "sourceRef": {"kind": "GitRepository", "name": GIT_SOURCE},
            },
        })
    }
}

impl Deployer for Flux {
    fn kind(&self) -> Kind {
        Kind::Flux
    }

    fn add_files(&self, b: &Prepared, files: &mut Files) -> Result<(), bundler::Error> {
        let mut resources = Vec::new();
        let mut namespaces: Vec<&str> = Vec::new();
        for c in &b.components {
            if c.source != Source::Manifests {
                if let Some((file, doc)) = self.source(c) {
                    let path = format!("{}/{file}", c.name);
                    files.add(path.clone(), yaml::to_string(&doc));
                    resources.push(path);
                }
                let path = format!("{}/helmrelease.yaml", c.name);
                files.add(path.clone(), yaml::to_string(&self.release(c, b)));
                resources.push(path);
            }
            if !c.manifests.is_empty() {
                let path = format!("{}/flux-kustomization.yaml", c.name);
                files.add(path.clone(), yaml::to_string(&self.manifests(c)));
                resources.push(path);
                if !namespaces.contains(&c.namespace.as_str()) {
                    namespaces.push(&c.namespace);
                }
            }
        }
        if b.components
            .iter()
            .any(|c| !c.manifests.is_empty() || c.vendored.is_some())
        {
            let git = json!({
                "apiVersion": "source.toolkit.fluxcd.io/v1",
                "kind": "GitRepository",
                "metadata": meta(GIT_SOURCE),
                "spec": {"interval": "5m", "url": self.git.repo, "ref": {self.git.revision.flux_field(): self.git.revision.name()}},
            });
            files.add("gitrepository.yaml", yaml::to_string(&git));
            resources.insert(0, "gitrepository.yaml".into());
        }
        let kustomization = json!({
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": resources,
        });
        files.add("kustomization.yaml", yaml::to_string(&kustomization));
        Ok(())
    }

    fn next_steps(&self, dir: &str) -> Vec<String> {
        let mut steps = Vec::new();
        if self.git.placeholder {
            steps.push(format!(
                "Replace {} in gitrepository.yaml with your repository (or re-run with --repo)",
                super::REPO_PLACEHOLDER
            ));
        }
        steps.push(format!(
            "Push the contents of {dir} to {} ({})",
            self.git.repo, self.git.revision
        ));
        steps.push(format!(
            "kubectl apply -k {dir}   # or point a Flux Kustomization at the repository root"
        ));
        steps
    }

    fn warnings(&self) -> Vec<String> {
        super::argocd::placeholder_warning(&self.git)
    }
}
