//! The Helm deployer: `deploy.sh` and `undeploy.sh`, bash scripts that run
//! `helm upgrade --install` and `kubectl apply` per component in deployment
//! order (reverse for undeploy), with retries and back-off, pre-flight checks
//! before any change, readiness awaited for asynchronous components (from the
//! registry's readiness data), `--only`/`--skip`, `--best-effort`, `--context`,
//! `--dry-run` and a summary table; undeploy.sh removes only what deploy.sh
//! made (namespaces it labelled; CRDs and PVCs on request). The scripts are
//! templates/deploy.sh.j2 and undeploy.sh.j2; every value in them is a
//! validated recipe or registry field, quoted; nothing from `--set` reaches a
//! script.

use serde_json::json;

use super::{component_context, Deployer, Kind};
use crate::bundler::{self, render, Files, Prepared};

pub struct Helm;

impl Deployer for Helm {
    fn kind(&self) -> Kind {
        Kind::Helm
    }

    fn add_files(&self, b: &Prepared, files: &mut Files) -> Result<(), bundler::Error> {
        let components: Vec<_> = b
            .components
            .iter()
            .map(|c| component_context(c, Kind::Helm))
            .collect();
        let ctx = json!({
            "version": env!("CARGO_PKG_VERSION"),
            "components": components,
            "total": components.len(),
        });
        files.add_script("deploy.sh", render::template("deploy.sh.j2", &ctx)?);
        files.add_script("undeploy.sh", render::template("undeploy.sh.j2", &ctx)?);
        Ok(())
    }

    fn next_steps(&self, dir: &str) -> Vec<String> {
        vec![
            format!("cd {}", render::shell_quote_if_needed(dir.to_string())),
            "./deploy.sh --dry-run    # print the commands".into(),
            "./deploy.sh".into(),
        ]
    }
}
