//! Build script: stamps the binary with its git commit and build date for
//! `aicr --version`. Both fall back to "unknown" outside a git checkout.
//! `SOURCE_DATE_EPOCH` pins the date for reproducible builds.
//!
//! It also pre-parses the embedded recipe documents (overlays, registry,
//! values files) from YAML into JSON text, so the binary reads them with
//! serde_json instead of a YAML parser; the YAML files stay the source of
//! truth, and a YAML error in them fails the build.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

/// Days since 1970-01-01 to a civil (year, month, day), after Howard Hinnant.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Every `.yaml` document of `recipes/` that the engine parses as data:
/// the registry, overlays and Helm values files (not manifests, which are
/// templates).
fn collect_documents(
    dir: &std::path::Path,
    rel: &str,
    out: &mut Vec<(String, std::path::PathBuf)>,
) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("recipes/ is readable")
        .map(|e| e.unwrap())
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        let r = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        if path.is_dir() {
            if name != "manifests" {
                collect_documents(&path, &r, out);
            }
        } else if name.ends_with(".yaml")
            && (r == "registry.yaml"
                || r.starts_with("overlays/")
                || (r.starts_with("components/") && name.starts_with("values")))
        {
            out.push((r, path));
        }
    }
}

fn embed_documents() {
    println!("cargo:rerun-if-changed=recipes");
    let mut docs = Vec::new();
    collect_documents(std::path::Path::new("recipes"), "", &mut docs);
    docs.sort();
    let mut code = String::from("/// Embedded recipe documents as JSON text, sorted by path.\npub static DOCUMENTS: &[(&str, &str)] = &[\n");
    let mut images = serde_json::Map::new();
    for (rel, path) in docs {
        let text = std::fs::read_to_string(&path).expect("recipe file is UTF-8");
        let mut value: serde_json::Value = serde_yaml_ng::from_str(&text)
            .unwrap_or_else(|e| panic!("recipes/{rel} is not valid YAML: {e}"));
        if rel == "registry.yaml" {
            // Each component's `images` is kept apart: only bundle
            // --registry-mirror reads it, and parsing it cost every recipe
            // run 12% more instructions.
            for c in value["components"].as_array_mut().into_iter().flatten() {
                let name = c["name"].as_str().unwrap_or_default().to_string();
                if let Some(i) = c.as_object_mut().and_then(|o| o.remove("images")) {
                    images.insert(name, i);
                }
            }
        }
        let json = serde_json::to_string(&value).expect("JSON value serialises");
        code.push_str(&format!("    ({rel:?}, {json:?}),\n"));
    }
    code.push_str("];\n");
    let images = serde_json::to_string(&images).expect("JSON value serialises");
    code.push_str(&format!(
        "/// The `images` of each embedded registry component, by name, as JSON text.\npub static REGISTRY_IMAGES: &str = {images:?};\n"
    ));
    let out = std::path::Path::new(&std::env::var("OUT_DIR").unwrap()).join("documents.rs");
    std::fs::write(out, code).expect("OUT_DIR is writable");
}

fn main() {
    embed_documents();
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    for p in [".git/HEAD", ".git/refs/heads", ".git/packed-refs"] {
        if std::path::Path::new(p).exists() {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    let commit = git(&["rev-parse", "--short=8", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .ok()
                .map(|d| d.as_secs() as i64)
        });
    let date = match epoch {
        Some(secs) => {
            let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
            format!("{y:04}-{m:02}-{d:02}")
        }
        None => "unknown".into(),
    };
    println!("cargo:rustc-env=AICR_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=AICR_BUILD_DATE={date}");
}
