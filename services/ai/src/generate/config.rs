//! `ai.generation`: which models answer, in which fallback order, and how patiently.
//!
//! ```toml
//! [ai.generation]
//! order = ["openai", "extractive"]      # PROTOSTAR_AI__GENERATION__ORDER=openai,extractive
//! [ai.generation.openai]
//! base_url = "http://vllm:8000"
//! model = "openai/gpt-oss-120b"
//! ```

use super::ChatModel;
use super::anthropic::{AnthropicChat, AnthropicConfig};
use super::breaker::BreakerSettings;
use super::gemini::{GeminiChat, GeminiConfig};
use super::openai::{OpenAiChat, OpenAiConfig};
use super::resilient::{Policy, Resilient};
use kernel::ConfigError;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

const KEY: &str = "ai.generation";
/// The names `order` may use.
pub const MODEL_NAMES: [&str; 4] = ["extractive", "openai", "gemini", "anthropic"];

/// Config key `ai.generation`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerationConfig {
    /// Models to try, first to last. A list, or comma-separated text (how it arrives from an
    /// environment variable).
    #[serde(
        default = "default_order",
        deserialize_with = "kernel::config::list_or_commas"
    )]
    pub order: Vec<String>,
    /// Per attempt, from the request to the first piece of text. A reasoning model (gpt-oss)
    /// thinks before its first word, so this is generous.
    #[serde(default = "default_first_token")]
    pub timeout_first_token_ms: u64,
    /// Between two pieces of text once an answer has started.
    #[serde(default = "default_idle")]
    pub idle_timeout_ms: u64,
    /// Extra attempts at one model after a quick transient failure (no connection, 429, 5xx)
    /// before any text.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Delay before the first retry; each next one doubles it (half of it random).
    #[serde(default = "default_retry_delay")]
    pub retry_delay_ms: u64,
    #[serde(default)]
    pub breaker: BreakerConfig,
    #[serde(default)]
    pub openai: Option<OpenAiConfig>,
    #[serde(default)]
    pub gemini: Option<GeminiConfig>,
    #[serde(default)]
    pub anthropic: Option<AnthropicConfig>,
}

/// `ai.generation.breaker`: one breaker per model.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerConfig {
    /// Outcomes older than this are forgotten.
    #[serde(default = "default_window")]
    pub window_secs: u64,
    /// Outcomes needed in the window before the breaker may open.
    #[serde(default = "default_min_requests")]
    pub min_requests: usize,
    /// Share of failed outcomes in the window that opens the breaker.
    #[serde(default = "default_ratio")]
    pub failure_ratio: f64,
    /// How long an open breaker skips its model before one probe may try it.
    #[serde(default = "default_open")]
    pub open_secs: u64,
}

fn default_order() -> Vec<String> {
    vec!["extractive".into()]
}
fn default_first_token() -> u64 {
    20_000
}
fn default_idle() -> u64 {
    15_000
}
fn default_retries() -> u32 {
    2
}
fn default_retry_delay() -> u64 {
    250
}
fn default_window() -> u64 {
    60
}
fn default_min_requests() -> usize {
    4
}
fn default_ratio() -> f64 {
    0.5
}
fn default_open() -> u64 {
    30
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            window_secs: default_window(),
            min_requests: default_min_requests(),
            failure_ratio: default_ratio(),
            open_secs: default_open(),
        }
    }
}

impl Default for GenerationConfig {
    fn default() -> Self {
        Self {
            order: default_order(),
            timeout_first_token_ms: default_first_token(),
            idle_timeout_ms: default_idle(),
            retries: default_retries(),
            retry_delay_ms: default_retry_delay(),
            breaker: BreakerConfig::default(),
            openai: None,
            gemini: None,
            anthropic: None,
        }
    }
}

impl GenerationConfig {
    /// Every problem at once, each naming its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut errors = Vec::new();
        let order_key = format!("{KEY}.order");
        if self.order.is_empty() {
            errors.push(ConfigError::key(
                &order_key,
                "names no model; use `extractive` for the offline one",
            ));
        }
        for (i, name) in self.order.iter().enumerate() {
            if !MODEL_NAMES.contains(&name.as_str()) {
                errors.push(ConfigError::key(
                    &order_key,
                    format!(
                        "`{name}` is no model; the names are {}",
                        MODEL_NAMES.join(", ")
                    ),
                ));
            } else if self.order[..i].contains(name) {
                errors.push(ConfigError::key(
                    &order_key,
                    format!("names `{name}` twice"),
                ));
            } else if !self.has_section(name) {
                errors.push(ConfigError::key(
                    &order_key,
                    format!("names `{name}`, but `{KEY}.{name}` is not set"),
                ));
            }
        }
        let mut bound = |key: &str, value: u64, min: u64, max: u64| {
            if !(min..=max).contains(&value) {
                errors.push(ConfigError::key(
                    &format!("{KEY}.{key}"),
                    format!("must be between {min} and {max} (got {value})"),
                ));
            }
        };
        bound(
            "timeout_first_token_ms",
            self.timeout_first_token_ms,
            1,
            600_000,
        );
        bound("idle_timeout_ms", self.idle_timeout_ms, 1, 600_000);
        bound("retries", u64::from(self.retries), 0, 10);
        bound("retry_delay_ms", self.retry_delay_ms, 0, 60_000);
        bound("breaker.window_secs", self.breaker.window_secs, 1, 3600);
        bound(
            "breaker.min_requests",
            self.breaker.min_requests as u64,
            1,
            1000,
        );
        bound("breaker.open_secs", self.breaker.open_secs, 1, 3600);
        if !(self.breaker.failure_ratio > 0.0 && self.breaker.failure_ratio <= 1.0) {
            errors.push(ConfigError::key(
                &format!("{KEY}.breaker.failure_ratio"),
                format!(
                    "must be above 0 and at most 1 (got {})",
                    self.breaker.failure_ratio
                ),
            ));
        }
        let mut endpoint = |section: &str, base_url: &str, model: &str| {
            if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
                errors.push(ConfigError::key(
                    &format!("{KEY}.{section}.base_url"),
                    format!("must be an http:// or https:// address (got `{base_url}`)"),
                ));
            }
            if model.trim().is_empty() {
                errors.push(ConfigError::key(
                    &format!("{KEY}.{section}.model"),
                    "must not be empty",
                ));
            }
        };
        if let Some(c) = &self.openai {
            endpoint("openai", &c.base_url, &c.model);
        }
        if let Some(c) = &self.gemini {
            endpoint("gemini", &c.base_url, &c.model);
        }
        if let Some(c) = &self.anthropic {
            endpoint("anthropic", &c.base_url, &c.model);
        }
        ConfigError::collect(errors)
    }

    fn has_section(&self, name: &str) -> bool {
        match name {
            "extractive" => true,
            "openai" => self.openai.is_some(),
            "gemini" => self.gemini.is_some(),
            "anthropic" => self.anthropic.is_some(),
            _ => false,
        }
    }

    /// The timing and breaker settings as the chain uses them.
    pub fn policy(&self) -> Policy {
        Policy {
            first_token: Duration::from_millis(self.timeout_first_token_ms),
            idle: Duration::from_millis(self.idle_timeout_ms),
            retries: self.retries,
            retry_delay: Duration::from_millis(self.retry_delay_ms),
            breaker: BreakerSettings {
                window: Duration::from_secs(self.breaker.window_secs),
                min_requests: self.breaker.min_requests,
                failure_ratio: self.breaker.failure_ratio,
                open_for: Duration::from_secs(self.breaker.open_secs),
            },
        }
    }
}

/// The configured models in their order, behind one resilient [`ChatModel`]. `extractive` is
/// the offline model the caller built. Fails, naming the key, on a configuration
/// [`GenerationConfig::validate`] refuses.
pub fn build(
    config: &GenerationConfig,
    extractive: Arc<dyn ChatModel>,
) -> Result<Arc<dyn ChatModel>, String> {
    config.validate().map_err(|e| e.to_string())?;
    let mut models: Vec<Arc<dyn ChatModel>> = Vec::with_capacity(config.order.len());
    for name in &config.order {
        let model: Arc<dyn ChatModel> = match (name.as_str(), config) {
            ("extractive", _) => extractive.clone(),
            (
                "openai",
                GenerationConfig {
                    openai: Some(c), ..
                },
            ) => Arc::new(OpenAiChat::new(c.clone())),
            (
                "gemini",
                GenerationConfig {
                    gemini: Some(c), ..
                },
            ) => Arc::new(GeminiChat::new(c.clone())),
            (
                "anthropic",
                GenerationConfig {
                    anthropic: Some(c), ..
                },
            ) => Arc::new(AnthropicChat::new(c.clone())),
            // validate() has refused anything else.
            _ => return Err(format!("{KEY}.order: `{name}` cannot be built")),
        };
        models.push(model);
    }
    Ok(Arc::new(Resilient::new(models, config.policy())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kernel::ConfigSource;

    fn from_env(vars: &[(&str, &str)]) -> Result<GenerationConfig, ConfigError> {
        let source =
            ConfigSource::from_vars(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))?;
        source.section(KEY)
    }

    #[test]
    fn defaults_to_the_extractive_model_alone() {
        let c = from_env(&[]).unwrap();
        assert_eq!(c.order, vec!["extractive"]);
        assert_eq!(c.timeout_first_token_ms, 20_000);
        assert_eq!(c.idle_timeout_ms, 15_000);
        assert_eq!(c.retries, 2);
        assert_eq!(c.breaker.min_requests, 4);
        c.validate().unwrap();
    }

    #[test]
    fn reads_a_chain_from_the_environment() {
        let c = from_env(&[
            ("PROTOSTAR_AI__GENERATION__ORDER", "openai, extractive"),
            ("PROTOSTAR_AI__GENERATION__RETRIES", "1"),
            (
                "PROTOSTAR_AI__GENERATION__OPENAI__BASE_URL",
                "http://vllm:8000",
            ),
            (
                "PROTOSTAR_AI__GENERATION__OPENAI__MODEL",
                "openai/gpt-oss-120b",
            ),
            ("PROTOSTAR_AI__GENERATION__OPENAI__API_KEY", "sk-secret"),
            ("PROTOSTAR_AI__GENERATION__OPENAI__TEMPERATURE", "0.2"),
        ])
        .unwrap();
        assert_eq!(c.order, vec!["openai", "extractive"]);
        assert_eq!(c.retries, 1);
        let o = c.openai.as_ref().unwrap();
        assert_eq!(o.api_key.as_ref().unwrap().expose(), "sk-secret");
        assert_eq!(o.temperature, Some(0.2));
        assert!(!format!("{c:?}").contains("sk-secret"));
        c.validate().unwrap();
    }

    #[test]
    fn a_model_in_the_order_needs_its_section() {
        let c = from_env(&[("PROTOSTAR_AI__GENERATION__ORDER", "gemini,extractive")]).unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("ai.generation.order"), "{e}");
        assert!(e.contains("`ai.generation.gemini` is not set"), "{e}");
        struct Never;
        impl ChatModel for Never {
            fn name(&self) -> &str {
                "extractive"
            }
            fn answer(
                &self,
                _: crate::generate::AnswerRequest,
            ) -> futures::future::BoxFuture<
                '_,
                Result<crate::generate::TokenStream, crate::generate::GenerateError>,
            > {
                Box::pin(async { Err(crate::generate::GenerateError::Refused("no".into())) })
            }
        }
        let e = build(&c, Arc::new(Never)).err().unwrap();
        assert!(e.contains("ai.generation.order"), "{e}");
    }

    #[test]
    fn bad_names_duplicates_and_bounds_are_all_reported() {
        let mut c = GenerationConfig {
            order: vec!["gpt".into(), "extractive".into(), "extractive".into()],
            ..GenerationConfig::default()
        };
        c.idle_timeout_ms = 0;
        c.breaker.failure_ratio = 1.5;
        let e = c.validate().unwrap_err().to_string();
        for needle in [
            "`gpt` is no model",
            "names `extractive` twice",
            "ai.generation.idle_timeout_ms",
            "ai.generation.breaker.failure_ratio",
        ] {
            assert!(e.contains(needle), "{needle} missing from {e}");
        }
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e = from_env(&[("PROTOSTAR_AI__GENERATION__TIMEOUT_MS", "5")]).unwrap_err();
        assert!(e.to_string().contains("timeout_ms"), "{e}");
        let e = from_env(&[
            ("PROTOSTAR_AI__GENERATION__ANTHROPIC__MODEL", "claude"),
            ("PROTOSTAR_AI__GENERATION__ANTHROPIC__API_KEY", "k"),
            ("PROTOSTAR_AI__GENERATION__ANTHROPIC__VERSION", "2023-06-01"),
        ])
        .unwrap_err();
        assert!(e.to_string().contains("version"), "{e}");
    }
}
