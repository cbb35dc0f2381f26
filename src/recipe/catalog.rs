//! The overlay catalog: every `RecipeMetadata` overlay of the data, checked
//! as a whole when loaded (kinds, unique names, existing parents, no
//! inheritance cycles), and the resolution of a query into a `RecipeResult`.

use std::collections::{BTreeMap, BTreeSet};

use super::criteria::Criteria;
use super::metadata::{
    sort_keys, ComponentRef, ComponentType, Constraint, OverlayDoc, OverlaySpec, Validation,
    OVERLAY_KIND,
};
use super::registry::Registry;
use super::result::{RecipeResult, ResultMetadata, RESULT_KIND};
use super::snapshot::{self, Screening};
use super::store::{normalise, DataStore};
use super::Error;
use crate::measurement::Snapshot;
use crate::serializer::{self, API_VERSION};

/// The overlay every other one inherits from when `spec.base` is empty.
pub const ROOT_OVERLAY: &str = "base";

/// The longest `spec.base` chain, the overlay itself and the root included.
pub const MAX_INHERITANCE_DEPTH: usize = 64;

#[derive(Clone, Debug)]
pub struct Overlay {
    pub name: String,
    /// Where it was read from, for messages.
    pub file: String,
    /// The parent; `None` only for the root overlay.
    pub parent: Option<String>,
    pub criteria: Criteria,
    pub spec: OverlaySpec,
}

impl Overlay {
    /// A parsed `RecipeMetadata` document as an overlay: kind and
    /// apiVersion checked, `metadata.name` required, criteria parsed, the
    /// parent named (`base` when `spec.base` is empty). `origin` names the
    /// file in messages. Whether the parent exists is judged by
    /// [`Catalog::load`], which sees every overlay.
    pub fn from_document(value: serde_json::Value, origin: String) -> Result<Overlay, Error> {
        Overlay::from_document_with(value, origin, true)
    }

    /// [`Overlay::from_document`], with the constraint check optional: the
    /// embedded overlays are fixed at build time and their constraints are
    /// checked by a test (`embedded_constraints_parse`), so loading them
    /// does not parse every constraint of every overlay on each run.
    fn from_document_with(
        value: serde_json::Value,
        origin: String,
        check_constraints: bool,
    ) -> Result<Overlay, Error> {
        let doc: OverlayDoc = serializer::typed_document(value, &origin, OVERLAY_KIND, false)?;
        let name = doc.metadata.name.trim().to_string();
        if name.is_empty() {
            return Err(Error::Overlay {
                file: origin,
                detail: "metadata.name is required".into(),
            });
        }
        let criteria = match &doc.spec.criteria {
            Some(raw) => raw.parse().map_err(|e| Error::Overlay {
                file: origin.clone(),
                detail: e.to_string(),
            })?,
            None => Criteria::default(),
        };
        // Constraints are checked as the overlay is loaded, so a recipe
        // never carries one that validate would refuse.
        if check_constraints {
            check_constraints_of(&doc.spec, &origin)?;
        }
        let parent = match doc.spec.base.trim() {
            "" if name == ROOT_OVERLAY => None,
            "" => Some(ROOT_OVERLAY.to_string()),
            p => Some(p.to_string()),
        };
        Ok(Overlay {
            name,
            file: origin,
            parent,
            criteria,
            spec: doc.spec,
        })
    }
}

/// Every constraint of an overlay (top-level and per validation phase)
/// parses, with no duplicates.
fn check_constraints_of(spec: &OverlaySpec, origin: &str) -> Result<(), Error> {
    crate::constraints::parse_all(
        &spec.constraints,
        spec.validation.as_ref().unwrap_or(&Validation::default()),
    )
    .map(drop)
    .map_err(|e| Error::Overlay {
        file: origin.to_string(),
        detail: e.to_string(),
    })
}

#[derive(Debug)]
pub struct Catalog {
    /// Sorted by name.
    pub overlays: Vec<Overlay>,
    pub registry: Registry,
}

impl Catalog {
    /// Loads and checks every overlay and the registry.
    pub fn load(store: &DataStore) -> Result<Catalog, Error> {
        let mut by_name: BTreeMap<String, Overlay> = BTreeMap::new();
        for rel in store.list("overlays") {
            if !(rel.ends_with(".yaml") || rel.ends_with(".yml")) {
                continue;
            }
            let origin = store.origin(&rel);
            let value = store.document(&rel, OVERLAY_KIND)?;
            let overlay = Overlay::from_document_with(value, origin, store.is_external(&rel))?;
            let name = overlay.name.clone();
            if let Some(prev) = by_name.get(&name) {
                return Err(Error::DuplicateOverlay {
                    name,
                    first: prev.file.clone(),
                    second: overlay.file,
                });
            }
            by_name.insert(name, overlay);
        }
        let catalog = Catalog {
            overlays: by_name.into_values().collect(),
            registry: store.registry()?,
        };
        catalog.check_inheritance()?;
        Ok(catalog)
    }

    pub fn get(&self, name: &str) -> Option<&Overlay> {
        self.index(name).map(|i| &self.overlays[i])
    }

    /// Every parent exists, and every chain ends at the root within
    /// [`MAX_INHERITANCE_DEPTH`] overlays, with no cycle. One walk: each
    /// overlay's depth is computed once and reused by its descendants.
    fn check_inheritance(&self) -> Result<(), Error> {
        let mut parent: Vec<Option<usize>> = Vec::with_capacity(self.overlays.len());
        for o in &self.overlays {
            parent.push(match &o.parent {
                None => None,
                Some(p) => Some(self.index(p).ok_or_else(|| {
                    Error::MissingParent {
                        overlay: o.name.clone(),
                        file: o.file.clone(),
                        parent: p.clone(),
                        known: self
                            .overlays
                            .iter()
                            .map(|o| o.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                    }
                })?),
            });
        }
        // depth[i]: overlays from i up to the root, both included; 0 while
        // unknown.
        let mut depth = vec![0usize; self.overlays.len()];
        let mut on_walk = vec![false; self.overlays.len()];
        for start in 0..self.overlays.len() {
            let mut walk: Vec<usize> = Vec::new();
            let mut cur = Some(start);
            let above = loop {
                match cur {
                    None => break 0,
                    Some(i) if depth[i] > 0 => break depth[i],
                    Some(i) if on_walk[i] => {
                        let pos = walk.iter().position(|w| *w == i).unwrap_or(0);
                        let mut names: Vec<&str> = walk[pos..]
                            .iter()
                            .map(|w| self.overlays[*w].name.as_str())
                            .collect();
                        names.push(&self.overlays[i].name);
                        return Err(Error::InheritanceCycle(names.join(" -> ")));
                    }
                    Some(i) => {
                        on_walk[i] = true;
                        walk.push(i);
                        cur = parent[i];
                    }
                }
            };
            for (k, &i) in walk.iter().rev().enumerate() {
                depth[i] = above + k + 1;
                on_walk[i] = false;
                if depth[i] > MAX_INHERITANCE_DEPTH {
                    return Err(self.too_deep(i, &parent));
                }
            }
        }
        Ok(())
    }

    /// The error for an overlay whose chain is too long, naming the chain's
    /// first and last overlays.
    fn too_deep(&self, i: usize, parent: &[Option<usize>]) -> Error {
        let mut names: Vec<&str> = Vec::new();
        let mut cur = Some(i);
        while let Some(c) = cur {
            names.push(&self.overlays[c].name);
            cur = parent[c];
        }
        let chain = if names.len() > 6 {
            format!(
                "{} -> ... -> {}",
                names[..3].join(" -> "),
                names[names.len() - 2..].join(" -> ")
            )
        } else {
            names.join(" -> ")
        };
        Error::InheritanceTooDeep {
            overlay: self.overlays[i].name.clone(),
            file: self.overlays[i].file.clone(),
            chain,
        }
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.overlays
            .binary_search_by(|o| o.name.as_str().cmp(name))
            .ok()
    }

    /// The inheritance chain of `name`, root first.
    pub fn chain(&self, name: &str) -> Result<Vec<&Overlay>, Error> {
        let mut chain: Vec<&Overlay> = Vec::new();
        let mut cur = self.get(name);
        while let Some(o) = cur {
            if let Some(pos) = chain.iter().position(|c| c.name == o.name) {
                let mut names: Vec<&str> = chain[pos..].iter().map(|c| c.name.as_str()).collect();
                names.push(&o.name);
                return Err(Error::InheritanceCycle(names.join(" -> ")));
            }
            chain.push(o);
            cur = o.parent.as_deref().and_then(|p| self.get(p));
        }
        chain.reverse();
        Ok(chain)
    }

    /// Overlays that apply to `query`, in merge order: matching overlays by
    /// (specificity, name), each preceded by its not yet applied ancestors.
    /// Every stated criterion must be honoured by an applied overlay.
    pub fn applied(&self, query: &Criteria) -> Result<Vec<&Overlay>, Error> {
        if query.is_empty() {
            return Err(Error::NoCriteria);
        }
        let mut matched: Vec<&Overlay> = self
            .overlays
            .iter()
            .filter(|o| o.criteria.admits(query))
            .collect();
        matched.sort_by(|a, b| {
            (a.criteria.specificity(), &a.name).cmp(&(b.criteria.specificity(), &b.name))
        });
        let mut applied: Vec<&Overlay> = Vec::new();
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        for m in matched {
            for o in self.chain(&m.name)? {
                if seen.insert(&o.name) {
                    applied.push(o);
                }
            }
        }
        self.check_honoured(query, &applied)?;
        Ok(applied)
    }

    fn check_honoured(&self, query: &Criteria, applied: &[&Overlay]) -> Result<(), Error> {
        for s in query.stated() {
            if applied
                .iter()
                .any(|o| o.criteria.get(s.field) == Some(s.value))
            {
                continue;
            }
            let with_value: Vec<&Overlay> = self
                .overlays
                .iter()
                .filter(|o| o.criteria.get(s.field) == Some(s.value))
                .collect();
            // Prefer the combinations that keep every other stated criterion.
            let consistent: Vec<&Overlay> = with_value
                .iter()
                .copied()
                .filter(|o| {
                    query
                        .stated()
                        .iter()
                        .all(|q| o.criteria.get(q.field).is_none_or(|v| v == q.value))
                })
                .collect();
            let shown = if consistent.is_empty() {
                &with_value
            } else {
                &consistent
            };
            let mut combos: Vec<String> = shown.iter().map(|o| o.criteria.as_flags()).collect();
            combos.sort();
            combos.dedup();
            let asked = query.as_flags();
            let msg = if combos.is_empty() {
                let mut values: Vec<&str> = self
                    .overlays
                    .iter()
                    .filter_map(|o| o.criteria.get(s.field))
                    .collect();
                values.sort_unstable();
                values.dedup();
                format!(
                    "no overlay supports {} {} (asked: {asked}); {} values with overlays: {}; see `aicr recipe --list`",
                    s.flag,
                    s.value,
                    s.field,
                    values.join(", ")
                )
            } else {
                format!(
                    "no overlay honours {} {} together with the other criteria (asked: {asked}); combinations that exist with {} {}:\n  {}\nsee `aicr recipe --list` for all",
                    s.flag,
                    s.value,
                    s.flag,
                    s.value,
                    combos.join("\n  ")
                )
            };
            return Err(Error::NotHonoured(msg));
        }
        Ok(())
    }

    /// Builds the recipe for `query`.
    pub fn resolve(&self, store: &DataStore, query: &Criteria) -> Result<RecipeResult, Error> {
        self.resolve_with(store, query, None)
    }

    /// Builds the recipe for `query`; with a snapshot, the overlays whose
    /// constraints it fails are left out (see [`snapshot::screen`]) and
    /// listed in `metadata.excludedOverlays` and
    /// `metadata.constraintWarnings`. When that leaves a stated criterion
    /// unhonoured, the error names the constraint that excluded what.
    pub fn resolve_with(
        &self,
        store: &DataStore,
        query: &Criteria,
        snap: Option<&Snapshot>,
    ) -> Result<RecipeResult, Error> {
        let mut applied = self.applied(query)?;
        let screening = match snap {
            Some(snap) => snapshot::screen(&applied, snap)?,
            None => Screening::default(),
        };
        if !screening.excluded.is_empty() {
            applied.retain(|o| !screening.is_excluded(&o.name));
            check_left_honoured(query, &applied, &screening)?;
        }
        let mut constraints: BTreeMap<String, Constraint> = BTreeMap::new();
        let mut components: BTreeMap<String, (ComponentRef, &str)> = BTreeMap::new();
        let mut validation = Validation::default();
        for o in &applied {
            for c in &o.spec.constraints {
                constraints.insert(c.name.clone(), c.clone());
            }
            for r in &o.spec.component_refs {
                match components.get_mut(&r.name) {
                    Some((existing, _)) => merge_ref(existing, r),
                    None => {
                        components.insert(r.name.clone(), (r.clone(), o.name.as_str()));
                    }
                }
            }
            if let Some(v) = &o.spec.validation {
                validation.merge(v);
            }
        }
        let mut refs = Vec::with_capacity(components.len());
        for (name, (mut r, overlay)) in components {
            let Some(reg) = self.registry.get(&name) else {
                return Err(Error::UnknownComponent {
                    component: name,
                    overlay: overlay.to_string(),
                    known: self.registry.names().join(", "),
                });
            };
            fill(&mut r.namespace, reg.default_namespace());
            fill(&mut r.chart, reg.default_chart());
            fill(&mut r.source, reg.default_source());
            fill(&mut r.version, reg.default_version());
            if r.kind.is_none() {
                r.kind = if reg.helm.is_some() {
                    Some(ComponentType::Helm)
                } else if reg.kustomize.is_some() {
                    Some(ComponentType::Kustomize)
                } else {
                    None
                };
            }
            let mut overrides = serde_json::Value::Object(std::mem::take(&mut r.overrides));
            sort_keys(&mut overrides);
            if let serde_json::Value::Object(m) = overrides {
                r.overrides = m;
            }
            check_reference(
                store,
                &r.name,
                "valuesFile",
                std::slice::from_ref(&r.values_file),
            )?;
            r.check_manifest_files()
                .map_err(|(path, reason)| Error::BadReference {
                    component: r.name.clone(),
                    field: "manifestFiles",
                    detail: format!("{path:?} {reason}"),
                })?;
            check_reference(store, &r.name, "manifestFiles", &r.manifest_files)?;
            refs.push(r);
        }
        let deployment_order = deployment_order(&refs)?;
        Ok(RecipeResult {
            kind: RESULT_KIND.to_string(),
            api_version: API_VERSION.to_string(),
            metadata: ResultMetadata {
                version: env!("CARGO_PKG_VERSION").to_string(),
                applied_overlays: applied.iter().map(|o| o.name.clone()).collect(),
                excluded_overlays: screening.excluded.into_iter().map(|(o, _)| o).collect(),
                constraint_warnings: screening.warnings,
            },
            criteria: query.clone(),
            constraints: constraints.into_values().collect(),
            component_refs: refs,
            deployment_order,
            validation,
        })
    }
}

/// After the snapshot excluded overlays: every stated criterion is still
/// honoured by an overlay left, or the error says which constraint
/// excluded which overlay that honoured it.
fn check_left_honoured(
    query: &Criteria,
    applied: &[&Overlay],
    screening: &Screening,
) -> Result<(), Error> {
    for s in query.stated() {
        if applied
            .iter()
            .any(|o| o.criteria.get(s.field) == Some(s.value))
        {
            continue;
        }
        let causes: Vec<String> = screening
            .excluded
            .iter()
            .map(|(name, why)| format!("{name}: {why}"))
            .collect();
        return Err(Error::ExcludedBySnapshot(format!(
            "the snapshot rules out {} {} (asked: {}): no overlay left honours it after excluding\n  {}",
            s.flag,
            s.value,
            query.as_flags(),
            causes.join("\n  ")
        )));
    }
    Ok(())
}

fn fill(field: &mut String, default: &str) {
    if field.is_empty() {
        *field = default.to_string();
    }
}

fn check_reference(
    store: &DataStore,
    component: &str,
    field: &'static str,
    paths: &[String],
) -> Result<(), Error> {
    for p in paths.iter().filter(|p| !p.is_empty()) {
        normalise(p).map_err(|e| Error::BadReference {
            component: component.into(),
            field,
            detail: e.to_string(),
        })?;
        if !store.contains(p)? {
            return Err(Error::ReferenceMissing {
                component: component.into(),
                field,
                path: p.clone(),
            });
        }
    }
    Ok(())
}

/// Merges a later overlay's reference to the same component into `base`:
/// non-empty fields win, `overrides` deep-merge, list fields are unions in
/// first-seen order, `cleanup` can only be switched on.
pub fn merge_ref(base: &mut ComponentRef, later: &ComponentRef) {
    for (mine, theirs) in [
        (&mut base.namespace, &later.namespace),
        (&mut base.chart, &later.chart),
        (&mut base.source, &later.source),
        (&mut base.version, &later.version),
        (&mut base.tag, &later.tag),
        (&mut base.path, &later.path),
        (&mut base.values_file, &later.values_file),
        (&mut base.health_check_asserts, &later.health_check_asserts),
    ] {
        if !theirs.is_empty() {
            mine.clone_from(theirs);
        }
    }
    if later.kind.is_some() {
        base.kind = later.kind;
    }
    let mut merged = serde_json::Value::Object(std::mem::take(&mut base.overrides));
    super::metadata::deep_merge(
        &mut merged,
        &serde_json::Value::Object(later.overrides.clone()),
    );
    if let serde_json::Value::Object(m) = merged {
        base.overrides = m;
    }
    for (mine, theirs) in [
        (&mut base.patches, &later.patches),
        (&mut base.dependency_refs, &later.dependency_refs),
        (&mut base.manifest_files, &later.manifest_files),
    ] {
        for t in theirs {
            if !mine.contains(t) {
                mine.push(t.clone());
            }
        }
    }
    base.cleanup |= later.cleanup;
    if !later.expected_resources.is_empty() {
        base.expected_resources
            .clone_from(&later.expected_resources);
    }
}

/// Kahn's algorithm over `dependencyRefs`, always taking the alphabetically
/// first ready component, so the order is total and stable.
pub fn deployment_order(refs: &[ComponentRef]) -> Result<Vec<String>, Error> {
    let names: BTreeSet<&str> = refs.iter().map(|r| r.name.as_str()).collect();
    let mut indegree: BTreeMap<&str, usize> = names.iter().map(|n| (*n, 0)).collect();
    let mut dependents: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for r in refs {
        for d in &r.dependency_refs {
            if !names.contains(d.as_str()) {
                return Err(Error::DependencyMissing {
                    component: r.name.clone(),
                    dependency: d.clone(),
                    known: names.iter().copied().collect::<Vec<_>>().join(", "),
                });
            }
            *indegree
                .get_mut(r.name.as_str())
                .expect("every name has a degree") += 1;
            dependents.entry(d.as_str()).or_default().push(&r.name);
        }
    }
    let mut ready: BTreeSet<&str> = indegree
        .iter()
        .filter(|(_, d)| **d == 0)
        .map(|(n, _)| *n)
        .collect();
    let mut order = Vec::with_capacity(names.len());
    while let Some(n) = ready.pop_first() {
        order.push(n.to_string());
        for dep in dependents.get(n).into_iter().flatten() {
            let d = indegree.get_mut(dep).expect("every name has a degree");
            *d -= 1;
            if *d == 0 {
                ready.insert(dep);
            }
        }
    }
    if order.len() < names.len() {
        return Err(Error::DependencyCycle(describe_cycle(refs, &order)));
    }
    Ok(order)
}

/// Names one cycle among the components left unordered, e.g. `a -> b -> a`.
fn describe_cycle(refs: &[ComponentRef], ordered: &[String]) -> String {
    let left: BTreeMap<&str, &ComponentRef> = refs
        .iter()
        .filter(|r| !ordered.contains(&r.name))
        .map(|r| (r.name.as_str(), r))
        .collect();
    let Some(start) = left.keys().next().copied() else {
        return String::new();
    };
    let mut path = vec![start];
    let mut cur = start;
    loop {
        let next = left[cur]
            .dependency_refs
            .iter()
            .map(String::as_str)
            .filter(|d| left.contains_key(d))
            .min()
            .expect("a component left in a cycle depends on another one left");
        if let Some(pos) = path.iter().position(|p| *p == next) {
            let mut cycle: Vec<&str> = path[pos..].to_vec();
            cycle.push(next);
            return cycle.join(" -> ");
        }
        path.push(next);
        cur = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(name: &str, deps: &[&str]) -> ComponentRef {
        ComponentRef {
            name: name.into(),
            dependency_refs: deps.iter().map(|d| d.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn order_puts_dependencies_first_alphabetically() {
        let refs = [
            r("c", &["a"]),
            r("b", &[]),
            r("a", &[]),
            r("d", &["c", "b"]),
        ];
        assert_eq!(deployment_order(&refs).unwrap(), ["a", "b", "c", "d"]);
    }

    #[test]
    fn cycles_and_missing_dependencies_are_errors() {
        let e = deployment_order(&[r("a", &["b"]), r("b", &["a"]), r("c", &[])]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "dependency cycle between components: a -> b -> a"
        );
        let e = deployment_order(&[r("a", &["zz"])]).unwrap_err();
        assert!(e.to_string().contains("depends on \"zz\""), "{e}");
    }

    /// `Catalog::load` skips the constraint check for embedded overlays
    /// (they cannot change after the build): this is that check.
    #[test]
    fn embedded_constraints_parse() {
        let store = DataStore::embedded();
        let mut parsed = 0;
        for rel in store.list("overlays") {
            assert!(!store.is_external(&rel), "{rel}");
            let value = store.document(&rel, OVERLAY_KIND).unwrap();
            let origin = store.origin(&rel);
            let doc: OverlayDoc =
                serializer::typed_document(value, &origin, OVERLAY_KIND, false).unwrap();
            let all = crate::constraints::parse_all(
                &doc.spec.constraints,
                doc.spec
                    .validation
                    .as_ref()
                    .unwrap_or(&Validation::default()),
            )
            .unwrap_or_else(|e| panic!("{origin}: {e}"));
            parsed += all.len();
        }
        assert!(parsed > 0, "the embedded overlays have constraints");
    }
}
