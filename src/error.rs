//! Error classes and the exit-code table, in one place.
//!
//! Every domain module has its own typed error (thiserror) and says which
//! [`Class`] each variant belongs to through [`Classify`]. The command layer
//! works with [`Error`], which can only be made from a classified error: its
//! `From` conversion asks [`Classify`] for the class at the moment the error
//! crosses into it, so a module error without a class does not compile rather
//! than becoming exit 8 at run time. An [`std::io::Error`] is classified by its
//! kind, once, in [`Class::of_io`]. The table is documented in the README and
//! is the same for every command.

use std::borrow::Cow;
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

    /// The class of an I/O error kind: the one rule for every file, pipe and
    /// socket the crate touches. Conditions the user can change (a path that
    /// is busy, read-only, a directory, on another file system) are invalid
    /// input; a full disk or an unreachable peer is unavailable; what is left
    /// is unexpected.
    pub fn of_io(kind: std::io::ErrorKind) -> Class {
        use std::io::ErrorKind as K;
        match kind {
            K::NotFound => Class::NotFound,
            K::PermissionDenied => Class::Unauthorized,
            K::TimedOut => Class::Timeout,
            K::InvalidInput
            | K::InvalidData
            | K::IsADirectory
            | K::NotADirectory
            | K::InvalidFilename
            | K::ReadOnlyFilesystem
            | K::ResourceBusy
            | K::ExecutableFileBusy
            | K::CrossesDevices
            | K::FileTooLarge
            | K::NotSeekable
            | K::AlreadyExists
            | K::DirectoryNotEmpty
            | K::TooManyLinks
            | K::UnexpectedEof => Class::InvalidInput,
            K::StorageFull
            | K::QuotaExceeded
            | K::ConnectionRefused
            | K::ConnectionReset
            | K::ConnectionAborted
            | K::NotConnected
            | K::HostUnreachable
            | K::NetworkUnreachable
            | K::NetworkDown
            | K::StaleNetworkFileHandle => Class::Unavailable,
            // ELOOP (a symbolic link loop the user made): its kind,
            // FilesystemLoop, cannot be named on stable Rust yet.
            k if format!("{k:?}") == "FilesystemLoop" => Class::InvalidInput,
            _ => Class::Internal,
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Implemented by every typed error of the crate: the only way into [`Error`].
pub trait Classify {
    fn class(&self) -> Class;
}

impl Classify for std::io::Error {
    fn class(&self) -> Class {
        Class::of_io(self.kind())
    }
}

/// The error of a command: a classified error with the context added on the
/// way out. Made only through `From` a [`Classify`] error (or
/// [`Error::new`] with an explicit class), so every error has its class from
/// the start; main maps it to the exit code.
///
/// It deliberately does not implement `std::error::Error`, so `?` cannot wrap
/// one `Error` in another and lose the class.
pub struct Error {
    class: Class,
    inner: anyhow::Error,
}

/// The result of a command.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl<E> From<E> for Error
where
    E: Classify + std::error::Error + Send + Sync + 'static,
{
    fn from(e: E) -> Error {
        Error {
            class: e.class(),
            inner: anyhow::Error::new(e),
        }
    }
}

impl Error {
    /// An error with a class given here (for an error type of another crate).
    pub fn new<E>(class: Class, e: E) -> Error
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        Error {
            class,
            inner: anyhow::Error::new(e),
        }
    }

    pub fn class(&self) -> Class {
        self.class
    }

    /// Adds a line of context in front of the message; the class stays.
    pub fn context<C: fmt::Display + Send + Sync + 'static>(self, context: C) -> Error {
        Error {
            class: self.class,
            inner: self.inner.context(context),
        }
    }

    /// True when the error is a broken pipe: the reader went away, which
    /// for a command-line tool is success.
    pub fn is_broken_pipe(&self) -> bool {
        self.inner.chain().any(|c| {
            c.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
                || c.downcast_ref::<crate::serializer::Error>()
                    .is_some_and(|e| e.is_broken_pipe())
        })
    }
}

impl fmt::Display for Error {
    /// `{}` is the outermost message; `{:#}` the whole chain, `a: b: c`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            write!(f, "{:#}", self.inner)
        } else {
            write!(f, "{}", self.inner)
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({:#})", self.class, self.inner)
    }
}

/// `.context(..)` / `.with_context(..)` on any result whose error converts
/// into [`Error`], keeping the class of the error underneath.
pub trait Context<T> {
    fn context<C: fmt::Display + Send + Sync + 'static>(self, context: C) -> Result<T>;
    fn with_context<C: fmt::Display + Send + Sync + 'static, F: FnOnce() -> C>(
        self,
        f: F,
    ) -> Result<T>;
}

impl<T, E: Into<Error>> Context<T> for std::result::Result<T, E> {
    fn context<C: fmt::Display + Send + Sync + 'static>(self, context: C) -> Result<T> {
        self.map_err(|e| e.into().context(context))
    }

    fn with_context<C: fmt::Display + Send + Sync + 'static, F: FnOnce() -> C>(
        self,
        f: F,
    ) -> Result<T> {
        self.map_err(|e| e.into().context(f()))
    }
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

/// Longest stretch of user input quoted whole in a message, in bytes.
pub const EXCERPT_BYTES: usize = 256;

/// User input as it may appear in an error message: whole when short, else
/// its start and its length, so a 50 MB value is never echoed back. Every
/// message that quotes input (a value, a kind, a parser's detail) goes
/// through this one helper.
pub fn excerpt(s: &str) -> Cow<'_, str> {
    if s.len() <= EXCERPT_BYTES {
        return Cow::Borrowed(s);
    }
    let mut end = EXCERPT_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}… ({} bytes in all)", &s[..end], s.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_keeps_short_text_and_cuts_long_text_on_a_char_boundary() {
        assert_eq!(excerpt("eks"), "eks");
        let exact = "a".repeat(EXCERPT_BYTES);
        assert_eq!(excerpt(&exact), exact.as_str());
        let long = "é".repeat(100_000);
        let cut = excerpt(&long);
        assert!(cut.ends_with("… (200000 bytes in all)"), "{cut}");
        assert!(cut.starts_with("éé"));
        assert!(cut.len() < EXCERPT_BYTES + 40, "{}", cut.len());
    }

    #[test]
    fn io_kinds_the_user_controls_are_not_internal() {
        use std::io::ErrorKind as K;
        for (kind, class) in [
            (K::NotFound, Class::NotFound),
            (K::PermissionDenied, Class::Unauthorized),
            (K::ResourceBusy, Class::InvalidInput),
            (K::CrossesDevices, Class::InvalidInput),
            (K::ReadOnlyFilesystem, Class::InvalidInput),
            (K::IsADirectory, Class::InvalidInput),
            (K::StorageFull, Class::Unavailable),
            (K::QuotaExceeded, Class::Unavailable),
            (K::OutOfMemory, Class::Internal),
        ] {
            assert_eq!(Class::of_io(kind), class, "{kind:?}");
        }
        let symlink_loop = std::io::Error::from_raw_os_error(libc::ELOOP).kind();
        assert_eq!(Class::of_io(symlink_loop), Class::InvalidInput);
    }

    #[test]
    fn the_class_travels_with_the_error_through_context() {
        let io = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let r: std::result::Result<(), _> = Err(io);
        let err = r.context("reading x").unwrap_err();
        assert_eq!(err.class(), Class::Unauthorized);
        assert_eq!(format!("{err:#}"), "reading x: permission denied");
        let err: Error = UsageError("bad".into()).into();
        assert_eq!(err.class(), Class::InvalidInput);
        assert!(!err.is_broken_pipe());
        let pipe: Error = std::io::Error::from(std::io::ErrorKind::BrokenPipe).into();
        assert!(pipe.is_broken_pipe());
    }
}
