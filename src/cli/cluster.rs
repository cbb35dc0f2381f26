//! The cluster flags shared by the commands that talk to a cluster
//! (`-k/--kubeconfig`, `--context`), resolved into
//! [`crate::k8s::ClusterSettings`] before work starts. The environment
//! (`KUBECONFIG`, `HOME`, `KUBERNETES_SERVICE_HOST`) is read here, once.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::error::Result;
use crate::k8s::{ClusterSettings, Env};

#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// Kubeconfig file (default: $KUBECONFIG, a colon-separated list merged as kubectl does, then ~/.kube/config, then in-cluster)
    #[arg(
        short = 'k',
        long,
        value_name = "FILE",
        env = "AICR_KUBECONFIG",
        help_heading = "Cluster"
    )]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context to use [default: its current-context]
    #[arg(
        long,
        value_name = "NAME",
        env = "AICR_CONTEXT",
        help_heading = "Cluster"
    )]
    pub context: Option<String>,
}

impl ClusterArgs {
    /// The settings, with `timeout` as the deadline of each request. The
    /// kubeconfig is read and `--context` checked here too (exit 2 naming
    /// the contexts when it is unknown), so a bad flag fails before work.
    pub fn resolve(&self, timeout: Duration) -> Result<ClusterSettings> {
        let s = ClusterSettings::resolve(
            self.kubeconfig.clone(),
            self.context.clone(),
            timeout,
            &Env::from_process(),
        )?;
        if s.context.is_some() {
            s.kubeconfig()?;
        }
        Ok(s)
    }
}
