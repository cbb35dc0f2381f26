//! Checks on every recipe-supplied string that reaches a path or a script:
//! namespaces, chart names, versions, URLs and manifest file
//! names. A recipe is input like any other; it cannot write outside the
//! bundle or put shell syntax into deploy.sh. Component names are checked
//! as recipes are loaded (`recipe::metadata::check_component_name`).

use super::Error;

fn unsafe_value(component: &str, field: &'static str, value: &str, reason: &str) -> Error {
    Error::BadField {
        component: component.to_string(),
        field,
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

/// A DNS-1123 label: lowercase letters, digits and '-', at most 63, starting
/// and ending with a letter or digit.
fn dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

pub fn namespace(component: &str, ns: &str) -> Result<(), Error> {
    if dns_label(ns) {
        Ok(())
    } else {
        Err(unsafe_value(
            component,
            "namespace",
            ns,
            "is not a valid namespace (a DNS label: lowercase letters, digits and '-', at most 63)",
        ))
    }
}

pub fn chart(component: &str, chart: &str) -> Result<(), Error> {
    let ok = !chart.is_empty()
        && chart.len() <= 253
        && chart.as_bytes()[0].is_ascii_alphanumeric()
        && chart
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(unsafe_value(
            component,
            "chart",
            chart,
            "is not a valid chart name (letters, digits, '-', '_', '.')",
        ))
    }
}

pub fn version(component: &str, version: &str) -> Result<(), Error> {
    let ok = !version.is_empty()
        && version.len() <= 128
        && version.as_bytes()[0].is_ascii_alphanumeric()
        && version
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'+'));
    if ok {
        Ok(())
    } else if version.is_empty() {
        Err(unsafe_value(
            component,
            "version",
            version,
            "is empty: a chart needs a version (set it in the recipe or the registry's helm.defaultVersion)",
        ))
    } else {
        Err(unsafe_value(
            component,
            "version",
            version,
            "is not a valid chart version (letters, digits, '.', '-', '_', '+')",
        ))
    }
}

/// `https://`, `http://` or `oci://` (and `ssh://`/`git@` for Git
/// repositories, `git` true), with no characters a shell or YAML would read
/// specially.
fn url_ok(url: &str, git: bool) -> bool {
    let rest = ["https://", "http://", "oci://"]
        .iter()
        .chain(if git {
            &["ssh://", "git@"][..]
        } else {
            &[][..]
        })
        .find_map(|p| url.strip_prefix(p));
    let Some(rest) = rest else {
        return false;
    };
    !rest.is_empty()
        && url.len() <= 2048
        && rest.as_bytes()[0].is_ascii_alphanumeric()
        && rest.bytes().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(
                    c,
                    b'-' | b'_' | b'.' | b'~' | b'/' | b':' | b'@' | b'%' | b'+'
                )
        })
}

pub fn url(component: &str, field: &'static str, url: &str) -> Result<(), Error> {
    if url_ok(url, false) {
        Ok(())
    } else {
        Err(unsafe_value(
            component,
            field,
            url,
            "is not a valid chart repository URL (https://, http:// or oci://, with letters, digits and - _ . ~ / : @ % +)",
        ))
    }
}

/// The user information of a `scheme://user[:password]@host/...` URL that
/// is a credential: any on http(s) (a token as user name is the common
/// form), a password on ssh. `git@host:path` and `ssh://git@host` name a
/// user only.
fn url_credentials(url: &str) -> Option<&str> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split('/').next().unwrap_or("");
    let (userinfo, _) = authority.rsplit_once('@')?;
    (scheme != "ssh" || userinfo.contains(':')).then_some(userinfo)
}

/// The Git repository of `--repo`. A URL carrying credentials is refused,
/// and not quoted with them: the URL is written into the bundle, which is
/// pushed to that very repository.
pub fn repo_url(url: &str) -> Result<(), Error> {
    if let Some(userinfo) = url_credentials(url) {
        return Err(Error::BadFlag {
            flag: "--repo",
            arg: url.replacen(&format!("{userinfo}@"), "[REDACTED]@", 1),
            reason: "the URL carries credentials, which would be written into the bundle and pushed with it; give the URL without them and configure repository credentials in Argo CD or Flux".into(),
        });
    }
    if url_ok(url, true) {
        Ok(())
    } else {
        Err(Error::BadFlag {
            flag: "--repo",
            arg: url.to_string(),
            reason: "expected a Git repository URL (https://, http://, ssh:// or git@host:path, with letters, digits and - _ . ~ / : @ % +)".into(),
        })
    }
}

/// A Git revision for `--revision`.
pub fn revision(rev: &str) -> Result<(), Error> {
    let ok = !rev.is_empty()
        && rev.len() <= 255
        && rev.as_bytes()[0].is_ascii_alphanumeric()
        && rev
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'/'))
        && !rev.contains("..");
    if ok {
        Ok(())
    } else {
        Err(Error::BadFlag {
            flag: "--revision",
            arg: rev.to_string(),
            reason: "expected a branch, tag or commit (letters, digits, - _ . /)".into(),
        })
    }
}

pub fn manifest_file(component: &str, file: &str) -> Result<(), Error> {
    let ok = file.len() <= 255
        && file
            .as_bytes()
            .first()
            .is_some_and(u8::is_ascii_alphanumeric)
        && file
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && (file.ends_with(".yaml") || file.ends_with(".yml"));
    if ok {
        Ok(())
    } else {
        Err(unsafe_value(
            component,
            "manifest file",
            file,
            "is not a valid manifest file name (letters, digits, '-', '_', '.', ending in .yaml or .yml)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        for ok in [
            "https://helm.ngc.nvidia.com/nvidia",
            "oci://ghcr.io/nvidia/kai-scheduler",
            "http://127.0.0.1:8080/charts",
        ] {
            assert!(url_ok(ok, false), "{ok}");
        }
        for bad in [
            "",
            "ftp://x",
            "https://",
            "https://x/$(id)",
            "https://x/a b",
            "https://x/'a'",
            "https://x/;rm",
            "git@github.com:o/r.git",
        ] {
            assert!(!url_ok(bad, false), "{bad}");
        }
        assert!(url_ok("git@github.com:o/r.git", true));
    }

    #[test]
    fn repo_urls_with_credentials_are_refused_unquoted() {
        for ok in [
            "https://github.com/o/r.git",
            "git@github.com:o/r.git",
            "ssh://git@github.com/o/r.git",
            "https://github.com/o/r@v1.git",
        ] {
            assert!(repo_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "https://user:hunter2@github.com/o/r.git",
            "https://ghp_hunter2@github.com/o/r.git",
            "ssh://git:hunter2@github.com/o/r.git",
        ] {
            let e = repo_url(bad).unwrap_err().to_string();
            assert!(e.contains("carries credentials"), "{e}");
            assert!(!e.contains("hunter2"), "{e}");
            assert!(e.contains("[REDACTED]@github.com"), "{e}");
        }
    }

    #[test]
    fn names() {
        assert!(namespace("x", "gpu-operator").is_ok());
        for bad in ["../../etc", "A", "-a", "a/b", "a b", ""] {
            assert!(namespace("x", bad).is_err(), "{bad}");
        }
        assert!(version("x", "v25.10.1").is_ok());
        assert!(version("x", "1.0.0+build.1").is_ok());
        assert!(version("x", "1;id").is_err());
        assert!(manifest_file("x", "dcgm-exporter.yaml").is_ok());
        assert!(manifest_file("x", "../x.yaml").is_err());
        assert!(revision("main").is_ok());
        assert!(revision("a..b").is_err());
    }
}
