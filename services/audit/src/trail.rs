//! The files: one per day (or hour), appended only, each line synced to disk before the event
//! that produced it is acknowledged.
//!
//! Opening a trail reads what is there: the last line's hash and `seq` continue the chain, and
//! every event id already written goes into the dedupe set, so a redelivered event (the broker
//! gave it again after a crash, or the kernel's processed-event record did not commit) never
//! becomes a second line. A line cut short by a crash was never synced nor acknowledged; it is
//! removed and the event, redelivered, is written whole.

use crate::record::{GENESIS, Record, parse_line};
use chrono::{DateTime, NaiveDate, Utc};
use kernel::events::Event;
use serde::Deserialize;
use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Rotation {
    #[default]
    Daily,
    Hourly,
}

impl Rotation {
    pub fn file_name(self, at: DateTime<Utc>) -> String {
        match self {
            Rotation::Daily => format!("audit-{}.jsonl", at.format("%Y-%m-%d")),
            Rotation::Hourly => format!("audit-{}.jsonl", at.format("%Y-%m-%dT%H")),
        }
    }
}

/// Trail files in chronological order (their names sort that way).
pub fn trail_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("audit-") && n.ends_with(".jsonl"))
        })
        .collect();
    files.sort();
    Ok(files)
}

fn date_of(path: &Path) -> Option<NaiveDate> {
    let name = path.file_name()?.to_str()?;
    NaiveDate::parse_from_str(name.get(6..16)?, "%Y-%m-%d").ok()
}

pub struct Trail {
    dir: PathBuf,
    rotation: Rotation,
    retention_days: Option<u32>,
    current: Option<(PathBuf, File)>,
    last_hash: String,
    seq: u64,
    seen: HashSet<Uuid>,
}

impl Trail {
    pub fn open(
        dir: &Path,
        rotation: Rotation,
        retention_days: Option<u32>,
    ) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut trail = Self {
            dir: dir.to_owned(),
            rotation,
            retention_days,
            current: None,
            last_hash: GENESIS.to_owned(),
            seq: 0,
            seen: HashSet::new(),
        };
        let files = trail_files(dir)?;
        if let Some(last) = files.last() {
            drop_partial_line(last)?;
        }
        for path in &files {
            for line in BufReader::new(File::open(path)?).lines() {
                let line = line?;
                match parse_line(&line) {
                    Ok((record, hash)) => {
                        trail.seen.insert(record.event_id);
                        trail.seq = record.seq;
                        trail.last_hash = hash;
                    }
                    // A damaged line is `verify`'s to report; the service keeps recording.
                    Err(e) => {
                        tracing::error!(file = %path.display(), error = %e, "damaged audit line")
                    }
                }
            }
        }
        Ok(trail)
    }

    pub fn lines(&self) -> u64 {
        self.seq
    }

    /// Appends the events not yet in the trail and syncs once for the batch (group commit).
    /// Returns, for each event, whether it was written (false: already there).
    pub fn append(&mut self, events: &[Event]) -> std::io::Result<Vec<bool>> {
        let mut written = Vec::with_capacity(events.len());
        let mut dirty = false;
        for event in events {
            if self.seen.contains(&event.id) {
                written.push(false);
                continue;
            }
            let record = Record::from_event(event, self.seq + 1, &self.last_hash);
            let file = self.file_for(record.recorded_at, &mut dirty)?;
            let (line, hash) = record.to_line();
            file.write_all(format!("{line}\n").as_bytes())?;
            dirty = true;
            self.seq += 1;
            self.last_hash = hash;
            self.seen.insert(event.id);
            written.push(true);
        }
        if dirty && let Some((_, f)) = &self.current {
            f.sync_data()?;
        }
        Ok(written)
    }

    fn file_for(&mut self, at: DateTime<Utc>, dirty: &mut bool) -> std::io::Result<&mut File> {
        let path = self.dir.join(self.rotation.file_name(at));
        let rotate = self.current.as_ref().is_none_or(|(p, _)| *p != path);
        if rotate {
            if let Some((_, old)) = self.current.take()
                && *dirty
            {
                old.sync_data()?;
                *dirty = false;
            }
            let file = OpenOptions::new().create(true).append(true).open(&path)?;
            // A new file's name must survive a crash too.
            File::open(&self.dir)?.sync_all()?;
            self.current = Some((path, file));
            self.apply_retention(at);
        }
        match self.current.as_mut() {
            Some((_, f)) => Ok(f),
            None => Err(std::io::Error::other("no current audit file")),
        }
    }

    fn apply_retention(&self, now: DateTime<Utc>) {
        let Some(days) = self.retention_days else {
            return;
        };
        let cutoff = now.date_naive() - chrono::Days::new(u64::from(days));
        if let Ok(files) = trail_files(&self.dir) {
            for f in files {
                if date_of(&f).is_some_and(|d| d < cutoff)
                    && let Err(e) = std::fs::remove_file(&f)
                {
                    tracing::warn!(file = %f.display(), error = %e, "cannot remove an expired audit file");
                }
            }
        }
    }
}

/// Cuts a trailing line that has no newline: it was being written when the process died.
fn drop_partial_line(path: &Path) -> std::io::Result<()> {
    let mut f = OpenOptions::new().read(true).write(true).open(path)?;
    let len = f.metadata()?.len();
    if len == 0 {
        return Ok(());
    }
    let mut last = [0u8; 1];
    f.seek(SeekFrom::Start(len - 1))?;
    f.read_exact(&mut last)?;
    if last[0] == b'\n' {
        return Ok(());
    }
    f.seek(SeekFrom::Start(0))?;
    let mut content = Vec::with_capacity(len as usize);
    f.read_to_end(&mut content)?;
    let keep = content
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    tracing::warn!(file = %path.display(), cut_bytes = len as usize - keep, "removing a line cut short by a crash");
    f.set_len(keep as u64)?;
    f.sync_all()
}
