//! Registry credentials of OCI bundles: the Docker/Podman auth file that
//! names a registry (`--registry-auth FILE`, else `$REGISTRY_AUTH_FILE`,
//! `$XDG_RUNTIME_DIR/containers/auth.json`, `~/.docker/config.json`: the
//! first that names it), and the credential helper it names for it
//! (`docker-credential-<name> get`), run with a deadline.
//!
//! Within one file the order is Docker's (docker/cli
//! `ConfigFile.GetCredentialsStore`): the helper of `credHelpers[host]`,
//! else the default helper of `credsStore`, else `auths[host].auth`. A
//! helper that answers "credentials not found in native keychain" means
//! anonymous, as in Docker. Secrets never appear in messages or logs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use oci_client::secrets::RegistryAuth;
use serde_json::Value;

use crate::collector::process::{self, Failure};
use crate::error::{excerpt, Class, Classify};

/// The most an auth file may hold.
const AUTH_FILE_CAP: u64 = 1 << 20;
/// The most a credential helper may print.
const HELPER_OUTPUT_CAP: usize = 64 << 10;
/// How long a credential helper may take (it may ask a keychain).
pub const HELPER_TIMEOUT: Duration = Duration::from_secs(10);
/// Test-only (debug builds): the credential helpers' deadline in
/// milliseconds, so a test of a hung helper is quick.
pub const TEST_HELPER_TIMEOUT_ENV: &str = "AICR_TEST_CRED_HELPER_TIMEOUT_MS";
/// What a helper prints when it holds nothing for the server
/// (docker-credential-helpers' `ErrCredentialsNotFound`).
const NOT_FOUND: &str = "credentials not found in native keychain";
/// The user name a helper returns with an identity (refresh) token.
const TOKEN_USER: &str = "<token>";
/// Docker Hub's key in auth files and for helpers.
const DOCKER_HUB: &str = "https://index.docker.io/v1/";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {reason}")]
    AuthFile { path: String, reason: String },
    #[error("{path}: {io}")]
    Io { path: String, io: std::io::Error },
    #[error(
        "credential helper {program} (named by {named}) cannot be run: {reason}; install it on PATH, or remove it from that file"
    )]
    HelperMissing {
        program: String,
        named: String,
        reason: String,
    },
    #[error(
        "credential helper {program} did not answer for {server} within {}; it was stopped",
        humantime::format_duration(*.timeout)
    )]
    HelperTimeout {
        program: String,
        server: String,
        timeout: Duration,
    },
    #[error("credential helper {program} gave no credentials for {server} ({status}): {detail}")]
    HelperRefused {
        program: String,
        server: String,
        status: String,
        detail: String,
    },
    #[error("credential helper {program} answered for {server} with {reason}")]
    HelperOutput {
        program: String,
        server: String,
        reason: String,
    },
    #[error("credential helper {program}: {reason}")]
    Helper { program: String, reason: String },
    #[error(
        "{source_of} holds an identity token for {server} (user name <token>), which aicr cannot exchange for a registry token; log in with a user name and password (or an access token as the password) instead"
    )]
    IdentityToken { source_of: String, server: String },
}

impl Classify for Error {
    fn class(&self) -> Class {
        match self {
            Error::AuthFile { .. }
            | Error::HelperMissing { .. }
            | Error::HelperOutput { .. }
            | Error::IdentityToken { .. } => Class::InvalidInput,
            Error::Io { io, .. } => Class::of_io(io.kind()),
            Error::HelperTimeout { .. } => Class::Timeout,
            Error::HelperRefused { .. } => Class::Unauthorized,
            Error::Helper { .. } => Class::Internal,
        }
    }
}

/// Credentials for a registry, and where they came from (for messages;
/// never the secret).
pub struct Credentials {
    pub auth: RegistryAuth,
    pub source: String,
}

impl Credentials {
    fn anonymous(source: String) -> Credentials {
        Credentials {
            auth: RegistryAuth::Anonymous,
            source,
        }
    }
}

/// The credentials for `registry` (`host[:port]`, as in the reference):
/// from `explicit` (`--registry-auth`) only, when given; else the first of
/// the usual auth files that names it; anonymous when none does.
pub fn credentials(registry: &str, explicit: Option<&Path>) -> Result<Credentials, Error> {
    let candidates: Vec<PathBuf> = match explicit {
        Some(p) => vec![p.to_path_buf()],
        None => {
            let mut v = Vec::new();
            if let Some(p) = std::env::var_os("REGISTRY_AUTH_FILE") {
                v.push(PathBuf::from(p));
            }
            if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR") {
                v.push(PathBuf::from(d).join("containers/auth.json"));
            }
            if let Some(h) = std::env::var_os("HOME") {
                v.push(PathBuf::from(h).join(".docker/config.json"));
            }
            v
        }
    };
    for path in candidates {
        let shown = path.display().to_string();
        let bytes = match read_capped(&path, AUTH_FILE_CAP) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && explicit.is_none() => continue,
            Err(io) => return Err(Error::Io { path: shown, io }),
        };
        let file: Value = serde_json::from_slice(&bytes).map_err(|e| Error::AuthFile {
            path: shown.clone(),
            reason: format!("not a Docker/Podman auth file (JSON): {e}"),
        })?;
        if let Some(creds) = from_file(&file, &shown, registry)? {
            return Ok(creds);
        }
        if explicit.is_some() {
            return Err(Error::AuthFile {
                path: shown,
                reason: format!(
                    "has no credentials for {registry} (auths.\"{registry}\".auth, credHelpers.\"{registry}\" or credsStore)"
                ),
            });
        }
    }
    Ok(Credentials::anonymous("no credentials".into()))
}

/// The keys an auth file may file `registry` under.
fn keys(registry: &str) -> Vec<String> {
    let mut keys = vec![
        registry.to_string(),
        format!("https://{registry}"),
        format!("http://{registry}"),
    ];
    if is_docker_hub(registry) {
        keys.extend([DOCKER_HUB, "index.docker.io", "docker.io"].map(String::from));
    }
    keys
}

fn is_docker_hub(registry: &str) -> bool {
    matches!(
        registry,
        "docker.io" | "index.docker.io" | "registry-1.docker.io"
    )
}

/// The credentials one auth file gives for `registry`, in Docker's order;
/// `None` when it does not name the registry.
fn from_file(file: &Value, path: &str, registry: &str) -> Result<Option<Credentials>, Error> {
    let bad = |reason: String| Error::AuthFile {
        path: path.to_string(),
        reason,
    };
    let keys = keys(registry);
    let per_registry = file
        .get("credHelpers")
        .and_then(Value::as_object)
        .and_then(|h| keys.iter().find_map(|k| h.get(k).map(|v| (k, v))));
    let helper = match per_registry {
        // An empty helper for the registry means the auths entry, as in
        // Docker (the default helper is not asked).
        Some((_, name)) if name.as_str() == Some("") => None,
        Some((key, name)) => Some((name, format!("credHelpers.\"{key}\" in {path}"))),
        None => file
            .get("credsStore")
            .filter(|v| !v.is_null() && v.as_str() != Some(""))
            .map(|name| (name, format!("credsStore in {path}"))),
    };
    if let Some((name, named)) = helper {
        let name = name
            .as_str()
            .filter(|n| {
                n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                    && !n.starts_with('.')
            })
            .ok_or_else(|| {
                bad(format!(
                    "{named}: a credential helper's name is letters, digits, '-', '_' and '.' (the NAME of docker-credential-NAME)"
                ))
            })?;
        return from_helper(name, &named, registry).map(Some);
    }
    let Some(entry) = file
        .get("auths")
        .and_then(Value::as_object)
        .and_then(|a| keys.iter().find_map(|k| a.get(k)))
    else {
        return Ok(None);
    };
    if entry
        .get("identitytoken")
        .is_some_and(|t| t.as_str() != Some(""))
    {
        return Err(Error::IdentityToken {
            source_of: path.to_string(),
            server: registry.to_string(),
        });
    }
    let encoded = entry.get("auth").and_then(Value::as_str).ok_or_else(|| {
        bad(format!(
            "the entry for {registry} has no \"auth\" (base64 of USER:PASSWORD), and no credential helper is named for it (credHelpers, credsStore)"
        ))
    })?;
    use base64::Engine;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| bad(format!("the \"auth\" of {registry} is not base64 text")))?;
    let (user, password) = decoded
        .split_once(':')
        .ok_or_else(|| bad(format!("the \"auth\" of {registry} is not USER:PASSWORD")))?;
    Ok(Some(Credentials {
        auth: RegistryAuth::Basic(user.to_string(), password.to_string()),
        source: path.to_string(),
    }))
}

/// What a helper prints for `get` (docker-credential-helpers'
/// `Credentials`).
#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperAnswer {
    username: String,
    secret: String,
}

/// `docker-credential-<name> get` for `registry`: the server on stdin as
/// Docker writes it (`https://index.docker.io/v1/` for Docker Hub, else the
/// host as in the reference).
fn from_helper(name: &str, named: &str, registry: &str) -> Result<Credentials, Error> {
    let program = format!("docker-credential-{name}");
    let server = if is_docker_hub(registry) {
        DOCKER_HUB.to_string()
    } else {
        registry.to_string()
    };
    let timeout = super::test_deadline(TEST_HELPER_TIMEOUT_ENV, HELPER_TIMEOUT);
    let source = format!("{program} ({named})");
    let out = process::run_with(
        Path::new(&program),
        &["get"],
        Some(server.clone().into_bytes()),
        timeout,
    );
    let out = match out {
        Ok(out) => out,
        Err(Failure::Spawn(e)) => {
            return Err(Error::HelperMissing {
                program,
                named: named.to_string(),
                reason: if e.kind() == std::io::ErrorKind::NotFound {
                    "it is not on PATH".into()
                } else {
                    e.to_string()
                },
            })
        }
        Err(Failure::Timeout) => {
            return Err(Error::HelperTimeout {
                program,
                server,
                timeout,
            })
        }
        Err(Failure::Overflow) => {
            return Err(Error::HelperOutput {
                program,
                server,
                reason: format!("more than {} MiB", process::MAX_STDOUT >> 20),
            })
        }
        Err(Failure::Exit {
            status,
            stdout,
            stderr,
        }) => {
            // Helpers print their error on stdout (docker-credential-helpers
            // does); some on stderr.
            let said = format!("{}\n{}", String::from_utf8_lossy(&stdout), stderr.text);
            if said.contains(NOT_FOUND) {
                tracing::info!(
                    "{program} has no credentials for {server}: pulling and pushing anonymously"
                );
                return Ok(Credentials::anonymous(format!(
                    "{source}: no credentials for {server}"
                )));
            }
            let said: Vec<&str> = said
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            return Err(Error::HelperRefused {
                program,
                server,
                status: status.to_string(),
                detail: excerpt(&crate::collector::redact::text(&said.join(" "))).into_owned(),
            });
        }
        Err(Failure::Interrupted(signal)) => {
            return Err(Error::Helper {
                program,
                reason: format!("interrupted by {signal}"),
            })
        }
        Err(Failure::Other(reason)) => return Err(Error::Helper { program, reason }),
    };
    if out.stdout.len() > HELPER_OUTPUT_CAP {
        return Err(Error::HelperOutput {
            program,
            server,
            reason: format!("more than {} KiB", HELPER_OUTPUT_CAP >> 10),
        });
    }
    // The error of serde_json names a position, never the text (which may
    // hold the secret).
    let answer: HelperAnswer = serde_json::from_slice(&out.stdout).map_err(|e| Error::HelperOutput {
        program: program.clone(),
        server: server.clone(),
        reason: format!(
            "output that is not a credential helper's JSON ({{\"ServerURL\",\"Username\",\"Secret\"}}): {}",
            json_error(&e)
        ),
    })?;
    if answer.username == TOKEN_USER {
        return Err(Error::IdentityToken {
            source_of: source,
            server,
        });
    }
    tracing::debug!("credentials for {server} from {source}");
    if answer.username.is_empty() && answer.secret.is_empty() {
        return Ok(Credentials::anonymous(source));
    }
    Ok(Credentials {
        auth: RegistryAuth::Basic(answer.username, answer.secret),
        source,
    })
}

/// A serde_json error said without the input it quotes.
fn json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match e.classify() {
        Category::Io => "it could not be read",
        Category::Syntax => "not JSON",
        Category::Data => "JSON without the string fields Username and Secret",
        Category::Eof => "JSON cut short",
    };
    format!("{what} (line {}, column {})", e.line(), e.column())
}

/// An auth file, at most `cap` bytes, through the reader of files named on
/// the command line ([`crate::collector::rootfs::read_file`]): a FIFO or
/// device is refused without blocking, a link is followed.
fn read_capped(path: &Path, cap: u64) -> std::io::Result<Vec<u8>> {
    use crate::collector::rootfs::{self, ReadError};
    use std::io::ErrorKind;
    rootfs::read_file(path, cap).map_err(|e| {
        let (kind, text) = match e {
            ReadError::NotFound => (ErrorKind::NotFound, e.to_string()),
            ReadError::PermissionDenied => (ErrorKind::PermissionDenied, e.to_string()),
            ReadError::TooLarge(_) => (
                ErrorKind::InvalidData,
                format!("larger than {} KiB", cap >> 10),
            ),
            other => (ErrorKind::InvalidData, other.to_string()),
        };
        std::io::Error::new(kind, text)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn docker_order_helpers_before_auths() {
        // A helper named for the registry is chosen over the auths entry
        // (its program is missing here, which says which one ran).
        let file = json!({
            "auths": {"reg.test": {"auth": "dTpw"}},
            "credsStore": "aicr-test-nonexistent-store",
            "credHelpers": {"reg.test": "aicr-test-nonexistent-per-host"},
        });
        let err = from_file(&file, "f.json", "reg.test").err().unwrap();
        assert!(
            err.to_string().starts_with(
                "credential helper docker-credential-aicr-test-nonexistent-per-host (named by credHelpers.\"reg.test\" in f.json) cannot be run: "
            ),
            "{err}"
        );
        assert_eq!(err.class(), Class::InvalidInput);
        let err = from_file(&file, "f.json", "other.test").err().unwrap();
        assert!(
            err.to_string().contains(
                "docker-credential-aicr-test-nonexistent-store (named by credsStore in f.json)"
            ),
            "{err}"
        );
        // Without helpers, the auths entry.
        let file = json!({"auths": {"reg.test": {"auth": "dTpw"}}, "credsStore": ""});
        let c = from_file(&file, "f.json", "reg.test").unwrap().unwrap();
        assert_eq!(c.auth, RegistryAuth::Basic("u".into(), "p".into()));
        assert!(from_file(&file, "f.json", "other.test").unwrap().is_none());
    }

    #[test]
    fn docker_hub_is_found_under_dockers_own_key() {
        let file = json!({"auths": {"https://index.docker.io/v1/": {"auth": "dTpw"}}});
        let c = from_file(&file, "f.json", "docker.io").unwrap().unwrap();
        assert_eq!(c.auth, RegistryAuth::Basic("u".into(), "p".into()));
        assert!(from_file(&file, "f.json", "reg.test").unwrap().is_none());
        assert_eq!(
            keys("reg.test:5000"),
            [
                "reg.test:5000",
                "https://reg.test:5000",
                "http://reg.test:5000"
            ]
        );
    }

    #[test]
    fn bad_helper_names_and_identity_tokens_are_refused() {
        for name in [json!("../x"), json!(3), json!("a/b")] {
            let file = json!({"credHelpers": {"reg.test": name}});
            let err = from_file(&file, "f.json", "reg.test").err().unwrap();
            assert!(
                err.to_string()
                    .contains("a credential helper's name is letters, digits"),
                "{err}"
            );
        }
        let file =
            json!({"auths": {"https://index.docker.io/v1/": {"identitytoken": "secret-xyz"}}});
        let err = from_file(&file, "f.json", "docker.io").err().unwrap();
        assert!(!err.to_string().contains("secret-xyz"));
        assert!(err.to_string().contains("identity token"), "{err}");
    }
}
