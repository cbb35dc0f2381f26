//! The Kubernetes client: built from a kubeconfig file or the in-cluster
//! service account, with a request deadline, and its failures turned into
//! plain reasons (unreachable, unauthorized, forbidden) for the collectors.
//! [`access`] resolves where the cluster is the way kubectl does
//! ([`ClusterSettings`]) and classifies failed requests for the commands.
//!
//! A kubeconfig holds tokens and passwords, so no error quotes it: a file
//! that does not parse is reported by its path, line, column and the kind
//! of error only, and every other client error passes through
//! [`crate::collector::redact::text`].

use std::path::Path;

use kube::config::{Kubeconfig, KubeconfigError};
use serde::Deserialize;

use crate::collector::{redact, rootfs};

pub mod access;
pub mod agent;
pub mod configmap;

pub use access::{ClusterSettings, Env, Request, RequestError, Source};

/// The largest kubeconfig read.
const MAX_KUBECONFIG: u64 = 4 << 20;

/// Reads a kubeconfig file: a regular file of at most 4 MiB, checked
/// document by document before the client library reads it, so a parse
/// error names a line and column instead of quoting the file.
pub fn read_kubeconfig(p: &Path) -> Result<Kubeconfig, String> {
    let shown = p.display();
    let bytes =
        rootfs::read_file(p, MAX_KUBECONFIG).map_err(|e| format!("kubeconfig {shown}: {e}"))?;
    // UTF-16 files (with a byte-order mark) are left to the client library.
    if let Ok(text) = std::str::from_utf8(&bytes) {
        for doc in serde_yaml_ng::Deserializer::from_str(text) {
            if let Err(e) = Kubeconfig::deserialize(doc) {
                return Err(format!(
                    "kubeconfig {shown}: not a valid kubeconfig: {}",
                    describe_yaml_error(&e)
                ));
            }
        }
    }
    Kubeconfig::read_from(p).map_err(|e| match e {
        KubeconfigError::Parse(_) => {
            format!(
                "kubeconfig {shown}: not a valid kubeconfig (the client library refuses its YAML)"
            )
        }
        other => format!("kubeconfig {shown}: {}", redact::text(&other.to_string())),
    })
}

/// Kinds of YAML data errors, whose message goes on to quote the value.
const DATA_ERRORS: &[&str] = &[
    "invalid type",
    "invalid value",
    "invalid length",
    "unknown variant",
    "unknown field",
    "duplicate field",
];

/// Where a YAML error is and what kind it is, without the text it found:
/// `line 4, column 12: invalid type, expected a sequence`.
pub fn describe_yaml_error(e: &serde_yaml_ng::Error) -> String {
    let msg = e.to_string();
    let msg = match msg.find(" at line ") {
        Some(i) => &msg[..i],
        None => msg.as_str(),
    };
    let kind = if let Some(i) = msg.find("missing field `") {
        // The field's name comes from the kubeconfig schema, not the file.
        let rest = &msg[i..];
        let end = rest["missing field `".len()..]
            .find('`')
            .map_or(rest.len(), |j| j + "missing field `".len() + 1);
        rest[..end].to_string()
    } else if let Some(k) = DATA_ERRORS.iter().find(|k| msg.contains(*k)) {
        // What was expected comes from the schema too.
        match msg.rfind(", expected ") {
            Some(j) => format!("{k}{}", &msg[j..]),
            None => (*k).to_string(),
        }
    } else if !msg.is_empty()
        && msg
            .chars()
            .all(|c| c.is_ascii_lowercase() || c == ' ' || c == ',')
    {
        // A fixed message of the YAML parser ("did not find expected key").
        msg.to_string()
    } else {
        "not valid YAML".to_string()
    };
    match e.location() {
        Some(l) => format!("line {}, column {}: {kind}", l.line(), l.column()),
        None => kind,
    }
}

/// A reason for a failed request, without the client's wrapping.
pub fn reason(e: &kube::Error) -> String {
    let text = match e {
        kube::Error::Api(s) if s.code == 401 => format!("unauthorized: {}", s.message),
        kube::Error::Api(s) if s.code == 403 => format!("forbidden: {}", s.message),
        kube::Error::Api(s) => format!("{} ({}): {}", s.reason, s.code, s.message),
        other => format!("cannot reach the API server: {}", access::chain(other)),
    };
    redact::text(&text)
}

/// True when the error says the resource type does not exist (a CRD that
/// is not installed).
pub fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    /// Malformed kubeconfigs: the error names the place and the kind, and
    /// quotes nothing of the file.
    #[test]
    fn parse_errors_do_not_quote_the_file() {
        let cases = [
            (
                "apiVersion: v1\nusers:\n- name: a\n  user:\n    token: hunter2-token\n    password: [hunter2\n",
                "line 6, column 15: invalid type, expected a string",
            ),
            (
                "apiVersion: v1\nusers:\n- name: a\n  user:\n    token: hunter2-token\n   password: hunter2\n",
                "line 6, column 4: did not find expected key",
            ),
            (
                "apiVersion: v1\nclusters: hunter2-password\n",
                "line 2, column 11: invalid type, expected a sequence",
            ),
            (
                "users:\n- name: a\n  user:\n    token: {a: hunter2-token}\n",
                "line 4, column 12: invalid type, expected a string",
            ),
            (
                "\"hunter2-token\": :\n  - x\n\tpassword: hunter2\n",
                "line 1, column 18: mapping values are not allowed in this context",
            ),
            (
                "kind: Config\ncontexts: [{name: c, context: {cluster: [hunter2]}}]\n",
                "line 2, column 41: invalid type, expected a string",
            ),
            (
                "preferences: {colors: hunter2}\n",
                "line 1, column 23: invalid type, expected a boolean",
            ),
            (
                "users: [{name: a, user: {token: x, token: hunter2}}]\n",
                "line 1, column 25: duplicate field",
            ),
            (
                "users: [{name: a, user: {exec: {apiVersion: v1, command: hunter2, interactiveMode: hunter2}}}]\n",
                "line 1, column 84: unknown variant, expected one of `Never`, `IfAvailable`, `Always`",
            ),
        ];
        let mut got = Vec::new();
        for (text, want) in cases {
            let f = file(text);
            let err = read_kubeconfig(f.path()).unwrap_err();
            assert!(!err.contains("hunter2"), "{err}");
            let prefix = format!(
                "kubeconfig {}: not a valid kubeconfig: ",
                f.path().display()
            );
            got.push((err.strip_prefix(&prefix).unwrap_or(&err).to_string(), want));
        }
        for (g, w) in got {
            assert_eq!(g, w);
        }
    }

    #[test]
    fn only_regular_files() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_kubeconfig(dir.path()).unwrap_err();
        assert_eq!(
            err,
            format!(
                "kubeconfig {}: not a regular file (a directory)",
                dir.path().display()
            )
        );
    }
}
