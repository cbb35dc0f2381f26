//! The Argo CD deployer: `app-of-apps.yaml` and one `Application` per
//! component with its sync wave from the deployment order. A chart component
//! is multi-source: the chart, the bundle repository as `$values` for its
//! values.yaml, and its manifests directory when it has manifests; a chart
//! vendored with `--vendor-charts` comes from its path in the bundle
//! repository instead of its chart repository. A
//! manifest-only component is a plain directory Application. Applications
//! are built as data and written with the one YAML emitter, so every
//! string is quoted where YAML needs it.

use serde_json::{json, Map, Value};

use super::{Deployer, GitSource, Kind};
use crate::bundler::{self, Component, Files, Prepared, Source};
use crate::serializer::yaml;

pub struct ArgoCd {
    pub git: GitSource,
}

pub const NAMESPACE: &str = "argocd";
pub const APP_OF_APPS: &str = "aicr-bundle";

impl ArgoCd {
    fn application(&self, c: &Component) -> Value {
        let git = &self.git;
        let manifests_source = json!({
            "repoURL": git.repo,
            "targetRevision": git.revision.name(),
            "path": format!("{}/manifests", c.name),
        });
        let mut spec = Map::new();
        spec.insert("project".into(), json!("default"));
        match &c.source {
            Source::Manifests => {
                spec.insert("source".into(), manifests_source);
            }
            Source::Repo(_) | Source::Oci(_) => {
                // Argo CD names an OCI Helm repository without its scheme.
                let repo_url = match &c.source {
                    Source::Oci(u) => u.trim_start_matches("oci://").to_string(),
                    _ => c.source_url().to_string(),
                };
                let helm = json!({
                    "releaseName": c.name,
                    "valueFiles": [format!("$values/{}/values.yaml", c.name)],
                });
                let chart_source = match &c.vendored {
                    // `--vendor-charts`: the unpacked chart in the bundle's
                    // own repository; no chart repository is reached.
                    Some(path) => json!({
                        "repoURL": git.repo,
                        "targetRevision": git.revision.name(),
                        "path": path,
                        "helm": helm,
                    }),
                    None => json!({
                        "repoURL": repo_url,
                        "chart": c.chart,
                        "targetRevision": c.version,
                        "helm": helm,
                    }),
                };
                let mut sources = vec![
                    chart_source,
                    json!({
                        "repoURL": git.repo,
                        "targetRevision": git.revision.name(),
                        "ref": "values",
                    }),
                ];
                if !c.manifests.is_empty() {
                    sources.push(manifests_source);
                }
                spec.insert("sources".into(), Value::Array(sources));
            }
        }
        spec.insert(
            "destination".into(),
            json!({"server": "https://kubernetes.default.svc", "namespace": c.namespace}),
        );
        let mut sync = json!({
            "automated": {"prune": true, "selfHeal": true},
            "syncOptions": ["CreateNamespace=true"],
        });
        if c.manifests.iter().any(|m| !m.builtin_only) {
            // Custom resources whose CRD arrives with an earlier wave.
            sync["syncOptions"]
                .as_array_mut()
                .expect("a list")
                .push(json!("SkipDryRunOnMissingResource=true"));
        }
        spec.insert("syncPolicy".into(), sync);
        json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": {
                "name": c.name,
                "namespace": NAMESPACE,
                "annotations": {"argocd.argoproj.io/sync-wave": c.wave.to_string()},
                "labels": {"app.kubernetes.io/part-of": APP_OF_APPS, "app.kubernetes.io/managed-by": "aicr"},
            },
            "spec": Value::Object(spec),
        })
    }

    fn app_of_apps(&self) -> Value {
        json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": {
                "name": APP_OF_APPS,
                "namespace": NAMESPACE,
                "labels": {"app.kubernetes.io/managed-by": "aicr"},
            },
            "spec": {
                "project": "default",
                "source": {
                    "repoURL": self.git.repo,
                    "targetRevision": self.git.revision.name(),
                    "path": ".",
                    "directory": {"recurse": true, "include": "*/application.yaml"},
                },
                "destination": {"server": "https://kubernetes.default.svc", "namespace": NAMESPACE},
                "syncPolicy": {"automated": {"prune": true, "selfHeal": true}},
            },
        })
    }
}

impl Deployer for ArgoCd {
    fn kind(&self) -> Kind {
        Kind::Argocd
    }

    fn add_files(&self, b: &Prepared, files: &mut Files) -> Result<(), bundler::Error> {
        for c in &b.components {
            files.add(
                format!("{}/application.yaml", c.name),
                yaml::to_string(&self.application(c)),
            );
        }
        files.add("app-of-apps.yaml", yaml::to_string(&self.app_of_apps()));
        Ok(())
    }

    fn next_steps(&self, dir: &str) -> Vec<String> {
        let mut steps = Vec::new();
        if self.git.placeholder {
            steps.push(format!(
                "Replace {} in */application.yaml and app-of-apps.yaml with your repository (or re-run with --repo)",
                super::REPO_PLACEHOLDER
            ));
        }
        steps.push(format!(
            "Push the contents of {dir} to {} ({})",
            self.git.repo, self.git.revision
        ));
        steps.push(format!("kubectl apply -f {dir}/app-of-apps.yaml"));
        steps
    }

    fn warnings(&self) -> Vec<String> {
        placeholder_warning(&self.git)
    }
}

pub fn placeholder_warning(git: &GitSource) -> Vec<String> {
    if git.placeholder {
        vec![format!(
            "--repo is not set: the bundle points at the placeholder {}; replace it, or re-run with --repo URL",
            super::REPO_PLACEHOLDER
        )]
    } else {
        Vec::new()
    }
}
