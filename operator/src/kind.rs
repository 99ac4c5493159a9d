//! The kinds of object the operator renders, and how each is written and pruned.

use kube::core::{ApiResource, GroupVersionKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Secret,
    PersistentVolumeClaim,
    ConfigMap,
    CnpgCluster,
    RabbitmqCluster,
    Job,
    Deployment,
    Service,
    PodDisruptionBudget,
    HorizontalPodAutoscaler,
    NetworkPolicy,
    CronJob,
    Gateway,
    HttpRoute,
}

impl Kind {
    /// Every kind, in the order a reconcile reads them.
    pub const ALL: [Kind; 14] = [
        Kind::Secret,
        Kind::PersistentVolumeClaim,
        Kind::ConfigMap,
        Kind::CnpgCluster,
        Kind::RabbitmqCluster,
        Kind::Job,
        Kind::Deployment,
        Kind::Service,
        Kind::PodDisruptionBudget,
        Kind::HorizontalPodAutoscaler,
        Kind::NetworkPolicy,
        Kind::CronJob,
        Kind::Gateway,
        Kind::HttpRoute,
    ];

    /// (group, version, kind, plural)
    pub fn gvk(self) -> (&'static str, &'static str, &'static str, &'static str) {
        match self {
            Kind::Secret => ("", "v1", "Secret", "secrets"),
            Kind::PersistentVolumeClaim => {
                ("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims")
            }
            Kind::ConfigMap => ("", "v1", "ConfigMap", "configmaps"),
            Kind::CnpgCluster => ("postgresql.cnpg.io", "v1", "Cluster", "clusters"),
            Kind::RabbitmqCluster => (
                "rabbitmq.com",
                "v1beta1",
                "RabbitmqCluster",
                "rabbitmqclusters",
            ),
            Kind::Job => ("batch", "v1", "Job", "jobs"),
            Kind::Deployment => ("apps", "v1", "Deployment", "deployments"),
            Kind::Service => ("", "v1", "Service", "services"),
            Kind::PodDisruptionBudget => (
                "policy",
                "v1",
                "PodDisruptionBudget",
                "poddisruptionbudgets",
            ),
            Kind::HorizontalPodAutoscaler => (
                "autoscaling",
                "v2",
                "HorizontalPodAutoscaler",
                "horizontalpodautoscalers",
            ),
            Kind::NetworkPolicy => (
                "networking.k8s.io",
                "v1",
                "NetworkPolicy",
                "networkpolicies",
            ),
            Kind::CronJob => ("batch", "v1", "CronJob", "cronjobs"),
            Kind::Gateway => ("gateway.networking.k8s.io", "v1", "Gateway", "gateways"),
            Kind::HttpRoute => ("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes"),
        }
    }

    pub fn api_resource(self) -> ApiResource {
        let (group, version, kind, plural) = self.gvk();
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
    }

    pub fn api_version(self) -> String {
        let (group, version, ..) = self.gvk();
        if group.is_empty() {
            version.to_owned()
        } else {
            format!("{group}/{version}")
        }
    }

    /// Whether the kind is defined by another operator's CRD, which may be missing.
    pub fn is_third_party(self) -> bool {
        matches!(
            self,
            Kind::CnpgCluster | Kind::RabbitmqCluster | Kind::Gateway | Kind::HttpRoute
        )
    }

    /// Objects of this kind that are no longer desired are deleted. Never for data holders
    /// (generated Secrets, volumes, database and broker clusters), and never for Jobs, whose
    /// history is pruned by their own rule.
    pub fn prunable(self) -> bool {
        !self.holds_data() && self != Kind::Job
    }

    /// Kinds whose objects hold data: they get no owner reference and are never deleted.
    pub fn holds_data(self) -> bool {
        matches!(
            self,
            Kind::Secret | Kind::PersistentVolumeClaim | Kind::CnpgCluster | Kind::RabbitmqCluster
        )
    }

    /// Written once with a create and never again: generated Secrets (their content cannot be
    /// rendered twice), volume claims (mostly immutable) and Jobs (immutable pod template).
    pub fn create_only(self) -> bool {
        matches!(self, Kind::Secret | Kind::PersistentVolumeClaim | Kind::Job)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.gvk().2)
    }
}
