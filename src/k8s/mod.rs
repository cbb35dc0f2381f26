//! The Kubernetes client: built from a kubeconfig file or the in-cluster
//! service account, with a request deadline, and its failures turned into
//! plain reasons (unreachable, unauthorized, forbidden) for the collectors.

use std::path::Path;
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};

/// Builds a client; `None` for the path means in-cluster.
pub async fn client(kubeconfig: Option<&Path>, timeout: Duration) -> Result<kube::Client, String> {
    let mut config = match kubeconfig {
        Some(p) => {
            let kc =
                Kubeconfig::read_from(p).map_err(|e| format!("kubeconfig {}: {e}", p.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .map_err(|e| format!("kubeconfig {}: {e}", p.display()))?
        }
        None => kube::Config::incluster().map_err(|e| format!("in-cluster config: {e}"))?,
    };
    config.connect_timeout = Some(timeout);
    config.read_timeout = Some(timeout);
    let url = config.cluster_url.to_string();
    kube::Client::try_from(config).map_err(|e| format!("cannot create a client for {url}: {e}"))
}

/// A reason for a failed request, without the client's wrapping.
pub fn reason(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) if s.code == 401 => format!("unauthorized: {}", s.message),
        kube::Error::Api(s) if s.code == 403 => format!("forbidden: {}", s.message),
        kube::Error::Api(s) => format!("{} ({}): {}", s.reason, s.code, s.message),
        other => {
            let mut msg = other.to_string();
            let mut src = std::error::Error::source(other);
            while let Some(s) = src {
                let m = s.to_string();
                if !msg.contains(&m) {
                    msg.push_str(": ");
                    msg.push_str(&m);
                }
                src = s.source();
            }
            format!("cannot reach the API server: {msg}")
        }
    }
}

/// True when the error says the resource type does not exist (a CRD that
/// is not installed).
pub fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}
