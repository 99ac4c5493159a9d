//! Where log lines go: standard output, one `write(2)` per line, without a lock.
//!
//! `std::io::Stdout` serialises its writers with a mutex. The formatter already builds each
//! line whole and writes it with one call, so the lock only made the runtime's threads wait for
//! each other: under load the gateway paid a futex wake-up every other request for it
//! (`strace -c -f`, docs/benchmarks.md). Writing through a duplicate of the descriptor instead
//! keeps lines whole where it matters: a pipe (how containers collect output) takes a write of
//! up to `PIPE_BUF` (4 KiB) in one piece, and a file opened for appending takes every write in
//! one piece. A longer line written to a pipe at the same moment as another may interleave
//! with it; log lines are far shorter.

use std::fs::File;
use std::io::{self, Write};
use tracing_subscriber::fmt::MakeWriter;

/// A `MakeWriter` for the subscriber: the duplicate descriptor when it could be made, the
/// standard handle otherwise (standard output closed or not a descriptor we may duplicate).
pub struct LogLines {
    out: Option<File>,
}

impl LogLines {
    pub fn stdout() -> Self {
        use std::os::fd::AsFd;
        let out = io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .ok()
            .map(File::from);
        Self { out }
    }

    /// Lines into `file`.
    pub fn to_file(file: File) -> Self {
        Self { out: Some(file) }
    }
}

pub enum LineWriter<'a> {
    Direct(&'a File),
    Std(io::Stdout),
}

impl Write for LineWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Direct(f) => f.write(buf),
            Self::Std(s) => s.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Self::Direct(f) => f.write_all(buf),
            Self::Std(s) => s.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Direct(f) => f.flush(),
            Self::Std(s) => s.flush(),
        }
    }
}

impl<'a> MakeWriter<'a> for LogLines {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        match &self.out {
            Some(f) => LineWriter::Direct(f),
            None => LineWriter::Std(io::stdout()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::sync::Arc;

    #[test]
    fn lines_from_many_threads_arrive_whole() {
        let (mut reader, writer) = io::pipe().unwrap();
        let lines = Arc::new(LogLines::to_file(File::from(std::os::fd::OwnedFd::from(
            writer,
        ))));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let lines = lines.clone();
                std::thread::spawn(move || {
                    for i in 0..500 {
                        // A line of a few hundred bytes, like an access line, in one call as
                        // the formatter makes it.
                        let line = format!(
                            "{{\"thread\":{t},\"i\":{i},\"pad\":\"{}\"}}\n",
                            "x".repeat(300)
                        );
                        lines.make_writer().write_all(line.as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        let reading = std::thread::spawn(move || {
            let mut all = String::new();
            reader.read_to_string(&mut all).unwrap();
            all
        });
        for t in threads {
            t.join().unwrap();
        }
        drop(lines);
        let all = reading.join().unwrap();
        let mut seen = 0;
        for line in all.lines() {
            let v: serde_json::Value = serde_json::from_str(line).expect(line);
            assert_eq!(v["pad"].as_str().map(str::len), Some(300));
            seen += 1;
        }
        assert_eq!(seen, 2000);
    }
}
