//! Redaction: readings that look like credentials never leave the node.
//! This module is the one place that decides what is redacted; the collector
//! runner ([`super::run`]) applies [`measurement`] to everything every
//! collector returns (readings, reading keys, context lines and unavailable
//! reasons), so no collector can forget it. Error text that may quote a
//! secret (a program's stderr, a client error) goes through [`text`].
//!
//! | where | rule | example in | out |
//! |---|---|---|---|
//! | key | a word of the key's last part (split at `/`, `.`, `_`, `-`, digits and camelCase) is `token`, `password`, `passwd`, `passphrase`, `pwd`, `secret`, `credential`, `creds`, `apikey`, `privatekey`, `accesskey`, `secretkey`, `authorization`, `bearer` or `key` (and plurals): the whole value goes, numbers included | `pin_password=123456` | `pin_password=[REDACTED]` |
//! | key | ... unless the last word says the key describes a secret rather than holds it: `interval`, `timeout`, `ttl`, `expiry`, `lifetime`, `age`, `len`, `length`, `size`, `bits`, `max`, `min`, `count`, `limit`, `enabled`, `disabled`, `required`, `mode`, `type`, `file`, `path`, `dir`, `name`, `ref`, `id`, `url`, `uri`, `endpoint`, `host`, `port`, `format`, `algorithm`, `method`, `version` | `ipfrag_secret_interval=600`, `secretName=x` | unchanged |
//! | value | PEM armour (`-----BEGIN`/`-----END`) anywhere | `-----BEGIN RSA PRIVATE KEY----- MII...` | `[REDACTED]` |
//! | word | a JWT (`eyJ...`, three dot-separated parts) | `eyJhbGciOi....eyJzdWIi....sig` | `[REDACTED]` |
//! | word | a well-known token prefix and 16+ more characters: `AKIA`, `ASIA` (AWS), `AIza` (Google), `ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_`, `github_pat_`, `glpat-`, `xoxa-`, `xoxb-`, `xoxp-`, `sk-`, `hf_`, `nvapi-`, `npm_` | `AKIAIOSFODNN7EXAMPLE` | `[REDACTED]` |
//! | word | 32+ hexadecimal digits | a 64-digit hex key | `[REDACTED]` |
//! | word | 32+ characters of base64 (`A-Z a-z 0-9 + /`, up to two `=`) with upper case, lower case and digits, not starting with `/` | a PEM body line | `[REDACTED]` |
//! | word | a URL's user information | `http://user:pass@host/x` | `http://[REDACTED]@host/x` |
//! | word | a URL query parameter whose name is secret | `https://h/?token=abc&a=1` | `https://h/?token=[REDACTED]&a=1` |
//! | word | `name=value` whose name is secret (leading dashes ignored); nested up to 8 deep (`a=b=token=x`), anything deeper goes unread | `--bootstrap-token=abc` | `--bootstrap-token=[REDACTED]` |
//! | words | the word after `Bearer`/`Basic`, after a secret `name:` and after a secret `--flag` (on the kernel command line the flag takes that word as its value) | `Authorization: Bearer abc`, `-- --password x` | `Authorization: Bearer [REDACTED]`, `--password: [REDACTED]` |
//! | words | on the kernel command line (paired by `os::parse_cmdline`): `name:value` in one word whose name is secret; `name=Basic`/`name=Bearer` and the word after it | `api_key:hunter2`, `AUTH=Basic dXNl` | `api_key: [REDACTED]`, `AUTH: Basic [REDACTED]` |
//! | JSON | in a Kubernetes document (the ClusterPolicy spec, before its lists become readings): the `value` of a `{name, value}` pair whose name is secret; a field named `key` is a key's name, not a secret | `{"name":"NGC_API_KEY","value":"abc"}` | `{"name":"NGC_API_KEY","value":"[REDACTED]"}` |
//! | key | a reading key that is itself key material (a bare flag on the kernel command line) is renamed | `AKIAIOSFODNN7EXAMPLE` (flag) | key `[REDACTED]`, then `[REDACTED]#2`, ... |
//!
//! Empty values stay empty. Every reading changed is listed in its subtype's
//! `redacted` context, so a reader sees that something was removed and where.

use std::collections::BTreeMap;

use crate::measurement::{Measurement, Reading, Subtype};

/// What a redacted value is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// Words of a key that name a secret.
const SECRET_WORDS: &[&str] = &[
    "token",
    "tokens",
    "password",
    "passwords",
    "passwd",
    "passphrase",
    "pwd",
    "secret",
    "secrets",
    "credential",
    "credentials",
    "creds",
    "apikey",
    "privatekey",
    "accesskey",
    "secretkey",
    "authorization",
    "bearer",
    "key",
    "keys",
];

/// A key whose last word is one of these describes a secret (its lifetime,
/// size, file or name) rather than holding it.
const DESCRIPTIVE_WORDS: &[&str] = &[
    "interval",
    "timeout",
    "ttl",
    "expiry",
    "expires",
    "expire",
    "lifetime",
    "age",
    "len",
    "length",
    "size",
    "bits",
    "max",
    "min",
    "count",
    "limit",
    "enabled",
    "enable",
    "disabled",
    "disable",
    "required",
    "mode",
    "type",
    "file",
    "path",
    "dir",
    "name",
    "ref",
    "id",
    "url",
    "uri",
    "endpoint",
    "host",
    "port",
    "format",
    "algorithm",
    "method",
    "version",
];

/// Token prefixes of well-known services; 16 or more characters follow.
const SECRET_PREFIXES: &[&str] = &[
    "AKIA",
    "ASIA",
    "AIza",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "glpat-",
    "xoxa-",
    "xoxb-",
    "xoxp-",
    "sk-",
    "hf_",
    "nvapi-",
    "npm_",
];

/// The shortest hex or base64 word taken for key material.
const MIN_BLOB: usize = 32;

/// The lowercase words of a key's last part: split at `/` and `.` for the
/// part, then at anything not a letter and at camelCase boundaries.
fn words(key: &str) -> Vec<String> {
    let last = key.rsplit(['/', '.']).next().unwrap_or(key);
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in last.chars() {
        if !c.is_alphabetic() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        prev_lower = c.is_lowercase();
        cur.extend(c.to_lowercase());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// True when a key names something secret: one of its words is a secret
/// word and its last word does not merely describe the secret.
pub fn sensitive_key(key: &str) -> bool {
    let w = words(key);
    let Some(last) = w.last() else { return false };
    w.iter().any(|x| SECRET_WORDS.contains(&x.as_str()))
        && !DESCRIPTIVE_WORDS.contains(&last.as_str())
}

/// True when one word (no whitespace) looks like key material.
pub fn sensitive_value(word: &str) -> bool {
    let v = word.trim_matches(|c: char| matches!(c, '"' | '\'' | ',' | ';' | '(' | ')'));
    if v.contains("-----BEGIN") || v.contains("-----END") {
        return true;
    }
    // JWT: three base64url parts, the first a JSON header.
    if v.starts_with("eyJ")
        && v.len() > 30
        && v.split('.').count() == 3
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '='))
    {
        return true;
    }
    let prefixed = SECRET_PREFIXES.iter().any(|p| {
        v.strip_prefix(p).is_some_and(|rest| {
            rest.len() >= 16
                && rest
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        })
    });
    prefixed || hex_blob(v) || base64_blob(v)
}

fn hex_blob(v: &str) -> bool {
    v.len() >= MIN_BLOB && v.chars().all(|c| c.is_ascii_hexdigit())
}

fn base64_blob(v: &str) -> bool {
    let body = v.trim_end_matches('=');
    v.len() >= MIN_BLOB
        && v.len() - body.len() <= 2
        && !body.starts_with('/')
        && body
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/')
        && body.chars().any(|c| c.is_ascii_uppercase())
        && body.chars().any(|c| c.is_ascii_lowercase())
        && body.chars().any(|c| c.is_ascii_digit())
}

/// A key candidate in free text (`"token":`, `--password`) without its
/// punctuation.
fn bare_name(word: &str) -> &str {
    word.trim_start_matches('-')
        .trim_matches(|c: char| matches!(c, '"' | '\'' | '{' | '(' | ',' | ':'))
}

/// How many `name=` prefixes of one word are looked into
/// (`root=UUID=...`); what follows a longer chain is redacted, unread.
const MAX_NESTING: usize = 8;

/// One whitespace-free word, redacted where it holds a secret.
fn word(w: &str) -> String {
    let mut out = String::with_capacity(w.len());
    let mut rest = w;
    for _ in 0..MAX_NESTING {
        if sensitive_value(rest) {
            out.push_str(REDACTED);
            return out;
        }
        if let Some(i) = rest.find("://") {
            out.push_str(&url(rest, i));
            return out;
        }
        let Some((k, v)) = rest.split_once('=') else {
            out.push_str(rest);
            return out;
        };
        out.push_str(k);
        out.push('=');
        if !v.is_empty() && sensitive_key(bare_name(k)) {
            out.push_str(REDACTED);
            return out;
        }
        rest = v;
    }
    out.push_str(REDACTED);
    out
}

/// A URL without its user information or secret query parameters.
fn url(w: &str, scheme_end: usize) -> String {
    let (head, rest) = w.split_at(scheme_end + 3);
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(auth_end);
    let authority = match authority.rfind('@') {
        Some(at) => format!("{REDACTED}{}", &authority[at..]),
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let (query, fragment) = match query.split_once('#') {
                Some((q, f)) => (q, format!("#{f}")),
                None => (query, String::new()),
            };
            let params: Vec<String> = query
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((k, v)) if !v.is_empty() && sensitive_key(k) => {
                        format!("{k}={REDACTED}")
                    }
                    _ => p.to_string(),
                })
                .collect();
            format!("{path}?{}{fragment}", params.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{head}{authority}{tail}")
}

fn is_scheme(w: &str) -> bool {
    w.eq_ignore_ascii_case("bearer") || w.eq_ignore_ascii_case("basic")
}

/// True when a word says that the next word is a secret: `Bearer`,
/// `Basic`, a secret `--flag` or a secret `name:`. The kernel command line
/// parser pairs such a flag with the next word, so the pair is redacted
/// like `name=value`.
pub fn names_next_secret(w: &str) -> bool {
    let name = bare_name(w);
    let flag_like = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    is_scheme(w) || ((w.ends_with(':') || w.starts_with('-')) && flag_like && sensitive_key(name))
}

/// Free text (a reading, an error message, a program's stderr) with every
/// secret in it replaced; whitespace is kept as it was. Text with PEM
/// armour goes whole.
pub fn text(s: &str) -> String {
    if s.contains("-----BEGIN") || s.contains("-----END") {
        return REDACTED.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut redact_next = false;
    let mut rest = s;
    while !rest.is_empty() {
        let ws = rest.len() - rest.trim_start().len();
        out.push_str(&rest[..ws]);
        rest = &rest[ws..];
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let (w, after) = rest.split_at(end);
        rest = after;
        if w.is_empty() {
            break;
        }
        if redact_next && !is_scheme(w) {
            out.push_str(REDACTED);
            redact_next = false;
            continue;
        }
        if names_next_secret(w) {
            out.push_str(w);
            redact_next = true;
            continue;
        }
        out.push_str(&word(w));
    }
    out
}

/// Redacts a JSON document in place (a Kubernetes object's spec, before it
/// is flattened into readings): values under secret keys, the `value` of a
/// `{name, value}` pair whose name is secret (a container's environment
/// variable), and secrets in strings. A field named exactly `key` is a
/// Kubernetes key's name (tolerations, selectors, `configMapKeyRef`), not a
/// secret, so only its text is checked. True when something changed.
pub fn json(v: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::Object(m) => {
            let secret_pair = m.contains_key("value")
                && m.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(sensitive_key);
            let mut changed = false;
            for (k, x) in m.iter_mut() {
                let empty = x.is_null() || x.as_str() == Some("");
                let secret = (secret_pair && k == "value")
                    || (k != "key" && k != "keys" && sensitive_key(k));
                if secret && !empty {
                    *x = Value::String(REDACTED.to_string());
                    changed = true;
                } else {
                    changed |= json(x);
                }
            }
            changed
        }
        Value::Array(a) => {
            // Every element is visited: no short circuit.
            let mut changed = false;
            for x in a.iter_mut() {
                changed |= json(x);
            }
            changed
        }
        Value::String(s) => {
            let t = text(s);
            let changed = t != *s;
            *s = t;
            changed
        }
        _ => false,
    }
}

/// `Some(replacement)` when a reading must not leave the node as it is:
/// its key names a secret (the whole value goes), or secrets are found in
/// its text (only they go).
pub fn check(key: &str, value: &str) -> Option<String> {
    if value.trim().is_empty() {
        return None;
    }
    if sensitive_key(key) {
        return Some(REDACTED.to_string());
    }
    let t = text(value);
    (t != value).then_some(t)
}

/// Replaces secret-looking readings (and reading keys that are themselves
/// key material), redacts the context, and lists what changed in the
/// context's `redacted` entry.
pub fn subtype(sub: Subtype) -> Subtype {
    let mut hidden = Vec::new();
    let mut data = BTreeMap::new();
    for (k, v) in sub.data {
        let t = text(&k);
        let key = if t == k {
            k
        } else {
            let mut name = t.clone();
            let mut n = 1;
            while data.contains_key(&name) {
                n += 1;
                name = format!("{t}#{n}");
            }
            hidden.push(name.clone());
            name
        };
        let v = match v {
            Reading::Text(t) => {
                let t = check(&key, &t).unwrap_or(t);
                // Also a value redacted earlier (a JSON array's element).
                if t.contains(REDACTED) && !hidden.contains(&key) {
                    hidden.push(key.clone());
                }
                Reading::Text(t)
            }
            other => other,
        };
        data.insert(key, v);
    }
    let mut context: BTreeMap<String, String> = sub
        .context
        .into_iter()
        .map(|(k, v)| {
            let v = text(&v);
            (k, v)
        })
        .collect();
    if !hidden.is_empty() {
        hidden.sort();
        context.insert("redacted".into(), hidden.join(", "));
    }
    Subtype {
        subtype: sub.subtype,
        data,
        context,
    }
}

/// A measurement with [`subtype`] applied to each subtype and its
/// unavailable reason redacted.
pub fn measurement(m: Measurement) -> Measurement {
    Measurement {
        kind: m.kind,
        subtypes: m.subtypes.into_iter().map(subtype).collect(),
        unavailable: m.unavailable.map(|r| text(&r)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: &str = REDACTED;

    /// (key, value, what leaves the node). The key is what the collector
    /// reads the value under; `-` marks free text with no key.
    const TABLE: &[(&str, &str, &str)] = &[
        // Keys that name secrets: the whole value, numbers included.
        ("pin_password", "123456", R),
        ("registry_token", "abc123", R),
        ("DB_PASSWORD", "hunter2", R),
        ("aws_secret_access_key", "wJalrXUtnFEMI", R),
        ("OPENAI_API_KEY", "x", R),
        ("tls.private-key", "abc", R),
        (
            "/proc/sys/net/ipv4/tcp_fastopen_key",
            "00000000-00000000-00000000-00000000",
            R,
        ),
        ("/proc/sys/net/ipv6/conf/all/stable_secret", "fe80::1", R),
        ("authorization", "Bearer abc.def", R),
        ("Environment.BOOTSTRAP_TOKEN", "abc.def", R),
        ("apiKey", "12", R),
        ("spec.driver.secretAccessKey", "k", R),
        // Keys that describe a secret, and keys that are not secret.
        ("/proc/sys/net/ipv4/ipfrag_secret_interval", "600", "600"),
        ("/proc/sys/kernel/keys/root_maxkeys", "1000000", "1000000"),
        (
            "/proc/sys/kernel/keys/persistent_keyring_expiry",
            "259200",
            "259200",
        ),
        (
            "driver.licensingConfig.secretName",
            "licensing",
            "licensing",
        ),
        ("token_file", "/var/run/token", "/var/run/token"),
        ("keymap", "us", "us"),
        (
            "/proc/sys/net/netfilter/nf_conntrack_sctp_timeout_cookie_wait",
            "3",
            "3",
        ),
        ("console", "ttyS0", "ttyS0"),
        ("nvidia.NVreg_OpenRmEnableUnsupportedGpus", "1", "1"),
        ("registry_token", "", ""),
        // Key material whatever the key says.
        (
            "x",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.abcdefghijkl",
            R,
        ),
        ("x", "AKIAIOSFODNN7EXAMPLE", R),
        ("x", "ghp_0123456789abcdefghijklmnopqrstuvwxyz", R),
        ("x", "nvapi-0123456789abcdefABCDEF", R),
        (
            "x",
            "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----",
            R,
        ),
        (
            "x",
            "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7",
            R,
        ),
        ("x", "0123456789abcdef0123456789abcdef", R),
        (
            "x",
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            R,
        ),
        // Secrets inside longer text: only they go.
        (
            "http_proxy",
            "http://user:pass@proxy:3128",
            "http://[REDACTED]@proxy:3128",
        ),
        (
            "x",
            "https://h.example/p?token=abc&a=1#f",
            "https://h.example/p?token=[REDACTED]&a=1#f",
        ),
        (
            "KUBELET_EXTRA_ARGS",
            "--node-ip=10.0.0.1 --bootstrap-token=abc",
            "--node-ip=10.0.0.1 --bootstrap-token=[REDACTED]",
        ),
        (
            "-",
            "Authorization: Bearer abc123",
            "Authorization: Bearer [REDACTED]",
        ),
        ("-", "curl -H Bearer xyz", "curl -H Bearer [REDACTED]"),
        (
            "-",
            "    token: hunter2\n    user: bob",
            "    token: [REDACTED]\n    user: bob",
        ),
        (
            "-",
            "run --password hunter2 --user bob",
            "run --password [REDACTED] --user bob",
        ),
        (
            "-",
            "key AKIAIOSFODNN7EXAMPLE in use",
            "key [REDACTED] in use",
        ),
        (
            "root",
            "UUID=1f666bec-7a91-d815-b2a9-63daebb6e64f",
            "UUID=1f666bec-7a91-d815-b2a9-63daebb6e64f",
        ),
        // Ordinary readings that must stay.
        (
            "0.uuid",
            "GPU-1f666bec-7a91-d815-b2a9-63daebb6e64f",
            "GPU-1f666bec-7a91-d815-b2a9-63daebb6e64f",
        ),
        (
            "BOOT_IMAGE",
            "/boot/vmlinuz-6.8.0-1024-aws",
            "/boot/vmlinuz-6.8.0-1024-aws",
        ),
        ("PRETTY_NAME", "Ubuntu 24.04.3 LTS", "Ubuntu 24.04.3 LTS"),
        (
            "HOME_URL",
            "https://www.ubuntu.com/",
            "https://www.ubuntu.com/",
        ),
        (
            "/proc/sys/kernel/core_pattern",
            "|/usr/share/apport/apport -p%p -s%s -c%c",
            "|/usr/share/apport/apport -p%p -s%s -c%c",
        ),
        (
            "FragmentPath",
            "/usr/lib/systemd/system/kubelet.service",
            "/usr/lib/systemd/system/kubelet.service",
        ),
        ("x", "sk-", "sk-"),
        ("x", "0123456789abcdef", "0123456789abcdef"),
        (
            "x",
            "/usr/local/nvidia/toolkit/bin/AbCdEfGh0123456789",
            "/usr/local/nvidia/toolkit/bin/AbCdEfGh0123456789",
        ),
    ];

    #[test]
    fn the_redaction_table() {
        assert!(TABLE.len() >= 30);
        for (key, value, want) in TABLE {
            let got = if *key == "-" {
                text(value)
            } else {
                check(key, value).unwrap_or_else(|| value.to_string())
            };
            assert_eq!(&got, want, "{key} = {value:?}");
        }
    }

    #[test]
    fn json_documents() {
        let mut spec = serde_json::json!({
            "driver": {
                "env": [
                    {"name": "NGC_API_KEY", "value": "abc"},
                    {"name": "HTTP_PROXY", "value": "http://u:p@proxy:3128"},
                    {"name": "LOG_LEVEL", "value": "debug"},
                    {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}
                ],
                "licensingConfig": {"secretName": "licensing", "nlsEnabled": true},
                "repoConfig": {"token": "hunter2", "emptyToken": ""}
            },
            "daemonsets": {"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}]}
        });
        assert!(json(&mut spec));
        assert_eq!(
            spec,
            serde_json::json!({
                "driver": {
                    "env": [
                        {"name": "NGC_API_KEY", "value": R},
                        {"name": "HTTP_PROXY", "value": "http://[REDACTED]@proxy:3128"},
                        {"name": "LOG_LEVEL", "value": "debug"},
                        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}
                    ],
                    "licensingConfig": {"secretName": "licensing", "nlsEnabled": true},
                    "repoConfig": {"token": R, "emptyToken": ""}
                },
                "daemonsets": {"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}]}
            })
        );
        let mut plain = serde_json::json!({"a": [1, "b", {"key": "x"}]});
        assert!(!json(&mut plain));
    }

    /// Random text built from the pieces the rules look for: never a panic,
    /// and redacting twice changes nothing more.
    #[test]
    fn random_text_never_panics_and_is_stable() {
        const PIECES: &[&str] = &[
            "a",
            "Z",
            "7",
            "=",
            ":",
            "/",
            "@",
            "?",
            "&",
            "#",
            "-",
            "--",
            " ",
            "\n",
            "\t",
            "é",
            "\u{0}",
            "\"",
            "Bearer",
            "token",
            "password",
            "key",
            "://",
            "http",
            "AKIA",
            "0123456789abcdef",
            "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo",
            "eyJ",
            ".",
            "-----BEGIN",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..20000 {
            let len = (next() % 24) as usize;
            let s: String = (0..len)
                .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
                .collect();
            let once = text(&s);
            assert_eq!(text(&once), once, "{s:?}");
            let _ = check(&s, &s);
            let _ = sensitive_value(&s);
        }
    }

    #[test]
    fn long_and_odd_text_is_handled() {
        // A word of 100,000 `=`: no deep recursion, no quadratic time.
        let eq = "a=".repeat(100_000);
        assert_eq!(text(&eq), format!("{}{R}", "a=".repeat(MAX_NESTING)));
        let chain = format!("{}token=hunter2", "a=".repeat(20));
        assert_eq!(
            text(&chain),
            format!("{}{R}", "a=".repeat(MAX_NESTING)),
            "past the nesting limit: redacted unread"
        );
        let chain = format!("{}token=hunter2", "a=".repeat(3));
        assert_eq!(text(&chain), "a=a=a=token=[REDACTED]");
        for odd in [
            "\u{0}=\u{fffd}",
            "=",
            "==",
            "://",
            "a://@",
            "é=ü",
            "Bearer",
            "token:",
        ] {
            let _ = text(odd);
            let _ = check(odd, odd);
        }
        assert_eq!(text("token:"), "token:");
        assert_eq!(text("Bearer"), "Bearer");
    }

    #[test]
    fn redacted_text_is_stable() {
        // Redacting twice changes nothing more.
        for (_, value, _) in TABLE {
            let once = text(value);
            assert_eq!(text(&once), once, "{value:?}");
        }
    }

    #[test]
    fn subtype_renames_bare_key_material_and_lists_what_changed() {
        let mut data = BTreeMap::new();
        data.insert("ro".to_string(), Reading::Bool(true));
        data.insert("AKIAIOSFODNN7EXAMPLE".to_string(), Reading::Bool(true));
        data.insert("AKIAIOSFODNN7EXAMPLF".to_string(), Reading::Bool(true));
        data.insert("pin_password".to_string(), Reading::from("123456"));
        data.insert("retries".to_string(), Reading::Int(3));
        let mut sub = Subtype::new("grub", data);
        sub.context
            .insert("note".into(), "see http://u:p@h/x".into());
        let sub = subtype(sub);
        let keys: Vec<&str> = sub.data.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "[REDACTED]",
                "[REDACTED]#2",
                "pin_password",
                "retries",
                "ro"
            ]
        );
        assert_eq!(sub.data["pin_password"], Reading::from(R));
        assert_eq!(
            sub.context["redacted"],
            "[REDACTED], [REDACTED]#2, pin_password"
        );
        assert_eq!(sub.context["note"], "see http://[REDACTED]@h/x");
    }
}
