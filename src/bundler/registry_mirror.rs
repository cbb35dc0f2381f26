//! `bundle --registry-mirror HOST/PREFIX`: image repositories in a
//! component's values rewritten to a mirror registry, at the value paths the
//! component registry names (`images.repositoryPaths`). The registry host of
//! a repository is replaced by the mirror (`nvcr.io/nvidia/gpu-operator` ->
//! `HOST/PREFIX/nvidia/gpu-operator`), as `hauler store copy` and `crane
//! copy` lay a mirror out; a Docker Hub name without a host keeps its path
//! (`bitnami/kubectl` -> `HOST/PREFIX/bitnami/kubectl`, `nginx` ->
//! `HOST/PREFIX/library/nginx`). A path the data names but the values do not
//! set is an error (the chart's default image would be pulled from the
//! internet); a component whose images the data does not cover, or whose
//! manifests name images, is a warning: its images must be mirrored by hand.

use serde_json::Value;

use super::set::parse_path;
use super::set::Step;
use super::{Component, Error};
use crate::recipe::registry::RegistryComponent;

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

    /// An image repository (or reference) moved to the mirror.
    pub fn rewrite(&self, image: &str) -> String {
        let m = &self.0;
        if image.starts_with(&format!("{m}/")) {
            return image.to_string();
        }
        match image.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                format!("{m}/{rest}")
            }
            Some(_) => format!("{m}/{image}"),
            None => format!("{m}/library/{image}"),
        }
    }

    /// Rewrites the image repositories of a component's values at the
    /// paths the registry names.
    pub fn rewrite_values(&self, reg: &RegistryComponent, values: &mut Value) -> Result<(), Error> {
        for path in repository_paths(reg) {
            let bad = |reason: String| Error::RegistryPath {
                component: reg.name.clone(),
                path: path.clone(),
                reason,
            };
            let steps = parse_path(path).map_err(bad)?;
            match get_mut(values, &steps) {
                Some(Value::String(s)) if !s.is_empty() => *s = self.rewrite(s),
                Some(_) | None => {
                    return Err(bad(format!(
                        "--registry-mirror: the component's values set no image repository here, so its chart's default would be pulled from the internet; set it with --set {}:{path}=REPOSITORY",
                        reg.name
                    )))
                }
            }
        }
        Ok(())
    }

    /// A warning when the component's images are not all rewritten: its
    /// chart has no image values in the registry data, or its manifests
    /// name images.
    pub fn warning(&self, reg: &RegistryComponent, c: &Component) -> Option<String> {
        let manifest_images = c.manifests.iter().any(|m| {
            m.text.lines().any(|l| {
                l.trim_start()
                    .trim_start_matches("- ")
                    .starts_with("image:")
            })
        });
        let chart_uncovered =
            c.source != super::Source::Manifests && repository_paths(reg).is_empty();
        if chart_uncovered {
            Some(format!(
                "--registry-mirror: the component registry names no image values of {}: its chart's images are not rewritten to {}; mirror them and set them with --set (aicr mirror list names them)",
                c.name, self.0
            ))
        } else if manifest_images {
            Some(format!(
                "--registry-mirror: the manifests of {} name images that are not rewritten to {}; mirror them by hand (aicr mirror list names them)",
                c.name, self.0
            ))
        } else {
            None
        }
    }
}

fn repository_paths(reg: &RegistryComponent) -> &[String] {
    reg.images
        .as_ref()
        .map(|i| i.repository_paths.as_slice())
        .unwrap_or_default()
}

fn get_mut<'a>(v: &'a mut Value, steps: &[Step]) -> Option<&'a mut Value> {
    let Some((step, rest)) = steps.split_first() else {
        return Some(v);
    };
    let child = match step {
        Step::Key(k) => v.as_object_mut()?.get_mut(k)?,
        Step::Index(i) => v.as_array_mut()?.get_mut(usize::try_from(*i).ok()?)?,
    };
    get_mut(child, rest)
}

#[cfg(test)]
mod tests {
    use super::*;

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
