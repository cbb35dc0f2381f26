//! The recipe data: files embedded in the binary, optionally layered with an
//! external `--data DIR`. External files replace embedded files at the same
//! relative path; `registry.yaml` is required there and merged by component.
//!
//! Every path is judged after normalisation: a path that leaves the data root
//! is refused, while a name such as `my..file.yaml` is fine. Inside DIR,
//! symlinks and files over 10 MiB are refused before anything is read.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::registry::{ImageValues, Registry, RegistryDoc, REGISTRY_KIND};
use super::Error;
use crate::serializer;

/// Largest file accepted from `--data`.
pub const MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;

mod documents {
    include!(concat!(env!("OUT_DIR"), "/documents.rs"));
}

#[derive(rust_embed::Embed)]
#[folder = "recipes/"]
#[exclude = "*.md"]
struct Embedded;

/// Embedded recipe data plus an optional external layer.
#[derive(Debug, Default)]
pub struct DataStore {
    external: Option<External>,
}

#[derive(Debug)]
struct External {
    /// Normalised relative path to the file on disk.
    files: BTreeMap<String, PathBuf>,
}

impl DataStore {
    /// The data compiled into the binary.
    pub fn embedded() -> DataStore {
        DataStore { external: None }
    }

    /// Embedded data with `dir` layered on top. The directory is walked and
    /// checked up front; files are read when needed.
    pub fn with_dir(dir: &Path) -> Result<DataStore, Error> {
        let shown = dir.display().to_string();
        let meta = std::fs::metadata(dir).map_err(|e| Error::DataDir {
            dir: shown.clone(),
            reason: e.to_string(),
        })?;
        if !meta.is_dir() {
            return Err(Error::DataDir {
                dir: shown,
                reason: "is not a directory".into(),
            });
        }
        let mut files = BTreeMap::new();
        walk(dir, dir, &mut files)?;
        if !files.contains_key("registry.yaml") {
            return Err(Error::DataDir {
                dir: shown,
                reason: "registry.yaml is required in a --data directory and is missing".into(),
            });
        }
        Ok(DataStore {
            external: Some(External { files }),
        })
    }

    /// Reads a file by its path relative to the data root.
    pub fn read(&self, rel: &str) -> Result<Cow<'static, [u8]>, Error> {
        let key = normalise(rel)?;
        if let Some(ext) = &self.external {
            if let Some(p) = ext.files.get(&key) {
                return serializer::read_capped(p, MAX_FILE_BYTES, "--data file")
                    .map(Cow::Owned)
                    .map_err(Error::from);
            }
        }
        Embedded::get(&key)
            .map(|f| f.data)
            .ok_or(Error::DataFileMissing(key))
    }

    /// Parses the YAML or JSON document at `rel`. Embedded documents were
    /// pre-parsed at build time and are read as JSON.
    pub fn document(&self, rel: &str, expected: &'static str) -> Result<serde_json::Value, Error> {
        let key = normalise(rel)?;
        let external = self
            .external
            .as_ref()
            .is_some_and(|e| e.files.contains_key(&key));
        if !external {
            if let Ok(i) = documents::DOCUMENTS.binary_search_by(|(p, _)| (*p).cmp(key.as_str())) {
                let value: serde_json::Value = serde_json::from_str(documents::DOCUMENTS[i].1)
                    .expect("build.rs wrote valid JSON");
                if value.is_null() {
                    return Err(serializer::Error::Empty {
                        path: self.origin(&key),
                        expected,
                    }
                    .into());
                }
                return Ok(value);
            }
        }
        let bytes = self.read(&key)?;
        Ok(serializer::parse_value(
            &bytes,
            &self.origin(&key),
            expected,
        )?)
    }

    /// True when `rel` is read from the `--data` directory (not from the
    /// data embedded in the binary); false for an escaping path.
    pub fn is_external(&self, rel: &str) -> bool {
        self.external
            .as_ref()
            .is_some_and(|e| normalise(rel).is_ok_and(|key| e.files.contains_key(&key)))
    }

    /// True when the data has a file at `rel`; an escaping path is an error.
    pub fn contains(&self, rel: &str) -> Result<bool, Error> {
        let key = normalise(rel)?;
        Ok(self
            .external
            .as_ref()
            .is_some_and(|e| e.files.contains_key(&key))
            || Embedded::get(&key).is_some())
    }

    /// Relative paths under `dir/` (one level or deeper), sorted, both layers.
    pub fn list(&self, dir: &str) -> Vec<String> {
        let prefix = format!("{}/", dir.trim_end_matches('/'));
        let mut out: Vec<String> = Embedded::iter()
            .filter(|p| p.starts_with(&prefix))
            .map(|p| p.into_owned())
            .collect();
        if let Some(ext) = &self.external {
            out.extend(ext.files.keys().filter(|p| p.starts_with(&prefix)).cloned());
        }
        out.sort();
        out.dedup();
        out
    }

    /// Where a file comes from, for messages: the external path or
    /// `embedded:<path>`.
    pub fn origin(&self, rel: &str) -> String {
        if let Some(ext) = &self.external {
            if let Some(p) = ext.files.get(rel) {
                return p.display().to_string();
            }
        }
        format!("embedded:{rel}")
    }

    /// The component registry: embedded, merged by name with the external
    /// one. The embedded components come without their `images` (build.rs
    /// keeps those apart; see [`DataStore::registry_with_images`]); the
    /// external ones have theirs, checked as they are read.
    pub fn registry(&self) -> Result<Registry, Error> {
        self.registry_of(false)
    }

    /// The component registry with the embedded components' `images` too,
    /// for `bundle --registry-mirror`, the one reader of them.
    pub fn registry_with_images(&self) -> Result<Registry, Error> {
        self.registry_of(true)
    }

    fn registry_of(&self, with_images: bool) -> Result<Registry, Error> {
        let mut reg = Registry::default();
        let mut embedded = DataStore::embedded().typed_registry()?.components;
        if with_images {
            let mut images: BTreeMap<String, ImageValues> =
                serde_json::from_str(documents::REGISTRY_IMAGES).map_err(|e| {
                    serializer::Error::Shape {
                        path: "embedded:registry.yaml".into(),
                        expected: REGISTRY_KIND,
                        detail: format!("images: {e}"),
                    }
                })?;
            for c in &mut embedded {
                c.images = images.remove(&c.name);
            }
        }
        reg.merge(embedded);
        if self.external.is_some() {
            reg.merge(self.typed_registry()?.components);
        }
        Ok(reg)
    }

    fn typed_registry(&self) -> Result<RegistryDoc, Error> {
        let v = self.document("registry.yaml", REGISTRY_KIND)?;
        Ok(serializer::typed_document(
            v,
            &self.origin("registry.yaml"),
            REGISTRY_KIND,
            false,
        )?)
    }
}

fn walk(root: &Path, dir: &Path, files: &mut BTreeMap<String, PathBuf>) -> Result<(), Error> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::DataRead {
        path: dir.display().to_string(),
        io: e,
    })?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::DataRead {
            path: dir.display().to_string(),
            io: e,
        })?;
        let path = entry.path();
        let rel = path
            .strip_prefix(root)
            .expect("walked paths are under the root")
            .to_string_lossy()
            .replace('\\', "/");
        let meta = std::fs::symlink_metadata(&path).map_err(|e| Error::DataRead {
            path: path.display().to_string(),
            io: e,
        })?;
        if meta.file_type().is_symlink() {
            return Err(Error::DataSymlink(rel));
        }
        if meta.is_dir() {
            walk(root, &path, files)?;
        } else if meta.is_file() {
            if meta.len() > MAX_FILE_BYTES {
                return Err(Error::DataTooLarge {
                    path: rel,
                    size: meta.len(),
                });
            }
            files.insert(normalise(&rel)?, path);
        } else {
            // A FIFO, socket or device is never skipped in silence (nor
            // opened, which could block): the data would not be what the
            // directory shows.
            return Err(Error::DataDir {
                dir: root.display().to_string(),
                reason: format!(
                    "{rel} is not a regular file (a FIFO, socket or device); a --data directory holds only directories and regular files"
                ),
            });
        }
    }
    Ok(())
}

/// Normalises a data-relative path: `.` and empty segments dropped, `..`
/// resolved. Absolute paths and paths that climb out of the root are refused.
pub fn normalise(rel: &str) -> Result<String, Error> {
    if rel.is_empty() {
        return Err(Error::DataPath {
            path: rel.into(),
            reason: "is empty".into(),
        });
    }
    if rel.starts_with('/')
        || rel.starts_with('\\')
        || rel.contains('\\')
        || rel.get(1..2) == Some(":")
    {
        return Err(Error::DataPath {
            path: rel.into(),
            reason: "must be relative to the data root, with / separators".into(),
        });
    }
    let mut parts: Vec<&str> = Vec::new();
    for seg in rel.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(Error::DataPath {
                        path: rel.into(),
                        reason: "resolves outside the data root".into(),
                    });
                }
            }
            s => parts.push(s),
        }
    }
    if parts.is_empty() {
        return Err(Error::DataPath {
            path: rel.into(),
            reason: "names the data root, not a file".into(),
        });
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The embedded registry's image data is read only when asked for, and
    /// then every entry of it parses and lands on its component.
    #[test]
    fn embedded_images_are_read_only_for_the_mirror() {
        let store = DataStore::embedded();
        let plain = store.registry().unwrap();
        assert!(plain.components.iter().all(|c| c.images.is_none()));
        assert!(!documents::DOCUMENTS
            .iter()
            .any(|(p, j)| *p == "registry.yaml" && j.contains("\"images\"")));
        let full = store.registry_with_images().unwrap();
        let names: BTreeMap<String, serde_json::Value> =
            serde_json::from_str(documents::REGISTRY_IMAGES).unwrap();
        assert!(names.len() >= 12, "{:?}", names.keys());
        for name in names.keys() {
            let c = full
                .get(name)
                .unwrap_or_else(|| panic!("{name} is not in the registry"));
            assert!(c.images.is_some(), "{name}");
        }
        let gpu = full.get("gpu-operator").unwrap().images.as_ref().unwrap();
        assert!(gpu.repository_paths.len() > 20);
    }

    #[test]
    fn normalise_judges_resolved_paths() {
        assert_eq!(
            normalise("overlays/my..file.yaml").unwrap(),
            "overlays/my..file.yaml"
        );
        assert_eq!(
            normalise("./components/../components/x.yaml").unwrap(),
            "components/x.yaml"
        );
        assert!(normalise("../etc/passwd").is_err());
        assert!(normalise("components/../../x").is_err());
        assert!(normalise("/etc/hostname").is_err());
        assert!(normalise("").is_err());
    }
}
