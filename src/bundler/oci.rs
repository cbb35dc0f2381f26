//! OCI bundles: `aicr bundle -o oci://REGISTRY/REPO:TAG` pushes a bundle as
//! one OCI artifact, and `aicr verify oci://...` pulls one into a temporary
//! directory and checks it as a bundle directory.
//!
//! The artifact is an OCI image manifest (artifact type [`ARTIFACT_TYPE`])
//! with one layer per bundle file, titled with its path
//! (`org.opencontainers.image.title`, as ORAS lays files out), and the
//! bundle's `checksums.txt` (path -> SHA-256) and `recipe.yaml` as manifest
//! annotations, each one line of JSON. Every
//! blob is checked against its digest as it is pulled (a blob changed in the
//! registry's storage is a finding, named by its path), and the pulled files
//! against `checksums.txt`, which must equal the annotation.
//!
//! Credentials come from the Docker/Podman auth files and the credential
//! helpers they name ([`auth`]), never from the command line. Plain HTTP
//! is used for a registry on this machine (127.0.0.1, ::1, localhost), or
//! anywhere with `--plain-http`.
//!
//! A push or pull ends at its deadline, or as soon as a held-back SIGINT,
//! SIGTERM or SIGHUP arrives ([`super::output::HeldSignals`]): its
//! connections are dropped and the caller removes what it wrote before the
//! signal ends aicr. A push sets the tag last (the manifest), so an
//! interrupted one leaves the tag as it was.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::errors::OciDistributionError;
use oci_client::manifest::OciImageManifest;
use oci_client::{Client, Reference};

use super::output::{Files, MARKER};
use crate::error::{Class, Classify};

pub mod auth;
pub use auth::{credentials, Credentials};

pub const ARTIFACT_TYPE: &str = "application/vnd.nvidia.aicr.bundle.v1";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.nvidia.aicr.bundle.config.v1+json";
pub const FILE_MEDIA_TYPE: &str = "application/vnd.nvidia.aicr.bundle.file.v1";
pub const CHECKSUMS_ANNOTATION: &str = "com.nvidia.aicr.bundle.checksums";
pub const RECIPE_ANNOTATION: &str = "com.nvidia.aicr.bundle.recipe";
const TITLE: &str = "org.opencontainers.image.title";
const EXECUTABLE: &str = "com.nvidia.aicr.bundle.executable";
/// The most one pulled file may hold.
const BLOB_CAP: i64 = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{reference}: {reason}")]
    BadReference { reference: String, reason: String },
    #[error(transparent)]
    Auth(#[from] auth::Error),
    #[error("{reference}: the registry refused the credentials ({source_of}): {detail}")]
    Unauthorized {
        reference: String,
        source_of: String,
        detail: String,
    },
    #[error("{reference}: {detail}")]
    Registry {
        reference: String,
        class: Class,
        detail: String,
    },
    #[error("{reference}: no answer within {}s", .timeout.as_secs())]
    Timeout {
        reference: String,
        timeout: Duration,
    },
    #[error("{reference}: interrupted by {signal}")]
    Interrupted {
        reference: String,
        signal: &'static str,
    },
    #[error("{reference}: not an aicr bundle: {reason}")]
    NotBundle { reference: String, reason: String },
    #[error("{path}: {io}")]
    Io { path: String, io: std::io::Error },
}

impl Classify for Error {
    fn class(&self) -> Class {
        match self {
            Error::BadReference { .. } | Error::NotBundle { .. } => Class::InvalidInput,
            Error::Auth(e) => e.class(),
            Error::Unauthorized { .. } => Class::Unauthorized,
            Error::Registry { class, .. } => *class,
            Error::Timeout { .. } => Class::Timeout,
            // Reached only when the signal does not end aicr.
            Error::Interrupted { .. } => Class::Internal,
            Error::Io { io, .. } => Class::of_io(io.kind()),
        }
    }
}

/// A checked `oci://REGISTRY/REPO:TAG` (or `@sha256:...` to pull).
#[derive(Clone, Debug)]
pub struct Target {
    pub reference: Reference,
    pub shown: String,
    pub plain_http: bool,
}

impl Target {
    /// `push`: a tag is required (a digest names content, which a push
    /// makes). `plain_http`: the `--plain-http` flag.
    pub fn parse(text: &str, plain_http: bool, push: bool) -> Result<Target, Error> {
        let bad = |reason: &str| Error::BadReference {
            reference: crate::error::excerpt(text).into_owned(),
            reason: reason.to_string(),
        };
        let rest = text
            .strip_prefix("oci://")
            .ok_or_else(|| bad("expected oci://REGISTRY/REPOSITORY:TAG"))?;
        let has_tag = rest
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains(':') || last.contains('@'));
        if !rest.contains('/') || rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("expected oci://REGISTRY/REPOSITORY:TAG"));
        }
        if !has_tag {
            return Err(bad(
                "name a tag (oci://REGISTRY/REPOSITORY:TAG) or, to verify, a digest (@sha256:...)",
            ));
        }
        let reference: Reference = rest
            .parse()
            .map_err(|e| bad(&format!("not an OCI reference: {e}")))?;
        if push && reference.digest().is_some() {
            return Err(bad("a push names a tag, not a digest"));
        }
        let host = reference.registry();
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.split(']').next())
            .unwrap_or_else(|| host.split(':').next().unwrap_or(host));
        let local = matches!(host, "127.0.0.1" | "::1" | "localhost");
        Ok(Target {
            reference,
            shown: text.to_string(),
            plain_http: plain_http || local,
        })
    }

    fn client(&self) -> Result<Client, Error> {
        // reqwest is built without a default crypto provider: ring, as kube.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = ClientConfig {
            protocol: if self.plain_http {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            ..Default::default()
        };
        Client::try_from(config).map_err(|e| self.error(e, "anonymous"))
    }

    /// The class of a client error.
    fn error(&self, e: OciDistributionError, source_of: &str) -> Error {
        use oci_client::errors::OciErrorCode as C;
        let reference = self.shown.clone();
        let detail = e.to_string();
        let registry = |class| Error::Registry {
            reference: reference.clone(),
            class,
            detail: detail.clone(),
        };
        match &e {
            OciDistributionError::UnauthorizedError { .. }
            | OciDistributionError::AuthenticationFailure(_) => Error::Unauthorized {
                reference,
                source_of: source_of.to_string(),
                detail,
            },
            OciDistributionError::RegistryError { envelope, .. } => {
                let code = envelope.errors.first().map(|e| &e.code);
                match code {
                    Some(C::Unauthorized | C::Denied) => Error::Unauthorized {
                        reference,
                        source_of: source_of.to_string(),
                        detail,
                    },
                    Some(C::ManifestUnknown | C::NameUnknown | C::BlobUnknown | C::NotFound) => {
                        registry(Class::NotFound)
                    }
                    Some(C::Toomanyrequests) => registry(Class::RateLimited),
                    _ => registry(Class::Unavailable),
                }
            }
            OciDistributionError::ImageManifestNotFoundError(_) => registry(Class::NotFound),
            OciDistributionError::ServerError { code, .. } => match code {
                401 | 403 => Error::Unauthorized {
                    reference,
                    source_of: source_of.to_string(),
                    detail,
                },
                404 => registry(Class::NotFound),
                429 => registry(Class::RateLimited),
                _ => registry(Class::Unavailable),
            },
            OciDistributionError::RequestError(r) if r.is_timeout() => registry(Class::Timeout),
            OciDistributionError::RequestError(_) => registry(Class::Unavailable),
            _ => registry(Class::Unavailable),
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|io| Error::Io {
            path: "the async runtime".into(),
            io,
        })
}

/// Test-only (debug builds): the deadline of a push or pull in
/// milliseconds, so a test of a registry that never answers is quick.
pub const TEST_TIMEOUT_ENV: &str = "AICR_TEST_OCI_TIMEOUT_MS";

/// `timeout`, or in a debug build the milliseconds the test variable
/// `env` gives (the push/pull and the credential helpers' deadlines).
#[cfg_attr(not(debug_assertions), allow(unused_variables))]
pub(crate) fn test_deadline(env: &str, timeout: Duration) -> Duration {
    #[cfg(debug_assertions)]
    if let Some(ms) = std::env::var(env).ok().and_then(|v| v.parse::<u64>().ok()) {
        return Duration::from_millis(ms);
    }
    timeout
}

/// Runs `work` until its deadline or until a held-back signal arrives
/// (SIGINT, SIGTERM, SIGHUP: see [`super::output::HeldSignals`]), whichever
/// comes first; either drops it, closing its connections.
fn bounded<T>(
    rt: &tokio::runtime::Runtime,
    target: &Target,
    timeout: Duration,
    work: impl std::future::Future<Output = T>,
) -> Result<T, Error> {
    use futures_util::future::{select, Either};
    let timeout = test_deadline(TEST_TIMEOUT_ENV, timeout);
    let signalled = async {
        loop {
            if let Some(s) = super::output::pending_signal() {
                return super::output::signal_name(s);
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    };
    rt.block_on(async {
        let work = std::pin::pin!(tokio::time::timeout(timeout, work));
        match select(work, std::pin::pin!(signalled)).await {
            Either::Left((Ok(done), _)) => Ok(done),
            Either::Left((Err(_), _)) => Err(Error::Timeout {
                reference: target.shown.clone(),
                timeout,
            }),
            Either::Right((signal, _)) => Err(Error::Interrupted {
                reference: target.shown.clone(),
                signal,
            }),
        }
    })
}

/// Pushes `files` (a whole bundle, `checksums.txt` included) to `target`;
/// returns the manifest's digest.
pub fn push(
    target: &Target,
    files: &Files,
    creds: &Credentials,
    timeout: Duration,
) -> Result<String, Error> {
    let mut layers = Vec::with_capacity(files.len());
    for (path, f) in &files.0 {
        let mut ann = BTreeMap::from([(TITLE.to_string(), path.clone())]);
        if f.executable {
            ann.insert(EXECUTABLE.to_string(), "true".into());
        }
        layers.push(ImageLayer::new(
            f.bytes.clone(),
            FILE_MEDIA_TYPE.to_string(),
            Some(ann),
        ));
    }
    // Annotations are single-line JSON: the manifest's canonical JSON
    // writes a string's line breaks raw, which registries refuse.
    let text = |name: &str| {
        files
            .0
            .get(name)
            .map(|f| String::from_utf8_lossy(&f.bytes).into_owned())
            .unwrap_or_default()
    };
    let sums = super::checksum::parse(&text(MARKER), MARKER).map_err(|e| Error::NotBundle {
        reference: target.shown.clone(),
        reason: e.to_string(),
    })?;
    let recipe: serde_json::Value =
        serde_yaml_ng::from_str(&text("recipe.yaml")).map_err(|e| Error::NotBundle {
            reference: target.shown.clone(),
            reason: format!("recipe.yaml: {e}"),
        })?;
    let annotations = BTreeMap::from([
        (
            CHECKSUMS_ANNOTATION.to_string(),
            serde_json::to_string(&sums).unwrap_or_default(),
        ),
        (
            RECIPE_ANNOTATION.to_string(),
            serde_json::to_string(&recipe).unwrap_or_default(),
        ),
    ]);
    let config = Config::new(b"{}".to_vec(), CONFIG_MEDIA_TYPE.to_string(), None);
    let mut manifest = OciImageManifest::build(&layers, &config, Some(annotations));
    manifest.artifact_type = Some(ARTIFACT_TYPE.to_string());
    let client = target.client()?;
    let rt = runtime()?;
    let pushed = bounded(
        &rt,
        target,
        timeout,
        client.push(
            &target.reference,
            &layers,
            config,
            &creds.auth,
            Some(manifest),
        ),
    )?;
    match pushed {
        Err(e) => Err(target.error(e, &creds.source)),
        Ok(resp) => Ok(resp
            .manifest_url
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string()),
    }
}

/// What a pull found beside the files.
pub struct Pulled {
    pub digest: String,
    /// The checksums annotation: path -> SHA-256.
    pub checksums: BTreeMap<String, String>,
    /// Files whose blob did not match its digest (changed in the registry).
    pub tampered: Vec<String>,
}

/// Pulls the bundle at `target` into `dest` (an empty directory).
pub fn pull(
    target: &Target,
    creds: &Credentials,
    dest: &Path,
    timeout: Duration,
) -> Result<Pulled, Error> {
    let client = target.client()?;
    let rt = runtime()?;
    let not_bundle = |reason: String| Error::NotBundle {
        reference: target.shown.clone(),
        reason,
    };
    let work = async {
        let (manifest, digest) = client
            .pull_image_manifest(&target.reference, &creds.auth)
            .await
            .map_err(|e| target.error(e, &creds.source))?;
        if manifest.artifact_type.as_deref() != Some(ARTIFACT_TYPE) {
            return Err(not_bundle(format!(
                "its artifact type is {:?}, not {ARTIFACT_TYPE}",
                manifest.artifact_type.as_deref().unwrap_or("")
            )));
        }
        let checksums = manifest
            .annotations
            .as_ref()
            .and_then(|a| a.get(CHECKSUMS_ANNOTATION))
            .ok_or_else(|| not_bundle(format!("no {CHECKSUMS_ANNOTATION} annotation")))?;
        let checksums: BTreeMap<String, String> = serde_json::from_str(checksums)
            .map_err(|e| not_bundle(format!("{CHECKSUMS_ANNOTATION}: {e}")))?;
        let mut tampered = Vec::new();
        for layer in &manifest.layers {
            let ann = layer.annotations.clone().unwrap_or_default();
            let title = ann
                .get(TITLE)
                .cloned()
                .ok_or_else(|| not_bundle("a layer has no title (file path)".into()))?;
            if !safe_path(&title) {
                return Err(not_bundle(format!(
                    "layer title {:?} is not a plain relative path",
                    crate::error::excerpt(&title)
                )));
            }
            if layer.size > BLOB_CAP || layer.size < 0 {
                return Err(not_bundle(format!(
                    "{title} is {} bytes, over the {} MiB a bundle file may hold",
                    layer.size,
                    BLOB_CAP >> 20
                )));
            }
            let mut bytes: Vec<u8> = Vec::new();
            match client.pull_blob(&target.reference, layer, &mut bytes).await {
                Ok(()) => {}
                Err(OciDistributionError::DigestError(_)) => {
                    tampered.push(title);
                    continue;
                }
                Err(e) => return Err(target.error(e, &creds.source)),
            }
            let path = dest.join(&title);
            let io = |io| Error::Io {
                path: path.display().to_string(),
                io,
            };
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(io)?;
            }
            std::fs::write(&path, &bytes).map_err(io)?;
            if ann.get(EXECUTABLE).is_some_and(|v| v == "true") {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                    .map_err(io)?;
            }
        }
        Ok(Pulled {
            digest,
            checksums,
            tampered,
        })
    };
    bounded(&rt, target, timeout, work)?
}

/// A layer title that is a plain relative path inside the bundle.
fn safe_path(p: &str) -> bool {
    !p.is_empty()
        && !p.starts_with('/')
        && !p.contains('\\')
        && !p.chars().any(char::is_control)
        && p.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = Target::parse("oci://127.0.0.1:5000/aicr/bundle:v1", false, true).unwrap();
        assert!(t.plain_http);
        assert_eq!(t.reference.registry(), "127.0.0.1:5000");
        let t = Target::parse("oci://reg.example.com/aicr/bundle:v1", false, true).unwrap();
        assert!(!t.plain_http);
        assert!(
            Target::parse("oci://reg.example.com/aicr/bundle:v1", true, true)
                .unwrap()
                .plain_http
        );
        for bad in [
            "reg.example.com/a:b",
            "oci://reg.example.com/bundle",
            "oci://bundle:v1",
            "oci://reg.example.com/a b:v1",
        ] {
            assert!(Target::parse(bad, false, true).is_err(), "{bad}");
        }
        assert!(Target::parse(
            "oci://reg.example.com/a@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            false,
            true
        )
        .is_err());
        assert!(
            !safe_path("../x") && !safe_path("/x") && !safe_path("a//b") && safe_path("a/b.yaml")
        );
    }
}
