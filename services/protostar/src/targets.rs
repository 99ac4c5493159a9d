//! The one registration list of targets. Each service adds itself here with its init function
//! and its schema; aliases (`all`) are targets with no init of their own.

use futures::future::BoxFuture;
use kernel::service::{Platform, Routes, ServiceError};
use sqlx::migrate::Migrator;
use std::collections::BTreeSet;

pub type InitFn = for<'a> fn(&'a Platform) -> BoxFuture<'a, Result<Routes, ServiceError>>;

pub struct Target {
    pub name: &'static str,
    pub about: &'static str,
    /// `None` for an alias.
    pub init: Option<InitFn>,
    /// The schema the target owns and its migrations, for `protostar migrate`.
    pub schema: Option<(&'static str, Option<&'static Migrator>)>,
}

/// Every target this binary can run, in start-up order: a target's dependencies come before it.
/// Services register here as they are built.
pub fn registry() -> Vec<Target> {
    vec![
        Target {
            name: gateway::TARGET,
            about: "the front door: both listeners, routes, token check, rate limits, breakers, CORS",
            init: Some(gateway::init),
            schema: None,
        },
        Target {
            name: "auth",
            about: "accounts, passwords, roles, access and refresh tokens, signing keys (JWKS)",
            init: Some(auth::init),
            schema: Some((auth::SCHEMA, Some(&auth::MIGRATOR))),
        },
        Target {
            name: "user",
            about: "profiles, invite codes, account deletion",
            init: Some(user::init),
            schema: Some((user::SCHEMA, Some(&user::MIGRATOR))),
        },
        Target {
            name: chat::TARGET,
            about: "career documents (upload, originals in object storage, ingestion status)",
            init: Some(chat::init),
            schema: Some((chat::SCHEMA, Some(&chat::MIGRATOR))),
        },
        Target {
            name: audit::TARGET,
            about: "the permanent audit trail: audit.* events into hash-chained files",
            init: Some(audit::init),
            schema: Some((audit::SCHEMA, None)),
        },
        Target {
            name: ai::TARGET,
            about: "ingestion of career documents (extraction, chunking, embeddings) and hybrid retrieval",
            init: Some(ai::init),
            schema: Some((ai::SCHEMA, Some(&ai::MIGRATOR))),
        },
        Target {
            name: noti::TARGET,
            about: "notifications: e-mail and Discord from events (resets, welcomes, questions, alerts)",
            init: Some(noti::init),
            schema: Some((noti::SCHEMA, Some(&noti::MIGRATOR))),
        },
    ]
}

pub const ALL: &str = "all";

/// Expands a `--target` list (comma-separated, aliases allowed) into targets in registry order.
pub fn select<'r>(registry: &'r [Target], requested: &[String]) -> Result<Vec<&'r Target>, String> {
    let mut wanted = BTreeSet::new();
    for name in requested
        .iter()
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        if name == ALL {
            wanted.extend(registry.iter().filter(|t| t.init.is_some()).map(|t| t.name));
        } else if registry.iter().any(|t| t.name == name) {
            wanted.insert(
                registry
                    .iter()
                    .find(|t| t.name == name)
                    .map(|t| t.name)
                    .unwrap_or(name),
            );
        } else {
            let known: Vec<&str> = std::iter::once(ALL)
                .chain(registry.iter().map(|t| t.name))
                .collect();
            return Err(format!(
                "unknown target `{name}`; known targets: {}",
                known.join(", ")
            ));
        }
    }
    if requested.is_empty() {
        return Err("name at least one target, or `all`".into());
    }
    Ok(registry
        .iter()
        .filter(|t| wanted.contains(t.name))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noop(_: &Platform) -> BoxFuture<'_, Result<Routes, ServiceError>> {
        Box::pin(async { Ok(Routes::default()) })
    }

    fn fake() -> Vec<Target> {
        ["auth", "user", "chat"]
            .into_iter()
            .map(|name| Target {
                name,
                about: "",
                init: Some(noop),
                schema: None,
            })
            .collect()
    }

    #[test]
    fn all_expands_to_every_target_in_registry_order() {
        let r = fake();
        let names: Vec<&str> = select(&r, &["all".into()])
            .unwrap()
            .iter()
            .map(|t| t.name)
            .collect();
        assert_eq!(names, ["auth", "user", "chat"]);
        let names: Vec<&str> = select(&r, &["chat,auth".into()])
            .unwrap()
            .iter()
            .map(|t| t.name)
            .collect();
        assert_eq!(names, ["auth", "chat"]);
    }

    #[test]
    fn unknown_targets_are_named() {
        let r = fake();
        let err = select(&r, &["chta".into()]).err().unwrap();
        assert!(
            err.contains("`chta`") && err.contains("auth, user, chat"),
            "{err}"
        );
        assert!(select(&r, &[]).is_err());
    }

    #[test]
    fn the_real_registry_has_unique_names_and_schemas() {
        let r = registry();
        let names: BTreeSet<&str> = r.iter().map(|t| t.name).collect();
        assert_eq!(names.len(), r.len());
        assert!(!names.contains(ALL));
        let schemas: Vec<&str> = r.iter().filter_map(|t| t.schema.map(|s| s.0)).collect();
        let unique: BTreeSet<&&str> = schemas.iter().collect();
        assert_eq!(unique.len(), schemas.len());
    }
}
