//! `cm://NAMESPACE/NAME` and `cm://NAME` in the commands: where a document
//! argument (`-s`, `-r`, `diff A B`) or `-o` of `snapshot` and `recipe`
//! names a ConfigMap, the reference is checked while settings are resolved
//! (exit 2 before any request), and the document is read or written
//! through [`crate::k8s::configmap`] with the command's cluster settings
//! (`-k/--kubeconfig`, `KUBECONFIG`, `--context`, and for `cm://NAME` the
//! namespace of `-n/--namespace` or the context). Every other argument
//! goes to the file readers and writers of [`crate::serializer`] as before.

use std::time::Duration;

use crate::error::{Result, UsageError};
use crate::k8s::configmap::{self, DocKind, Document, Target, Written};
use crate::k8s::ClusterSettings;
use crate::serializer::{self, Format, Output};

/// The deadline of each ConfigMap request (validate: its `--timeout`).
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Checks a document argument that names a ConfigMap (nothing else is
/// looked at): a bad reference is exit 2 before any request.
pub fn check_input(arg: &str) -> Result<()> {
    if Target::is_reference(arg) {
        Target::check(arg)?;
    }
    Ok(())
}

/// The ConfigMap `arg` names: `cm://NAME` in the namespace of `-n`, the
/// context, ... (see [`ClusterSettings::namespace`]).
fn target(arg: &str, cluster: &ClusterSettings) -> Result<Target> {
    Ok(Target::parse_in(arg, || Ok(cluster.namespace()?))?)
}

/// Reads a document argument: a ConfigMap through the cluster, else a file
/// or `-`. `kind` is the document expected, `None` for either.
pub fn read(arg: &str, kind: Option<DocKind>, cluster: &ClusterSettings) -> Result<Vec<u8>> {
    if !Target::is_reference(arg) {
        return Ok(serializer::read_input(arg)?);
    }
    let target = target(arg, cluster)?;
    Ok(configmap::read(cluster, &target, kind)?)
}

/// Checks `-o` of a command that writes a Snapshot or RecipeResult: a
/// ConfigMap reference and a format it can hold, or what
/// [`Output::check`] accepts.
pub fn check_output(output: &Output, format: Format) -> Result<()> {
    match output {
        Output::ConfigMap(rest) => {
            Target::check(&format!("{}{rest}", configmap::SCHEME))?;
            configmap::storable(format)?;
            Ok(())
        }
        o => Ok(o.check()?),
    }
}

/// Refuses a ConfigMap destination for output that is not a document
/// (`recipe --list`): `what` names it.
pub fn refuse_output(output: &Output, what: &str) -> Result<()> {
    if let Output::ConfigMap(rest) = output {
        return Err(UsageError(format!(
            "-o {}{rest}: {what} cannot be stored in a ConfigMap, which holds a Snapshot or RecipeResult; give a file path, or - for standard output",
            configmap::SCHEME
        ))
        .into());
    }
    Ok(())
}

/// A document for [`emit_document`].
pub struct Doc<'a> {
    pub kind: DocKind,
    pub format: Format,
    pub text: &'a str,
    /// The document's `metadata.timestamp`, if it has one.
    pub timestamp: Option<&'a str>,
}

/// Writes a Snapshot or RecipeResult where `-o` says: a ConfigMap (its
/// `timestamp` key the document's, else now), or as [`super::emit`] does.
pub fn emit_document(output: &Output, doc: &Doc<'_>, cluster: &ClusterSettings) -> Result<()> {
    let Output::ConfigMap(rest) = output else {
        return super::emit(output, doc.text);
    };
    let target = target(&format!("{}{rest}", configmap::SCHEME), cluster)?;
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let document = Document {
        kind: doc.kind,
        format: doc.format,
        text: doc.text,
        timestamp: doc.timestamp.unwrap_or(&now),
        version: env!("CARGO_PKG_VERSION"),
    };
    let hook = after_read_hook();
    let written = configmap::write(cluster, &target, &document, hook.as_deref())?;
    let verb = match written {
        Written::Created => "created",
        Written::Updated => "updated",
    };
    tracing::info!("{verb} ConfigMap {target}");
    Ok(())
}

/// Debug builds only: `AICR_TEST_CM_AFTER_READ`, a shell command run
/// between the read and the write of a ConfigMap (at most 60 s), so a test
/// can change the ConfigMap in between. Release builds have no such hook.
#[cfg(debug_assertions)]
fn after_read_hook() -> Option<Box<dyn Fn()>> {
    let cmd = std::env::var_os("AICR_TEST_CM_AFTER_READ")?;
    Some(Box::new(move || {
        let child = std::process::Command::new("sh")
            .arg("-c")
            .arg(&cmd)
            .stdin(std::process::Stdio::null())
            // Standard output is for data.
            .stdout(std::process::Stdio::null())
            .spawn();
        let Ok(mut child) = child else { return };
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while matches!(child.try_wait(), Ok(None)) {
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }))
}

#[cfg(not(debug_assertions))]
fn after_read_hook() -> Option<Box<dyn Fn()>> {
    None
}
