//! Where a target's listeners are when it runs in another process: the `upstreams` table.
//! The gateway forwards to them; a service that calls another's internal API (chat asking ai)
//! reads the same entry, so one setting says where a target lives.
//!
//! `upstreams.chat = "http://chat:8080"` (public listener only) or
//! `upstreams.chat = { public = "http://chat:8080", admin = "http://chat:8081" }`.

use crate::config::{ConfigError, ConfigSource};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamUrls {
    pub public: Option<http::Uri>,
    pub admin: Option<http::Uri>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum UpstreamSetting {
    Public(String),
    Both {
        #[serde(default)]
        public: Option<String>,
        #[serde(default)]
        admin: Option<String>,
    },
}

/// Every entry of `upstreams`, with every bad one named.
pub fn read(config: &ConfigSource) -> Result<BTreeMap<String, UpstreamUrls>, Vec<ConfigError>> {
    let mut upstreams = BTreeMap::new();
    if !config.contains("upstreams") {
        return Ok(upstreams);
    }
    let map = config
        .section::<BTreeMap<String, UpstreamSetting>>("upstreams")
        .map_err(|e| vec![e])?;
    let mut errors = Vec::new();
    for (target, setting) in map {
        match parse(&target, setting) {
            Ok(urls) => {
                upstreams.insert(target, urls);
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(upstreams)
    } else {
        Err(errors)
    }
}

fn parse(target: &str, setting: UpstreamSetting) -> Result<UpstreamUrls, ConfigError> {
    let (public, admin) = match setting {
        UpstreamSetting::Public(p) => (Some(p), None),
        UpstreamSetting::Both { public, admin } => (public, admin),
    };
    let parse = |which: &str, url: Option<String>| -> Result<Option<http::Uri>, ConfigError> {
        let Some(url) = url else { return Ok(None) };
        let key = if which.is_empty() {
            format!("upstreams.{target}")
        } else {
            format!("upstreams.{target}.{which}")
        };
        let uri: http::Uri = url
            .parse()
            .map_err(|_| ConfigError::key(&key, format!("`{url}` is not a URL")))?;
        if uri.scheme_str() != Some("http") || uri.authority().is_none() {
            return Err(ConfigError::key(
                &key,
                format!("`{url}` must be an http:// URL with a host (TLS ends at the edge)"),
            ));
        }
        Ok(Some(uri))
    };
    Ok(UpstreamUrls {
        public: parse(if admin.is_none() { "" } else { "public" }, public)?,
        admin: parse("admin", admin)?,
    })
}
