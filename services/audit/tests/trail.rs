//! The trail's files on a real disk: appends, dedupe across restarts, crash recovery, rotation,
//! retention, and `verify` naming the first broken line.

use audit::trail::{Rotation, Trail, trail_files};
use audit::verify::{Broken, verify};
use kernel::events::Event;
use std::path::{Path, PathBuf};

fn tmp() -> PathBuf {
    let d = std::env::temp_dir().join(format!("protostar-audit-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn events(n: usize) -> Vec<Event> {
    (0..n)
        .map(|i| {
            Event::new(
                "audit.sign_in_failed",
                "auth",
                serde_json::json!({"actor": format!("user-{i}"), "outcome": "failure", "clientAddress": "198.51.100.4", "requestId": format!("r-{i}")}),
            )
            .unwrap()
        })
        .collect()
}

fn all_lines(dir: &Path) -> Vec<String> {
    trail_files(dir)
        .unwrap()
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn appends_chain_and_never_duplicate_across_restarts() {
    let dir = tmp();
    let evs = events(500);
    let mut t = Trail::open(&dir, Rotation::Daily, None).unwrap();
    assert!(t.append(&evs[..300]).unwrap().iter().all(|w| *w));
    // The same events again in the same run: nothing new.
    assert!(t.append(&evs[..300]).unwrap().iter().all(|w| !*w));
    drop(t);
    // After a restart the trail remembers what it holds.
    let mut t = Trail::open(&dir, Rotation::Daily, None).unwrap();
    assert_eq!(t.lines(), 300);
    let written = t.append(&evs).unwrap();
    assert_eq!(written.iter().filter(|w| **w).count(), 200);
    assert_eq!(all_lines(&dir).len(), 500);
    assert_eq!(verify(&dir).unwrap().lines, 500);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_line_cut_short_by_a_crash_is_removed_and_written_again() {
    let dir = tmp();
    let evs = events(10);
    let mut t = Trail::open(&dir, Rotation::Daily, None).unwrap();
    t.append(&evs[..9]).unwrap();
    drop(t);
    // The process died in the middle of writing the 10th line.
    let file = trail_files(&dir).unwrap().pop().unwrap();
    let whole = std::fs::read_to_string(&file).unwrap();
    let mut t2 = Trail::open(&dir.join("scratch"), Rotation::Daily, None).unwrap();
    t2.append(&evs[9..]).unwrap();
    let tenth = all_lines(&dir.join("scratch")).pop().unwrap();
    std::fs::write(&file, format!("{whole}{}", &tenth[..tenth.len() / 2])).unwrap();
    std::fs::remove_dir_all(dir.join("scratch")).unwrap();

    let mut t = Trail::open(&dir, Rotation::Daily, None).unwrap();
    assert_eq!(t.lines(), 9);
    assert_eq!(t.append(&evs).unwrap().iter().filter(|w| **w).count(), 1);
    assert_eq!(verify(&dir).unwrap().lines, 10);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn verify_names_an_edited_line_and_a_removed_one() {
    let dir = tmp();
    let mut t = Trail::open(&dir, Rotation::Daily, None).unwrap();
    t.append(&events(20)).unwrap();
    drop(t);
    let file = trail_files(&dir).unwrap().pop().unwrap();
    let original = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = original.lines().collect();

    // Someone changes the outcome of line 7 by hand.
    let mut edited = lines.clone();
    let changed = edited[6].replace("failure", "success");
    edited[6] = &changed;
    std::fs::write(&file, edited.join("\n") + "\n").unwrap();
    match verify(&dir).unwrap_err() {
        Broken::Line { line, reason, .. } => {
            assert_eq!(line, 7);
            assert!(reason.contains("edited"), "{reason}");
        }
        other => panic!("{other}"),
    }
    let message = verify(&dir).unwrap_err().to_string();
    assert!(message.contains(":7:"), "{message}");

    // Someone removes line 12: line 12 (formerly 13) no longer follows.
    let mut removed = lines.clone();
    removed.remove(11);
    std::fs::write(&file, removed.join("\n") + "\n").unwrap();
    match verify(&dir).unwrap_err() {
        Broken::Line { line, .. } => assert_eq!(line, 12),
        other => panic!("{other}"),
    }

    // Restored, it verifies again.
    std::fs::write(&file, &original).unwrap();
    assert_eq!(verify(&dir).unwrap().lines, 20);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn the_chain_continues_across_files_and_retention_removes_old_ones() {
    let dir = tmp();
    let mut t = Trail::open(&dir, Rotation::Daily, None).unwrap();
    t.append(&events(5)).unwrap();
    drop(t);
    // Yesterday's file, as rotation would have left it: move today's lines there and continue.
    let today = trail_files(&dir).unwrap().pop().unwrap();
    let yesterday = dir.join(Rotation::Daily.file_name(chrono::Utc::now() - chrono::Days::new(1)));
    std::fs::rename(&today, &yesterday).unwrap();
    let mut t = Trail::open(&dir, Rotation::Daily, None).unwrap();
    t.append(&events(5)).unwrap();
    drop(t);
    assert_eq!(trail_files(&dir).unwrap().len(), 2);
    let v = verify(&dir).unwrap();
    assert_eq!((v.files, v.lines), (2, 10));

    // A file far older than the retention is removed when the trail next opens a file.
    let ancient = dir.join("audit-2020-01-01.jsonl");
    std::fs::write(&ancient, "").unwrap();
    std::fs::remove_file(trail_files(&dir).unwrap().pop().unwrap()).unwrap();
    let mut t = Trail::open(&dir, Rotation::Daily, Some(30)).unwrap();
    t.append(&events(1)).unwrap();
    assert!(!ancient.exists());
    assert!(yesterday.exists());
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn hourly_rotation_names_files_by_hour() {
    let at = "2026-11-25T13:45:00Z".parse().unwrap();
    assert_eq!(Rotation::Hourly.file_name(at), "audit-2026-11-25T13.jsonl");
    assert_eq!(Rotation::Daily.file_name(at), "audit-2026-11-25.jsonl");
}
