//! `bundle --vendor-charts`: each chart pulled (`helm pull`, OCI included)
//! into the bundle's `charts/`, so the bundle installs with no network access
//! to chart repositories. For the helm deployer a chart is its archive,
//! `charts/<component>-<version>.tgz`; for Argo CD and Flux, which install
//! a chart from a path of the bundle's Git repository, it is unpacked into
//! `charts/<component>/`. Either way its files are bundle files like any
//! other: `checksums.txt` lists their SHA-256 and `aicr verify` checks them.
//! The component records where its chart is ([`Component::vendored`]) and
//! the deployers install from there.

use std::path::Path;

use super::output::{File, Files, FILE_CAP};
use super::{Component, Error, Source};
use crate::mirror::helm::{ChartSource, Helm};

/// The most a vendored chart may hold, all its files together.
pub const CHART_CAP: u64 = 256 << 20;
/// The most files an unpacked chart may hold.
const CHART_FILES: usize = 10_000;

/// The archive of a component's vendored chart, relative to the bundle.
pub fn archive_path(c: &Component) -> String {
    format!("charts/{}-{}.tgz", c.name, c.version)
}

/// The directory of a component's unpacked vendored chart.
pub fn directory_path(c: &Component) -> String {
    format!("charts/{}", c.name)
}

/// Pulls the chart of every chart component into `files`, unpacked when
/// `unpack`, and records where each went in the component.
pub fn vendor(
    components: &mut [Component],
    helm: &Helm,
    unpack: bool,
    files: &mut Files,
) -> Result<(), Error> {
    // After the first failure (a deadline, a signal) no further pull
    // starts: the run fails with the first error as soon as those under
    // way end.
    let pulled = super::parallel::try_map(components, |c| pull(c, helm, unpack))?;
    for (c, got) in components.iter_mut().zip(pulled) {
        let Some((path, chart_files)) = got else {
            continue;
        };
        files.0.extend(chart_files);
        c.vendored = Some(path);
    }
    Ok(())
}

type Pulled = Option<(String, Vec<(String, File)>)>;

fn pull(c: &Component, helm: &Helm, unpack: bool) -> Result<Pulled, Error> {
    let oci;
    let source = match &c.source {
        Source::Manifests => return Ok(None),
        Source::Repo(url) => ChartSource::Repo {
            url,
            chart: &c.chart,
        },
        Source::Oci(url) => {
            oci = format!("{url}/{}", c.chart);
            ChartSource::Oci(oci.clone())
        }
    };
    let io = |path: &Path, io: std::io::Error| Error::VendorIo {
        component: c.name.clone(),
        path: path.display().to_string(),
        io,
    };
    let temp = tempfile::Builder::new()
        .prefix("aicr-vendor-")
        .tempdir()
        .map_err(|e| io(&std::env::temp_dir(), e))?;
    let got = helm.pull(&c.name, &source, &c.version, temp.path(), unpack)?;
    let bad = |reason: String| Error::VendorChart {
        component: c.name.clone(),
        reason,
    };
    if !unpack {
        let bytes = read_file(&got, FILE_CAP).map_err(bad)?;
        let path = archive_path(c);
        let file = File {
            bytes,
            executable: false,
        };
        return Ok(Some((path.clone(), vec![(path, file)])));
    }
    let dir = directory_path(c);
    let entries = super::checksum::walk(&got).map_err(|e| io(&got, e))?;
    if entries.len() > CHART_FILES {
        return Err(bad(format!(
            "the chart has {} files, more than the {CHART_FILES} a vendored chart may hold",
            entries.len()
        )));
    }
    let mut total = 0u64;
    let mut out = Vec::with_capacity(entries.len());
    for (rel, regular) in entries {
        if !regular {
            return Err(bad(format!(
                "{rel} in the chart is not a regular file (a link or a device); refused"
            )));
        }
        let bytes = read_file(&got.join(&rel), FILE_CAP).map_err(bad)?;
        total += bytes.len() as u64;
        if total > CHART_CAP {
            return Err(bad(format!(
                "the unpacked chart is larger than {} MiB",
                CHART_CAP >> 20
            )));
        }
        out.push((
            format!("{dir}/{rel}"),
            File {
                bytes,
                executable: false,
            },
        ));
    }
    Ok(Some((dir, out)))
}

/// A regular file, read without following a link and up to `cap` bytes.
fn read_file(path: &Path, cap: u64) -> Result<Vec<u8>, String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    f.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if bytes.len() as u64 > cap {
        return Err(format!(
            "{} is larger than {} MiB",
            path.display(),
            cap >> 20
        ));
    }
    Ok(bytes)
}
