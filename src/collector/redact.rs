//! Redaction: readings that look like credentials never leave the node.
//! A value is replaced by `[REDACTED]` when its key names a secret (token,
//! password, secret, credential, private or API key) or the value itself
//! looks like key material (PEM blocks, JWTs, well-known token prefixes).
//! Callers list the redacted keys in the subtype's context, so a reader sees
//! that something was removed and where.

use crate::measurement::{Reading, Subtype};

/// What a redacted value is replaced with.
pub const REDACTED: &str = "[REDACTED]";

const SECRET_KEY_PARTS: &[&str] = &[
    "token",
    "passwd",
    "password",
    "passphrase",
    "secret",
    "credential",
    "apikey",
    "api_key",
    "api-key",
    "private_key",
    "private-key",
    "privatekey",
    "access_key",
    "access-key",
    "accesskey",
    "auth_key",
    "client_key",
    "sas_key",
];

const SECRET_VALUE_PREFIXES: &[&str] = &[
    "ghp_",
    "gho_",
    "ghs_",
    "github_pat_",
    "glpat-",
    "xoxb-",
    "xoxp-",
    "sk-",
    "AKIA",
    "ASIA",
];

/// True when a key names something secret: it contains a secret word, or
/// its last part is a key (`tcp_fastopen_key`, `tls-key`; not `keymap`).
pub fn sensitive_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    let last = k.rsplit(['/', '.']).next().unwrap_or(&k);
    SECRET_KEY_PARTS.iter().any(|p| k.contains(p))
        || last == "key"
        || last.ends_with("_key")
        || last.ends_with("-key")
}

/// True when a value looks like key material whatever its key says.
pub fn sensitive_value(value: &str) -> bool {
    let v = value.trim();
    if v.contains("-----BEGIN") {
        return true;
    }
    // JWT: three base64url parts, the first a JSON header.
    if v.starts_with("eyJ") && v.split('.').count() == 3 && v.len() > 30 {
        return true;
    }
    SECRET_VALUE_PREFIXES.iter().any(|p| {
        v.starts_with(p)
            && v.len() >= p.len() + 16
            && v[p.len()..]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    })
}

/// `Some(REDACTED)` when the value must not leave the node: its key names a
/// secret (and the value is more than a number or a switch, so
/// `ipfrag_secret_interval = 600` stays), or the value is key material.
pub fn check(key: &str, value: &str) -> Option<&'static str> {
    let v = value.trim();
    let plain = v.is_empty()
        || v.split_whitespace().all(|w| w.parse::<f64>().is_ok())
        || matches!(
            v.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off"
        );
    ((sensitive_key(key) && !plain) || sensitive_value(v)).then_some(REDACTED)
}

/// Replaces secret-looking values and lists their keys in the context.
pub fn subtype(mut sub: Subtype) -> Subtype {
    let mut hidden = Vec::new();
    for (k, v) in sub.data.iter_mut() {
        if let Reading::Text(text) = v {
            if let Some(r) = check(k, text) {
                *v = Reading::from(r);
                hidden.push(k.clone());
            }
        }
    }
    if !hidden.is_empty() {
        sub.context.insert("redacted".into(), hidden.join(", "));
    }
    sub
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_that_look_secret() {
        for k in [
            "registry_token",
            "DB_PASSWORD",
            "aws_secret_access_key",
            "OPENAI_API_KEY",
            "tls.private-key",
        ] {
            assert!(sensitive_key(k), "{k}");
        }
        assert!(sensitive_key("/proc/sys/net/ipv4/tcp_fastopen_key"));
        assert_eq!(
            check(
                "/proc/sys/net/ipv4/tcp_fastopen_key",
                "00000000-00000000-00000000-00000000"
            ),
            Some(REDACTED)
        );
        assert_eq!(check("/proc/sys/kernel/keys/root_maxkeys", "1000000"), None);
        for k in [
            "/proc/sys/kernel/keys/maxkeys",
            "keymap",
            "console",
            "root",
            "nvidia.NVreg_OpenRmEnableUnsupportedGpus",
        ] {
            assert!(!sensitive_key(k), "{k}");
        }
        assert!(sensitive_value("-----BEGIN RSA PRIVATE KEY-----\nabc"));
        assert!(sensitive_value(
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.abcdefghijklmnop"
        ));
        assert!(sensitive_value("ghp_0123456789abcdefghijklmnopqrstuvwxyz"));
        assert!(sensitive_value("AKIAABCDEFGHIJKLMNOP"));
        for v in ["ubuntu", "1", "/dev/sda1", "sk-", "eyJ", "ASIA"] {
            assert!(!sensitive_value(v), "{v}");
        }
        assert_eq!(
            check("/proc/sys/net/ipv4/ipfrag_secret_interval", "600"),
            None
        );
        assert_eq!(check("registry_token", "abc123"), Some(REDACTED));
        assert_eq!(check("console", "ttyS0"), None);
    }
}
