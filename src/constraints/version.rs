//! Versions as constraints compare them: a leading `v`, dot-separated
//! numbers (missing ones count as 0), an optional pre-release (`-alpha`,
//! `-beta`, `-rc`, which order before the release) and a distribution
//! suffix after `-` or `+` that is ignored (`6.8.0-1024-aws`,
//! `v1.33.5-eks-4f4795d`, `v1.32.4-gke.1106000`, `v1.30.2+k3s1`). The rules
//! are written down, with examples, in `docs/constraints.md`.

use std::cmp::Ordering;

/// The most numeric components a version may have.
const MAX_COMPONENTS: usize = 16;

/// A parsed version. Equality and order ignore the distribution suffix and
/// trailing zero components: `1.33 == v1.33.0-eks-1`.
#[derive(Clone, Debug)]
pub struct Version {
    numbers: Vec<u64>,
    pre: Option<PreRelease>,
}

/// A pre-release: its stage (alpha < beta < rc) and number (`rc.1`, `rc1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct PreRelease {
    stage: u8,
    number: u64,
}

impl Version {
    /// Parses `text` as a version, or `None` when it is not one: it must
    /// start with a digit (after an optional `v`/`V`), the numeric part is
    /// digits and single dots, and whatever follows it starts with `-` or
    /// `+`.
    pub fn parse(text: &str) -> Option<Version> {
        let t = text.trim();
        let t = t
            .strip_prefix('v')
            .or_else(|| t.strip_prefix('V'))
            .unwrap_or(t);
        let end = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (core, rest) = t.split_at(end);
        let mut numbers = Vec::new();
        for part in core.split('.') {
            if part.is_empty() || numbers.len() == MAX_COMPONENTS {
                return None;
            }
            numbers.push(part.parse::<u64>().ok()?);
        }
        let pre = match rest.chars().next() {
            None | Some('+') => None,
            Some('-') => pre_release(&rest[1..]),
            Some(_) => return None,
        };
        Some(Version { numbers, pre })
    }

    fn number(&self, i: usize) -> u64 {
        self.numbers.get(i).copied().unwrap_or(0)
    }
}

/// The pre-release named by the suffix after `-`, when its first identifier
/// is `alpha`, `beta` or `rc` (any case), optionally with a number joined
/// to it (`rc1`) or as the next identifier (`rc.1`). Any other suffix is a
/// distribution suffix: `None`.
fn pre_release(suffix: &str) -> Option<PreRelease> {
    let suffix = suffix.split('+').next().unwrap_or("");
    let mut ids = suffix.split(['.', '-']);
    let first = ids.next()?.to_ascii_lowercase();
    let (stage, digits) = [("alpha", 0u8), ("beta", 1), ("rc", 2)]
        .into_iter()
        .find_map(|(name, stage)| first.strip_prefix(name).map(|d| (stage, d.to_string())))?;
    let number = if digits.is_empty() {
        match ids.next() {
            None => 0,
            Some(n) => n.parse().ok()?,
        }
    } else {
        digits.parse().ok()?
    };
    Some(PreRelease { stage, number })
}

impl Ord for Version {
    fn cmp(&self, other: &Version) -> Ordering {
        let n = self.numbers.len().max(other.numbers.len());
        (0..n)
            .map(|i| self.number(i).cmp(&other.number(i)))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
            // A release (no pre-release) orders after its pre-releases.
            .then_with(|| match (&self.pre, &other.pre) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Greater,
                (Some(_), None) => Ordering::Less,
                (Some(a), Some(b)) => a.cmp(b),
            })
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Version) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Version) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap_or_else(|| panic!("{s} is a version"))
    }

    #[test]
    fn what_is_a_version() {
        for ok in [
            "1",
            "1.33",
            "v1.33.5",
            "V1.2",
            "6.8.0-1024-aws",
            "v1.30.2+k3s1",
            "1.30.0-rc.1",
            " 24.04 ",
            "v1.32.4-gke.1106000",
        ] {
            assert!(Version::parse(ok).is_some(), "{ok}");
        }
        for bad in [
            "",
            "v",
            "ubuntu",
            "1..2",
            ".1",
            "1.",
            "1.2a",
            "1_2",
            "v 1.2",
            "99999999999999999999",
            "1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17",
        ] {
            assert!(Version::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn order() {
        assert!(v("1.33.5") > v("1.33"));
        assert_eq!(v("1.33.0"), v("v1.33"));
        assert!(v("1.30.0-rc.1") < v("1.30.0"));
        assert!(v("1.30.0-alpha.3") < v("1.30.0-beta.0"));
        assert!(v("1.30.0-beta.2") < v("1.30.0-rc1"));
        assert!(v("1.30.0-rc.2") > v("1.30.0-rc.1"));
        assert!(v("1.30.0-rc.1") > v("1.29.9"));
        assert_eq!(v("6.8.0-1024-aws"), v("6.8"));
        assert_eq!(v("1.30.2+k3s1"), v("1.30.2"));
        assert_eq!(v("1.30.0-rc.1+build"), v("1.30.0-rc1"));
    }
}
