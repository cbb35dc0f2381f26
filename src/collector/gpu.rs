//! GPU collector: owns the `GPU` measurement of a snapshot, read from the
//! NVIDIA driver through NVML (loaded at run time, so the binary runs on
//! machines without a driver) or from `nvidia-smi -q -x`. Both sources fill
//! one [`GpuInfo`], which one function turns into the measurement, so the keys
//! are the same whichever source answered. Only stable facts are recorded
//! (driver, CUDA version, models, memory, modes, limits, maximum clocks);
//! volatile readings such as temperature, utilisation, current clocks, power
//! draw and processes are left out so the same node gives the same bytes.
//!
//! The driver is always the live one: unlike the file-based collectors this
//! one ignores `Context::root`, because a mounted host filesystem has no
//! driver to ask. `Context::search_path` still decides where `nvidia-smi` is
//! found.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;

use nvml_wrapper::enum_wrappers::device::Clock;
use nvml_wrapper::error::{nvml_try, NvmlError};
use nvml_wrapper::{Device, Nvml};

use super::{Collector, Context, GpuSource};
use crate::measurement::{Measurement, MeasurementType, Reading, Subtype};

/// The NVML library as driver packages install it, then the unversioned
/// name, which often exists only with the development files.
const NVML_SONAME: &str = "libnvidia-ml.so.1";
const NVML_DEV_NAME: &str = "libnvidia-ml.so";

pub struct Gpu;

impl Collector for Gpu {
    fn name(&self) -> &'static str {
        "gpu"
    }

    fn kinds(&self) -> &'static [MeasurementType] {
        &[MeasurementType::Gpu]
    }

    fn collect(&self, ctx: &Context) -> Result<Vec<Measurement>, String> {
        let info = match ctx.gpu_source {
            GpuSource::Nvml => from_nvml(),
            GpuSource::Smi => from_smi(ctx),
            GpuSource::Auto => match from_nvml() {
                Err(Failure::Unavailable(nvml)) => {
                    tracing::debug!("{nvml}; trying nvidia-smi");
                    from_smi(ctx).map_err(|smi| match smi {
                        Failure::Unavailable(smi) => {
                            Failure::Unavailable(format!("{nvml} and {smi}"))
                        }
                        Failure::Failed(smi) => Failure::Failed(format!("{nvml}, and {smi}")),
                    })
                }
                other => other,
            },
        }
        .map_err(|f| match f {
            Failure::Unavailable(reason) => format!("no NVIDIA GPU: {reason}"),
            Failure::Failed(reason) => reason,
        })?;
        if info.devices.is_empty() {
            let who = if info.source == "nvml" {
                "NVML"
            } else {
                info.source
            };
            return Err(format!("{who} reports no GPU"));
        }
        Ok(vec![measurement(&info)])
    }
}

/// Why a source gave nothing.
enum Failure {
    /// The source is not there (NVML does not load, nvidia-smi is not on
    /// the search path); `Auto` moves on to the next source.
    Unavailable(String),
    /// The source is there but failed; its answer stands.
    Failed(String),
}

/// What both sources report, before it becomes a measurement.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GpuInfo {
    /// `nvml` or `nvidia-smi`.
    pub source: &'static str,
    pub driver: String,
    /// `major.minor` of the CUDA version the driver supports.
    pub cuda_version: Option<String>,
    /// In index order.
    pub devices: Vec<DeviceInfo>,
}

/// One GPU. `None` means the source could not tell; the key is then left out
/// rather than guessed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeviceInfo {
    pub name: String,
    pub uuid: Option<String>,
    pub pci_bus_id: Option<String>,
    pub memory_total_mib: Option<i64>,
    pub compute_capability: Option<String>,
    /// `Enabled`, `Disabled` or `N/A`.
    pub mig_mode: Option<String>,
    /// Distinct MIG GPU instances; 0 when MIG is off.
    pub mig_instances: Option<i64>,
    pub persistence_mode: Option<String>,
    pub power_limit_w: Option<i64>,
    pub clocks_max_sm_mhz: Option<i64>,
    pub clocks_max_mem_mhz: Option<i64>,
    pub vbios: Option<String>,
}

/// Turns what a source reported into the `GPU` measurement: subtype `smi`
/// (the summary) and subtype `device` (`{index}.{key}` for every GPU).
fn measurement(info: &GpuInfo) -> Measurement {
    let models: Vec<String> = info
        .devices
        .iter()
        .map(|d| normalise_model(&d.name))
        .collect();

    let mut smi: BTreeMap<String, Reading> = BTreeMap::new();
    smi.insert("driver".into(), info.driver.clone().into());
    if let Some(cuda) = &info.cuda_version {
        smi.insert("cuda-version".into(), cuda.clone().into());
    }
    smi.insert("gpu-count".into(), (info.devices.len() as i64).into());
    if let (Some(first), Some(model)) = (info.devices.first(), models.first()) {
        smi.insert("gpu.model".into(), model.clone().into());
        smi.insert("gpu.name".into(), first.name.clone().into());
    }
    let distinct: BTreeSet<&str> = models.iter().map(String::as_str).collect();
    if distinct.len() > 1 {
        let joined = distinct.into_iter().collect::<Vec<_>>().join(",");
        smi.insert("gpu.models".into(), joined.into());
    }
    smi.insert("source".into(), info.source.into());

    let mut device: BTreeMap<String, Reading> = BTreeMap::new();
    for (i, (d, model)) in info.devices.iter().zip(&models).enumerate() {
        let mut put = |key: &str, value: Reading| {
            device.insert(format!("{i}.{key}"), value);
        };
        put("name", d.name.clone().into());
        put("model", model.clone().into());
        let texts = [
            ("uuid", &d.uuid),
            ("pci-bus-id", &d.pci_bus_id),
            ("compute-capability", &d.compute_capability),
            ("mig-mode", &d.mig_mode),
            ("persistence-mode", &d.persistence_mode),
            ("vbios", &d.vbios),
        ];
        for (key, value) in texts {
            if let Some(v) = value {
                put(key, v.clone().into());
            }
        }
        let ints = [
            ("memory-total-mib", d.memory_total_mib),
            ("mig-instances", d.mig_instances),
            ("power-limit-w", d.power_limit_w),
            ("clocks-max-sm-mhz", d.clocks_max_sm_mhz),
            ("clocks-max-mem-mhz", d.clocks_max_mem_mhz),
        ];
        for (key, value) in ints {
            if let Some(v) = value {
                put(key, v.into());
            }
        }
    }

    Measurement::new(
        MeasurementType::Gpu,
        vec![Subtype::new("smi", smi), Subtype::new("device", device)],
    )
}

/// Known GPU models: the name's tokens that identify each, and its CUDA
/// compute capability. Longer names come before the names they contain.
const MODELS: &[(&str, &[&str], Option<&str>)] = &[
    ("gb300", &["gb300"], Some("10.3")),
    ("gb200", &["gb200"], Some("10.0")),
    ("b300", &["b300"], Some("10.3")),
    ("b200", &["b200"], Some("10.0")),
    ("gh200", &["gh200"], Some("9.0")),
    ("h200", &["h200"], Some("9.0")),
    ("h100", &["h100"], Some("9.0")),
    ("h800", &["h800"], Some("9.0")),
    ("h20", &["h20"], Some("9.0")),
    ("a100", &["a100"], Some("8.0")),
    ("a800", &["a800"], Some("8.0")),
    ("a30", &["a30"], Some("8.0")),
    ("a40", &["a40"], Some("8.6")),
    ("a10g", &["a10g"], Some("8.6")),
    ("a10", &["a10"], Some("8.6")),
    ("l40s", &["l40s"], Some("8.9")),
    ("l40", &["l40"], Some("8.9")),
    ("l20", &["l20"], Some("8.9")),
    ("l4", &["l4"], Some("8.9")),
    ("t4", &["t4"], Some("7.5")),
    ("v100", &["v100"], Some("7.0")),
    ("rtx-pro-6000", &["rtx", "pro", "6000"], Some("12.0")),
];

/// The model of a GPU from its product name, as the recipe criteria spell
/// accelerators: `NVIDIA H200` is `h200`, `NVIDIA A100-SXM4-80GB` is `a100`,
/// `NVIDIA GH200 480GB` is `gh200`. Known models are matched on whole tokens
/// of the name (so `RTX A4000` is not taken for an `a40`); any other name
/// becomes a lowercase slug without the leading `nvidia`
/// (`NVIDIA RTX A6000` is `rtx-a6000`).
pub fn normalise_model(name: &str) -> String {
    let lower = name.to_lowercase();
    let tokens: Vec<&str> = lower
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| !t.is_empty())
        .collect();
    for (model, pattern, _) in MODELS {
        if tokens.windows(pattern.len()).any(|w| w == *pattern) {
            return (*model).to_string();
        }
    }
    let rest = match tokens.split_first() {
        Some((&"nvidia", rest)) if !rest.is_empty() => rest,
        _ => &tokens[..],
    };
    rest.join("-")
}

/// The compute capability of a GPU whose source does not report it: from
/// the model when it is known, else from the architecture where that alone
/// decides it (Ampere and Blackwell parts differ, so they give `None`).
fn derived_compute_capability(name: &str, architecture: Option<&str>) -> Option<String> {
    let model = normalise_model(name);
    if let Some((_, _, cc)) = MODELS.iter().find(|(m, _, _)| *m == model) {
        return cc.map(str::to_string);
    }
    let cc = match architecture?.to_ascii_lowercase().as_str() {
        "hopper" => "9.0",
        "ada lovelace" | "ada" => "8.9",
        "turing" => "7.5",
        "volta" => "7.0",
        _ => return None,
    };
    Some(cc.to_string())
}

/// `13000` (NVML's encoding of CUDA 13.0) to `13.0`.
fn cuda_version_string(v: i32) -> String {
    format!("{}.{}", v / 1000, (v % 1000) / 10)
}

// --- NVML -------------------------------------------------------------------

/// Loads NVML by its soname (also nvml-wrapper's default on Linux), then by
/// the unversioned name.
fn load_nvml() -> Result<Nvml, String> {
    let first = match Nvml::builder().lib_path(OsStr::new(NVML_SONAME)).init() {
        Ok(nvml) => return Ok(nvml),
        Err(e) => describe_load_error(NVML_SONAME, e),
    };
    match Nvml::builder().lib_path(OsStr::new(NVML_DEV_NAME)).init() {
        Ok(nvml) => Ok(nvml),
        Err(e) => {
            let second = describe_load_error(NVML_DEV_NAME, e);
            let reason = match (
                first.strip_prefix(&format!("{NVML_SONAME}: ")),
                second.strip_prefix(&format!("{NVML_DEV_NAME}: ")),
            ) {
                // Both missing, say, is said once.
                (Some(a), Some(b)) if a == b => format!("{NVML_SONAME}, {NVML_DEV_NAME}: {a}"),
                _ => format!("{first}; {second}"),
            };
            Err(format!("NVML could not be loaded ({reason})"))
        }
    }
}

/// A load or initialisation error, naming the library once.
fn describe_load_error(lib: &str, e: NvmlError) -> String {
    let text = match e {
        // The loader's own message, which usually names the file.
        NvmlError::LibloadingError(e) => e.to_string(),
        e => e.to_string(),
    };
    if text.contains(lib) {
        text
    } else {
        format!("{lib}: {text}")
    }
}

fn from_nvml() -> Result<GpuInfo, Failure> {
    let nvml = load_nvml().map_err(Failure::Unavailable)?;
    read_nvml(&nvml).map_err(|e| Failure::Failed(format!("NVML: {e}")))
}

fn read_nvml(nvml: &Nvml) -> Result<GpuInfo, String> {
    let driver = nvml
        .sys_driver_version()
        .map_err(|e| format!("driver version: {e}"))?;
    let cuda_version = nvml.sys_cuda_driver_version().ok().map(cuda_version_string);
    let count = nvml.device_count().map_err(|e| format!("GPU count: {e}"))?;
    let mut devices = Vec::new();
    for i in 0..count {
        let d = nvml
            .device_by_index(i)
            .map_err(|e| format!("GPU {i}: {e}"))?;
        devices.push(read_nvml_device(nvml, &d).map_err(|e| format!("GPU {i}: {e}"))?);
    }
    Ok(GpuInfo {
        source: "nvml",
        driver,
        cuda_version,
        devices,
    })
}

fn read_nvml_device(nvml: &Nvml, d: &Device<'_>) -> Result<DeviceInfo, String> {
    let name = d.name().map_err(|e| format!("name: {e}"))?;
    let enabled = |on: bool| if on { "Enabled" } else { "Disabled" }.to_string();
    let mig = d.mig_mode();
    let mig_mode = match &mig {
        Ok(m) => Some(enabled(m.current == 1)),
        Err(NvmlError::NotSupported) => Some("N/A".to_string()),
        Err(_) => None,
    };
    let mig_instances = match &mig {
        Ok(m) if m.current == 1 => nvml_mig_instances(nvml, d),
        Ok(_) | Err(NvmlError::NotSupported) => Some(0),
        Err(_) => None,
    };
    let compute_capability = match d.cuda_compute_capability() {
        Ok(cc) => Some(format!("{}.{}", cc.major, cc.minor)),
        Err(_) => derived_compute_capability(&name, None),
    };
    Ok(DeviceInfo {
        uuid: d.uuid().ok(),
        pci_bus_id: d.pci_info().ok().map(|p| p.bus_id),
        memory_total_mib: d
            .memory_info()
            .ok()
            .map(|m| (m.total / (1024 * 1024)) as i64),
        compute_capability,
        mig_mode,
        mig_instances,
        persistence_mode: d.is_in_persistent_mode().ok().map(enabled),
        // NVML gives milliwatts.
        power_limit_w: d
            .power_management_limit()
            .ok()
            .map(|mw| (f64::from(mw) / 1000.0).round() as i64),
        clocks_max_sm_mhz: d.max_clock_info(Clock::SM).ok().map(i64::from),
        clocks_max_mem_mhz: d.max_clock_info(Clock::Memory).ok().map(i64::from),
        vbios: d.vbios_version().ok(),
        name,
    })
}

/// The number of distinct GPU instances behind a MIG-enabled GPU's MIG
/// devices (one MIG device per compute instance), as `nvidia-smi -q` lists
/// them. nvml-wrapper does not wrap `nvmlDeviceGetGpuInstanceId`, so it is
/// called through the library's symbol table; without it each MIG device
/// counts as one instance.
fn nvml_mig_instances(nvml: &Nvml, d: &Device<'_>) -> Option<i64> {
    let slots = d.mig_device_count().ok()?;
    let mut instances = BTreeSet::new();
    for slot in 0..slots {
        let mig = match d.mig_device_by_index(slot) {
            Ok(mig) => mig,
            // An empty slot.
            Err(NvmlError::NotFound) | Err(NvmlError::InvalidArg) => continue,
            Err(_) => return None,
        };
        let id = match nvml.lib().nvmlDeviceGetGpuInstanceId.as_ref() {
            Ok(sym) => {
                let mut id: std::os::raw::c_uint = 0;
                // SAFETY: the handle comes from NVML for a device of this
                // still-initialised `Nvml`, and `id` is a valid out pointer,
                // as nvmlDeviceGetGpuInstanceId(device, unsigned int *) wants.
                let ret = unsafe { sym(mig.handle(), &mut id) };
                nvml_try(ret).ok().map(|()| u64::from(id))
            }
            Err(_) => None,
        };
        instances.insert(id.map_or((1, u64::from(slot)), |id| (0, id)));
    }
    Some(instances.len() as i64)
}

// --- nvidia-smi -------------------------------------------------------------

fn from_smi(ctx: &Context) -> Result<GpuInfo, Failure> {
    let Some(program) = ctx.find_program("nvidia-smi") else {
        return Err(Failure::Unavailable(
            "nvidia-smi is not on the search path".to_string(),
        ));
    };
    let xml = super::run_program(&program, &["-q", "-x"], ctx.timeout).map_err(Failure::Failed)?;
    parse_smi_xml(&xml).map_err(|e| Failure::Failed(format!("nvidia-smi -q -x: {e}")))
}

/// The most XML nodes read from `nvidia-smi -q -x`.
const MAX_XML_NODES: u32 = 200_000;

/// Parses the output of `nvidia-smi -q -x`.
pub fn parse_smi_xml(xml: &str) -> Result<GpuInfo, String> {
    let options = roxmltree::ParsingOptions {
        // The output declares an external DTD, which is not fetched.
        allow_dtd: true,
        // A real log has a few hundred nodes per GPU.
        nodes_limit: MAX_XML_NODES,
        ..roxmltree::ParsingOptions::default()
    };
    let doc = roxmltree::Document::parse_with_options(xml, options).map_err(|e| e.to_string())?;
    let root = doc.root_element();
    if root.tag_name().name() != "nvidia_smi_log" {
        return Err(format!(
            "expected <nvidia_smi_log>, found <{}>",
            root.tag_name().name()
        ));
    }
    let driver = text(root, &["driver_version"]).ok_or("no <driver_version>")?;
    let cuda_version = text(root, &["cuda_version"]);
    let devices = root
        .children()
        .filter(|n| n.has_tag_name("gpu"))
        .enumerate()
        .map(|(i, gpu)| smi_device(gpu).map_err(|e| format!("GPU {i}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(GpuInfo {
        source: "nvidia-smi",
        driver,
        cuda_version,
        devices,
    })
}

fn smi_device(gpu: roxmltree::Node<'_, '_>) -> Result<DeviceInfo, String> {
    let name = text(gpu, &["product_name"]).ok_or("no <product_name>")?;
    let mig_mode = gpu
        .children()
        .find(|n| n.has_tag_name("mig_mode"))
        .map(|m| text(m, &["current_mig"]).unwrap_or_else(|| "N/A".to_string()));
    // One <mig_device> per compute instance; instances are counted by their
    // GPU instance id, or one per MIG device where the id is missing.
    let mig_instances = gpu
        .children()
        .find(|n| n.has_tag_name("mig_devices"))
        .map(|list| {
            list.children()
                .filter(|n| n.has_tag_name("mig_device"))
                .enumerate()
                .map(|(i, m)| text(m, &["gpu_instance_id"]).ok_or(i))
                .collect::<BTreeSet<_>>()
                .len() as i64
        })
        .or(Some(0));
    // The power limit moved from <power_readings> (drivers before 535) to
    // <gpu_power_readings>, and <power_limit> became <current_power_limit>.
    let power_limit_w = [
        &["gpu_power_readings", "current_power_limit"][..],
        &["power_readings", "current_power_limit"],
        &["power_readings", "power_limit"],
    ]
    .iter()
    .find_map(|path| text(gpu, path).and_then(|t| number(&t)));
    let architecture = text(gpu, &["product_architecture"]);
    Ok(DeviceInfo {
        uuid: text(gpu, &["uuid"]),
        pci_bus_id: text(gpu, &["pci", "pci_bus_id"]).or_else(|| {
            gpu.attribute("id")
                .map(str::to_string)
                .filter(|s| !s.is_empty())
        }),
        memory_total_mib: text(gpu, &["fb_memory_usage", "total"]).and_then(|t| number(&t)),
        // `nvidia-smi -q` does not print the compute capability.
        compute_capability: derived_compute_capability(&name, architecture.as_deref()),
        mig_mode,
        mig_instances,
        persistence_mode: text(gpu, &["persistence_mode"]),
        power_limit_w,
        clocks_max_sm_mhz: text(gpu, &["max_clocks", "sm_clock"]).and_then(|t| number(&t)),
        clocks_max_mem_mhz: text(gpu, &["max_clocks", "mem_clock"]).and_then(|t| number(&t)),
        vbios: text(gpu, &["vbios_version"]),
        name,
    })
}

/// The trimmed text of the element at `path` under `node`; `None` when it
/// is missing, empty or `N/A`.
fn text(node: roxmltree::Node<'_, '_>, path: &[&str]) -> Option<String> {
    let mut node = node;
    for name in path {
        node = node.children().find(|n| n.has_tag_name(*name))?;
    }
    let t = node.text()?.trim();
    (!t.is_empty() && t != "N/A").then(|| t.to_string())
}

/// The number at the start of `700.00 W` or `143771 MiB`, rounded.
fn number(s: &str) -> Option<i64> {
    let n: f64 = s.split_whitespace().next()?.parse().ok()?;
    n.is_finite().then(|| n.round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::ClusterConfig;
    use std::path::PathBuf;
    use std::time::Duration;

    const FIXTURE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/nodes/h200-ubuntu2404/"
    );

    fn fixture(name: &str) -> String {
        let path = format!("{FIXTURE}{name}");
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn context(gpu_source: GpuSource, search_path: Vec<PathBuf>) -> Context {
        Context {
            root: PathBuf::from("/"),
            timeout: Duration::from_secs(20),
            gpu_source,
            cluster: ClusterConfig::None,
            search_path,
            node_name: None,
        }
    }

    fn data<'a>(m: &'a Measurement, subtype: &str) -> &'a BTreeMap<String, Reading> {
        &m.subtypes
            .iter()
            .find(|s| s.subtype == subtype)
            .unwrap_or_else(|| panic!("no subtype {subtype}"))
            .data
    }

    fn text_reading(s: &str) -> Reading {
        Reading::Text(s.to_string())
    }

    /// Every key of the measurement of the H200 fixture, checked against
    /// the facts of nvidia-smi-query-gpu.csv and the XML header.
    fn assert_h200_fixture(m: &Measurement, source: &str) {
        assert_eq!(m.kind, MeasurementType::Gpu);
        assert!(m.unavailable.is_none());
        let names: Vec<&str> = m.subtypes.iter().map(|s| s.subtype.as_str()).collect();
        assert_eq!(names, ["smi", "device"]);

        let smi: BTreeMap<String, Reading> = [
            ("driver", text_reading("580.159.04")),
            ("cuda-version", text_reading("13.0")),
            ("gpu-count", Reading::Int(1)),
            ("gpu.model", text_reading("h200")),
            ("gpu.name", text_reading("NVIDIA H200")),
            ("source", text_reading(source)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        assert_eq!(data(m, "smi"), &smi);

        let device: BTreeMap<String, Reading> = [
            ("0.name", text_reading("NVIDIA H200")),
            ("0.model", text_reading("h200")),
            (
                "0.uuid",
                text_reading("GPU-1f666bec-7a91-d815-b2a9-63daebb6e64f"),
            ),
            ("0.pci-bus-id", text_reading("00000000:00:06.0")),
            ("0.memory-total-mib", Reading::Int(143771)),
            ("0.compute-capability", text_reading("9.0")),
            ("0.mig-mode", text_reading("Disabled")),
            ("0.mig-instances", Reading::Int(0)),
            ("0.persistence-mode", text_reading("Enabled")),
            ("0.power-limit-w", Reading::Int(700)),
            ("0.clocks-max-sm-mhz", Reading::Int(1980)),
            ("0.clocks-max-mem-mhz", Reading::Int(3201)),
            ("0.vbios", text_reading("96.00.A5.00.1A")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        assert_eq!(data(m, "device"), &device);
    }

    #[test]
    fn parses_the_real_h200_xml() {
        let info = parse_smi_xml(&fixture("nvidia-smi-q.xml")).unwrap();
        assert_eq!(info.source, "nvidia-smi");
        assert_eq!(info.driver, "580.159.04");
        assert_eq!(info.cuda_version.as_deref(), Some("13.0"));
        assert_eq!(info.devices.len(), 1);
        assert_h200_fixture(&measurement(&info), "nvidia-smi");
    }

    #[test]
    fn xml_agrees_with_the_query_gpu_csv() {
        // index, name, uuid, pci.bus_id, driver_version, vbios_version,
        // memory.total [MiB], compute_cap, mig.mode.current,
        // persistence_mode, power.limit [W], clocks.max.sm [MHz]
        let csv = fixture("nvidia-smi-query-gpu.csv");
        let row: Vec<&str> = csv.lines().nth(1).unwrap().split(", ").collect();
        let info = parse_smi_xml(&fixture("nvidia-smi-q.xml")).unwrap();
        let d = &info.devices[0];
        assert_eq!(row[0], "0");
        assert_eq!(d.name, row[1]);
        assert_eq!(d.uuid.as_deref(), Some(row[2]));
        assert_eq!(d.pci_bus_id.as_deref(), Some(row[3]));
        assert_eq!(info.driver, row[4]);
        assert_eq!(d.vbios.as_deref(), Some(row[5]));
        assert_eq!(d.memory_total_mib, number(row[6]));
        assert_eq!(d.compute_capability.as_deref(), Some(row[7]));
        assert_eq!(d.mig_mode.as_deref(), Some(row[8]));
        assert_eq!(d.persistence_mode.as_deref(), Some(row[9]));
        assert_eq!(d.power_limit_w, number(row[10]));
        assert_eq!(d.clocks_max_sm_mhz, number(row[11]));
    }

    #[test]
    fn normalises_model_names() {
        let cases = [
            ("NVIDIA H200", "h200"),
            ("NVIDIA H100 80GB HBM3", "h100"),
            ("NVIDIA H100 PCIe", "h100"),
            ("NVIDIA H100 NVL", "h100"),
            ("NVIDIA H800", "h800"),
            ("NVIDIA H20", "h20"),
            ("NVIDIA GH200 480GB", "gh200"),
            ("NVIDIA GB200", "gb200"),
            ("NVIDIA GB300", "gb300"),
            ("NVIDIA B200", "b200"),
            ("NVIDIA B300 SXM6 AC", "b300"),
            ("NVIDIA A100-SXM4-80GB", "a100"),
            ("NVIDIA A100 80GB PCIe", "a100"),
            ("NVIDIA A800 80GB PCIe", "a800"),
            ("NVIDIA A10G", "a10g"),
            ("NVIDIA A10", "a10"),
            ("NVIDIA L40S", "l40s"),
            ("NVIDIA L40", "l40"),
            ("NVIDIA L4", "l4"),
            ("Tesla T4", "t4"),
            ("Tesla V100-SXM2-16GB", "v100"),
            (
                "NVIDIA RTX PRO 6000 Blackwell Server Edition",
                "rtx-pro-6000",
            ),
            ("NVIDIA RTX A6000", "rtx-a6000"),
            ("NVIDIA RTX A4000", "rtx-a4000"),
            ("NVIDIA GeForce RTX 4090", "geforce-rtx-4090"),
            ("Quadro RTX 8000", "quadro-rtx-8000"),
            ("NVIDIA", "nvidia"),
            ("", ""),
        ];
        for (name, model) in cases {
            assert_eq!(normalise_model(name), model, "{name:?}");
        }
    }

    #[test]
    fn derives_compute_capability() {
        assert_eq!(
            derived_compute_capability("NVIDIA H200", Some("Hopper")).as_deref(),
            Some("9.0")
        );
        assert_eq!(
            derived_compute_capability("NVIDIA A10G", Some("Ampere")).as_deref(),
            Some("8.6")
        );
        assert_eq!(
            derived_compute_capability("NVIDIA H999", Some("Hopper")).as_deref(),
            Some("9.0")
        );
        // Ampere parts are 8.0 or 8.6, so an unknown one stays unknown.
        assert_eq!(
            derived_compute_capability("NVIDIA RTX A6000", Some("Ampere")),
            None
        );
        assert_eq!(derived_compute_capability("NVIDIA X1", None), None);
    }

    #[test]
    fn converts_nvml_cuda_versions() {
        assert_eq!(cuda_version_string(13000), "13.0");
        assert_eq!(cuda_version_string(12040), "12.4");
        assert_eq!(cuda_version_string(11080), "11.8");
    }

    #[test]
    fn rejects_malformed_xml() {
        assert!(parse_smi_xml("<nvidia_smi_log><gpu>").is_err());
        assert!(parse_smi_xml("").is_err());
        assert!(parse_smi_xml("No devices were found").is_err());
        let err = parse_smi_xml("<other/>").unwrap_err();
        assert!(err.contains("nvidia_smi_log"), "{err}");
        let no_name = "<nvidia_smi_log><driver_version>1</driver_version><gpu/></nvidia_smi_log>";
        let err = parse_smi_xml(no_name).unwrap_err();
        assert!(err.contains("product_name"), "{err}");
    }

    /// Hostile or odd output never panics: an error, or what can be read.
    #[test]
    fn odd_xml_is_an_error_or_a_reading_never_a_panic() {
        let laughs = format!(
            "<!DOCTYPE l [<!ENTITY a \"{}\">{}]><nvidia_smi_log><driver_version>&j;</driver_version></nvidia_smi_log>",
            "x".repeat(100),
            (b'b'..=b'j')
                .map(|c| {
                    let prev = (c - 1) as char;
                    format!("<!ENTITY {} \"{}\">", c as char, format!("&{prev};").repeat(10))
                })
                .collect::<String>()
        );
        // Deep nesting: parsed without recursion, and no GPU in it.
        let deep = format!(
            "<nvidia_smi_log><driver_version>1</driver_version>{}{}</nvidia_smi_log>",
            "<gpu>".repeat(100_000),
            "</gpu>".repeat(100_000)
        );
        let err = parse_smi_xml(&deep).unwrap_err();
        assert_eq!(err, "GPU 0: no <product_name>");
        let many = format!(
            "<nvidia_smi_log><driver_version>1</driver_version>{}</nvidia_smi_log>",
            "<x/>".repeat(MAX_XML_NODES as usize + 1)
        );
        for xml in [laughs.as_str(), many.as_str()] {
            assert!(parse_smi_xml(xml).is_err());
        }
        // Numbers that are not numbers or do not fit, an odd name, empty
        // MIG elements.
        let odd = "<nvidia_smi_log><driver_version>1</driver_version><gpu id=\"\">\
             <product_name>NVIDIA \u{1F600} H100</product_name>\
             <fb_memory_usage><total>1e400 MiB</total></fb_memory_usage>\
             <max_clocks><sm_clock>-inf MHz</sm_clock><mem_clock>99999999999999999999999 MHz</mem_clock></max_clocks>\
             <power_readings><power_limit>NaN W</power_limit></power_readings>\
             <mig_mode/><mig_devices><mig_device/><mig_device/></mig_devices></gpu></nvidia_smi_log>";
        let info = parse_smi_xml(odd).unwrap();
        let d = &info.devices[0];
        assert_eq!(d.name, "NVIDIA \u{1F600} H100");
        assert_eq!(normalise_model(&d.name), "h100");
        assert_eq!(d.memory_total_mib, None);
        assert_eq!(d.clocks_max_sm_mhz, None);
        assert_eq!(d.clocks_max_mem_mhz, Some(i64::MAX));
        assert_eq!(d.power_limit_w, None);
        assert_eq!(d.pci_bus_id, None);
        assert_eq!(d.mig_mode.as_deref(), Some("N/A"));
        assert_eq!(d.mig_instances, Some(2));
        assert_eq!(measurement(&info).subtypes.len(), 2);
    }

    #[test]
    fn two_gpus_of_different_models() {
        let xml = fixture("nvidia-smi-q.xml");
        let start = xml.find("<gpu id=").unwrap();
        let end = xml.find("</gpu>").unwrap() + "</gpu>".len();
        let second = xml[start..end]
            .replace("NVIDIA H200", "NVIDIA H100 80GB HBM3")
            .replace("00000000:00:06.0", "00000000:00:07.0")
            .replace(
                "<current_mig>Disabled</current_mig>",
                "<current_mig>Enabled</current_mig>",
            )
            .replace(
                "<mig_devices>\n\t\t\tNone\n\t\t</mig_devices>",
                "<mig_devices>\
                 <mig_device><index>0</index><gpu_instance_id>1</gpu_instance_id><compute_instance_id>0</compute_instance_id></mig_device>\
                 <mig_device><index>1</index><gpu_instance_id>1</gpu_instance_id><compute_instance_id>1</compute_instance_id></mig_device>\
                 <mig_device><index>2</index><gpu_instance_id>5</gpu_instance_id><compute_instance_id>0</compute_instance_id></mig_device>\
                 </mig_devices>",
            );
        assert!(second.contains("<index>2</index>"), "MIG edit applied");
        let two = format!("{}\n\t{}{}", &xml[..end], second, &xml[end..]);
        let info = parse_smi_xml(&two).unwrap();
        let m = measurement(&info);
        let smi = data(&m, "smi");
        assert_eq!(smi["gpu-count"], Reading::Int(2));
        assert_eq!(smi["gpu.model"], text_reading("h200"));
        assert_eq!(smi["gpu.name"], text_reading("NVIDIA H200"));
        assert_eq!(smi["gpu.models"], text_reading("h100,h200"));
        let device = data(&m, "device");
        assert_eq!(device["0.model"], text_reading("h200"));
        assert_eq!(device["1.model"], text_reading("h100"));
        assert_eq!(device["1.name"], text_reading("NVIDIA H100 80GB HBM3"));
        assert_eq!(device["1.pci-bus-id"], text_reading("00000000:00:07.0"));
        assert_eq!(device["1.compute-capability"], text_reading("9.0"));
        assert_eq!(device["0.mig-mode"], text_reading("Disabled"));
        assert_eq!(device["0.mig-instances"], Reading::Int(0));
        assert_eq!(device["1.mig-mode"], text_reading("Enabled"));
        // Three MIG devices in two GPU instances.
        assert_eq!(device["1.mig-instances"], Reading::Int(2));
        assert_eq!(device.len(), 26);
    }

    #[test]
    fn same_models_have_no_models_list() {
        let xml = fixture("nvidia-smi-q.xml");
        let start = xml.find("<gpu id=").unwrap();
        let end = xml.find("</gpu>").unwrap() + "</gpu>".len();
        let two = format!("{}{}{}", &xml[..end], &xml[start..end], &xml[end..]);
        let m = measurement(&parse_smi_xml(&two).unwrap());
        assert_eq!(data(&m, "smi")["gpu-count"], Reading::Int(2));
        assert!(!data(&m, "smi").contains_key("gpu.models"));
    }

    #[test]
    fn missing_and_na_values_are_left_out() {
        let xml = "<nvidia_smi_log><driver_version>535.1</driver_version>\
                   <cuda_version>N/A</cuda_version><gpu id=\"0000:01:00.0\">\
                   <product_name>Tesla T4</product_name>\
                   <power_readings><power_limit>70.00 W</power_limit></power_readings>\
                   <persistence_mode>N/A</persistence_mode></gpu></nvidia_smi_log>";
        let m = measurement(&parse_smi_xml(xml).unwrap());
        assert!(!data(&m, "smi").contains_key("cuda-version"));
        let device = data(&m, "device");
        assert_eq!(device["0.pci-bus-id"], text_reading("0000:01:00.0"));
        assert_eq!(device["0.power-limit-w"], Reading::Int(70));
        assert_eq!(device["0.compute-capability"], text_reading("7.5"));
        assert_eq!(device["0.mig-instances"], Reading::Int(0));
        assert!(!device.contains_key("0.persistence-mode"));
        assert!(!device.contains_key("0.uuid"));
        assert!(!device.contains_key("0.mig-mode"));
    }

    #[test]
    fn no_gpu_in_the_xml_is_an_error_through_collect() {
        let dir =
            fake_smi("<nvidia_smi_log><driver_version>580.1</driver_version></nvidia_smi_log>");
        let err =
            collect_retrying(&context(GpuSource::Smi, vec![dir.path().to_path_buf()])).unwrap_err();
        assert_eq!(err, "nvidia-smi reports no GPU");
    }

    /// A temporary directory holding an executable `nvidia-smi` that prints
    /// `xml`.
    fn fake_smi(xml: &str) -> tempfile::TempDir {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.xml");
        std::fs::write(&out, xml).unwrap();
        let script = dir.path().join("nvidia-smi");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\n[ \"$*\" = \"-q -x\" ] || exit 9\ncat '{}'\n",
                out.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        dir
    }

    /// `collect`, retried while another test thread's fork still holds the
    /// freshly written script open ("Text file busy").
    fn collect_retrying(ctx: &Context) -> Result<Vec<Measurement>, String> {
        let mut result = Gpu.collect(ctx);
        for _ in 0..20 {
            match &result {
                Err(e) if e.contains("Text file busy") => {
                    std::thread::sleep(Duration::from_millis(50));
                    result = Gpu.collect(ctx);
                }
                _ => break,
            }
        }
        result
    }

    #[test]
    fn collects_through_a_fake_nvidia_smi() {
        let dir = fake_smi(&fixture("nvidia-smi-q.xml"));
        let ctx = context(GpuSource::Smi, vec![dir.path().to_path_buf()]);
        let ms = collect_retrying(&ctx).unwrap();
        assert_eq!(ms.len(), 1);
        assert_h200_fixture(&ms[0], "nvidia-smi");
    }

    #[test]
    fn smi_without_nvidia_smi_is_an_error() {
        let empty = tempfile::tempdir().unwrap();
        for search_path in [vec![], vec![empty.path().to_path_buf()]] {
            let err = Gpu
                .collect(&context(GpuSource::Smi, search_path))
                .unwrap_err();
            assert_eq!(err, "no NVIDIA GPU: nvidia-smi is not on the search path");
        }
    }

    #[test]
    fn a_failing_nvidia_smi_is_an_error() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("nvidia-smi");
        std::fs::write(
            &script,
            "#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n",
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err =
            collect_retrying(&context(GpuSource::Smi, vec![dir.path().to_path_buf()])).unwrap_err();
        assert!(err.contains("NVIDIA-SMI has failed"), "{err}");
    }

    #[test]
    fn nvml_and_auto_never_panic() {
        // Whether or not this machine has a GPU: a measurement or a reason.
        for source in [GpuSource::Nvml, GpuSource::Auto] {
            match Gpu.collect(&context(source, vec![])) {
                Ok(ms) => assert_eq!(ms.len(), 1),
                Err(reason) if reason.starts_with("no NVIDIA GPU: NVML could not be loaded (") => {
                    assert!(reason.contains(NVML_SONAME), "{reason}");
                    if source == GpuSource::Auto {
                        assert!(
                            reason.ends_with(") and nvidia-smi is not on the search path"),
                            "{reason}"
                        );
                    }
                }
                Err(reason) => assert!(reason.starts_with("NVML"), "{reason}"),
            }
        }
    }

    /// On a GPU machine, NVML and nvidia-smi give the same measurement but
    /// for `source`. Run with `cargo test -- --ignored` where both exist.
    #[test]
    #[ignore = "needs an NVIDIA GPU, its driver and nvidia-smi"]
    fn nvml_and_nvidia_smi_agree() {
        let path: Vec<PathBuf> =
            std::env::split_paths(&std::env::var_os("PATH").unwrap()).collect();
        let nvml = Gpu.collect(&context(GpuSource::Nvml, vec![])).unwrap();
        let smi = Gpu.collect(&context(GpuSource::Smi, path)).unwrap();
        let mut nvml_smi = data(&nvml[0], "smi").clone();
        let mut smi_smi = data(&smi[0], "smi").clone();
        assert_eq!(nvml_smi.remove("source"), Some(text_reading("nvml")));
        assert_eq!(smi_smi.remove("source"), Some(text_reading("nvidia-smi")));
        assert_eq!(nvml_smi, smi_smi);
        assert_eq!(data(&nvml[0], "device"), data(&smi[0], "device"));
    }
}
