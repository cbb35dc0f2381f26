//! Recipe constraints: the language (`Type.subtype.key` paths and expected
//! values such as `>= 1.30`), and their evaluation against a snapshot into
//! [`crate::validate::Check`]s. (The language and evaluation are being
//! built; this is the interface the rest of the crate calls.)

use crate::error::{Class, Classify};
use crate::measurement::Snapshot;
use crate::recipe::result::RecipeResult;
use crate::validate::Check;

/// A constraint of the recipe that is not valid: an error in the recipe
/// (exit 2), naming the constraint.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("constraint {name:?}: {reason}")]
    Invalid { name: String, reason: String },
}

impl Classify for Error {
    fn class(&self) -> Class {
        match self {
            Error::Invalid { .. } => Class::InvalidInput,
        }
    }
}

/// Every constraint of the recipe (its top-level constraints, then those of
/// its validation phases) evaluated against the snapshot, one check each,
/// in the recipe's order.
pub fn evaluate_recipe(recipe: &RecipeResult, snap: &Snapshot) -> Result<Vec<Check>, Error> {
    let _ = (recipe, snap);
    Err(Error::Invalid {
        name: String::new(),
        reason: "constraint evaluation is not built yet".into(),
    })
}
