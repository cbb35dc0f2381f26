//! Bundling: a `RecipeResult` made ready for a deployer. [`prepare`] checks
//! the recipe against the registry, routes `--set` and the `enabled`
//! switches, orders the enabled components and builds each one (its chart
//! location, values with `--set` and scheduling injected, rendered
//! manifests). The submodules render templates, compute checksums and write
//! the directory atomically; `crate::deployer::assemble` puts the files of a
//! bundle together (component files, the deployer's files, the root README,
//! `recipe.yaml`, `checksums.txt`).
//!
//! Everything is driven by the registry and the recipe: a new component is
//! data, not code.

pub mod checksum;
pub mod oci;
pub mod output;
pub mod parallel;
pub mod registry_mirror;
pub mod render;
pub mod safety;
pub mod scheduling;
pub mod set;
pub mod vendor;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use crate::error::{Class, Classify};
use crate::recipe::catalog::deployment_order;
use crate::recipe::metadata::{sort_keys, ComponentRef, ComponentType};
use crate::recipe::registry::{Registry, RegistryComponent};
use crate::recipe::result::RecipeResult;
use crate::recipe::values::component_values;
use crate::recipe::DataStore;
use crate::serializer;

pub use output::Files;
use scheduling::Scheduling;
use set::Assignment;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{flag} {:?}: {reason}", crate::error::excerpt(.arg))]
    BadSet {
        flag: &'static str,
        arg: String,
        reason: String,
    },
    #[error("{flag} {:?}: {reason}", crate::error::excerpt(.arg))]
    BadFlag {
        flag: &'static str,
        arg: String,
        reason: String,
    },
    #[error("{flag} names component {component:?}, which is not in the component registry; components and their --set names: {known}")]
    SetUnknownComponent {
        flag: &'static str,
        component: String,
        known: String,
    },
    #[error("{flag} names component {component:?}, which is not in this recipe; components in the recipe: {known}")]
    SetNotInRecipe {
        flag: &'static str,
        component: String,
        known: String,
    },
    #[error("the recipe has no components; nothing to bundle")]
    NoComponents,
    #[error("every component of the recipe is disabled; nothing to bundle")]
    AllDisabled,
    #[error(
        "component {component:?} is not in the component registry; registered components: {known}"
    )]
    UnknownComponent { component: String, known: String },
    #[error("component {component:?}: registry path {path:?}: {reason}")]
    RegistryPath {
        component: String,
        path: String,
        reason: String,
    },
    #[error("component {component:?}: registry validation function {function:?} is unknown; known functions: {known}")]
    UnknownValidation {
        component: String,
        function: String,
        known: &'static str,
    },
    #[error("recipe: deploymentOrder {0}")]
    BadOrder(String),
    #[error("component {component:?}: {field} {:?} {reason}", crate::error::excerpt(.value))]
    BadField {
        component: String,
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error("component {component:?}: manifest {file}: {reason}")]
    Manifest {
        component: String,
        file: String,
        reason: String,
    },
    #[error("template {name}: {reason}")]
    Template { name: String, reason: String },
    #[error(transparent)]
    Recipe(#[from] crate::recipe::Error),
    #[error(transparent)]
    Output(#[from] output::Error),
    /// Not a `#[from]` (which makes it the source too, and the message
    /// would say it twice): [`From`] is written out below.
    #[error("--vendor-charts: {0}")]
    Helm(crate::mirror::helm::Error),
    #[error("--vendor-charts: component {component:?}: {reason}")]
    VendorChart { component: String, reason: String },
    #[error("--vendor-charts: component {component:?}: {path}: {io}")]
    VendorIo {
        component: String,
        path: String,
        io: std::io::Error,
    },
    #[error("--registry-mirror {mirror:?}: {reason}")]
    Mirror { mirror: String, reason: String },
}

impl From<crate::mirror::helm::Error> for Error {
    fn from(e: crate::mirror::helm::Error) -> Error {
        Error::Helm(e)
    }
}

impl Classify for Error {
    fn class(&self) -> Class {
        match self {
            Error::Recipe(e) => e.class(),
            Error::Output(e) => e.class(),
            Error::Template { .. } => Class::Internal,
            Error::Helm(e) => e.class(),
            Error::VendorIo { io, .. } => Class::of_io(io.kind()),
            _ => Class::InvalidInput,
        }
    }
}

/// Where a component's chart comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A classic Helm repository (`https://...`, `helm --repo`).
    Repo(String),
    /// An OCI registry (`oci://host/path`); the chart is `<url>/<chart>`.
    Oci(String),
    /// No chart: the component is its manifests.
    Manifests,
}

/// One rendered manifest file of a component.
#[derive(Clone, Debug)]
pub struct Manifest {
    pub file_name: String,
    pub text: String,
    /// Every document is a built-in Kubernetes kind (no CRD needed), so it
    /// can be applied before the chart is installed.
    pub builtin_only: bool,
    /// At least one document is a built-in kind.
    pub has_builtin: bool,
}

/// A component ready to be written by a deployer.
#[derive(Clone, Debug)]
pub struct Component {
    pub name: String,
    pub display_name: String,
    pub namespace: String,
    pub chart: String,
    pub version: String,
    pub source: Source,
    pub dependencies: Vec<String>,
    /// Index in the deployment order (Argo CD sync wave).
    pub wave: usize,
    pub values: Value,
    pub manifests: Vec<Manifest>,
    /// The registry's readiness declaration (`deploy.sh` awaits it for an
    /// asynchronous component).
    pub readiness: Option<crate::recipe::registry::Readiness>,
    /// Where `--vendor-charts` put the chart in the bundle (a relative
    /// path: the archive, or the unpacked chart's directory).
    pub vendored: Option<String>,
}

impl Component {
    pub fn source_url(&self) -> &str {
        match &self.source {
            Source::Repo(u) | Source::Oci(u) => u,
            Source::Manifests => "",
        }
    }
}

/// What `bundle` was asked to do, besides the recipe.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub sets: Vec<Assignment>,
    pub scheduling: Scheduling,
    /// `--nodes`: replaces the recipe's node count, in the bundled
    /// `recipe.yaml` and in the values alike.
    pub nodes: Option<u32>,
    /// `--registry-mirror`: image repositories in values moved there.
    pub registry_mirror: Option<registry_mirror::RegistryMirror>,
}

/// The recipe made ready for a deployer.
#[derive(Debug)]
pub struct Prepared {
    /// The recipe as bundled: disabled components removed.
    pub recipe: RecipeResult,
    /// Enabled components in deployment order.
    pub components: Vec<Component>,
    /// Warnings for the operator (registry validations, dropped
    /// dependencies).
    pub warnings: Vec<String>,
}

/// Checks the recipe and options against the registry and builds every
/// component: values, `--set`, scheduling, rendered manifests. The steps,
/// in order: [`check_refs`], [`route_sets`], [`enabled_refs`],
/// [`checked_order`], [`build_component`] for each component (concurrently),
/// [`registry_warnings`].
pub fn prepare(
    store: &DataStore,
    recipe: &RecipeResult,
    opts: &Options,
) -> Result<Prepared, Error> {
    let registry = if opts.registry_mirror.is_some() {
        store.registry_with_images()?
    } else {
        store.registry()?
    };
    check_refs(&registry, recipe)?;
    let routed = route_sets(&registry, recipe, &opts.sets)?;
    let (refs, mut warnings) = enabled_refs(recipe, &routed.switches)?;
    let order = checked_order(recipe, &refs)?;

    let mut bundled = recipe.clone();
    bundled.component_refs = refs;
    bundled.deployment_order = order;
    if let Some(n) = opts.nodes {
        bundled.criteria.nodes = n;
    }

    // Components are independent: build them concurrently (a thread per
    // component would cost more than most components take).
    let mut jobs: Vec<Job> = Vec::with_capacity(bundled.deployment_order.len());
    for (wave, name) in bundled.deployment_order.iter().enumerate() {
        let (Some(r), Some(reg)) = (
            bundled.component_refs.iter().find(|r| &r.name == name),
            registry.get(name),
        ) else {
            return Err(Error::BadOrder(format!(
                "names {name:?}, which is not a componentRef"
            )));
        };
        jobs.push(Job {
            wave,
            r,
            reg,
            sets: routed.sets.get(name.as_str()).cloned().unwrap_or_default(),
        });
    }
    let nodes = bundled.criteria.nodes;
    let components = parallel::map(&jobs, |job| build_component(store, job, opts, nodes))
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;

    if let Some(m) = &opts.registry_mirror {
        for c in &components {
            if let Some(reg) = registry.get(&c.name) {
                warnings.extend(m.warnings(reg, c));
            }
        }
    }
    warnings.extend(registry_warnings(
        &registry,
        &bundled,
        &components,
        &opts.scheduling,
    )?);
    Ok(Prepared {
        recipe: bundled,
        components,
        warnings,
    })
}

/// One component to build: its place in the order, its reference, its
/// registry entry and the `--set` assignments that name it.
struct Job<'a> {
    wave: usize,
    r: &'a ComponentRef,
    reg: &'a RegistryComponent,
    sets: Vec<&'a Assignment>,
}

/// The recipe has components, each registered, each with manifest files of
/// its own. (Names and duplicates are checked as the recipe is loaded, in
/// `recipe::metadata` and `recipe::result`.)
fn check_refs(registry: &Registry, recipe: &RecipeResult) -> Result<(), Error> {
    if recipe.component_refs.is_empty() {
        return Err(Error::NoComponents);
    }
    for r in &recipe.component_refs {
        r.check_manifest_files()
            .map_err(|(path, reason)| Error::BadField {
                component: r.name.clone(),
                field: "manifestFiles",
                value: path.to_string(),
                reason,
            })?;
        if registry.get(&r.name).is_none() {
            return Err(Error::UnknownComponent {
                component: r.name.clone(),
                known: registry.names().join(", "),
            });
        }
    }
    Ok(())
}

/// `--set` assignments by the registry name of the component they name,
/// and the `COMPONENT:enabled=...` switches.
struct Routed<'a> {
    sets: BTreeMap<&'a str, Vec<&'a Assignment>>,
    switches: BTreeMap<&'a str, bool>,
}

/// Resolves each assignment's component token to a registry name that is in
/// the recipe.
fn route_sets<'a>(
    registry: &'a Registry,
    recipe: &RecipeResult,
    assignments: &'a [Assignment],
) -> Result<Routed<'a>, Error> {
    let in_recipe: BTreeSet<&str> = recipe
        .component_refs
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    let mut routed = Routed {
        sets: BTreeMap::new(),
        switches: BTreeMap::new(),
    };
    for a in assignments {
        let name = resolve_component(registry, &a.component).ok_or_else(|| {
            Error::SetUnknownComponent {
                flag: a.flag.flag(),
                component: a.component.clone(),
                known: set_names(registry),
            }
        })?;
        if !in_recipe.contains(name) {
            return Err(Error::SetNotInRecipe {
                flag: a.flag.flag(),
                component: a.component.clone(),
                known: in_recipe.iter().copied().collect::<Vec<_>>().join(", "),
            });
        }
        match a.enabled()? {
            Some(on) => {
                routed.switches.insert(name, on);
            }
            None => routed.sets.entry(name).or_default().push(a),
        }
    }
    Ok(routed)
}

/// The enabled components, in recipe order; dependencies on disabled ones
/// are dropped, with a warning each.
fn enabled_refs(
    recipe: &RecipeResult,
    switches: &BTreeMap<&str, bool>,
) -> Result<(Vec<ComponentRef>, Vec<String>), Error> {
    let enabled = |r: &ComponentRef| {
        switches
            .get(r.name.as_str())
            .copied()
            .unwrap_or(r.overrides.get("enabled") != Some(&Value::Bool(false)))
    };
    let kept: BTreeSet<&str> = recipe
        .component_refs
        .iter()
        .filter(|r| enabled(r))
        .map(|r| r.name.as_str())
        .collect();
    if kept.is_empty() {
        return Err(Error::AllDisabled);
    }
    let mut warnings = Vec::new();
    let mut refs: Vec<ComponentRef> = Vec::with_capacity(kept.len());
    for r in recipe.component_refs.iter().filter(|r| enabled(r)) {
        let mut r = r.clone();
        r.dependency_refs.retain(|d| {
            let keep = kept.contains(d.as_str());
            if !keep {
                warnings.push(format!(
                    "{} depends on {d}, which is disabled; install {d} yourself before {}",
                    r.name, r.name
                ));
            }
            keep
        });
        refs.push(r);
    }
    Ok((refs, warnings))
}

/// The registry's validations that fire for these settings and criteria,
/// as warnings in component order.
fn registry_warnings(
    registry: &Registry,
    recipe: &RecipeResult,
    components: &[Component],
    scheduling: &Scheduling,
) -> Result<Vec<String>, Error> {
    let mut warnings = Vec::new();
    for c in components {
        let Some(reg) = registry.get(&c.name) else {
            continue;
        };
        for v in &reg.validations {
            let fires = scheduling.validation_fires(&v.function).ok_or_else(|| {
                Error::UnknownValidation {
                    component: c.name.clone(),
                    function: v.function.clone(),
                    known: scheduling::VALIDATION_FUNCTIONS,
                }
            })?;
            let applies = v.conditions.iter().all(|(field, allowed)| {
                recipe
                    .criteria
                    .get(field)
                    .is_some_and(|a| allowed.iter().any(|x| x == a))
            });
            if fires && applies {
                let flag = match v.function.as_str() {
                    "CheckWorkloadSelectorMissing" => "--workload-selector",
                    _ => "--accelerated-node-selector",
                };
                warnings.push(format!(
                    "{} is enabled but {flag} is not set. {}",
                    c.name, v.message
                ));
            }
        }
    }
    Ok(warnings)
}

/// The deployment order: the recipe's own when it lists exactly the enabled
/// components and puts every dependency first; computed when the recipe
/// has none. Anything else is an error rather than a silent reorder.
fn checked_order(recipe: &RecipeResult, refs: &[ComponentRef]) -> Result<Vec<String>, Error> {
    let computed = deployment_order(refs)?;
    if recipe.deployment_order.is_empty() {
        return Ok(computed);
    }
    let names: BTreeSet<&str> = refs.iter().map(|r| r.name.as_str()).collect();
    let given: Vec<String> = recipe
        .deployment_order
        .iter()
        .filter(|n| names.contains(n.as_str()))
        .cloned()
        .collect();
    for n in &recipe.deployment_order {
        if !recipe.component_refs.iter().any(|r| &r.name == n) {
            return Err(Error::BadOrder(format!(
                "names {n:?}, which is not a componentRef"
            )));
        }
    }
    let unique: BTreeSet<&str> = given.iter().map(String::as_str).collect();
    if unique.len() != given.len() || unique != names {
        return Err(Error::BadOrder(format!(
            "must list every component once; expected {}",
            computed.join(", ")
        )));
    }
    for (i, n) in given.iter().enumerate() {
        let r = refs.iter().find(|r| &r.name == n).expect("listed above");
        for d in &r.dependency_refs {
            if !given[..i].contains(d) {
                return Err(Error::BadOrder(format!(
                    "puts {n} before its dependency {d}"
                )));
            }
        }
    }
    Ok(given)
}

/// A registry name from a `--set` component: the name itself or one of the
/// component's `valueOverrideKeys`.
fn resolve_component<'a>(registry: &'a Registry, token: &str) -> Option<&'a str> {
    registry
        .components
        .iter()
        .find(|c| c.name == token || c.value_override_keys.iter().any(|k| k == token))
        .map(|c| c.name.as_str())
}

fn set_names(registry: &Registry) -> String {
    let mut v: Vec<String> = registry
        .components
        .iter()
        .map(|c| {
            if c.value_override_keys.is_empty() {
                c.name.clone()
            } else {
                format!("{} ({})", c.name, c.value_override_keys.join(", "))
            }
        })
        .collect();
    v.sort();
    v.join(", ")
}

/// Builds one component: [`locate`] its chart, [`component_values`] then
/// `--set` and scheduling, then [`render_manifests`].
fn build_component(
    store: &DataStore,
    job: &Job,
    opts: &Options,
    nodes: u32,
) -> Result<Component, Error> {
    let scheduling = &opts.scheduling;
    let Job { wave, r, reg, sets } = job;
    let location = locate(r, reg)?;
    let mut values = component_values(store, r)?;
    for a in sets {
        a.apply(&mut values)?;
    }
    scheduling.apply(reg, nodes, &mut values)?;
    if let Some(m) = &opts.registry_mirror {
        m.rewrite_values(reg, &mut values)?;
    }
    sort_keys(&mut values);
    let mut manifests = render_manifests(store, r, &location, &values)?;
    if let Some(m) = &opts.registry_mirror {
        m.rewrite_manifests(&r.name, &mut manifests)?;
    }
    let Location {
        namespace,
        chart,
        version,
        source,
    } = location;
    Ok(Component {
        display_name: if reg.display_name.is_empty() {
            r.name.clone()
        } else {
            reg.display_name.clone()
        },
        name: r.name.clone(),
        namespace,
        chart,
        version,
        source,
        dependencies: r.dependency_refs.clone(),
        wave: *wave,
        values,
        manifests,
        readiness: reg.readiness.clone(),
        vendored: None,
    })
}

/// Where a component is installed from and into, checked.
struct Location {
    namespace: String,
    chart: String,
    version: String,
    source: Source,
}

/// The component's namespace, chart, version and source: the recipe's, else
/// the registry's defaults; each checked before it reaches a path or a
/// script. Kustomize components and components with nothing to deploy are
/// refused.
fn locate(r: &ComponentRef, reg: &RegistryComponent) -> Result<Location, Error> {
    let name = &r.name;
    if r.kind == Some(ComponentType::Kustomize) || (reg.kustomize.is_some() && reg.helm.is_none()) {
        return Err(Error::BadField {
            component: name.clone(),
            field: "type",
            value: "Kustomize".into(),
            reason: "cannot be bundled by this version of aicr (Helm charts and manifests only)"
                .into(),
        });
    }
    let pick = |own: &str, default: &str| {
        if own.is_empty() {
            default.to_string()
        } else {
            own.to_string()
        }
    };
    let namespace = pick(&r.namespace, reg.default_namespace());
    let chart = pick(&r.chart, reg.default_chart());
    let version = pick(&r.version, reg.default_version());
    let url = pick(&r.source, reg.default_source());
    safety::namespace(name, &namespace)?;
    let source = if url.is_empty() {
        Source::Manifests
    } else {
        safety::url(name, "source", &url)?;
        safety::chart(name, &chart)?;
        safety::version(name, &version)?;
        if url.starts_with("oci://") {
            Source::Oci(url.trim_end_matches('/').to_string())
        } else {
            Source::Repo(url)
        }
    };
    if source == Source::Manifests && r.manifest_files.is_empty() {
        return Err(Error::BadField {
            component: name.clone(),
            field: "source",
            value: String::new(),
            reason: "is empty and the component has no manifestFiles: there is nothing to deploy"
                .into(),
        });
    }
    Ok(Location {
        namespace,
        chart,
        version,
        source,
    })
}

/// Renders the component's manifest files with its values; a file that
/// renders no object is left out.
fn render_manifests(
    store: &DataStore,
    r: &ComponentRef,
    location: &Location,
    values: &Value,
) -> Result<Vec<Manifest>, Error> {
    let name = &r.name;
    // `chart` as a Helm template sees it: a manifest-only component is a
    // chart aicr generates, versioned as aicr; a chart's version drops its
    // leading `v`, as in Chart.yaml (`helm.sh/chart: gpu-operator-25.10.1`).
    let (chart_name, chart_version) = if location.source == Source::Manifests {
        (name.clone(), env!("CARGO_PKG_VERSION").to_string())
    } else {
        (
            location.chart.clone(),
            location.version.trim_start_matches('v').to_string(),
        )
    };
    let ctx = json!({
        "values": values,
        "release": {"name": name, "namespace": location.namespace, "service": "Helm"},
        "chart": {"name": chart_name, "version": chart_version},
    });
    let mut manifests: Vec<Manifest> = Vec::new();
    for path in &r.manifest_files {
        let file_name = path.rsplit('/').next().unwrap_or(path).to_string();
        safety::manifest_file(name, &file_name)?;
        if manifests.iter().any(|m| m.file_name == file_name) {
            return Err(Error::Manifest {
                component: name.clone(),
                file: file_name,
                reason: "two manifestFiles have this file name".into(),
            });
        }
        let bad = |reason: String| Error::Manifest {
            component: name.clone(),
            file: path.clone(),
            reason,
        };
        let raw = store.read(path)?;
        let source_text =
            String::from_utf8(raw.into_owned()).map_err(|_| bad("is not UTF-8 text".into()))?;
        let text = render::manifest(&source_text, &ctx).map_err(&bad)?;
        let kinds = manifest_kinds(&text)
            .map_err(|reason| {
                if source_text.contains("\"{{") || source_text.contains("'{{") {
                    format!("{reason}; interpolated values are written as YAML scalars, quoted where needed, so a template must not quote {{{{ ... }}}} itself")
                } else {
                    reason
                }
            })
            .and_then(|kinds| check_declared(&source_text, &kinds).map(|()| kinds))
            .map_err(&bad)?;
        if kinds.is_empty() {
            tracing::debug!(component = %name, file = %path, "manifest renders no objects; left out");
            continue;
        }
        manifests.push(Manifest {
            file_name,
            text,
            builtin_only: kinds.iter().all(|(_, builtin)| *builtin),
            has_builtin: kinds.iter().any(|(_, builtin)| *builtin),
        });
    }
    Ok(manifests)
}

/// For each object in a rendered manifest: its kind, and is it built into
/// Kubernetes? A document that is not a Kubernetes object is an error.
fn manifest_kinds(text: &str) -> Result<Vec<(String, bool)>, String> {
    use serde::Deserialize;
    let mut out = Vec::new();
    for (i, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let v = Value::deserialize(doc).map_err(|e| format!("document {}: {e}", i + 1))?;
        if v.is_null() {
            continue;
        }
        let api = v.get("apiVersion").and_then(Value::as_str);
        let kind = v.get("kind").and_then(Value::as_str);
        let (Some(api), Some(kind)) = (api, kind) else {
            return Err(format!(
                "document {} is not a Kubernetes object (apiVersion and kind are required)",
                i + 1
            ));
        };
        out.push((kind.to_string(), is_builtin_api(api)));
    }
    Ok(out)
}

/// What a manifest template declares: its documents (`---` lines at the
/// start of a line, plus one) and the kinds its top-level `kind:` lines
/// name.
fn declared(source: &str) -> (usize, BTreeSet<&str>) {
    let mut documents = 1;
    let mut kinds = BTreeSet::new();
    for line in source.lines() {
        if line == "---" || line.starts_with("--- ") {
            documents += 1;
        } else if let Some(kind) = line.strip_prefix("kind:") {
            // `kind: ConfigMap  # comment`, `kind: "ConfigMap"`
            let kind = kind.split(" #").next().unwrap_or_default().trim();
            kinds.insert(kind.trim_matches(['"', '\'']));
        }
    }
    (documents, kinds)
}

/// A rendered manifest may hold no more documents than its template spells
/// out, and only kinds its template names: rendering fills in values, it
/// never adds objects (a value that did would be injected YAML).
fn check_declared(source: &str, rendered: &[(String, bool)]) -> Result<(), String> {
    let (documents, kinds) = declared(source);
    if rendered.len() > documents {
        return Err(format!(
            "renders {} documents but the template spells out {documents}; a manifest template must write each document out (no values or loops that add documents)",
            rendered.len()
        ));
    }
    if let Some((kind, _)) = rendered.iter().find(|(k, _)| !kinds.contains(k.as_str())) {
        return Err(format!(
            "renders an object of kind {kind:?}, which the template does not name in a top-level `kind:` line; kinds it names: {}",
            kinds.iter().copied().collect::<Vec<_>>().join(", ")
        ));
    }
    Ok(())
}

/// API groups every Kubernetes API server serves; anything else needs a CRD
/// (`gateway.networking.k8s.io` included, whatever its suffix).
const BUILTIN_GROUPS: [&str; 22] = [
    "apps",
    "batch",
    "autoscaling",
    "policy",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "apiregistration.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "certificates.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
    "events.k8s.io",
    "flowcontrol.apiserver.k8s.io",
    "internal.apiserver.k8s.io",
    "networking.k8s.io",
    "node.k8s.io",
    "rbac.authorization.k8s.io",
    "resource.k8s.io",
    "scheduling.k8s.io",
    "storage.k8s.io",
    "storagemigration.k8s.io",
];

/// Is an `apiVersion` served without a CRD? Core (`v1`) and the built-in
/// groups are.
pub fn is_builtin_api(api_version: &str) -> bool {
    match api_version.rsplit_once('/') {
        None => true,
        Some((group, _)) => BUILTIN_GROUPS.contains(&group),
    }
}

/// The YAML of a component's values file.
pub fn values_yaml(c: &Component) -> String {
    let mut s = format!(
        "# Helm values for {} ({}), generated by aicr bundle.\n",
        c.name,
        if c.source == Source::Manifests {
            "rendered into its manifests".to_string()
        } else {
            format!("chart {} {}", c.chart, c.version)
        }
    );
    if c.values.as_object().is_some_and(|m| m.is_empty()) {
        s.push_str("{}\n");
    } else {
        s.push_str(&serializer::yaml::to_string(&c.values));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_apis() {
        for a in [
            "v1",
            "apps/v1",
            "rbac.authorization.k8s.io/v1",
            "apiextensions.k8s.io/v1",
        ] {
            assert!(is_builtin_api(a), "{a}");
        }
        for a in [
            "skyhook.nvidia.com/v1alpha1",
            "nvidia.com/v1",
            "argoproj.io/v1alpha1",
            "gateway.networking.k8s.io/v1",
        ] {
            assert!(!is_builtin_api(a), "{a}");
        }
    }

    #[test]
    fn kinds_of_documents() {
        let t = "# c\n---\napiVersion: v1\nkind: ConfigMap\n---\napiVersion: a.b/v1\nkind: X\n";
        assert_eq!(
            manifest_kinds(t).unwrap(),
            vec![("ConfigMap".to_string(), true), ("X".to_string(), false)]
        );
        assert!(manifest_kinds("# only comments\n").unwrap().is_empty());
        assert!(manifest_kinds("a: 1\n").is_err());
    }

    #[test]
    fn rendered_documents_must_be_declared() {
        let src = "# c\n---\napiVersion: v1\nkind: ConfigMap\n---\napiVersion: a.b/v1\nkind: X\n";
        let kinds = manifest_kinds(src).unwrap();
        assert!(check_declared(src, &kinds).is_ok());
        let grown = format!(
            "{src}---\napiVersion: v1\nkind: ConfigMap\n---\napiVersion: v1\nkind: ConfigMap\n"
        );
        assert_eq!(
            check_declared(src, &manifest_kinds(&grown).unwrap()).unwrap_err(),
            "renders 4 documents but the template spells out 3; a manifest template must write each document out (no values or loops that add documents)"
        );
        let commented = "apiVersion: v1\nkind: \"ConfigMap\"  # the list\n";
        assert!(check_declared(commented, &manifest_kinds(commented).unwrap()).is_ok());
        let other = "apiVersion: v1\nkind: ConfigMap\n";
        let crb = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\n";
        assert_eq!(
            check_declared(other, &manifest_kinds(crb).unwrap()).unwrap_err(),
            "renders an object of kind \"ClusterRoleBinding\", which the template does not name in a top-level `kind:` line; kinds it names: ConfigMap"
        );
    }
}
