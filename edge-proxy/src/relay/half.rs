//! One direction of a relayed connection: read from one socket, write to the other, until
//! the reader is drained, the writer is full, or the reader reaches EOF (passed on as a write
//! shutdown, so the opposite direction keeps flowing).
//!
//! Readiness is tracked by the caller as plain flags (the engine's epoll is edge-triggered):
//! a flag is set by an event and cleared only by `WouldBlock`, so no edge is ever lost and a
//! spurious flag costs one failed syscall, never a wrong result.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicUsize, Ordering};

use mio::net::TcpStream;
use prometheus_client::metrics::counter::Counter;

use crate::config::CopyMode;

/// Userspace scratch size (one per engine thread): large enough that bulk transfers take few
/// syscalls.
pub(super) const SCRATCH_BYTES: usize = 64 * 1024;
/// The size asked for a pipe (F_SETPIPE_SZ). A default pipe holds 16 pages (64 KiB on
/// x86-64), so a bulk transfer took two splices per 64 KiB each way and stopped whenever the
/// 16 slots were full; a larger pipe moves a socket's whole receive queue in one call. Measured
/// with the proxy alone on a core (docs/benchmarks.md): 64 KiB → 256 KiB cut the CPU per GiB
/// by about a fifth; 1 MiB saved little more and moved less.
const PIPE_BYTES: usize = 256 * 1024;
/// Enlarged pipes the process holds at most (pooled or in use). Linux charges a pipe's whole
/// size to its user from the moment it is set, busy or not, against `pipe-user-pages-soft`
/// (16,384 pages by default); beyond that budget every new pipe of the user gets 2 pages, far
/// worse than the default. 64 × 64 pages is a quarter of it; later pipes keep the default size.
const ENLARGED_MAX: usize = 64;
/// Enlarged pipes alive now, across the engine threads.
static ENLARGED: AtomicUsize = AtomicUsize::new(0);
/// What Linux gives a pipe unless asked otherwise (16 pages).
const DEFAULT_PIPE_BYTES: usize = 64 * 1024;
/// Idle pipes kept per engine thread for reuse; beyond this they are closed.
const PIPE_POOL_MAX: usize = 64;
/// Reads per direction per turn: a fast sender yields after this many so the other
/// connections of the thread get their turn; the engine comes back to it right after.
const READS_PER_TURN: usize = 16;

/// The per-thread resources every connection borrows while it moves bytes.
pub(super) struct Tools {
    pub scratch: Box<[u8]>,
    pub pipes: Vec<Pipe>,
}

impl Tools {
    pub fn new() -> Self {
        Self {
            scratch: vec![0; SCRATCH_BYTES].into_boxed_slice(),
            pipes: Vec::new(),
        }
    }

    fn take_pipe(&mut self) -> io::Result<Pipe> {
        use nix::fcntl::OFlag;
        if let Some(p) = self.pipes.pop() {
            return Ok(p);
        }
        let (read, write) =
            nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).map_err(io::Error::from)?;
        let mut enlarged = false;
        if ENLARGED.fetch_add(1, Ordering::Relaxed) < ENLARGED_MAX {
            // Refused beyond /proc/sys/fs/pipe-max-size or the user's budget: the pipe then
            // keeps the size it has, which it reports.
            let set = nix::fcntl::fcntl(
                &write,
                nix::fcntl::FcntlArg::F_SETPIPE_SZ(PIPE_BYTES as i32),
            );
            enlarged = set.is_ok();
        }
        if !enlarged {
            ENLARGED.fetch_sub(1, Ordering::Relaxed);
        }
        let capacity = nix::fcntl::fcntl(&write, nix::fcntl::FcntlArg::F_GETPIPE_SZ)
            .map_or(DEFAULT_PIPE_BYTES, |n| n as usize);
        Ok(Pipe {
            read,
            write,
            capacity,
            enlarged,
        })
    }

    /// Only ever called with an empty pipe.
    fn give_back_pipe(&mut self, pipe: Pipe) {
        if self.pipes.len() < PIPE_POOL_MAX {
            self.pipes.push(pipe);
        }
    }
}

pub(super) struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    /// Bytes the pipe holds: what one splice from the socket asks for.
    capacity: usize,
    /// Counted in [`ENLARGED`].
    enlarged: bool,
}

impl Drop for Pipe {
    fn drop(&mut self) {
        if self.enlarged {
            ENLARGED.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// What one turn did.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Turn {
    /// Bytes were read or written: the idle clock restarts.
    pub moved: bool,
    /// Stopped while the source was still readable: needs another turn soon.
    pub more: bool,
}

/// One direction's state. Small on purpose: idle connections are mostly this.
pub(super) struct Half {
    /// Bytes read but not yet written, only while the receiver is slower than the sender.
    backlog: Option<Box<Backlog>>,
    pub total: u64,
    /// EOF seen and passed on.
    pub done: bool,
    /// The peer's FIN had arrived when a read came back short: the queue is drained for
    /// good, so EOF is certain without the read that would return 0 (once the backlog is
    /// written).
    drained_at_fin: bool,
}

enum Backlog {
    /// Userspace: the unwritten rest of a read.
    Bytes(Vec<u8>),
    /// Splice: `len` bytes sitting in a pipe taken from the pool.
    Pipe { pipe: Pipe, len: usize },
}

impl Half {
    pub fn new() -> Self {
        Self {
            backlog: None,
            total: 0,
            done: false,
            drained_at_fin: false,
        }
    }

    /// Moves bytes from `src` to `dst` until blocked, EOF or error. `closed`: the peer's FIN
    /// or an error was reported; `fin`: a FIN without an error.
    #[allow(clippy::too_many_arguments)]
    pub fn turn(
        &mut self,
        mode: CopyMode,
        src: &TcpStream,
        readable: &mut bool,
        closed: bool,
        fin: bool,
        dst: &TcpStream,
        writable: &mut bool,
        other_done: bool,
        counter: &Counter,
        tools: &mut Tools,
    ) -> io::Result<Turn> {
        let mut turn = Turn::default();
        if self.done {
            return Ok(turn);
        }
        let before = self.total;
        let eof = match mode {
            CopyMode::Userspace => {
                self.userspace(src, readable, closed, fin, dst, writable, tools, &mut turn)?
            }
            CopyMode::Splice => self.splice(src, readable, dst, writable, tools, &mut turn)?,
        };
        // Counted per turn rather than per read: one atomic add for up to a megabyte.
        if self.total > before {
            counter.inc_by(self.total - before);
        }
        if eof {
            self.done = true;
            // Pass the half-close on: the peer sees EOF and may still answer the other way.
            // When the other way has ended too, the connection closes next and the close
            // sends the same FIN, so the shutdown would be one system call for nothing.
            if !other_done
                && let Err(e) = dst.shutdown(Shutdown::Write)
                && e.kind() != io::ErrorKind::NotConnected
            {
                return Err(e);
            }
        }
        Ok(turn)
    }

    /// Returns whether EOF was reached (with nothing left to write).
    #[allow(clippy::too_many_arguments)]
    fn userspace(
        &mut self,
        src: &TcpStream,
        readable: &mut bool,
        closed: bool,
        fin: bool,
        dst: &TcpStream,
        writable: &mut bool,
        tools: &mut Tools,
        turn: &mut Turn,
    ) -> io::Result<bool> {
        for _ in 0..READS_PER_TURN {
            if let Some(backlog) = &mut self.backlog {
                // A connection keeps its mode for life, so the other kind never shows up.
                let Backlog::Bytes(pending) = &mut **backlog else {
                    self.backlog = None;
                    continue;
                };
                while !pending.is_empty() {
                    if !*writable {
                        return Ok(false);
                    }
                    match write(dst, pending, writable)? {
                        0 => return Ok(false),
                        n => {
                            pending.drain(..n.min(pending.len()));
                            turn.moved = true;
                        }
                    }
                }
                self.backlog = None;
            }
            if self.drained_at_fin {
                return Ok(true);
            }
            if !*readable {
                return Ok(false);
            }
            let n = match (&*src).read(&mut tools.scratch) {
                Ok(0) => return Ok(true),
                Ok(n) => {
                    let short = n < tools.scratch.len();
                    // A short read took everything queued, and more arriving raises a new
                    // edge: this saves the `WouldBlock` read after every message. Not once
                    // the peer has closed, though: its EOF came in the same edge as the data.
                    *readable &= !short || closed;
                    // And when that close was a FIN, nothing can follow what was queued
                    // before it: the EOF is known without reading it (one `recvfrom` a
                    // connection less, as HAProxy does on `EPOLLRDHUP`).
                    self.drained_at_fin = short && fin;
                    n
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    *readable = false;
                    return Ok(false);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.total += n as u64;
            turn.moved = true;
            let data = tools.scratch.get(..n).unwrap_or_default();
            // Usually the receiver takes it all at once and nothing is kept.
            let written = if *writable {
                write(dst, data, writable)?
            } else {
                0
            };
            if let Some(rest) = data.get(written..).filter(|r| !r.is_empty()) {
                self.backlog = Some(Box::new(Backlog::Bytes(rest.to_vec())));
            }
        }
        turn.more = *readable;
        Ok(false)
    }

    /// Returns whether EOF was reached (with nothing left in the pipe).
    fn splice(
        &mut self,
        src: &TcpStream,
        readable: &mut bool,
        dst: &TcpStream,
        writable: &mut bool,
        tools: &mut Tools,
        turn: &mut Turn,
    ) -> io::Result<bool> {
        use nix::fcntl::{SpliceFFlags, splice};
        let flags = SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK;
        for _ in 0..READS_PER_TURN {
            if let Some(backlog) = self.backlog.take() {
                // A connection keeps its mode for life, so the other kind never shows up.
                let Backlog::Pipe { pipe, mut len } = *backlog else {
                    continue;
                };
                while len > 0 {
                    if !*writable {
                        self.backlog = Some(Box::new(Backlog::Pipe { pipe, len }));
                        return Ok(false);
                    }
                    match splice(&pipe.read, None, dst, None, len, flags) {
                        Ok(n) => {
                            // Short: the send buffer is full (see `write`).
                            *writable &= n == len;
                            len = len.saturating_sub(n);
                            turn.moved = true;
                        }
                        Err(nix::Error::EAGAIN) => *writable = false,
                        Err(nix::Error::EINTR) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                tools.give_back_pipe(pipe);
            }
            if !*readable {
                return Ok(false);
            }
            let pipe = tools.take_pipe()?;
            let n = match splice(src, None, &pipe.write, None, pipe.capacity, flags) {
                Ok(0) => {
                    tools.give_back_pipe(pipe);
                    return Ok(true);
                }
                // Unlike a read, a short splice proves nothing: the pipe may have run out of
                // slots before the socket ran out of bytes.
                Ok(n) => n,
                Err(nix::Error::EAGAIN) => {
                    *readable = false;
                    tools.give_back_pipe(pipe);
                    return Ok(false);
                }
                Err(nix::Error::EINTR) => {
                    tools.give_back_pipe(pipe);
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            self.total += n as u64;
            turn.moved = true;
            // Straight on to the receiver; the pipe is kept only if it cannot take it all.
            let mut len = n;
            while len > 0 && *writable {
                match splice(&pipe.read, None, dst, None, len, flags) {
                    Ok(w) => {
                        *writable &= w == len;
                        len = len.saturating_sub(w);
                    }
                    Err(nix::Error::EAGAIN) => *writable = false,
                    Err(nix::Error::EINTR) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            if len == 0 {
                tools.give_back_pipe(pipe);
            } else {
                self.backlog = Some(Box::new(Backlog::Pipe { pipe, len }));
            }
        }
        turn.more = *readable;
        Ok(false)
    }
}

/// Writes what the socket takes now; `WouldBlock` clears the flag and counts as 0.
fn write(dst: &TcpStream, data: &[u8], writable: &mut bool) -> io::Result<usize> {
    loop {
        match (&*dst).write(data) {
            Ok(n) => {
                // A short write filled the send buffer: wait for the writable edge rather
                // than try again into a full buffer.
                *writable &= n == data.len();
                return Ok(n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                *writable = false;
                return Ok(0);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod pipe_budget {
    use super::*;

    #[test]
    fn only_so_many_pipes_are_enlarged_and_the_rest_keep_the_default() {
        let mut tools = Tools::new();
        let pipes: Vec<Pipe> = (0..ENLARGED_MAX + 4)
            .map(|_| tools.take_pipe().unwrap())
            .collect();
        let (big, plain): (Vec<&Pipe>, Vec<&Pipe>) = pipes.iter().partition(|p| p.enlarged);
        assert!(big.len() <= ENLARGED_MAX);
        assert!(plain.len() >= 4);
        assert!(big.iter().all(|p| p.capacity == PIPE_BYTES));
        assert!(plain.iter().all(|p| p.capacity <= DEFAULT_PIPE_BYTES));
        let (enlarged, before) = (big.len(), ENLARGED.load(Ordering::Relaxed));
        assert!(before >= enlarged);
        drop(pipes);
        // The count is the process's (nextest runs each test in a process of its own).
        assert_eq!(ENLARGED.load(Ordering::Relaxed), before - enlarged);
    }
}
