//! aicr as a library: the domain modules behind the `aicr` binary. The binary
//! (`main.rs`) only parses, logs and maps outcomes to exit codes; the fuzz
//! targets and property tests reach the same code through this crate.

pub mod bundler;
pub mod cli;
pub mod collector;
pub mod constraints;
pub mod deployer;
pub mod diff;
pub mod error;
pub mod k8s;
pub mod logging;
pub mod measurement;
pub mod mirror;
pub mod recipe;
pub mod serializer;
pub mod validate;
