//! `GET /admin/api/health`: every target the gateway routes to, where it runs, and whether it
//! is ready, on one admin page. In-process targets share this process's checks; others are
//! asked for their `/readyz`.

use axum::Json;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use kernel::problem::Problem;
use kernel::telemetry::Readiness;
use kernel::tokens::{Claims, Role};
use serde_json::{Value, json};
use std::time::Duration;

pub enum Placement {
    InProcess,
    Remote(Uri),
    NotDeployed,
}

pub struct Health {
    pub targets: Vec<(&'static str, Placement)>,
    pub readiness: Readiness,
    pub client: reqwest::Client,
    pub limiter: std::sync::Arc<crate::rate_limit::RateLimiter>,
}

impl Health {
    pub async fn answer(&self, claims: Option<&Claims>) -> Response {
        match claims {
            None => {
                return Problem::Unauthenticated("This needs an access token.".into())
                    .into_response();
            }
            Some(c) if !c.role.includes(Role::Admin) => {
                return Problem::Forbidden("This needs the admin role.".into()).into_response();
            }
            Some(_) => {}
        }
        let local = self.readiness.run().await;
        let local_ready = local.iter().all(|(_, r)| r.is_ok());
        let local_checks: serde_json::Map<String, Value> = local
            .into_iter()
            .map(|(n, r)| (n, r.err().map(Value::from).unwrap_or(json!("ok"))))
            .collect();
        let checks = self.targets.iter().map(|(name, placement)| {
            let local_checks = local_checks.clone();
            async move {
                let (placement, ready, detail) = match placement {
                    Placement::InProcess => {
                        ("in-process", local_ready, Value::Object(local_checks))
                    }
                    Placement::NotDeployed => ("not-deployed", false, Value::Null),
                    Placement::Remote(base) => {
                        let (ready, detail) = self.remote(base).await;
                        ("remote", ready, detail)
                    }
                };
                json!({ "target": name, "placement": placement, "ready": ready, "detail": detail })
            }
        });
        let targets = futures::future::join_all(checks).await;
        let all_ready = targets
            .iter()
            .filter(|t| t["placement"] != "not-deployed")
            .all(|t| t["ready"] == true);
        let status = if all_ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        (
            status,
            Json(json!({
                "version": env!("CARGO_PKG_VERSION"),
                "ready": all_ready,
                "rate_limits": self.limiter.backend(),
                "targets": targets,
            })),
        )
            .into_response()
    }

    async fn remote(&self, base: &Uri) -> (bool, Value) {
        let url = format!("{}/readyz", base.to_string().trim_end_matches('/'));
        match tokio::time::timeout(Duration::from_secs(3), self.client.get(&url).send()).await {
            Err(_) => (false, json!("no answer within 3 s")),
            Ok(Err(e)) => (false, json!(format!("unreachable: {e}"))),
            Ok(Ok(res)) => {
                let ok = res.status().is_success();
                let body = res.json::<Value>().await.unwrap_or(Value::Null);
                (ok, body)
            }
        }
    }
}
