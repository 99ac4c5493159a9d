//! Configuration: `PROTOSTAR_*` environment variables over an optional TOML file.
//!
//! A nested key `database.url` is `[database] url = ...` in the file and
//! `PROTOSTAR_DATABASE__URL` in the environment (`__` separates levels). Any key may instead be
//! given as a file to read, `PROTOSTAR_DATABASE__URL_FILE=/run/secrets/db-url`, which is how
//! Kubernetes Secret mounts reach us. The file named by `PROTOSTAR_CONFIG` is read first and the
//! environment wins over it.
//!
//! Every error names the key both ways, so that the person reading it knows what to fix wherever
//! they set it.

use figment::value::{Dict, Value};
use figment::{Figment, providers::Format, providers::Serialized, providers::Toml};
use serde::de::DeserializeOwned;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

pub const ENV_PREFIX: &str = "PROTOSTAR_";
/// Names the TOML file; not itself a configuration key.
pub const CONFIG_FILE_ENV: &str = "PROTOSTAR_CONFIG";
const FILE_SUFFIX: &str = "_FILE";
const LEVEL_SEPARATOR: &str = "__";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config key `{key}` (environment {env}): {message}")]
    Key {
        key: String,
        env: String,
        message: String,
    },
    #[error("config file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Many(Vec<ConfigError>),
}

impl ConfigError {
    pub fn key(key: &str, message: impl Into<String>) -> Self {
        Self::Key {
            key: key.to_owned(),
            env: env_name(key),
            message: message.into(),
        }
    }

    /// Joins the errors of several sections, so that start-up reports all of them at once.
    pub fn collect(errors: Vec<ConfigError>) -> Result<(), ConfigError> {
        let mut flat = Vec::new();
        for e in errors {
            match e {
                ConfigError::Many(inner) => flat.extend(inner),
                other => flat.push(other),
            }
        }
        match flat.len() {
            0 => Ok(()),
            1 => Err(flat.remove(0)),
            _ => Err(ConfigError::Many(flat)),
        }
    }
}

/// The environment variable that sets a dotted key.
pub fn env_name(key: &str) -> String {
    format!(
        "{ENV_PREFIX}{}",
        key.split('.')
            .map(str::to_ascii_uppercase)
            .collect::<Vec<_>>()
            .join(LEVEL_SEPARATOR)
    )
}

/// Everything configured, not yet typed. Each part of the program takes its own section.
#[derive(Clone)]
pub struct ConfigSource {
    figment: Figment,
}

impl ConfigSource {
    /// Reads the process environment (and the TOML file it names).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(std::env::vars())
    }

    /// Reads the given variables as if they were the environment; tests use this.
    pub fn from_vars(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut file = None;
        let mut env = Dict::new();
        let mut errors = Vec::new();
        for (name, value) in vars {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            if name == CONFIG_FILE_ENV {
                file = Some(PathBuf::from(value));
                continue;
            }
            if let Err(e) = insert_env(&mut env, rest, value) {
                errors.push(e);
            }
        }
        ConfigError::collect(errors)?;

        let mut figment = Figment::new();
        if let Some(path) = file {
            figment = figment.merge(Toml::string(&read_toml(&path)?));
        }
        figment = figment.merge(Serialized::defaults(Value::from(env)));
        Ok(Self { figment })
    }

    /// An empty source: every section takes its defaults.
    pub fn empty() -> Self {
        Self {
            figment: Figment::new(),
        }
    }

    /// Whether anything sets `key` (a dotted path).
    pub fn contains(&self, key: &str) -> bool {
        self.figment.find_value(key).is_ok()
    }

    /// The typed section at `key` ("" for the top level). A missing section deserialises from
    /// nothing, so that a section whose fields all have defaults needs no configuration.
    pub fn section<T: DeserializeOwned>(&self, key: &str) -> Result<T, ConfigError> {
        let result = if key.is_empty() {
            self.figment.extract_lossy::<T>()
        } else if self.contains(key) {
            self.figment.extract_inner_lossy::<T>(key)
        } else {
            Figment::from(Serialized::defaults(Value::from(Dict::new()))).extract_lossy::<T>()
        };
        result.map_err(|e| from_figment(key, e))
    }

    /// Top-level keys that were set; the binary compares them with the sections it knows so that
    /// a misspelt `PROTOSTAR_DATABSE__URL` is an error rather than silently ignored.
    pub fn top_level_keys(&self) -> BTreeSet<String> {
        match self.figment.find_value("") {
            Ok(Value::Dict(_, dict)) => dict.keys().cloned().collect(),
            _ => self
                .figment
                .extract::<Dict>()
                .map(|d| d.keys().cloned().collect())
                .unwrap_or_default(),
        }
    }
}

fn read_toml(path: &Path) -> Result<String, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    // Parse once here so that a syntax error names the file, not a key.
    toml::from_str::<toml::Table>(&text).map_err(|e| ConfigError::File {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    Ok(text)
}

fn insert_env(env: &mut Dict, name: &str, value: String) -> Result<(), ConfigError> {
    let (name, value) = match name.strip_suffix(FILE_SUFFIX) {
        Some(base) if !base.is_empty() => {
            let key = to_key(base);
            let content = std::fs::read_to_string(&value).map_err(|e| {
                ConfigError::key(
                    &key,
                    format!(
                        "cannot read the file {value} given by {ENV_PREFIX}{base}{FILE_SUFFIX}: {e}"
                    ),
                )
            })?;
            // Secret files usually end with a newline that is not part of the secret.
            (base, content.trim_end_matches(['\n', '\r']).to_owned())
        }
        _ => (name, value),
    };
    let key = to_key(name);
    let path: Vec<&str> = key.split('.').collect();
    if path.iter().any(|p| p.is_empty()) {
        return Err(ConfigError::key(&key, "is not a valid key name"));
    }
    let mut dict = env;
    for (i, part) in path.iter().enumerate() {
        if i + 1 == path.len() {
            dict.insert((*part).to_owned(), Value::from(value));
            return Ok(());
        }
        let entry = dict
            .entry((*part).to_owned())
            .or_insert_with(|| Value::from(Dict::new()));
        match entry {
            Value::Dict(_, inner) => dict = inner,
            _ => {
                return Err(ConfigError::key(
                    &key,
                    format!(
                        "conflicts with the value already set for `{}`",
                        path[..=i].join(".")
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn to_key(env_rest: &str) -> String {
    env_rest
        .split(LEVEL_SEPARATOR)
        .map(str::to_ascii_lowercase)
        .collect::<Vec<_>>()
        .join(".")
}

fn from_figment(section: &str, error: figment::Error) -> ConfigError {
    let errors = error
        .into_iter()
        .map(|e| {
            // figment appends the section's own path after the field's (`with_path`), so drop
            // that suffix and put the section in front.
            let section_parts: Vec<String> = section
                .split('.')
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect();
            let mut inner = e.path.clone();
            if inner.ends_with(&section_parts) {
                inner.truncate(inner.len() - section_parts.len());
            }
            let mut path = section_parts;
            path.extend(inner);
            let key = match &e.kind {
                // serde reports a missing field beside the path of its parent.
                figment::error::Kind::MissingField(field) => {
                    let mut p = path.clone();
                    p.push(field.to_string());
                    p.join(".")
                }
                _ => path.join("."),
            };
            ConfigError::key(&key, e.kind.to_string())
        })
        .collect();
    match ConfigError::collect(errors) {
        Err(e) => e,
        Ok(()) => ConfigError::key(section, "is invalid"),
    }
}

/// A list setting, given as a TOML list or, from an environment variable, comma-separated
/// (`PROTOSTAR_NOTI__DISCORD__WEBHOOK_HOSTS=discord.com,ptb.discord.com`). For
/// `#[serde(deserialize_with = "kernel::config::list_or_commas")]`.
pub fn list_or_commas<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Either {
        Text(String),
        List(Vec<String>),
    }
    Ok(match <Either as serde::Deserialize>::deserialize(d)? {
        Either::Text(t) => t
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        Either::List(l) => l,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct Db {
        url: crate::Secret<String>,
        #[serde(default = "ten")]
        max_connections: u32,
        #[serde(default)]
        password: Option<String>,
    }
    fn ten() -> u32 {
        10
    }

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn nested_keys_and_lenient_numbers() {
        let src = ConfigSource::from_vars(vars(&[
            ("PROTOSTAR_DATABASE__URL", "postgres://x"),
            ("PROTOSTAR_DATABASE__MAX_CONNECTIONS", "7"),
            ("PROTOSTAR_DATABASE__PASSWORD", "1234"),
            ("HOME", "/root"),
        ]))
        .unwrap();
        let db: Db = src.section("database").unwrap();
        assert_eq!(db.url.expose(), "postgres://x");
        assert_eq!(db.max_connections, 7);
        // A numeric-looking secret stays the string it was.
        assert_eq!(db.password.as_deref(), Some("1234"));
    }

    #[test]
    fn a_bad_value_names_the_key_and_its_variable() {
        let src = ConfigSource::from_vars(vars(&[
            ("PROTOSTAR_DATABASE__URL", "postgres://x"),
            ("PROTOSTAR_DATABASE__MAX_CONNECTIONS", "many"),
        ]))
        .unwrap();
        let err = src.section::<Db>("database").unwrap_err().to_string();
        assert!(err.contains("`database.max_connections`"), "{err}");
        assert!(
            err.contains("PROTOSTAR_DATABASE__MAX_CONNECTIONS)"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_value_names_the_key() {
        let src =
            ConfigSource::from_vars(vars(&[("PROTOSTAR_DATABASE__MAX_CONNECTIONS", "3")])).unwrap();
        let err = src.section::<Db>("database").unwrap_err().to_string();
        assert!(err.contains("`database.url`"), "{err}");
        assert!(err.contains("PROTOSTAR_DATABASE__URL"), "{err}");
        let empty = ConfigSource::empty();
        let err = empty.section::<Db>("database").unwrap_err().to_string();
        assert!(err.contains("`database.url`"), "{err}");
    }

    #[test]
    fn secrets_come_from_files() {
        let dir = std::env::temp_dir().join(format!("protostar-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let secret = dir.join("db-url");
        std::fs::write(&secret, "postgres://from-file\n").unwrap();
        let src = ConfigSource::from_vars(vars(&[(
            "PROTOSTAR_DATABASE__URL_FILE",
            secret.to_str().unwrap(),
        )]))
        .unwrap();
        let db: Db = src.section("database").unwrap();
        assert_eq!(db.url.expose(), "postgres://from-file");

        let err =
            ConfigSource::from_vars(vars(&[("PROTOSTAR_DATABASE__URL_FILE", "/nonexistent/x")]))
                .err()
                .unwrap()
                .to_string();
        assert!(
            err.contains("database.url") && err.contains("/nonexistent/x"),
            "{err}"
        );
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn the_environment_wins_over_the_file() {
        let dir =
            std::env::temp_dir().join(format!("protostar-config-toml-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("protostar.toml");
        std::fs::write(
            &file,
            "[database]\nurl = \"postgres://file\"\nmax_connections = 3\n",
        )
        .unwrap();
        let src = ConfigSource::from_vars(vars(&[
            ("PROTOSTAR_CONFIG", file.to_str().unwrap()),
            ("PROTOSTAR_DATABASE__URL", "postgres://env"),
        ]))
        .unwrap();
        let db: Db = src.section("database").unwrap();
        assert_eq!(db.url.expose(), "postgres://env");
        assert_eq!(db.max_connections, 3);
        assert!(src.top_level_keys().contains("database"));

        std::fs::write(&file, "[database\n").unwrap();
        let err = ConfigSource::from_vars(vars(&[("PROTOSTAR_CONFIG", file.to_str().unwrap())]))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("protostar.toml"), "{err}");
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn env_names_round_trip() {
        assert_eq!(
            env_name("database.max_connections"),
            "PROTOSTAR_DATABASE__MAX_CONNECTIONS"
        );
        assert_eq!(
            to_key("DATABASE__MAX_CONNECTIONS"),
            "database.max_connections"
        );
    }
}
