//! The recipe engine: criteria, the overlay catalog (embedded data plus
//! `--data`), asymmetric matching, `spec.base` inheritance, the merge of
//! matching overlays into a `RecipeResult`, the deployment order, values
//! hydration and `query` selectors. Merge rules are written down in
//! `docs/recipe-engine.md`.

pub mod catalog;
pub mod criteria;
pub mod metadata;
pub mod path;
pub mod query;
pub mod registry;
pub mod result;
pub mod snapshot;
pub mod store;
pub mod values;

pub use catalog::Catalog;
pub use criteria::Criteria;
pub use store::DataStore;

use crate::error::{Class, Classify};
use crate::serializer;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid {field} {:?}: must be one of {allowed}", crate::error::excerpt(.value))]
    InvalidCriterion {
        field: &'static str,
        value: String,
        allowed: String,
    },
    #[error("invalid nodes {0}: must be 0 (any) or a positive number of GPU nodes")]
    InvalidNodes(i64),
    #[error("no criteria given: pass at least one of --service, --accelerator, --intent, --os, --platform, or a criteria file with -c FILE; `aicr recipe --list` shows the supported combinations")]
    NoCriteria,
    #[error("{0}")]
    NotHonoured(String),
    #[error("{0}")]
    ExcludedBySnapshot(String),
    #[error("--data {dir}: {reason}")]
    DataDir { dir: String, reason: String },
    #[error("--data {0}: no such directory")]
    DataDirNotFound(String),
    #[error("cannot read {path}: {io}")]
    DataRead { path: String, io: std::io::Error },
    #[error("--data: symlinks not allowed: {0}")]
    DataSymlink(String),
    #[error("--data: file too large ({size} bytes, max {max}): {path}", max = store::MAX_FILE_BYTES)]
    DataTooLarge { path: String, size: u64 },
    #[error("data path {path:?} {reason}")]
    DataPath { path: String, reason: String },
    #[error("{0} not found in the recipe data")]
    DataFileMissing(String),
    #[error(transparent)]
    Document(#[from] serializer::Error),
    #[error("{file}: {detail}")]
    Overlay { file: String, detail: String },
    #[error("overlay name {name:?} is used twice: {first} and {second}")]
    DuplicateOverlay {
        name: String,
        first: String,
        second: String,
    },
    #[error("overlay {overlay:?} ({file}) has base {parent:?}, which is not an overlay; known overlays: {known}")]
    MissingParent {
        overlay: String,
        file: String,
        parent: String,
        known: String,
    },
    #[error("overlay inheritance cycle: {0}")]
    InheritanceCycle(String),
    #[error("overlay {overlay:?} ({file}): its spec.base chain is longer than {max} overlays ({chain}); inheritance may be at most {max} deep", max = catalog::MAX_INHERITANCE_DEPTH)]
    InheritanceTooDeep {
        overlay: String,
        file: String,
        chain: String,
    },
    #[error("component {component:?} (from overlay {overlay:?}) is not in the component registry; registered components: {known}")]
    UnknownComponent {
        component: String,
        overlay: String,
        known: String,
    },
    #[error("component {component:?}: {field} {path:?} does not exist in the recipe data")]
    ReferenceMissing {
        component: String,
        field: &'static str,
        path: String,
    },
    #[error("component {component:?}: {field}: {detail}")]
    BadReference {
        component: String,
        field: &'static str,
        detail: String,
    },
    #[error("component {component:?} depends on {dependency:?}, which is not in the recipe; components in the recipe: {known}")]
    DependencyMissing {
        component: String,
        dependency: String,
        known: String,
    },
    #[error("dependency cycle between components: {0}")]
    DependencyCycle(String),
    #[error("values of component {component:?} ({path}) must be a mapping")]
    ValuesShape { component: String, path: String },
}

impl Classify for Error {
    fn class(&self) -> Class {
        match self {
            Error::Document(e) => e.class(),
            Error::DataDirNotFound(_)
            | Error::DataFileMissing(_)
            | Error::ReferenceMissing { .. } => Class::NotFound,
            Error::DataRead { io, .. } => Class::of_io(io.kind()),
            _ => Class::InvalidInput,
        }
    }
}
