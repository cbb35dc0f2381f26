//! Kubernetes collector: server version, node labels and taints
//! (NodeTopology), images in use and the GPU Operator ClusterPolicy. Without
//! a kubeconfig or in-cluster configuration both measurements say so. The
//! cluster-facing part lands with aicr's Kubernetes client; until then a
//! configured cluster is reported as not collected, never invented.

use super::{ClusterConfig, Collector, Context};
use crate::measurement::{Measurement, MeasurementType};

pub struct Kubernetes;

impl Collector for Kubernetes {
    fn name(&self) -> &'static str {
        "k8s"
    }

    fn kinds(&self) -> &'static [MeasurementType] {
        &[MeasurementType::K8s, MeasurementType::NodeTopology]
    }

    fn collect(&self, ctx: &Context) -> Result<Vec<Measurement>, String> {
        Err(match &ctx.cluster {
            ClusterConfig::None => "no kubeconfig or in-cluster config".to_string(),
            ClusterConfig::Kubeconfig(p) => format!(
                "cluster collection is not built in this version of aicr yet (kubeconfig {} was found)",
                p.display()
            ),
            ClusterConfig::InCluster => {
                "cluster collection is not built in this version of aicr yet (in-cluster config was found)".to_string()
            }
        })
    }
}
