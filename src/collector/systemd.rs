//! SystemD collector: the state of the containerd, docker and kubelet units
//! (load, active and sub state, unit-file state, unit path, environment with
//! secrets redacted), read with one `systemctl show` call. A host without
//! systemd, or a `--root` other than the live host, yields a measurement
//! that says so.

use std::collections::BTreeMap;

use super::{Collector, Context};
use crate::measurement::{Measurement, MeasurementType, Reading, Subtype};

pub struct SystemD;

/// The units read, and the subtype each becomes.
const UNITS: &[(&str, &str)] = &[
    ("containerd.service", "containerd"),
    ("docker.service", "docker"),
    ("kubelet.service", "kubelet"),
];

const PROPERTIES: &str = "Id,LoadState,ActiveState,SubState,UnitFileState,FragmentPath,Environment";

impl Collector for SystemD {
    fn name(&self) -> &'static str {
        "systemd"
    }

    fn kinds(&self) -> &'static [MeasurementType] {
        &[MeasurementType::SystemD]
    }

    fn collect(&self, ctx: &Context) -> Result<Vec<Measurement>, String> {
        if !ctx.is_live_host() {
            return Err(format!(
                "no systemd: services are read from the live host only, not from --root {}",
                ctx.root.display()
            ));
        }
        if !std::path::Path::new("/run/systemd/system").is_dir() {
            return Err(
                "no systemd: /run/systemd/system is absent (the host was not booted with systemd)"
                    .into(),
            );
        }
        let systemctl = ctx
            .find_program("systemctl")
            .ok_or("no systemd: systemctl is not on PATH")?;
        let mut args = vec!["show", "--no-pager", "--property", PROPERTIES];
        args.extend(UNITS.iter().map(|(u, _)| *u));
        let out = super::run_program(&systemctl, &args, ctx.timeout)?;
        Ok(vec![Measurement::new(
            MeasurementType::SystemD,
            parse_show(&out),
        )])
    }
}

/// Parses `systemctl show` output: one block of `Key=value` lines per unit,
/// blocks separated by blank lines, in the order the units were asked for.
pub fn parse_show(text: &str) -> Vec<Subtype> {
    let mut blocks: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for block in text.split("\n\n") {
        let props: BTreeMap<String, String> = block
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if let Some(id) = props.get("Id") {
            blocks.insert(id.clone(), props);
        }
    }
    let mut subs = Vec::new();
    for (unit, name) in UNITS {
        let Some(props) = blocks.get(*unit) else {
            continue;
        };
        let mut data = BTreeMap::new();
        for (k, v) in props {
            match k.as_str() {
                "Id" => {}
                "Environment" => {
                    for (var, val) in split_environment(v) {
                        data.insert(format!("Environment.{var}"), Reading::from(val));
                    }
                }
                _ if !v.is_empty() => {
                    data.insert(k.clone(), Reading::from(v.as_str()));
                }
                _ => {}
            }
        }
        subs.push(Subtype::new(name, data));
    }
    subs
}

/// `A=1 "B=two words" C=3` into pairs.
fn split_environment(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut push = |cur: &mut String| {
        if let Some((k, v)) = cur.split_once('=') {
            out.push((k.to_string(), v.to_string()));
        }
        cur.clear();
    };
    for c in s.chars() {
        match c {
            '"' => quoted = !quoted,
            ' ' if !quoted => push(&mut cur),
            c => cur.push(c),
        }
    }
    push(&mut cur);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_in_fixed_order_and_redacts_environment() {
        let text = "Id=kubelet.service\nLoadState=loaded\nActiveState=active\nSubState=running\nUnitFileState=enabled\nFragmentPath=/lib/systemd/system/kubelet.service\nEnvironment=KUBELET_EXTRA_ARGS=--node-ip=10.0.0.1 \"BOOTSTRAP_TOKEN=abc.def\"\n\nId=docker.service\nLoadState=not-found\nActiveState=inactive\nSubState=dead\nUnitFileState=\nFragmentPath=\nEnvironment=\n\nId=containerd.service\nLoadState=loaded\nActiveState=active\nSubState=running\nUnitFileState=enabled\nFragmentPath=/lib/systemd/system/containerd.service\nEnvironment=\n";
        let subs: Vec<Subtype> = parse_show(text)
            .into_iter()
            .map(crate::collector::redact::subtype)
            .collect();
        let names: Vec<&str> = subs.iter().map(|s| s.subtype.as_str()).collect();
        assert_eq!(names, ["containerd", "docker", "kubelet"]);
        assert_eq!(subs[1].data["LoadState"], Reading::from("not-found"));
        assert!(!subs[1].data.contains_key("UnitFileState"));
        let kubelet = &subs[2];
        assert_eq!(
            kubelet.data["Environment.KUBELET_EXTRA_ARGS"],
            Reading::from("--node-ip=10.0.0.1")
        );
        assert_eq!(
            kubelet.data["Environment.BOOTSTRAP_TOKEN"],
            Reading::from(crate::collector::redact::REDACTED)
        );
        assert_eq!(kubelet.context["redacted"], "Environment.BOOTSTRAP_TOKEN");
    }
}
