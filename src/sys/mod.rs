//! Every `unsafe` call and raw syscall ringcast makes, each behind a safe function with its
//! `// SAFETY:` contract.
//!
//! monoio 0.2.4 offers no sendfile, no `openat2` and no way to do socket I/O outside its own
//! operations; those live here as direct syscalls on descriptors that the caller keeps alive.
//! Functions return `io::Result` and never retry on `EAGAIN`: waiting for readiness is the
//! caller's business (it knows which runtime it runs on).

mod cpu;
mod file;
pub mod ktls;
mod limits;
mod map;
mod open;
mod pipe;
mod signal;
mod socket;

pub use cpu::{allowed_cpus, pin_current_thread};
pub use file::{cached_pages, read_through, readable_now};
pub use limits::{limit_io_workers, raise_nofile_limit};
pub use map::Mapped;
pub use open::{open_beneath, stat_at};
pub use pipe::Pipe;
pub use signal::{block_shutdown_signals, wait_shutdown_signal};
pub use socket::{
    recv, send, send_vectored, sendfile, set_cork, set_nonblocking, shutdown_read, shutdown_write,
};
