//! The `Protostar` custom resource: one object describes a whole Protostar installation.
//!
//! Validation lives in the generated OpenAPI schema (ranges, enums, patterns) and in CEL rules
//! (`x-kubernetes-validations`) so that `kubectl apply` refuses a bad spec before the operator
//! ever sees it. Fields whose change would lose data (how the database or broker is provided,
//! storage classes) are immutable through transition rules (`self == oldSelf`).
//!
//! The YAML under `crds/` is generated from these types by `cargo run -p protostar-crds --bin
//! protostar-crdgen`; the test `crd_yaml_is_fresh` fails when the committed file is stale.

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, CustomResourceExt, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// API group of every Protostar resource.
pub const GROUP: &str = "protostar.dev";
/// The one served and stored version.
pub const VERSION: &str = "v1alpha1";
/// File name of the generated CRD, relative to the crate root.
pub const CRD_FILE: &str = "protostar.dev_protostars.yaml";

/// Desired state of one Protostar installation.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "protostar.dev",
    version = "v1alpha1",
    kind = "Protostar",
    plural = "protostars",
    shortname = "ps",
    namespaced,
    status = "ProtostarStatus",
    derive = "PartialEq",
    doc = "A Protostar installation: services, data stores, routes and scheduled jobs",
    // Children are named `<name>-<suffix>`: Service names must be DNS-1035 labels and CronJob
    // names at most 52 characters, hence a short name that starts with a letter.
    validation = Rule::new("size(self.metadata.name) <= 30 && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')").message("metadata.name must be a DNS-1035 label of at most 30 characters"),
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Version","type":"string","jsonPath":".status.version"}"#,
    printcolumn = r#"{"name":"Desired","type":"string","jsonPath":".spec.version","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ProtostarSpec {
    /// Release to run, e.g. `1.4.2`. Changing it runs the migration Job of that release, then
    /// rolls every service to it.
    #[schemars(length(min = 1, max = 63), pattern(r"^[0-9A-Za-z][0-9A-Za-z._-]*$"))]
    pub version: String,
    /// The one image carrying the `protostar` binary; its tag is `spec.version`.
    #[serde(default)]
    pub image: ImageSpec,
    /// Host names served by the public listener and the admin listener.
    pub hostnames: HostnamesSpec,
    /// Gateway API parent of the routes, and TLS certificates.
    pub gateway: GatewaySpec,
    /// PostgreSQL (with pgvector).
    pub database: DatabaseSpec,
    /// Message broker. `None` keeps events in-process (only sound with one replica per target).
    #[serde(default)]
    pub broker: BrokerSpec,
    /// Redis, used only as a cache (rate limits, JWKS).
    #[serde(default)]
    pub redis: RedisSpec,
    /// Object storage for original documents: an external S3-compatible endpoint (MinIO).
    pub object_storage: ObjectStorageSpec,
    /// Token issuing parameters.
    #[serde(default)]
    pub auth: AuthSpec,
    /// The models that answer and embed (the ai target's `ai.generation`, `ai.embedding`).
    #[serde(default)]
    pub models: ModelsSpec,
    /// Replicas, resources and autoscaling per service target.
    #[serde(default)]
    pub services: ServicesSpec,
    /// Question quotas and the upload limit the chat target enforces.
    #[serde(default)]
    pub quotas: QuotasSpec,
    /// Whose `X-Forwarded-For` the services believe.
    #[serde(default)]
    pub network: NetworkSpec,
    /// Where notifications are delivered.
    #[serde(default)]
    pub notifications: NotificationsSpec,
    /// The audit trail's volume (append-only files written by the audit target).
    #[serde(default)]
    pub audit: AuditSpec,
    /// Periodic jobs, each run as `protostar job NAME` by a CronJob.
    #[serde(default)]
    #[schemars(length(max = 20))]
    #[x_kube(validation = Rule::new("self.all(j, self.exists_one(k, k.name == j.name))").message("job names must be unique"))]
    pub jobs: Vec<ScheduledJob>,
    /// Log filter for every target (`PROTOSTAR_LOG__FILTER`), e.g. `info,protostar=debug`.
    #[serde(default = "default_log_filter")]
    #[schemars(length(min = 1, max = 256))]
    pub log_filter: String,
}

fn default_log_filter() -> String {
    "info".to_owned()
}

/// Container image of the platform.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageSpec {
    /// Repository without tag.
    #[serde(default = "default_repository")]
    #[schemars(length(min = 1, max = 255))]
    pub repository: String,
    #[serde(default)]
    pub pull_policy: PullPolicy,
    /// Names of `kubernetes.io/dockerconfigjson` Secrets in the namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub pull_secrets: Vec<String>,
}

fn default_repository() -> String {
    "ghcr.io/protostar-dev/protostar".to_owned()
}

impl Default for ImageSpec {
    fn default() -> Self {
        Self {
            repository: default_repository(),
            pull_policy: PullPolicy::default(),
            pull_secrets: Vec::new(),
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum PullPolicy {
    #[default]
    IfNotPresent,
    Always,
    Never,
}

impl PullPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::IfNotPresent => "IfNotPresent",
            PullPolicy::Always => "Always",
            PullPolicy::Never => "Never",
        }
    }
}

/// Host names. The public side (chatbot, widget, API) and the admin side are separate listeners
/// so that an overloaded public side never locks the admin out.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostnamesSpec {
    #[schemars(
        length(min = 1, max = 16),
        inner(
            length(min = 1, max = 253),
            pattern(r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
        )
    )]
    pub public: Vec<String>,
    #[schemars(
        length(min = 1, max = 253),
        pattern(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub admin: String,
}

/// Either create a Gateway of a class, or attach the routes to an existing Gateway.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.className) != has(self.existing)").message("set exactly one of gateway.className (create a Gateway) or gateway.existing (attach to one)"))]
#[x_kube(validation = Rule::new("!has(self.className) || has(self.tls)").message("a created Gateway needs gateway.tls certificate references"))]
pub struct GatewaySpec {
    /// GatewayClass of the Gateway the operator creates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub class_name: Option<String>,
    /// An existing Gateway the routes attach to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub existing: Option<ExistingGateway>,
    /// Certificates for the HTTPS listeners of a created Gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSpec>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExistingGateway {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Defaults to the Protostar's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub namespace: Option<String>,
    /// Listener (section) for the public routes; any listener when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub public_section_name: Option<String>,
    /// Listener (section) for the admin route; any listener when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub admin_section_name: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TlsSpec {
    /// `kubernetes.io/tls` Secret for the public host names.
    pub public_certificate_ref: SecretRef,
    /// `kubernetes.io/tls` Secret for the admin host name.
    pub admin_certificate_ref: SecretRef,
}

/// A Secret in the Protostar's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    #[schemars(
        length(min = 1, max = 253),
        pattern(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub name: String,
}

/// A key of a Secret in the Protostar's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    #[schemars(
        length(min = 1, max = 253),
        pattern(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub name: String,
    #[schemars(length(min = 1, max = 253), pattern(r"^[-._a-zA-Z0-9]+$"))]
    pub key: String,
}

/// How a data store is provided.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum StoreMode {
    /// The operator renders it in the cluster.
    #[default]
    Managed,
    /// It runs elsewhere; a Secret holds its URL.
    External,
}

/// PostgreSQL with pgvector.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.mode != 'External' || has(self.external)").message("external database needs a secret reference (database.external.urlSecretRef)"))]
#[x_kube(validation = Rule::new("self.mode != 'Managed' || !has(self.external)").message("a managed database takes no database.external"))]
pub struct DatabaseSpec {
    /// Managed renders a CloudNativePG `Cluster`; switching would orphan the data, so it is
    /// immutable.
    #[serde(default)]
    #[x_kube(validation = Rule::new("self == oldSelf").message("database.mode is immutable: changing it would lose the data"))]
    pub mode: StoreMode,
    #[serde(default)]
    pub managed: ManagedDatabase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalStore>,
}

/// A CloudNativePG cluster.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManagedDatabase {
    /// One primary plus standbys.
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = 9))]
    pub instances: i32,
    /// PostgreSQL image; CloudNativePG's "standard" images ship pgvector.
    #[serde(default = "default_postgres_image")]
    #[schemars(length(min = 1, max = 255))]
    pub image: String,
    #[serde(default)]
    pub storage: StorageSpec,
}

fn default_postgres_image() -> String {
    "ghcr.io/cloudnative-pg/postgresql:17-standard-trixie".to_owned()
}

impl Default for ManagedDatabase {
    fn default() -> Self {
        Self {
            instances: 1,
            image: default_postgres_image(),
            storage: StorageSpec::default(),
        }
    }
}

/// Persistent storage of a managed data store.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct StorageSpec {
    /// A quantity such as `10Gi`; volumes can grow, not shrink.
    #[serde(default = "default_storage_size")]
    #[schemars(pattern(r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$"))]
    pub size: String,
    /// Unset uses the cluster's default class. Immutable: a new class means new volumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("storageClassName is immutable: a new class means new, empty volumes"))]
    pub storage_class_name: Option<String>,
}

fn default_storage_size() -> String {
    "10Gi".to_owned()
}

impl Default for StorageSpec {
    fn default() -> Self {
        Self {
            size: default_storage_size(),
            storage_class_name: None,
        }
    }
}

/// A store that runs elsewhere.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalStore {
    /// Secret key holding the full URL (`postgres://…`, `amqp://…`, `redis://…`).
    pub url_secret_ref: SecretKeyRef,
}

/// How the broker is provided.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum BrokerMode {
    /// A `RabbitmqCluster` rendered for the RabbitMQ cluster operator.
    #[default]
    Managed,
    External,
    /// Events stay in-process.
    None,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.mode != 'External' || has(self.external)").message("external broker needs a secret reference (broker.external.urlSecretRef)"))]
pub struct BrokerSpec {
    /// Immutable: queues of a managed broker hold undelivered events.
    #[serde(default)]
    #[x_kube(validation = Rule::new("self == oldSelf").message("broker.mode is immutable: undelivered events would be lost"))]
    pub mode: BrokerMode,
    #[serde(default)]
    pub managed: ManagedBroker,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalStore>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManagedBroker {
    /// RabbitMQ wants an odd number of nodes for quorum queues.
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = 7))]
    #[x_kube(validation = Rule::new("self % 2 == 1").message("broker replicas must be odd"))]
    pub replicas: i32,
    #[serde(default)]
    pub storage: StorageSpec,
}

impl Default for ManagedBroker {
    fn default() -> Self {
        Self {
            replicas: 1,
            storage: StorageSpec::default(),
        }
    }
}

/// How Redis is provided. It is only a cache, so switching loses nothing.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum RedisMode {
    /// A one-replica Deployment with no persistence.
    #[default]
    Managed,
    External,
    /// The services fall back to in-process caches and rate limits.
    None,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.mode != 'External' || has(self.external)").message("external redis needs a secret reference (redis.external.urlSecretRef)"))]
pub struct RedisSpec {
    #[serde(default)]
    pub mode: RedisMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalStore>,
    /// Resources of the managed Redis container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

/// External S3-compatible object storage.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectStorageSpec {
    /// e.g. `https://minio.home.arpa:9000`.
    #[schemars(length(min = 1, max = 2048), pattern(r"^https?://"))]
    pub endpoint: String,
    #[schemars(length(min = 3, max = 63), pattern(r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$"))]
    pub bucket: String,
    #[serde(default = "default_region")]
    #[schemars(length(min = 1, max = 64))]
    pub region: String,
    /// Secret with the keys `accessKeyId` and `secretAccessKey`.
    pub credentials_secret_ref: SecretRef,
}

fn default_region() -> String {
    "us-east-1".to_owned()
}

/// Parameters of the tokens the auth target issues. Signing keys are generated by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthSpec {
    /// `iss` of issued tokens; defaults to `https://<first public host name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    pub issuer: Option<String>,
    /// `aud` of issued tokens; defaults to `protostar`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub audience: Option<String>,
}

/// The ai target's models (`ai.generation`, `ai.embedding`); rendered into the ai Deployment
/// only, with API keys mounted from Secrets as files.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelsSpec {
    /// Which models answer, in fallback order (`ai.generation`). Unset: the offline
    /// extractive model alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<GenerationSpec>,
    /// The model that embeds passages and questions (`ai.embedding`). Unset: the local
    /// multilingual-e5-small folder the binary looks for by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding: Option<EmbeddingSpec>,
}

/// A model `ai.generation.order` may name.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum AnswerModel {
    /// Offline: quotes the best supporting passages; needs no section.
    Extractive,
    /// Any server speaking the OpenAI chat API (vLLM, Ollama, hosted gpt-oss, OpenAI).
    OpenAI,
    Gemini,
    Anthropic,
}

impl AnswerModel {
    /// The name the ai service uses in `ai.generation.order`.
    pub fn as_str(self) -> &'static str {
        match self {
            AnswerModel::Extractive => "extractive",
            AnswerModel::OpenAI => "openai",
            AnswerModel::Gemini => "gemini",
            AnswerModel::Anthropic => "anthropic",
        }
    }
}

/// `ai.generation`: the models to try, first to last, and how each is reached.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!self.order.exists(m, m == 'OpenAI') || has(self.openai)").message("models.generation.order names OpenAI: set models.generation.openai"))]
#[x_kube(validation = Rule::new("!self.order.exists(m, m == 'Gemini') || has(self.gemini)").message("models.generation.order names Gemini: set models.generation.gemini"))]
#[x_kube(validation = Rule::new("!self.order.exists(m, m == 'Anthropic') || has(self.anthropic)").message("models.generation.order names Anthropic: set models.generation.anthropic"))]
pub struct GenerationSpec {
    /// `ai.generation.order`, e.g. `[OpenAI, Extractive]`: a remote model first, the offline
    /// one when it fails.
    #[schemars(length(min = 1, max = 4))]
    #[x_kube(validation = Rule::new("self.all(m, self.exists_one(n, n == m))").message("a model may appear once in models.generation.order"))]
    pub order: Vec<AnswerModel>,
    /// `ai.generation.openai`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openai: Option<OpenAiModel>,
    /// `ai.generation.gemini`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gemini: Option<HostedModel>,
    /// `ai.generation.anthropic`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anthropic: Option<HostedModel>,
}

/// A server speaking the OpenAI chat API; local servers usually need no key.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpenAiModel {
    /// The server without `/v1`, e.g. `http://vllm:8000` or `https://api.openai.com`.
    #[schemars(length(min = 1, max = 2048), pattern(r"^https?://"))]
    pub base_url: String,
    /// e.g. `openai/gpt-oss-120b`.
    #[schemars(length(min = 1, max = 256))]
    pub model: String,
    /// Sent as `Authorization: Bearer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_secret_ref: Option<SecretKeyRef>,
}

/// A hosted model API (Gemini, Anthropic): the key is required, the address has a default.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostedModel {
    /// Unset: the provider's public API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048), pattern(r"^https?://"))]
    pub base_url: Option<String>,
    /// e.g. `gemini-2.5-flash`, `claude-sonnet-4-5`.
    #[schemars(length(min = 1, max = 256))]
    pub model: String,
    pub api_key_secret_ref: SecretKeyRef,
}

/// An `ai.embedding` provider. The index holds 384 values per vector, so a remote model must
/// give 384 dimensions.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum EmbeddingProvider {
    /// A model folder in the pod (multilingual-e5-small).
    Local,
    /// Any server with the OpenAI embeddings API (vLLM, Ollama, OpenAI).
    OpenAI,
    Gemini,
}

impl EmbeddingProvider {
    /// The name the ai service uses in `ai.embedding.provider`.
    pub fn as_str(self) -> &'static str {
        match self {
            EmbeddingProvider::Local => "local",
            EmbeddingProvider::OpenAI => "openai",
            EmbeddingProvider::Gemini => "gemini",
        }
    }
}

/// `ai.embedding`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.provider == 'Local' || has(self.model)").message("a remote embedding provider needs models.embedding.model"))]
#[x_kube(validation = Rule::new("self.provider != 'OpenAI' || has(self.baseUrl)").message("an OpenAI embedding provider needs models.embedding.baseUrl"))]
#[x_kube(validation = Rule::new("self.provider != 'Gemini' || has(self.apiKeySecretRef)").message("a Gemini embedding provider needs models.embedding.apiKeySecretRef"))]
#[x_kube(validation = Rule::new("self.provider != 'Local' || (!has(self.baseUrl) && !has(self.model) && !has(self.apiKeySecretRef))").message("a Local embedding provider takes only modelDir"))]
#[x_kube(validation = Rule::new("self.provider == 'Local' || !has(self.modelDir)").message("modelDir is for the Local embedding provider only"))]
pub struct EmbeddingSpec {
    pub provider: EmbeddingProvider,
    /// Local: the model folder inside the pod; unset, the binary's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 4096), pattern(r"^/"))]
    pub model_dir: Option<String>,
    /// OpenAI: the server (`/v1/embeddings` is appended); Gemini: unset for Google's API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048), pattern(r"^https?://"))]
    pub base_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_secret_ref: Option<SecretKeyRef>,
}

/// One entry per service target; unset entries take the defaults.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServicesSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<TargetSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<TargetSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<TargetSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat: Option<TargetSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ai: Option<TargetSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noti: Option<TargetSpec>,
    /// The audit trail has one writer (its files form a hash chain), so one replica at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("!has(self.autoscaling) && (!has(self.replicas) || self.replicas <= 1)").message("audit has a single writer: at most one replica and no autoscaling"))]
    pub audit: Option<TargetSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psych: Option<TargetSpec>,
}

/// Sizing of one service target.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.autoscaling) || !has(self.replicas)").message("set replicas or autoscaling, not both"))]
pub struct TargetSpec {
    /// Fixed replica count (default 2, so a rolling update or a node drain keeps one serving).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 50))]
    pub replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<AutoscalingSpec>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.minReplicas <= self.maxReplicas").message("autoscaling.minReplicas must not exceed maxReplicas"))]
pub struct AutoscalingSpec {
    #[schemars(range(min = 1, max = 50))]
    pub min_replicas: i32,
    #[schemars(range(min = 1, max = 50))]
    pub max_replicas: i32,
    #[serde(default = "default_cpu_target")]
    #[schemars(range(min = 10, max = 100))]
    pub target_cpu_utilization_percentage: i32,
}

fn default_cpu_target() -> i32 {
    75
}

/// The audit trail's persistent volume. It holds data: no owner reference, never deleted by the
/// operator.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditSpec {
    #[serde(default)]
    pub storage: StorageSpec,
}

/// The chat target's question quotas (`chat.quotas.*`) and upload limit; unset means the
/// service's default. Rendered into the chat Deployment only.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct QuotasSpec {
    /// Questions one guest may ask, in total (`chat.quotas.guest_total`, default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1_000_000))]
    pub guest_total: Option<i32>,
    /// Questions a stargazer may ask per day (`chat.quotas.stargazer_per_day`, default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1_000_000))]
    pub stargazer_per_day: Option<i32>,
    /// Guest questions from one client address per day, whatever guest tokens it uses
    /// (`chat.quotas.guest_ip_per_day`, default 10); see `network.trustedProxies`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1_000_000))]
    pub guest_ip_per_day: Option<i32>,
    /// Questions one chatbot answers per day to guests and stargazers together
    /// (`chat.quotas.chatbot_per_day`, default 500).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1_000_000))]
    pub chatbot_per_day: Option<i32>,
    /// IANA time zone where a quota day starts (`chat.quotas.timezone`, default `Asia/Seoul`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64), pattern(r"^[A-Za-z0-9/_+-]+$"))]
    pub timezone: Option<String>,
    /// Largest career document accepted, in MiB (`chat.content.max_upload_bytes`, default 20);
    /// the gateway's upload limit follows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1024))]
    pub max_upload_megabytes: Option<i32>,
}

/// Which proxies' `X-Forwarded-For` the services believe, so that per-address quotas, rate
/// limits and login backoff count clients rather than proxies.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkSpec {
    /// Addresses or CIDRs of the proxies in front of the chat and auth targets, i.e. the
    /// in-cluster gateway (`chat.trusted_proxies`, `auth.trusted_proxies`). Default: the
    /// private ranges. That is safe because NetworkPolicies let only this instance's own pods
    /// reach those listeners, and of them only the gateway forwards outside requests, setting
    /// `X-Forwarded-For` itself; pod addresses change, so a range is the only stable name.
    /// Narrow it to the pod CIDR if the cluster does not enforce NetworkPolicies.
    #[serde(default = "default_trusted_proxies")]
    #[schemars(
        length(max = 32),
        inner(length(min = 2, max = 49), pattern(r"^[0-9A-Fa-f.:]+(/[0-9]{1,3})?$"))
    )]
    pub trusted_proxies: Vec<String>,
    /// Addresses or CIDRs of the proxies in front of the gateway: the Gateway API data plane
    /// or an edge proxy (`gateway.trusted_proxies`). Unset: the gateway believes no
    /// `X-Forwarded-For` and takes its peer for the client. The gateway is reachable from
    /// anywhere, so name only the data plane's addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 32),
        inner(length(min = 2, max = 49), pattern(r"^[0-9A-Fa-f.:]+(/[0-9]{1,3})?$"))
    )]
    pub gateway_trusted_proxies: Vec<String>,
}

/// RFC 1918 and IPv6 unique-local ranges: where pod addresses come from.
pub fn default_trusted_proxies() -> Vec<String> {
    ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"]
        .map(String::from)
        .to_vec()
}

impl Default for NetworkSpec {
    fn default() -> Self {
        Self {
            trusted_proxies: default_trusted_proxies(),
            gateway_trusted_proxies: Vec::new(),
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotificationsSpec {
    /// Secret key holding the Discord webhook URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discord_webhook_secret_ref: Option<SecretKeyRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp: Option<SmtpSpec>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SmtpSpec {
    #[schemars(length(min = 1, max = 253))]
    pub host: String,
    #[serde(default = "default_smtp_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// Sender address.
    #[schemars(length(min = 3, max = 320), pattern(r"^[^@\s]+@[^@\s]+$"))]
    pub from: String,
    /// Secret with the keys `username` and `password`.
    pub credentials_secret_ref: SecretRef,
}

fn default_smtp_port() -> i32 {
    587
}

/// A periodic `protostar job NAME`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduledJob {
    /// Job name as the binary knows it, e.g. `recrawl` (short: it ends up in a CronJob name).
    #[schemars(length(min = 1, max = 17), pattern(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub name: String,
    /// Cron schedule, e.g. `0 3 * * *`.
    #[schemars(length(min = 9, max = 100))]
    pub schedule: String,
    #[serde(default)]
    pub suspend: bool,
}

fn one() -> i32 {
    1
}

/// Observed state, written only by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProtostarStatus {
    /// Generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Version the services run now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Last version whose migration Job succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrated_version: Option<String>,
    /// `Ready`, `Progressing`, `Degraded`, then one condition per component.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

/// The CRD as Kubernetes reads it.
pub fn crd() -> CustomResourceDefinition {
    Protostar::crd()
}

/// The CRD rendered as the YAML file committed under `crds/`.
pub fn crd_yaml() -> Result<String, serde_norway::Error> {
    let body = serde_norway::to_string(&crd())?;
    Ok(format!(
        "# Generated by `cargo run -p protostar-crds --bin protostar-crdgen`; do not edit.\n{body}"
    ))
}

impl ServicesSpec {
    /// The sizing given for a target, by its name (`gateway`, `auth`, ...); unknown names have none.
    pub fn for_target(&self, target: &str) -> Option<&TargetSpec> {
        match target {
            "gateway" => self.gateway.as_ref(),
            "auth" => self.auth.as_ref(),
            "user" => self.user.as_ref(),
            "chat" => self.chat.as_ref(),
            "ai" => self.ai.as_ref(),
            "noti" => self.noti.as_ref(),
            "audit" => self.audit.as_ref(),
            "psych" => self.psych.as_ref(),
            _ => None,
        }
    }
}
