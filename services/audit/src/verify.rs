//! `protostar audit verify DIR`: walks every file in order and checks each line's own hash, the
//! chain of `prev` hashes and the `seq` count, and names the first line that breaks them.

use crate::record::{GENESIS, LineError, parse_line};
use crate::trail::trail_files;
use std::io::BufRead;
use std::path::{Path, PathBuf};

#[derive(Debug, PartialEq, Eq)]
pub struct Intact {
    pub files: usize,
    pub lines: u64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Broken {
    #[error("{}:{line}: {reason}", file.display())]
    Line {
        file: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("cannot read {}: {reason}", file.display())]
    Io { file: PathBuf, reason: String },
}

pub fn verify(dir: &Path) -> Result<Intact, Broken> {
    let files = trail_files(dir).map_err(|e| Broken::Io {
        file: dir.to_owned(),
        reason: e.to_string(),
    })?;
    let mut prev: Option<String> = None;
    let mut seq: Option<u64> = None;
    let mut lines = 0u64;
    for file in &files {
        let f = std::fs::File::open(file).map_err(|e| Broken::Io {
            file: file.clone(),
            reason: e.to_string(),
        })?;
        for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
            let at = |reason: String| Broken::Line {
                file: file.clone(),
                line: i + 1,
                reason,
            };
            let line = line.map_err(|e| at(format!("unreadable: {e}")))?;
            let (record, hash) = parse_line(&line).map_err(|e| match e {
                LineError::HashMismatch => at(e.to_string()),
                other => at(format!("damaged: {other}")),
            })?;
            match (&prev, &seq) {
                (Some(p), Some(s)) => {
                    if record.prev != *p {
                        return Err(at(
                            "its `prev` is not the previous line's hash: a line before it was removed or rewritten"
                                .into(),
                        ));
                    }
                    if record.seq != s + 1 {
                        return Err(at(format!(
                            "seq {} follows {s}: lines are missing",
                            record.seq
                        )));
                    }
                }
                // The oldest line kept: the start of the trail, or where retention cut it.
                _ => {
                    if record.seq == 1 && record.prev != GENESIS {
                        return Err(at("the first line does not start the chain".into()));
                    }
                }
            }
            prev = Some(hash);
            seq = Some(record.seq);
            lines += 1;
        }
    }
    Ok(Intact {
        files: files.len(),
        lines,
    })
}
