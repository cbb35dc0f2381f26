//! Recipe constraints: the language (`Type.subtype.key` paths and expected
//! values such as `>= 1.30`, [`lang`]), version order ([`version`]), and the
//! evaluation of each constraint against a snapshot ([`eval`]) into a
//! [`crate::validate::Check`]: passed, failed, or skipped with the reason.
//! The rules are written down in `docs/constraints.md`.

pub mod eval;
pub mod lang;
pub mod version;

use std::collections::BTreeSet;

pub use eval::{evaluate, Outcome};
pub use lang::{Constraint, Expected, Op, Target};
pub use version::Version;

use crate::error::{Class, Classify};
use crate::measurement::Snapshot;
use crate::recipe::metadata::{self, Validation};
use crate::recipe::result::RecipeResult;
use crate::validate::{Check, Phase};

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

/// The suite of the recipe's top-level constraints.
pub const TOP_LEVEL_SUITE: &str = "constraints";

/// Every constraint of the recipe, parsed, with the suite it is reported
/// under: the top-level constraints (`constraints`), then those of each
/// validation phase that declares some (suite: the phase name), in the
/// recipe's order. Every constraint is parsed before any is evaluated; a
/// constraint listed twice (same name and value in the same list) is an
/// error, since its check would not be unique.
pub fn parse_recipe(recipe: &RecipeResult) -> Result<Vec<(String, Constraint)>, Error> {
    parse_all(&recipe.constraints, &recipe.validation)
}

/// [`parse_recipe`] for the parts of a recipe or overlay that hold
/// constraints: its top-level list and its validation phases.
pub fn parse_all(
    top: &[metadata::Constraint],
    v: &Validation,
) -> Result<Vec<(String, Constraint)>, Error> {
    let lists = std::iter::once((None, top)).chain(
        [
            ("readiness", &v.readiness),
            ("deployment", &v.deployment),
            ("performance", &v.performance),
            ("conformance", &v.conformance),
        ]
        .into_iter()
        .filter_map(|(name, p)| p.as_ref().map(|p| (Some(name), p.constraints.as_slice()))),
    );
    let mut parsed = Vec::new();
    for (phase, list) in lists {
        let mut seen = BTreeSet::new();
        for c in list {
            let constraint = Constraint::parse_in(&c.name, &c.value, phase)?;
            if !seen.insert((c.name.as_str(), c.value.as_str())) {
                return Err(Error::Invalid {
                    name: crate::error::excerpt(&c.name).into_owned(),
                    reason: format!(
                        "listed twice with value {:?}{}",
                        crate::error::excerpt(&c.value),
                        phase
                            .map(|p| format!(" (in validation.{p}.constraints)"))
                            .unwrap_or_default()
                    ),
                });
            }
            parsed.push((phase.unwrap_or(TOP_LEVEL_SUITE).to_string(), constraint));
        }
    }
    Ok(parsed)
}

/// The check of one constraint against a snapshot, reported under `suite`.
pub fn check(suite: &str, c: &Constraint, snap: &Snapshot) -> Check {
    let outcome = evaluate(c, snap);
    let object = outcome
        .actual
        .as_ref()
        .map(|a| format!("{} = {}", c.name, crate::error::excerpt(a)));
    Check {
        name: c.label(),
        phase: Phase::Constraints,
        suite: suite.to_string(),
        status: outcome.status,
        message: outcome.message(c),
        object,
        duration: std::time::Duration::ZERO,
    }
}

/// Every constraint of the recipe (its top-level constraints, then those of
/// its validation phases) evaluated against the snapshot, one check each,
/// in the recipe's order.
pub fn evaluate_recipe(recipe: &RecipeResult, snap: &Snapshot) -> Result<Vec<Check>, Error> {
    Ok(parse_recipe(recipe)?
        .iter()
        .map(|(suite, c)| check(suite, c, snap))
        .collect())
}
