//! Error classes and the exit-code table, in one place.
//!
//! Every domain module has its own typed error (thiserror) and says which
//! [`Class`] each variant belongs to through [`Classify`]. The binary works
//! with `anyhow` at the edge; [`classify`] walks an error chain to find the
//! first typed error and so the process exit code. The table is documented in
//! the README and is the same for every command.

use std::fmt;

/// The class of an outcome, and so the process exit code. Every class is
/// part of the documented table, including those no command returns yet.
#[allow(dead_code)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Validation findings: constraints evaluated and failed (exit 1).
    Validation,
    /// Invalid input or usage (exit 2).
    InvalidInput,
    /// A file, key, overlay or object that was asked for does not exist (exit 3).
    NotFound,
    /// Permission denied or credentials refused (exit 4).
    Unauthorized,
    /// An operation ran out of time (exit 5).
    Timeout,
    /// A service or source could not be reached (exit 6).
    Unavailable,
    /// A service asked us to slow down (exit 7).
    RateLimited,
    /// A defect or an unexpected failure (exit 8).
    Internal,
}

impl Class {
    /// The process exit code of this class.
    pub fn exit_code(self) -> u8 {
        match self {
            Class::Validation => 1,
            Class::InvalidInput => 2,
            Class::NotFound => 3,
            Class::Unauthorized => 4,
            Class::Timeout => 5,
            Class::Unavailable => 6,
            Class::RateLimited => 7,
            Class::Internal => 8,
        }
    }

    /// A stable machine-readable name, used in JSON logs.
    pub fn name(self) -> &'static str {
        match self {
            Class::Validation => "VALIDATION_FAILED",
            Class::InvalidInput => "INVALID_INPUT",
            Class::NotFound => "NOT_FOUND",
            Class::Unauthorized => "UNAUTHORIZED",
            Class::Timeout => "TIMEOUT",
            Class::Unavailable => "UNAVAILABLE",
            Class::RateLimited => "RATE_LIMITED",
            Class::Internal => "INTERNAL",
        }
    }

    /// The class of an I/O error kind.
    pub fn of_io(kind: std::io::ErrorKind) -> Class {
        use std::io::ErrorKind as K;
        match kind {
            K::NotFound => Class::NotFound,
            K::PermissionDenied => Class::Unauthorized,
            K::TimedOut => Class::Timeout,
            K::InvalidInput | K::InvalidData | K::IsADirectory | K::NotADirectory => {
                Class::InvalidInput
            }
            _ => Class::Internal,
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Implemented by every typed error of the crate.
pub trait Classify {
    fn class(&self) -> Class;
}

/// A usage error found while resolving settings (after clap, before work).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

impl Classify for UsageError {
    fn class(&self) -> Class {
        Class::InvalidInput
    }
}

/// A command that exists in the interface but is not built in this version.
#[derive(Debug, thiserror::Error)]
#[error(
    "`aicr {0}` is not built in this version of aicr yet; available now: snapshot, recipe, query, bundle, verify, diff, completion"
)]
pub struct NotBuilt(pub &'static str);

impl Classify for NotBuilt {
    fn class(&self) -> Class {
        Class::InvalidInput
    }
}

/// The class of an error chain: the first typed error in it decides.
pub fn classify(err: &anyhow::Error) -> Class {
    for cause in err.chain() {
        macro_rules! try_class {
            ($($t:ty),* $(,)?) => {$(
                if let Some(e) = cause.downcast_ref::<$t>() {
                    return e.class();
                }
            )*};
        }
        try_class!(
            UsageError,
            NotBuilt,
            crate::serializer::Error,
            crate::recipe::Error,
            crate::recipe::query::Error,
            crate::diff::Error,
            crate::bundler::Error,
            crate::bundler::output::Error,
            crate::bundler::checksum::Error,
        );
        if let Some(e) = cause.downcast_ref::<std::io::Error>() {
            return Class::of_io(e.kind());
        }
    }
    Class::Internal
}

/// True when the chain ends in a broken pipe: the reader went away, which
/// for a command-line tool is success.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<crate::serializer::Error>()
                .is_some_and(|e| e.is_broken_pipe())
    })
}
