//! Writes the generated CRD next to the crate's manifest (or to the path given as argument).

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let path = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(protostar_crds::CRD_FILE)
        });
    let yaml = match protostar_crds::crd_yaml() {
        Ok(yaml) => yaml,
        Err(err) => {
            eprintln!("cannot render the CRD: {err}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(err) = std::fs::write(&path, yaml) {
        eprintln!("cannot write {}: {err}", path.display());
        return ExitCode::FAILURE;
    }
    println!("wrote {}", path.display());
    ExitCode::SUCCESS
}
