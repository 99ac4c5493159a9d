//! Generated Secrets: database and broker credentials (when managed) and the JWT signing key.
//!
//! They are created once and never overwritten: their content cannot be rendered again (it is
//! random), and the data stores and every issued token depend on it. No owner reference
//! either, so deleting the Protostar keeps them with the data they unlock. Rotation is a
//! documented, manual procedure (gitops/README.md, "Rotating generated secrets").

use std::collections::BTreeSet;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use protostar_crds::{BrokerMode, StoreMode};
use rand::RngCore;
use serde_json::json;

use super::{Ctx, Object};
use crate::kind::Kind;

/// Database role and database name in the managed cluster.
pub const DB_USER: &str = "protostar";
pub const DB_NAME: &str = "protostar";
pub const BROKER_USER: &str = "protostar";
/// Key of the full connection URL in the credential Secrets.
pub const URL_KEY: &str = "url";
/// Key of the PEM file in the signing-key Secret.
pub const SIGNING_KEYS_KEY: &str = "signing-keys.pem";

pub fn database_secret(ctx: &Ctx<'_>) -> String {
    ctx.child("db-credentials")
}

pub fn broker_secret(ctx: &Ctx<'_>) -> String {
    ctx.child("broker-credentials")
}

pub fn signing_keys_secret(ctx: &Ctx<'_>) -> String {
    ctx.child("signing-keys")
}

/// Host of the managed database's read-write Service (CloudNativePG names it `<cluster>-rw`).
pub fn database_host(ctx: &Ctx<'_>) -> String {
    format!(
        "{}-rw.{}.svc",
        super::database::cluster_name(ctx),
        ctx.namespace
    )
}

/// Host of the managed broker's client Service (the RabbitMQ operator names it after the cluster).
pub fn broker_host(ctx: &Ctx<'_>) -> String {
    format!("{}.{}.svc", super::broker::cluster_name(ctx), ctx.namespace)
}

/// A password safe to put into a URL unescaped: 32 random bytes, base64url.
fn password(rng: &mut impl RngCore) -> String {
    let mut bytes = [0u8; 32];
    rng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// An Ed25519 private key as a PKCS#8 PEM block (RFC 8410): the fixed DER prefix of a
/// PrivateKeyInfo for id-Ed25519, then the 32-byte seed.
pub fn ed25519_pkcs8_pem(seed: &[u8; 32]) -> String {
    const PREFIX: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    let mut der = PREFIX.to_vec();
    der.extend_from_slice(seed);
    format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        STANDARD.encode(der)
    )
}

fn secret(
    ctx: &Ctx<'_>,
    name: String,
    component: &str,
    type_: &str,
    data: serde_json::Value,
) -> Object {
    Object::new(
        Kind::Secret,
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": ctx.meta(&name, component, false),
            "type": type_,
            "stringData": data,
        }),
    )
}

/// The names of the Secrets this spec needs generated.
pub fn wanted(ctx: &Ctx<'_>) -> Vec<String> {
    let mut names = vec![signing_keys_secret(ctx)];
    if ctx.spec.database.mode == StoreMode::Managed {
        names.push(database_secret(ctx));
    }
    if ctx.spec.broker.mode == BrokerMode::Managed {
        names.push(broker_secret(ctx));
    }
    names
}

/// The generated Secrets that do not exist yet. Randomness is handed in, so the renderer stays
/// a function of its inputs; a name in `existing` is never rendered again, whatever the spec.
pub fn render_missing(
    ctx: &Ctx<'_>,
    existing: &BTreeSet<String>,
    rng: &mut impl RngCore,
) -> Vec<Object> {
    let mut out = Vec::new();
    let missing = |name: &String| !existing.contains(name);

    let name = signing_keys_secret(ctx);
    if missing(&name) {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        out.push(secret(
            ctx,
            name,
            "signing-keys",
            "Opaque",
            json!({ SIGNING_KEYS_KEY: ed25519_pkcs8_pem(&seed) }),
        ));
    }
    let name = database_secret(ctx);
    if ctx.spec.database.mode == StoreMode::Managed && missing(&name) {
        let pw = password(rng);
        let url = format!(
            "postgres://{DB_USER}:{pw}@{}:5432/{DB_NAME}",
            database_host(ctx)
        );
        // basic-auth with `username`/`password` is what CloudNativePG's initdb secret expects.
        out.push(secret(
            ctx,
            name,
            "database",
            "kubernetes.io/basic-auth",
            json!({ "username": DB_USER, "password": pw, URL_KEY: url }),
        ));
    }
    let name = broker_secret(ctx);
    if ctx.spec.broker.mode == BrokerMode::Managed && missing(&name) {
        let pw = password(rng);
        let host = broker_host(ctx);
        let url = format!("amqp://{BROKER_USER}:{pw}@{host}:5672/%2f");
        // The RabbitMQ operator reads `username`, `password`, `host` and `port` from an
        // external default-user Secret (spec.secretBackend.externalSecret).
        out.push(secret(
            ctx,
            name,
            "broker",
            "Opaque",
            json!({
                "username": BROKER_USER,
                "password": pw,
                "host": host,
                "port": "5672",
                "default_user.conf": format!("default_user = {BROKER_USER}\ndefault_pass = {pw}\n"),
                URL_KEY: url,
            }),
        ));
    }
    out
}
