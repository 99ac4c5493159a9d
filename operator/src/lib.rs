//! The Protostar operator: reconciles a `Protostar` resource into the whole stack.

pub mod contract;
pub mod controller;
pub mod diff;
pub mod error;
pub mod fake_api;
pub mod kind;
pub mod leader;
pub mod metrics;
pub mod render;
pub mod status;

pub use error::{Error, Result};
