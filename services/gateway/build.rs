//! Embeds the web side (`web/src` at the workspace root) into the gateway at compile time, so
//! that `protostar serve` answers the widget, the pages and their assets with no folder beside
//! it and no network.
//!
//! - `web/src/widget.js` keeps its name: blogs link to `/widget.js` for good.
//! - `web/src/assets/*` get their content hash in the name (`chat.1a2b3c4d5e.js`) so they can
//!   be cached for a year. A module's relative imports (`"./api.js"`) are rewritten to the
//!   hashed names first, so a change in a leaf changes every name that depends on it.
//! - `web/src/pages/*.html` keep their names; their `/assets/NAME` references are rewritten.
//!
//! Each file is stored as is and, when that is smaller, gzipped (served to clients that accept
//! it). The generated table is `$OUT_DIR/web_files.rs`, included by `src/web.rs`.

use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let web = manifest.join("../../web/src");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it"));
    println!("cargo:rerun-if-changed={}", web.display());

    let assets = read_dir(&web.join("assets"));
    let mut hashed: HashMap<String, (String, Vec<u8>)> = HashMap::new();
    for name in assets.keys() {
        resolve(name, &assets, &mut hashed, &mut Vec::new());
    }

    let mut entries = Vec::new();
    for (name, (served, body)) in &hashed {
        entries.push(Entry::new("Asset", name, served, body.clone()));
    }
    for (name, source) in read_dir(&web.join("pages")) {
        let mut text = String::from_utf8(source).expect("pages are UTF-8");
        for (asset, (served, _)) in &hashed {
            text = text.replace(&format!("assets/{asset}\""), &format!("assets/{served}\""));
        }
        entries.push(Entry::new("Page", &name, &name, text.into_bytes()));
    }
    let widget = std::fs::read(web.join("widget.js")).expect("web/src/widget.js exists");
    entries.push(Entry::new("Widget", "widget.js", "widget.js", widget));
    entries.sort_by(|a, b| a.served.cmp(&b.served));

    let mut code = String::from("pub static FILES: &[File] = &[\n");
    for (i, e) in entries.iter().enumerate() {
        let plain = out.join(format!("web-{i}"));
        std::fs::write(&plain, &e.body).expect("write to OUT_DIR");
        let gzip = match gzip(&e.body) {
            Some(z) => {
                let path = out.join(format!("web-{i}.gz"));
                std::fs::write(&path, z).expect("write to OUT_DIR");
                format!("Some(include_bytes!({:?}))", path.display().to_string())
            }
            None => "None".to_owned(),
        };
        code.push_str(&format!(
            "    File {{ kind: Kind::{}, source: {:?}, name: {:?}, content_type: {:?}, etag: {:?}, body: include_bytes!({:?}), gzip: {} }},\n",
            e.kind,
            e.source,
            e.served,
            content_type(&e.served),
            format!("\"{}\"", e.hash),
            plain.display().to_string(),
            gzip,
        ));
    }
    code.push_str("];\n");
    std::fs::write(out.join("web_files.rs"), code).expect("write to OUT_DIR");
}

struct Entry {
    kind: &'static str,
    source: String,
    served: String,
    hash: String,
    body: Vec<u8>,
}

impl Entry {
    fn new(kind: &'static str, source: &str, served: &str, body: Vec<u8>) -> Self {
        Self {
            kind,
            source: source.to_owned(),
            served: served.to_owned(),
            hash: short_hash(&body),
            body,
        }
    }
}

/// The files directly in `dir` (no sub-folders: the layout is flat on purpose), by name.
fn read_dir(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let listing =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{} cannot be read: {e}", dir.display()));
    for entry in listing {
        let entry = entry.expect("a readable folder entry");
        let path = entry.path();
        if !path.is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        files.insert(name, std::fs::read(&path).expect("a readable file"));
    }
    files
}

/// The hashed name and final content of asset `name`, after its own imports are resolved.
fn resolve(
    name: &str,
    assets: &BTreeMap<String, Vec<u8>>,
    done: &mut HashMap<String, (String, Vec<u8>)>,
    stack: &mut Vec<String>,
) -> String {
    if let Some((served, _)) = done.get(name) {
        return served.clone();
    }
    assert!(
        !stack.iter().any(|s| s == name),
        "web/src/assets: import cycle through {name} ({stack:?}); hashed names need a tree"
    );
    stack.push(name.to_owned());
    let source = &assets[name];
    let body = if is_text(name) {
        let mut text = String::from_utf8(source.clone()).expect("text assets are UTF-8");
        for dep in assets.keys().filter(|d| *d != name) {
            for quote in ['"', '\''] {
                let from = format!("{quote}./{dep}{quote}");
                if text.contains(&from) {
                    let served = resolve(dep, assets, done, stack);
                    text = text.replace(&from, &format!("{quote}./{served}{quote}"));
                }
            }
        }
        text.into_bytes()
    } else {
        source.clone()
    };
    stack.pop();
    let served = match name.rsplit_once('.') {
        Some((stem, ext)) => format!("{stem}.{}.{ext}", short_hash(&body)),
        None => format!("{name}.{}", short_hash(&body)),
    };
    done.insert(name.to_owned(), (served.clone(), body));
    served
}

fn is_text(name: &str) -> bool {
    [".js", ".css", ".svg", ".html", ".json"]
        .iter()
        .any(|e| name.ends_with(e))
}

fn short_hash(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    digest[..5].iter().map(|b| format!("{b:02x}")).collect()
}

fn gzip(body: &[u8]) -> Option<Vec<u8>> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::best());
    enc.write_all(body).ok()?;
    let z = enc.finish().ok()?;
    (z.len() + 64 < body.len()).then_some(z)
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, e)| e) {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("html") => "text/html; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("json") => "application/json",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}
