//! Recipe criteria: the five selector fields plus the node count, their
//! allowed values and aliases, the `RecipeCriteria` file, and the asymmetric
//! match between an overlay's criteria and a query.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::Error;

macro_rules! criterion {
    (
        $(#[$doc:meta])*
        $name:ident, $field:literal, $flag:literal {
            $($variant:ident => $text:literal),+ $(,)?
        }
        aliases { $($alias:literal => $target:expr),* $(,)? }
        any_aliases [ $($any:literal),* ]
    ) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every value, in the order the help text lists them.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The criteria field this type fills.
            pub const FIELD: &'static str = $field;
            /// The command-line flag that sets it.
            pub const FLAG: &'static str = $flag;

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses a value: trimmed, case-insensitive, aliases resolved.
            /// `Ok(None)` is `any`.
            pub fn parse(raw: &str) -> Result<Option<$name>, Error> {
                let v = raw.trim().to_ascii_lowercase();
                match v.as_str() {
                    "any" $(| $any)* => Ok(None),
                    $($text => Ok(Some($name::$variant)),)+
                    $($alias => Ok(Some($target)),)*
                    _ => Err(Error::InvalidCriterion {
                        field: $field,
                        value: raw.to_string(),
                        allowed: Self::allowed(),
                    }),
                }
            }

            pub fn allowed() -> String {
                let mut names: Vec<&str> = vec!["any"];
                names.extend(Self::ALL.iter().map(|v| v.as_str()));
                names.join(", ")
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

criterion! {
    /// The Kubernetes service the cluster runs on.
    Service, "service", "--service" {
        Eks => "eks", Gke => "gke", Aks => "aks", Oke => "oke", Kind => "kind",
    }
    aliases {}
    any_aliases ["", "self-managed", "self", "vanilla"]
}

criterion! {
    /// The GPU model of the worker nodes.
    Accelerator, "accelerator", "--accelerator" {
        H100 => "h100", H200 => "h200", Gb200 => "gb200", B200 => "b200", A100 => "a100", L40 => "l40",
    }
    aliases {}
    any_aliases [""]
}

criterion! {
    /// What the cluster is for.
    Intent, "intent", "--intent" {
        Training => "training", Inference => "inference",
    }
    aliases {}
    any_aliases [""]
}

criterion! {
    /// The operating system of the GPU nodes.
    Os, "os", "--os" {
        Ubuntu => "ubuntu", Rhel => "rhel", Cos => "cos", Amazonlinux => "amazonlinux",
    }
    aliases { "al2" => Os::Amazonlinux, "al2023" => Os::Amazonlinux }
    any_aliases [""]
}

criterion! {
    /// A platform or framework layered on top of the GPU stack.
    Platform, "platform", "--platform" {
        Dynamo => "dynamo", Kubeflow => "kubeflow",
    }
    aliases {}
    any_aliases [""]
}

/// What a recipe is for. `None` in a field means any.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Criteria {
    pub service: Option<Service>,
    pub accelerator: Option<Accelerator>,
    pub intent: Option<Intent>,
    pub os: Option<Os>,
    pub platform: Option<Platform>,
    /// Number of GPU nodes; 0 means unspecified.
    pub nodes: u32,
}

/// One criteria field with its value, for matching and for messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stated {
    pub field: &'static str,
    pub flag: &'static str,
    pub value: &'static str,
}

impl Criteria {
    /// True when no field is stated.
    pub fn is_empty(&self) -> bool {
        self.stated().is_empty() && self.nodes == 0
    }

    /// The selector fields that have a value, in a fixed order.
    pub fn stated(&self) -> Vec<Stated> {
        fn s<T: Copy>(
            v: Option<T>,
            field: &'static str,
            flag: &'static str,
            f: fn(T) -> &'static str,
        ) -> Option<Stated> {
            v.map(|x| Stated {
                field,
                flag,
                value: f(x),
            })
        }
        [
            s(self.service, Service::FIELD, Service::FLAG, Service::as_str),
            s(
                self.accelerator,
                Accelerator::FIELD,
                Accelerator::FLAG,
                Accelerator::as_str,
            ),
            s(self.intent, Intent::FIELD, Intent::FLAG, Intent::as_str),
            s(self.os, Os::FIELD, Os::FLAG, Os::as_str),
            s(
                self.platform,
                Platform::FIELD,
                Platform::FLAG,
                Platform::as_str,
            ),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// The value of a field by name, `None` when any.
    pub fn get(&self, field: &str) -> Option<&'static str> {
        self.stated()
            .into_iter()
            .find(|s| s.field == field)
            .map(|s| s.value)
    }

    /// Asymmetric match of an overlay's criteria (`self`) against a query:
    /// an overlay field that is any is a wildcard; a query field that is any
    /// matches only an overlay field that is any.
    pub fn admits(&self, query: &Criteria) -> bool {
        fn field<T: PartialEq>(overlay: &Option<T>, query: &Option<T>) -> bool {
            overlay.is_none() || overlay == query
        }
        field(&self.service, &query.service)
            && field(&self.accelerator, &query.accelerator)
            && field(&self.intent, &query.intent)
            && field(&self.os, &query.os)
            && field(&self.platform, &query.platform)
            && (self.nodes == 0 || self.nodes == query.nodes)
    }

    /// How many fields an overlay pins down.
    pub fn specificity(&self) -> usize {
        self.stated().len() + usize::from(self.nodes != 0)
    }

    /// The flags that select exactly this combination, e.g.
    /// `--service eks --accelerator h100 --intent training`.
    pub fn as_flags(&self) -> String {
        let mut parts: Vec<String> = self
            .stated()
            .iter()
            .map(|s| format!("{} {}", s.flag, s.value))
            .collect();
        if self.nodes != 0 {
            parts.push(format!("--nodes {}", self.nodes));
        }
        parts.join(" ")
    }
}

/// Criteria as written in files: every field optional, unknown fields refused.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCriteria {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accelerator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<i64>,
}

impl RawCriteria {
    pub fn parse(&self) -> Result<Criteria, Error> {
        fn opt<T>(
            v: &Option<String>,
            p: fn(&str) -> Result<Option<T>, Error>,
        ) -> Result<Option<T>, Error> {
            v.as_deref().map(p).transpose().map(Option::flatten)
        }
        Ok(Criteria {
            service: opt(&self.service, Service::parse)?,
            accelerator: opt(&self.accelerator, Accelerator::parse)?,
            intent: opt(&self.intent, Intent::parse)?,
            os: opt(&self.os, Os::parse)?,
            platform: opt(&self.platform, Platform::parse)?,
            nodes: parse_nodes(self.nodes.unwrap_or(0))?,
        })
    }
}

/// Checks a node count: 0 is unspecified, below 0 is an error.
pub fn parse_nodes(n: i64) -> Result<u32, Error> {
    u32::try_from(n).map_err(|_| Error::InvalidNodes(n))
}

impl Serialize for Criteria {
    /// Every selector field is written, `any` when unset; `nodes` only when set.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("service", self.service.map_or("any", Service::as_str))?;
        m.serialize_entry(
            "accelerator",
            self.accelerator.map_or("any", Accelerator::as_str),
        )?;
        m.serialize_entry("intent", self.intent.map_or("any", Intent::as_str))?;
        m.serialize_entry("os", self.os.map_or("any", Os::as_str))?;
        m.serialize_entry("platform", self.platform.map_or("any", Platform::as_str))?;
        if self.nodes != 0 {
            m.serialize_entry("nodes", &self.nodes)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for Criteria {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        RawCriteria::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The `RecipeCriteria` document (`aicr recipe -c FILE`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CriteriaFile {
    // kind and apiVersion are checked by serializer::typed_document.
    #[allow(dead_code)]
    pub kind: String,
    #[allow(dead_code)]
    pub api_version: String,
    #[serde(default)]
    #[allow(dead_code)] // accepted for Kubernetes-style documents; not used
    pub metadata: Option<super::metadata::ObjectMeta>,
    pub spec: RawCriteria,
}

pub const CRITERIA_KIND: &str = "RecipeCriteria";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_is_case_insensitive_with_aliases() {
        assert_eq!(Service::parse(" EKS ").unwrap(), Some(Service::Eks));
        assert_eq!(Service::parse("self-managed").unwrap(), None);
        assert_eq!(Os::parse("AL2023").unwrap(), Some(Os::Amazonlinux));
        assert_eq!(Accelerator::parse("any").unwrap(), None);
        let e = Accelerator::parse("h300").unwrap_err().to_string();
        assert_eq!(
            e,
            "invalid accelerator \"h300\": must be one of any, h100, h200, gb200, b200, a100, l40"
        );
    }

    #[test]
    fn matching_is_asymmetric() {
        let overlay = Criteria {
            service: Some(Service::Eks),
            ..Default::default()
        };
        let query = Criteria {
            service: Some(Service::Eks),
            intent: Some(Intent::Training),
            ..Default::default()
        };
        assert!(overlay.admits(&query));
        assert!(!query.admits(&overlay));
        assert!(Criteria::default().admits(&query));
        let any_query = Criteria::default();
        assert!(!overlay.admits(&any_query));
    }
}
