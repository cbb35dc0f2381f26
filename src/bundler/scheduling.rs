//! Node scheduling flags (`--system-node-selector`, `--accelerated-node-toleration`,
//! `--workload-gate`, `--workload-selector`, `--nodes`), parsed and checked,
//! then written into each component's values at the paths its registry entry
//! declares. No component is named here: the registry says where things go.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::set::{parse_path, set_path};
use super::Error;
use crate::error::excerpt;
use crate::recipe::registry::{RegistryComponent, SchedulingPaths};

const EFFECTS: [&str; 3] = ["NoSchedule", "PreferNoSchedule", "NoExecute"];

/// A `key=value:Effect` or `key:Effect` toleration (or taint, for
/// `--workload-gate`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Toleration {
    pub key: String,
    pub value: Option<String>,
    pub effect: String,
}

impl Toleration {
    pub fn parse(flag: &'static str, arg: &str) -> Result<Toleration, Error> {
        let bad = |reason: String| Error::BadFlag {
            flag,
            arg: arg.to_string(),
            reason,
        };
        let Some((kv, effect)) = arg.rsplit_once(':') else {
            return Err(bad("expected key=value:Effect or key:Effect".to_string()));
        };
        if !EFFECTS.contains(&effect) {
            return Err(bad(format!(
                "effect {:?} is not one of {}",
                excerpt(effect),
                EFFECTS.join(", ")
            )));
        }
        let (key, value) = match kv.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (kv, None),
        };
        check_label_key(key).map_err(&bad)?;
        if let Some(v) = value {
            check_label_value(v).map_err(&bad)?;
        }
        Ok(Toleration {
            key: key.to_string(),
            value: value.map(str::to_string),
            effect: effect.to_string(),
        })
    }

    fn to_value(&self) -> Value {
        match &self.value {
            Some(v) => {
                json!({"key": self.key, "operator": "Equal", "value": v, "effect": self.effect})
            }
            None => json!({"key": self.key, "operator": "Exists", "effect": self.effect}),
        }
    }

    /// The taint form, `key=value:Effect` or `key:Effect`.
    fn taint_string(&self) -> String {
        match &self.value {
            Some(v) => format!("{}={}:{}", self.key, v, self.effect),
            None => format!("{}:{}", self.key, self.effect),
        }
    }
}

/// Parses `key=value` node selector entries into a map.
pub fn parse_selector(
    flag: &'static str,
    args: &[String],
) -> Result<BTreeMap<String, String>, Error> {
    let mut out = BTreeMap::new();
    for arg in args {
        let bad = |reason: String| Error::BadFlag {
            flag,
            arg: arg.clone(),
            reason,
        };
        let Some((k, v)) = arg.split_once('=') else {
            return Err(bad("expected key=value".into()));
        };
        check_label_key(k).map_err(&bad)?;
        check_label_value(v).map_err(&bad)?;
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

/// A Kubernetes label key: optional DNS-subdomain prefix and `/`, then a
/// name of up to 63 characters.
fn check_label_key(k: &str) -> Result<(), String> {
    let (prefix, name) = match k.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    if let Some(p) = prefix {
        let ok = !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|l| {
                !l.is_empty()
                    && l.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            });
        if !ok {
            return Err(format!(
                "key prefix {:?} is not a DNS subdomain",
                excerpt(p)
            ));
        }
    }
    if name.is_empty() || name.len() > 63 || !label_chars(name) {
        return Err(format!(
            "key {:?} is not a label key (up to 63 letters, digits, '-', '_', '.', starting and ending with a letter or digit)",
            excerpt(k)
        ));
    }
    Ok(())
}

fn check_label_value(v: &str) -> Result<(), String> {
    if v.len() > 63 || (!v.is_empty() && !label_chars(v)) {
        return Err(format!(
            "value {:?} is not a label value (up to 63 letters, digits, '-', '_', '.', starting and ending with a letter or digit)",
            excerpt(v)
        ));
    }
    Ok(())
}

fn label_chars(s: &str) -> bool {
    let b = s.as_bytes();
    b.iter()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
}

/// The checked scheduling settings of one bundle run.
#[derive(Clone, Debug, Default)]
pub struct Scheduling {
    pub system_selector: BTreeMap<String, String>,
    pub system_tolerations: Vec<Toleration>,
    pub accelerated_selector: BTreeMap<String, String>,
    pub accelerated_tolerations: Vec<Toleration>,
    pub workload_gate: Option<Toleration>,
    pub workload_selector: BTreeMap<String, String>,
}

impl Scheduling {
    /// Writes the settings into `values` at the component's registry paths.
    /// Where no toleration flag is given, a toleration path gets
    /// `[{operator: Exists}]`, so the component's pods run on tainted nodes
    /// (Go aicr's behaviour; deployments rely on it). `nodes` is the bundled
    /// recipe's node count (0: unset).
    pub fn apply(
        &self,
        reg: &RegistryComponent,
        nodes: u32,
        values: &mut Value,
    ) -> Result<(), Error> {
        let write = |values: &mut Value, path: &str, v: Value| -> Result<(), Error> {
            let steps = parse_path(path).map_err(|reason| Error::RegistryPath {
                component: reg.name.clone(),
                path: path.to_string(),
                reason,
            })?;
            set_path(values, &steps, v).map_err(|reason| Error::RegistryPath {
                component: reg.name.clone(),
                path: path.to_string(),
                reason,
            })
        };
        let empty = SchedulingPaths::default();
        let ns = reg.node_scheduling.clone().unwrap_or_default();
        for (paths, selector, tolerations) in [
            (
                ns.system.as_ref().unwrap_or(&empty),
                &self.system_selector,
                &self.system_tolerations,
            ),
            (
                ns.accelerated.as_ref().unwrap_or(&empty),
                &self.accelerated_selector,
                &self.accelerated_tolerations,
            ),
        ] {
            if !selector.is_empty() {
                let m: Map<String, Value> = selector
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect();
                for p in &paths.node_selector_paths {
                    write(values, p, Value::Object(m.clone()))?;
                }
            }
            let list = if tolerations.is_empty() {
                json!([{"operator": "Exists"}])
            } else {
                Value::Array(tolerations.iter().map(Toleration::to_value).collect())
            };
            for p in &paths.toleration_paths {
                write(values, p, list.clone())?;
            }
            if let Some(gate) = &self.workload_gate {
                for p in &paths.taint_str_paths {
                    write(values, p, Value::String(gate.taint_string()))?;
                }
            }
        }
        if nodes > 0 {
            for p in &ns.node_count_paths {
                write(values, p, Value::from(nodes))?;
            }
        }
        if !self.workload_selector.is_empty() {
            let paths = reg
                .pod_scheduling
                .as_ref()
                .and_then(|p| p.workload.as_ref())
                .map(|w| w.workload_selector_paths.clone())
                .unwrap_or_default();
            let m: Map<String, Value> = self
                .workload_selector
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            for p in &paths {
                write(values, p, Value::Object(m.clone()))?;
            }
        }
        Ok(())
    }

    /// Whether a registry validation's flag is missing. Unknown functions
    /// are an error: a check that cannot run is not a check that passed.
    pub fn validation_fires(&self, function: &str) -> Option<bool> {
        match function {
            "CheckWorkloadSelectorMissing" => Some(self.workload_selector.is_empty()),
            "CheckAcceleratedSelectorMissing" => Some(self.accelerated_selector.is_empty()),
            _ => None,
        }
    }
}

/// Names of the validation functions `validation_fires` knows.
pub const VALIDATION_FUNCTIONS: &str =
    "CheckWorkloadSelectorMissing, CheckAcceleratedSelectorMissing";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerations() {
        let t = Toleration::parse("--t", "dedicated=gpu:NoSchedule").unwrap();
        assert_eq!(
            t.to_value(),
            json!({"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"})
        );
        let t = Toleration::parse("--t", "nvidia.com/gpu:NoExecute").unwrap();
        assert_eq!(
            t.to_value(),
            json!({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoExecute"})
        );
        for bad in [
            "bad",
            "k=v:Sometimes",
            "=v:NoSchedule",
            "k=v v:NoSchedule",
            "a b:NoSchedule",
        ] {
            assert!(Toleration::parse("--t", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn selectors() {
        let m = parse_selector("--s", &["a/b=c".into(), "x=".into()]).unwrap();
        assert_eq!(m.len(), 2);
        assert!(parse_selector("--s", &["novalue".into()]).is_err());
        assert!(parse_selector("--s", &["k=$(rm -rf)".into()]).is_err());
    }
}
