//! `sqlx::migrate!` reads `migrations/` while compiling, but on stable Rust a macro cannot tell
//! Cargo which files it read: without this line a new migration is left out of an incremental
//! build (the binary then runs without it until something else in the crate changes).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
