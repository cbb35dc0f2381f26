//! The air-gap inventory of a stack: every chart (repository, name,
//! version, OCI reference) and every container image it pulls. Images are
//! found by rendering each chart with the component's values (`helm
//! template`, through [`helm`]) and reading the image fields of its
//! workloads, and by reading the bundle's own manifests the same way. The
//! inventory is written by [`format`] as a plain list, JSON, a Hauler
//! manifest or a Zarf package config.
//!
//! What counts as an image: the `image` of every container, init container
//! and ephemeral container of a Pod, or of the Pod template of a Deployment,
//! DaemonSet, StatefulSet, ReplicaSet, Job or CronJob; and in custom
//! resources (operators such as Skyhook or the GPU operator name the images
//! they will run in their own objects) every mapping with a string `image`,
//! joined with a sibling `repository` in front and `version` or `tag` after
//! it when the image has neither tag nor digest. Built-in kinds other than
//! workloads (a ConfigMap's data) are not read.

pub mod format;
pub mod helm;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use crate::bundler::{is_builtin_api, Component, Source};
use crate::error::{Class, Classify};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Helm(#[from] helm::Error),
    #[error("{component}: {what} is not valid YAML: {reason}")]
    Yaml {
        component: String,
        what: String,
        reason: String,
    },
    #[error("cannot write a temporary values file for {component}: {io}")]
    Temp {
        component: String,
        io: std::io::Error,
    },
}

impl Classify for Error {
    fn class(&self) -> Class {
        match self {
            Error::Helm(e) => e.class(),
            Error::Yaml { .. } => Class::InvalidInput,
            Error::Temp { io, .. } => Class::of_io(io.kind()),
        }
    }
}

/// One chart of the stack.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Chart {
    /// The component that installs it.
    pub component: String,
    pub name: String,
    pub version: String,
    /// The Helm repository URL, or the OCI registry path (`oci://host/path`)
    /// that holds the chart.
    pub repository: String,
    /// `oci://host/path/name:version` for a chart in an OCI registry.
    pub oci: Option<String>,
    pub namespace: String,
}

/// Everything the stack pulls.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Inventory {
    /// In deployment order.
    pub charts: Vec<Chart>,
    /// Image reference -> the components that run it.
    pub images: BTreeMap<String, BTreeSet<String>>,
}

/// Where each chart is rendered from: its own source, or an archive
/// vendored in a bundle.
pub type Vendored<'a> = &'a BTreeMap<String, std::path::PathBuf>;

/// The inventory of `components` (in deployment order): each chart
/// rendered with its values by `helm`, or from the archive `vendored`
/// names for it; each component's manifests read as they are.
pub fn inventory(
    components: &[Component],
    helm: &helm::Helm,
    vendored: Vendored,
) -> Result<Inventory, Error> {
    let mut inv = Inventory::default();
    // After the first failure (a deadline, a signal) no further chart is
    // rendered.
    let rendered = crate::bundler::parallel::try_map(components, |c| render(c, helm, vendored))?;
    for (c, text) in components.iter().zip(rendered) {
        if let Some(text) = text {
            add_images(&mut inv, &c.name, &text, "the rendered chart")?;
        }
        for m in &c.manifests {
            add_images(
                &mut inv,
                &c.name,
                &m.text,
                &format!("manifest {}", m.file_name),
            )?;
        }
        if let Some(chart) = chart_of(c) {
            inv.charts.push(chart);
        }
    }
    Ok(inv)
}

/// The chart a component installs, if any.
pub fn chart_of(c: &Component) -> Option<Chart> {
    let (repository, oci) = match &c.source {
        Source::Repo(url) => (url.clone(), None),
        Source::Oci(url) => (
            url.clone(),
            Some(format!("{url}/{}:{}", c.chart, c.version)),
        ),
        Source::Manifests => return None,
    };
    Some(Chart {
        component: c.name.clone(),
        name: c.chart.clone(),
        version: c.version.clone(),
        repository,
        oci,
        namespace: c.namespace.clone(),
    })
}

/// `helm template` of a chart component with its values; `None` for a
/// component without a chart.
fn render(c: &Component, helm: &helm::Helm, vendored: Vendored) -> Result<Option<String>, Error> {
    let oci_ref;
    let source = match (&c.source, vendored.get(&c.name)) {
        (Source::Manifests, _) => return Ok(None),
        (_, Some(path)) => helm::ChartSource::Local(path),
        (Source::Repo(url), None) => helm::ChartSource::Repo {
            url,
            chart: &c.chart,
        },
        (Source::Oci(url), None) => {
            oci_ref = format!("{url}/{}", c.chart);
            helm::ChartSource::Oci(oci_ref.clone())
        }
    };
    let temp = |io| Error::Temp {
        component: c.name.clone(),
        io,
    };
    // The values file and helm's TMPDIR, removed together.
    let work = tempfile::Builder::new()
        .prefix("aicr-values-")
        .tempdir()
        .map_err(temp)?;
    let values = work.path().join("values.yaml");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&values)
        .map_err(temp)?;
    std::io::Write::write_all(&mut file, crate::bundler::values_yaml(c).as_bytes())
        .map_err(temp)?;
    drop(file);
    let text = helm.template(
        &c.name,
        &c.namespace,
        &source,
        &c.version,
        &values,
        work.path(),
    )?;
    Ok(Some(text))
}

/// Adds the images of every object in `text` (YAML documents).
fn add_images(inv: &mut Inventory, component: &str, text: &str, what: &str) -> Result<(), Error> {
    use serde::Deserialize;
    for doc in serde_yaml_ng::Deserializer::from_str(text) {
        let v = Value::deserialize(doc).map_err(|e| Error::Yaml {
            component: component.to_string(),
            what: what.to_string(),
            reason: e.to_string(),
        })?;
        let mut found = Vec::new();
        images_of(&v, &mut found);
        for image in found {
            inv.images
                .entry(image)
                .or_default()
                .insert(component.to_string());
        }
    }
    Ok(())
}

/// The images one Kubernetes object names (a `List` is read item by item).
pub fn images_of(obj: &Value, out: &mut Vec<String>) {
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let api = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    if kind == "List" || kind.ends_with("List") {
        for item in obj
            .get("items")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            images_of(item, out);
        }
        return;
    }
    let spec = obj.get("spec");
    let pod_spec = match kind {
        "Pod" => spec,
        "Deployment"
        | "DaemonSet"
        | "StatefulSet"
        | "ReplicaSet"
        | "Job"
        | "ReplicationController" => spec.and_then(|s| s.pointer("/template/spec")),
        "CronJob" => spec.and_then(|s| s.pointer("/jobTemplate/spec/template/spec")),
        _ if api.is_empty() || is_builtin_api(api) => return,
        _ => {
            if let Some(spec) = spec {
                custom_images(spec, out);
            }
            return;
        }
    };
    let Some(pod_spec) = pod_spec else { return };
    for field in ["initContainers", "containers", "ephemeralContainers"] {
        for c in pod_spec
            .get(field)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(image) = c.get("image").and_then(Value::as_str) {
                push(out, image.to_string());
            }
        }
    }
}

fn push(out: &mut Vec<String>, image: String) {
    let image = image.trim().to_string();
    if !image.is_empty() && !image.contains(char::is_whitespace) {
        out.push(image);
    }
}

/// Image fields in a custom resource: any mapping with a string `image`,
/// completed by a sibling `repository`, `version` or `tag`.
fn custom_images(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            if let Some(image) = map.get("image").and_then(Value::as_str) {
                let mut full = image.to_string();
                if let Some(repo) = map.get("repository").and_then(Value::as_str) {
                    if !repo.is_empty() && !image.contains('/') {
                        full = format!("{}/{image}", repo.trim_end_matches('/'));
                    }
                }
                let tagged =
                    full.contains('@') || full.rsplit('/').next().is_some_and(|l| l.contains(':'));
                if !tagged {
                    let version = ["version", "tag"]
                        .iter()
                        .find_map(|k| map.get(*k).and_then(Value::as_str))
                        .filter(|v| !v.is_empty());
                    if let Some(v) = version {
                        if v.starts_with("sha256:") {
                            full = format!("{full}@{v}");
                        } else {
                            full = format!("{full}:{v}");
                        }
                    }
                }
                push(out, full);
            }
            for (_, child) in map {
                custom_images(child, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| custom_images(i, out)),
        _ => {}
    }
}

/// The chart archives of a bundle's `charts/` directory by component, as
/// `bundle --vendor-charts` wrote them (`charts/<component>/` or
/// `charts/<component>.tgz`).
pub fn vendored_in(dir: &Path, components: &[Component]) -> BTreeMap<String, std::path::PathBuf> {
    let mut out = BTreeMap::new();
    for c in components {
        if c.source == Source::Manifests {
            continue;
        }
        for p in [
            dir.join(crate::bundler::vendor::archive_path(c)),
            dir.join(crate::bundler::vendor::directory_path(c)),
        ] {
            if p.exists() {
                out.insert(c.name.clone(), p);
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn images(v: Value) -> Vec<String> {
        let mut out = Vec::new();
        images_of(&v, &mut out);
        out
    }

    #[test]
    fn workload_images_come_from_every_container_list() {
        let pod = json!({"initContainers": [{"image": "a/init:1"}], "containers": [{"image": "a/main:1"}, {"name": "no-image"}], "ephemeralContainers": [{"image": "a/debug:1"}]});
        assert_eq!(
            images(
                json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"template": {"spec": pod}}})
            ),
            ["a/init:1", "a/main:1", "a/debug:1"]
        );
        assert_eq!(
            images(
                json!({"apiVersion": "batch/v1", "kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"image": "c:1"}]}}}}}})
            ),
            ["c:1"]
        );
        assert_eq!(
            images(
                json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [{"image": "p:1"}]}})
            ),
            ["p:1"]
        );
        // Built-in kinds that are not workloads are not read.
        assert!(
            images(json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"image": "x:1"}}))
                .is_empty()
        );
        assert!(
            images(json!({"apiVersion": "v1", "kind": "ConfigMap", "spec": {"image": "x:1"}}))
                .is_empty()
        );
    }

    #[test]
    fn custom_resources_name_images_in_parts() {
        let cr = json!({"apiVersion": "nvidia.com/v1", "kind": "ClusterPolicy", "spec": {
            "driver": {"repository": "nvcr.io/nvidia", "image": "driver", "version": "580.1"},
            "toolkit": {"image": "nvcr.io/nvidia/toolkit:1.2", "version": "ignored"},
            "pkg": {"image": "ghcr.io/x/setup", "version": "0.2.1"},
            "digest": {"image": "ghcr.io/x/y", "version": "sha256:abc"},
        }});
        let mut got = images(cr);
        got.sort();
        assert_eq!(
            got,
            [
                "ghcr.io/x/setup:0.2.1",
                "ghcr.io/x/y@sha256:abc",
                "nvcr.io/nvidia/driver:580.1",
                "nvcr.io/nvidia/toolkit:1.2"
            ]
        );
    }
}
