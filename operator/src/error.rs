//! The operator's one error type. Each variant's `metric_label` names it in the error counter.

use crate::kind::Kind;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Protostar has no namespace or name: only a hand-built object gets here.
    #[error("the Protostar resource has no namespace or name")]
    MissingIdentity,
    #[error("cannot list {kind}: {source}")]
    List {
        kind: Kind,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("cannot write {kind} {name}: {source}")]
    Write {
        kind: Kind,
        name: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("cannot delete {kind} {name}: {source}")]
    Delete {
        kind: Kind,
        name: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("cannot write the status: {0}")]
    Status(#[source] Box<kube::Error>),
    /// A managed store or the routes need another operator's CRD, and it is not installed.
    #[error("{kind} is not served by this cluster: install its operator or CRDs")]
    MissingCrd { kind: Kind },
    #[error("cannot decode {kind} {name}: {source}")]
    Decode {
        kind: Kind,
        name: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("leader election: {0}")]
    Lease(#[source] Box<kube::Error>),
    #[error("the leader lease was taken by another replica")]
    LeaseLost,
}

impl Error {
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::MissingIdentity => "missing_identity",
            Error::List { .. } => "list",
            Error::Write { .. } => "write",
            Error::Delete { .. } => "delete",
            Error::Status(_) => "status",
            Error::MissingCrd { .. } => "missing_crd",
            Error::Decode { .. } => "decode",
            Error::Lease(_) => "lease",
            Error::LeaseLost => "lease_lost",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
