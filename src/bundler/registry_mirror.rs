//! `bundle --registry-mirror HOST/PREFIX`: image repositories in a
//! component's values rewritten to a mirror registry, at the value paths the
//! component registry names (`images.repositoryPaths`). The registry host of
//! a repository is replaced by the mirror (`nvcr.io/nvidia/gpu-operator` ->
//! `HOST/PREFIX/nvidia/gpu-operator`), as `hauler store copy` and `crane
//! copy` lay a mirror out; a Docker Hub name without a host keeps its path
//! (`bitnami/kubectl` -> `HOST/PREFIX/bitnami/kubectl`, `nginx` ->
//! `HOST/PREFIX/library/nginx`). A path the values leave unset is written
//! with the chart's default the data records, mirrored; with no default
//! recorded it is an error (the chart's default image would be pulled from
//! the internet), or a warning for a path marked optional. The container
//! images of the component's rendered manifests are rewritten too. A
//! component whose images the data does not cover, whose manifests name
//! other images, or whose defaults were read from another chart version is
//! a warning: those images must be mirrored by hand.

use serde_json::Value;

use super::set::{parse_path, set_path, Step};
use super::{Component, Error, Manifest};
use crate::recipe::registry::{ImageKind, ImagePath, RegistryComponent};

/// A checked `--registry-mirror`: `HOST[:PORT][/PREFIX]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryMirror(String);

impl RegistryMirror {
    pub fn parse(text: &str) -> Result<RegistryMirror, Error> {
        let bad = |reason: &str| Error::Mirror {
            mirror: crate::error::excerpt(text).into_owned(),
            reason: reason.to_string(),
        };
        if text.contains("://") {
            return Err(bad(
                "give the registry without a scheme: HOST[:PORT][/PREFIX], such as mirror.example.com:5000/gpu",
            ));
        }
        let trimmed = text.trim_end_matches('/');
        let (host, prefix) = trimmed.split_once('/').unwrap_or((trimmed, ""));
        let host_ok = !host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'))
            && !host.starts_with(['.', '-', ':']);
        if !host_ok {
            return Err(bad(
                "the registry host is empty or has characters a host name cannot (letters, digits, . - and :PORT)",
            ));
        }
        let prefix_ok = prefix.split('/').all(|seg| {
            prefix.is_empty()
                || (!seg.is_empty()
                    && seg.bytes().all(|b| {
                        b.is_ascii_lowercase()
                            || b.is_ascii_digit()
                            || matches!(b, b'.' | b'_' | b'-')
                    }))
        });
        if !prefix_ok || trimmed.len() > 200 {
            return Err(bad(
                "the prefix must be lower-case repository path segments (a-z 0-9 . _ -) separated by /",
            ));
        }
        Ok(RegistryMirror(trimmed.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// An image repository (or reference) moved to the mirror: its
    /// registry host replaced, its path, tag and digest kept.
    pub fn rewrite(&self, image: &str) -> String {
        self.rewrite_as(ImageKind::Repository, image)
    }

    /// A value of the given kind moved to the mirror. A repository without
    /// a host is Docker Hub's (`nginx` is `library/nginx`); a prefix without
    /// a host is a Docker Hub namespace; a registry value's first segment is
    /// always its host. What is already under the mirror is kept.
    pub fn rewrite_as(&self, kind: ImageKind, value: &str) -> String {
        let m = &self.0;
        if value == m || value.starts_with(&format!("{m}/")) {
            return value.to_string();
        }
        let (first, rest) = match value.split_once('/') {
            Some((first, rest)) => (first, Some(rest)),
            None => (value, None),
        };
        let is_host = kind == ImageKind::Registry
            || first.contains('.')
            || first.contains(':')
            || first == "localhost";
        let docker_hub = |name: &str| {
            if kind == ImageKind::Repository && !name.contains('/') {
                format!("{m}/library/{name}")
            } else {
                format!("{m}/{name}")
            }
        };
        match (is_host, rest) {
            (true, None) if kind == ImageKind::Repository => docker_hub(value),
            (true, None) => m.clone(),
            (true, Some(rest)) if matches!(first, "docker.io" | "index.docker.io") => {
                docker_hub(rest)
            }
            (true, Some(rest)) => format!("{m}/{rest}"),
            (false, _) => docker_hub(value),
        }
    }

    /// Rewrites the image references of a component's values at the paths
    /// the registry names. A path the values leave unset (or empty) is
    /// written with the chart's default, mirrored, or left unset where that
    /// default is empty; with no default recorded, it is an error.
    pub fn rewrite_values(&self, reg: &RegistryComponent, values: &mut Value) -> Result<(), Error> {
        for ip in image_paths(reg) {
            let path = &ip.path;
            let bad = |reason: String| Error::RegistryPath {
                component: reg.name.clone(),
                path: path.clone(),
                reason,
            };
            let steps = parse_path(path).map_err(bad)?;
            let current = lookup(values, &steps).map_err(|at| {
                bad(format!(
                    "--registry-mirror: the value at {at:?} is not a map, so no image can be set below it"
                ))
            })?;
            let new = match current {
                Some(Value::String(s)) if !s.is_empty() => self.rewrite_as(ip.kind, s),
                None | Some(Value::Null) | Some(Value::String(_)) => match &ip.default {
                    // The chart pulls nothing from here unless it is set
                    // (a chart-wide registry, an optional image).
                    Some(d) if d.is_empty() => continue,
                    Some(d) => self.rewrite_as(ip.kind, d),
                    None if ip.optional => continue,
                    None => {
                        return Err(bad(format!(
                            "--registry-mirror: the component's values set no image repository here, so its chart's default would be pulled from the internet; set it with --set {}:{path}=REPOSITORY",
                            reg.name
                        )))
                    }
                },
                Some(other) => {
                    return Err(bad(format!(
                        "--registry-mirror: the value here is {}, not an image {} string",
                        kind_of(other),
                        ip.kind.as_str()
                    )))
                }
            };
            set_path(values, &steps, Value::String(new)).map_err(bad)?;
        }
        Ok(())
    }

    /// Warnings for a component whose images are not all rewritten: its
    /// chart has no image values in the registry data, its manifests name
    /// images, or the defaults were read from another chart version than
    /// the one the bundle pins.
    pub fn warnings(&self, reg: &RegistryComponent, c: &Component) -> Vec<String> {
        let mut out = Vec::new();
        // An `image:` left outside the mirror: not a container's (a Skyhook
        // package's), or written in a way the rewrite does not read.
        let mirrored = format!("{}/", self.0);
        let manifest_images = c.manifests.iter().any(|m| {
            m.text.lines().any(|l| {
                l.trim_start()
                    .trim_start_matches("- ")
                    .strip_prefix("image:")
                    .is_some_and(|v| !v.trim().trim_matches(['"', '\'']).starts_with(&mirrored))
            })
        });
        let chart = c.source != super::Source::Manifests;
        // `images` present with no paths: a chart that pulls no images
        // (CRDs only).
        if chart && reg.images.is_none() {
            out.push(format!(
                "--registry-mirror: the component registry names no image values of {}: its chart's images are not rewritten to {}; mirror them and set them with --set (aicr mirror list names them)",
                c.name, self.0
            ));
        } else if manifest_images {
            out.push(format!(
                "--registry-mirror: the manifests of {} name images that are not rewritten to {}; mirror them by hand (aicr mirror list names them)",
                c.name, self.0
            ));
        }
        let unset: Vec<&str> = image_paths(reg)
            .iter()
            .filter(|ip| ip.optional)
            .filter(|ip| {
                parse_path(&ip.path).is_ok_and(|steps| match lookup(&c.values, &steps) {
                    Ok(None | Some(Value::Null)) => true,
                    Ok(Some(Value::String(s))) => s.is_empty(),
                    _ => false,
                })
            })
            .map(|ip| ip.path.as_str())
            .collect();
        if chart && !unset.is_empty() {
            out.push(format!(
                "--registry-mirror: the values of {} leave {} unset, and the component registry records no chart default there: the chart's default images are pulled from the internet; mirror them and set each with --set {}:PATH=REPOSITORY",
                c.name,
                unset.join(", "),
                c.name
            ));
        }
        let incomplete = reg.images.as_ref().map_or("", |i| i.incomplete.as_str());
        if chart && !incomplete.is_empty() {
            out.push(format!(
                "--registry-mirror: some images of {} are not rewritten to {} ({incomplete}); mirror them by hand (aicr mirror list names them)",
                c.name, self.0
            ));
        }
        let recorded = reg.images.as_ref().map_or("", |i| i.chart_version.as_str());
        let unversioned = |v: &str| v.trim_start_matches('v').to_string();
        if chart
            && !recorded.is_empty()
            && !c.version.is_empty()
            && unversioned(recorded) != unversioned(&c.version)
        {
            out.push(format!(
                "--registry-mirror: the image defaults of {} were read from chart version {recorded}, and the bundle pins {}: a default that chart version changed is not mirrored; check the rewritten values against its values.yaml",
                c.name, c.version
            ));
        }
        out
    }
}

impl RegistryMirror {
    /// Rewrites the container images of a component's rendered manifests
    /// (`containers`, `initContainers` and `ephemeralContainers` at any
    /// depth: Pod templates, and the job templates a ClusterTrainingRuntime
    /// nests). A manifest with a rewritten image is written back from its
    /// objects (its comments are not kept); others keep their text. Images
    /// elsewhere (a Skyhook package's `image`) are not container images and
    /// stay, warned by [`RegistryMirror::warnings`].
    pub fn rewrite_manifests(
        &self,
        component: &str,
        manifests: &mut [Manifest],
    ) -> Result<(), Error> {
        for m in manifests {
            let bad = |reason: String| Error::Manifest {
                component: component.to_string(),
                file: m.file_name.clone(),
                reason: format!("--registry-mirror: {reason}"),
            };
            if let Some(text) = self.rewrite_manifest(&m.text).map_err(bad)? {
                m.text = text;
            }
        }
        Ok(())
    }

    fn rewrite_manifest(&self, text: &str) -> Result<Option<String>, String> {
        use serde::Deserialize;
        let mut docs = Vec::new();
        for (i, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
            let v = Value::deserialize(doc).map_err(|e| format!("document {}: {e}", i + 1))?;
            if !v.is_null() {
                docs.push(v);
            }
        }
        let mut changed = false;
        for d in &mut docs {
            changed |= self.rewrite_containers(d, 0);
        }
        if !changed {
            return Ok(None);
        }
        let mut out = String::new();
        for d in &docs {
            out.push_str("---\n");
            out.push_str(&serde_yaml_ng::to_string(d).map_err(|e| e.to_string())?);
        }
        Ok(Some(out))
    }

    /// Whether an image changed. The walk stops at the depth every reader
    /// here allows (serde's documents are at most 128 deep).
    fn rewrite_containers(&self, v: &mut Value, depth: usize) -> bool {
        if depth > 128 {
            return false;
        }
        let mut changed = false;
        match v {
            Value::Object(map) => {
                for (key, child) in map.iter_mut() {
                    let containers = matches!(
                        key.as_str(),
                        "containers" | "initContainers" | "ephemeralContainers"
                    );
                    if let (true, Value::Array(list)) = (containers, &mut *child) {
                        for c in list {
                            if let Some(Value::String(image)) = c.get_mut("image") {
                                let new = self.rewrite(image);
                                if new != *image {
                                    *image = new;
                                    changed = true;
                                }
                            }
                        }
                    }
                    changed |= self.rewrite_containers(child, depth + 1);
                }
            }
            Value::Array(list) => {
                for item in list {
                    changed |= self.rewrite_containers(item, depth + 1);
                }
            }
            _ => {}
        }
        changed
    }
}

fn image_paths(reg: &RegistryComponent) -> &[ImagePath] {
    reg.images
        .as_ref()
        .map(|i| i.repository_paths.as_slice())
        .unwrap_or_default()
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

/// The value at `steps`: `Ok(None)` where the path runs out of values
/// (maps and lists that set_path may create), `Err(prefix)` where a value
/// other than a map or list (or null) stands in the way.
fn lookup<'a>(v: &'a Value, steps: &[Step]) -> Result<Option<&'a Value>, String> {
    let mut cur = v;
    for (i, step) in steps.iter().enumerate() {
        let next = match (step, cur) {
            (Step::Key(k), Value::Object(m)) => m.get(k),
            (Step::Index(n), Value::Array(a)) => usize::try_from(*n).ok().and_then(|n| a.get(n)),
            (_, Value::Null) => None,
            _ => {
                return Err(crate::recipe::path::Path(steps[..i].to_vec()).to_string());
            }
        };
        match next {
            Some(n) => cur = n,
            None => return Ok(None),
        }
    }
    Ok(Some(cur))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn repositories_move_to_the_mirror() {
        let m = RegistryMirror::parse("mirror.example.com:5000/air/gap/").unwrap();
        assert_eq!(m.as_str(), "mirror.example.com:5000/air/gap");
        for (from, to) in [
            (
                "nvcr.io/nvidia/gpu-operator",
                "mirror.example.com:5000/air/gap/nvidia/gpu-operator",
            ),
            ("nvcr.io/nvidia", "mirror.example.com:5000/air/gap/nvidia"),
            (
                "localhost:5000/x/y:1",
                "mirror.example.com:5000/air/gap/x/y:1",
            ),
            ("localhost/x", "mirror.example.com:5000/air/gap/x"),
            (
                "bitnami/kubectl",
                "mirror.example.com:5000/air/gap/bitnami/kubectl",
            ),
            (
                "nginx:1.27",
                "mirror.example.com:5000/air/gap/library/nginx:1.27",
            ),
            // Already mirrored: unchanged, so a bundle can be bundled again.
            (
                "mirror.example.com:5000/air/gap/nvidia/x",
                "mirror.example.com:5000/air/gap/nvidia/x",
            ),
        ] {
            assert_eq!(m.rewrite(from), to, "{from}");
        }
        assert_eq!(
            RegistryMirror::parse("reg.local")
                .unwrap()
                .rewrite("a.io/b"),
            "reg.local/b"
        );
    }

    fn component(images: &str) -> RegistryComponent {
        serde_yaml_ng::from_str(&format!("name: c\nimages:\n{images}")).unwrap()
    }

    fn mirrored(images: &str, values: Value) -> Result<Value, String> {
        let m = RegistryMirror::parse("mirror.example.com:5000/gpu").unwrap();
        let mut v = values;
        m.rewrite_values(&component(images), &mut v)
            .map(|()| v)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_prefix_moves_whether_set_or_defaulted() {
        let data = "  repositoryPaths:\n    - {path: operator.repository, kind: prefix, default: nvcr.io/nvidia}\n    - {path: dcgm.repository, kind: prefix, default: nvcr.io/nvidia/cloud-native}\n";
        let v = mirrored(
            data,
            json!({"operator": {"repository": "quay.io/me", "image": "gpu-operator"}, "dcgm": {"enabled": true}}),
        )
        .unwrap();
        assert_eq!(
            v,
            json!({
                "operator": {"repository": "mirror.example.com:5000/gpu/me", "image": "gpu-operator"},
                "dcgm": {"enabled": true, "repository": "mirror.example.com:5000/gpu/nvidia/cloud-native"},
            })
        );
        // A Docker Hub namespace, and a host alone.
        let m = RegistryMirror::parse("reg.local/x").unwrap();
        assert_eq!(
            m.rewrite_as(ImageKind::Prefix, "nvidia"),
            "reg.local/x/nvidia"
        );
        assert_eq!(m.rewrite_as(ImageKind::Prefix, "nvcr.io"), "reg.local/x");
        assert_eq!(
            m.rewrite_as(ImageKind::Prefix, "docker.io/bitnami"),
            "reg.local/x/bitnami"
        );
    }

    #[test]
    fn a_full_repository_moves_with_its_tag_or_digest_untouched() {
        let data = "  repositoryPaths:\n    - {path: image.repository, default: quay.io/jetstack/cert-manager-controller}\n    - {path: webhook.image.repository, default: quay.io/jetstack/cert-manager-webhook}\n    - {path: a, default: x.io/y/z}\n    - {path: b, default: x.io/y/z}\n";
        let v = mirrored(
            data,
            json!({
                "image": {"tag": "v1.17.2"},
                "a": "ghcr.io/o/agent:v1.2@sha256:0123456789abcdef",
                "b": "busybox:1.36",
            }),
        )
        .unwrap();
        assert_eq!(
            v,
            json!({
                "image": {"repository": "mirror.example.com:5000/gpu/jetstack/cert-manager-controller", "tag": "v1.17.2"},
                "webhook": {"image": {"repository": "mirror.example.com:5000/gpu/jetstack/cert-manager-webhook"}},
                "a": "mirror.example.com:5000/gpu/o/agent:v1.2@sha256:0123456789abcdef",
                "b": "mirror.example.com:5000/gpu/library/busybox:1.36",
            })
        );
        let m = RegistryMirror::parse("reg.local").unwrap();
        assert_eq!(m.rewrite("docker.io/nginx:1"), "reg.local/library/nginx:1");
        assert_eq!(
            m.rewrite("docker.io/bitnami/kubectl"),
            "reg.local/bitnami/kubectl"
        );
    }

    #[test]
    fn a_registry_host_becomes_the_mirror_and_the_repository_stays() {
        let data = "  repositoryPaths:\n    - {path: image.registry, kind: registry, default: quay.io}\n    - {path: sidecar.image.registry, kind: registry, default: docker.io}\n";
        let v = mirrored(
            data,
            json!({"image": {"registry": "registry.k8s.io", "repository": "kube-state-metrics/kube-state-metrics"}}),
        )
        .unwrap();
        assert_eq!(
            v,
            json!({
                "image": {"registry": "mirror.example.com:5000/gpu", "repository": "kube-state-metrics/kube-state-metrics"},
                "sidecar": {"image": {"registry": "mirror.example.com:5000/gpu"}},
            })
        );
        // A registry with a path keeps the path under the mirror.
        let m = RegistryMirror::parse("reg.local").unwrap();
        assert_eq!(
            m.rewrite_as(ImageKind::Registry, "myreg.io/team"),
            "reg.local/team"
        );
        assert_eq!(m.rewrite_as(ImageKind::Registry, "localhost"), "reg.local");
    }

    #[test]
    fn a_global_registry_is_rewritten_only_when_set() {
        let data = "  repositoryPaths:\n    - {path: global.imageRegistry, kind: registry, default: \"\"}\n";
        assert_eq!(mirrored(data, json!({"x": 1})).unwrap(), json!({"x": 1}));
        assert_eq!(
            mirrored(data, json!({"global": {"imageRegistry": ""}})).unwrap(),
            json!({"global": {"imageRegistry": ""}})
        );
        assert_eq!(
            mirrored(data, json!({"global": {"imageRegistry": "harbor.corp"}})).unwrap(),
            json!({"global": {"imageRegistry": "mirror.example.com:5000/gpu"}})
        );
    }

    #[test]
    fn what_cannot_be_rewritten_is_refused_or_left_for_a_warning() {
        // A plain path (old data) with no value: refused.
        assert_eq!(
            mirrored("  repositoryPaths: [image.repository]\n", json!({})).unwrap_err(),
            "component \"c\": registry path \"image.repository\": --registry-mirror: the component's values set no image repository here, so its chart's default would be pulled from the internet; set it with --set c:image.repository=REPOSITORY"
        );
        // An optional path with no value: left (warnings() names it).
        assert_eq!(
            mirrored(
                "  repositoryPaths: [{path: a.b, optional: true}]\n",
                json!({})
            )
            .unwrap(),
            json!({})
        );
        assert_eq!(
            mirrored(
                "  repositoryPaths: [{path: a.b, optional: true}]\n",
                json!({"a": {"b": "x.io/y:1"}})
            )
            .unwrap(),
            json!({"a": {"b": "mirror.example.com:5000/gpu/y:1"}})
        );
        // Something other than a string, or a scalar in the way.
        assert_eq!(
            mirrored("  repositoryPaths: [{path: image.repository, default: a.io/b}]\n", json!({"image": {"repository": 3}})).unwrap_err(),
            "component \"c\": registry path \"image.repository\": --registry-mirror: the value here is a number, not an image repository string"
        );
        assert_eq!(
            mirrored("  repositoryPaths: [{path: image.repository, default: a.io/b}]\n", json!({"image": "a.io/b:1"})).unwrap_err(),
            "component \"c\": registry path \"image.repository\": --registry-mirror: the value at \"image\" is not a map, so no image can be set below it"
        );
    }

    #[test]
    fn manifest_container_images_are_rewritten_and_other_images_kept() {
        let m = RegistryMirror::parse("reg.local/m").unwrap();
        let text = "# a comment\napiVersion: trainer.kubeflow.org/v1alpha1\nkind: ClusterTrainingRuntime\nmetadata: {name: t}\nspec:\n  template:\n    spec:\n      replicatedJobs:\n        - template:\n            spec:\n              template:\n                spec:\n                  initContainers: [{name: i, image: \"busybox:1\"}]\n                  containers: [{name: node, image: pytorch/pytorch:2.9.1}]\n---\napiVersion: skyhook.nvidia.com/v1alpha1\nkind: Skyhook\nmetadata: {name: s}\nspec:\n  packages:\n    p: {image: ghcr.io/nvidia/skyhook-packages/x, version: 1.0.0}\n";
        let out = m.rewrite_manifest(text).unwrap().unwrap();
        let docs: Vec<Value> = serde_yaml_ng::Deserializer::from_str(&out)
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .collect();
        let pod = &docs[0]["spec"]["template"]["spec"]["replicatedJobs"][0]["template"]["spec"]
            ["template"]["spec"];
        assert_eq!(
            pod["initContainers"][0]["image"],
            "reg.local/m/library/busybox:1"
        );
        assert_eq!(
            pod["containers"][0]["image"],
            "reg.local/m/pytorch/pytorch:2.9.1"
        );
        // Not a container: kept (and warned).
        assert_eq!(
            docs[1]["spec"]["packages"]["p"]["image"],
            "ghcr.io/nvidia/skyhook-packages/x"
        );
        // Nothing to rewrite: the text is kept as it is.
        assert_eq!(
            m.rewrite_manifest("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
                .unwrap(),
            None
        );
        assert_eq!(m.rewrite_manifest(&out).unwrap(), None);
    }

    #[test]
    fn bad_mirrors_are_refused() {
        for bad in [
            "",
            "/x",
            "https://reg/x",
            "reg/UPPER",
            "reg//x",
            "re g/x",
            "-reg/x",
            "reg/$(id)",
        ] {
            assert!(RegistryMirror::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            RegistryMirror::parse("https://reg/x").unwrap_err().to_string(),
            "--registry-mirror \"https://reg/x\": give the registry without a scheme: HOST[:PORT][/PREFIX], such as mirror.example.com:5000/gpu"
        );
    }
}
