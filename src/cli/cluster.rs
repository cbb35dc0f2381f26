//! The cluster flags shared by every command that talks to a cluster
//! (`-k/--kubeconfig`, `--context`, `-n/--namespace`), declared once here
//! and resolved into [`crate::k8s::ClusterSettings`] before work starts.
//! The environment (`KUBECONFIG`, `HOME`, `KUBERNETES_SERVICE_HOST`) is
//! read here, once; `AICR_KUBECONFIG`, `AICR_CONTEXT` and `AICR_NAMESPACE`
//! are the flags' own (clap's `env`, below the flags, above the config
//! file).

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

    /// Namespace of cm://NAME (a ConfigMap named without one) and of snapshot --agent's objects
    /// [default: the context's namespace; in a pod its own; else default]
    #[arg(
        short = 'n',
        long,
        value_name = "NAMESPACE",
        env = NAMESPACE_ENV,
        help_heading = "Cluster"
    )]
    pub namespace: Option<String>,
}

/// The environment variable of `-n/--namespace` (Go aicr's).
pub const NAMESPACE_ENV: &str = "AICR_NAMESPACE";

impl ClusterArgs {
    /// The settings, with `timeout` as the deadline of each request. The
    /// kubeconfig is read and `--context` checked here too (exit 2 naming
    /// the contexts when it is unknown), and `-n` (or `AICR_NAMESPACE`)
    /// checked, so a bad flag fails before work.
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
        // clap gives -n over AICR_NAMESPACE; the message names the one
        // the value came from.
        let from = match std::env::var(NAMESPACE_ENV) {
            Ok(v) if Some(&v) == self.namespace.as_ref() => NAMESPACE_ENV,
            _ => "-n/--namespace",
        };
        Ok(s.with_namespace(self.namespace.clone(), from)?)
    }
}
