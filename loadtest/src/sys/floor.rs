//! A bare io_uring closed loop for the `client_floor` example: the ring, its memory and the
//! decoding of its completions, behind a safe interface.
//!
//! `client_floor` measures the least CPU a closed-loop HTTP/1.1 client spends per request on
//! this kernel, so nothing here allocates, times or counts per request. What makes the raw
//! ring safe to drive:
//!
//! - every pointer an operation carries points at memory leaked for the life of the process
//!   (the request head, the receive buffers, the deadline's timespec, the provided-buffer
//!   ring), so an operation still queued when the loop ends, or when the ring is closed at
//!   exit, never points at freed memory;
//! - a connection has at most one single-shot receive queued ([`Queue::request`] and
//!   [`Queue::receive`] refuse a second), and its bytes are handed out only in the
//!   completion of that receive, after which the kernel no longer writes the buffer;
//! - a multishot receive's bytes live in a provided buffer the kernel has handed over with
//!   the completion; it is put back into the ring only after the caller's handler returned.
//!
//! Modes:
//! - [`FloorMode::Link`]: a send linked (`IOSQE_IO_LINK`, Linux 5.3) to a receive with
//!   `IORING_RECVSEND_POLL_FIRST` (Linux 5.19), both in the same submission;
//! - [`FloorMode::Multi`]: one multishot receive per connection (`IORING_RECV_MULTISHOT`,
//!   Linux 6.0) into a registered provided-buffer ring (Linux 5.19); per request only the
//!   send is submitted.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use io_uring::{cqueue, opcode, squeue, types, IoUring, SubmissionQueue, Submitter};

use super::uring::recv_poll_first;

/// Bytes one receive may deliver, in both modes.
pub const RECV_BUF_LEN: u32 = 16 * 1024;
const RECV_BUF_BYTES: usize = RECV_BUF_LEN as usize;
/// Buffers in the provided-buffer ring (`Multi`); a power of two, as the kernel requires.
const PROVIDED_BUFS: u16 = 1024;
/// Buffer group id of the provided-buffer ring.
const BUF_GROUP: u16 = 0;

// user_data: connection index << 8 | operation.
const OP_SEND: u64 = 1;
const OP_RECV: u64 = 2;
const OP_RECV_MULTI: u64 = 3;
const DEADLINE_USER_DATA: u64 = u64::MAX;

/// How responses are received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloorMode {
    /// A receive linked to each send.
    Link,
    /// One multishot receive per connection into provided buffers.
    Multi,
}

/// What the kernel completed, as the loop's handler sees it.
#[derive(Debug)]
pub enum Event<'a> {
    /// Connection `conn`'s send finished with `result` (bytes sent, or a negative errno).
    Sent {
        /// Connection index.
        conn: usize,
        /// The completion's result.
        result: i32,
    },
    /// Connection `conn` received `Ok(bytes)` (empty: the peer closed) or `Err(negative errno)`.
    Received {
        /// Connection index.
        conn: usize,
        /// The bytes, valid until the handler returns.
        result: Result<&'a [u8], i32>,
        /// `Multi`: the multishot receive is still armed (otherwise it must be armed again).
        more: bool,
    },
}

/// The operations of one connection, built once.
struct Ops {
    send: squeue::Entry,
    /// `Link`: the receive linked to each send. `Multi`: the multishot receive.
    recv_first: squeue::Entry,
    /// A further receive for the rest of a response (`Link`), or the multishot receive (`Multi`).
    recv_more: squeue::Entry,
}

/// The ring, its leaked memory and one set of operations per connection.
pub struct FloorRing {
    ring: IoUring,
    flags: &'static str,
    mode: FloorMode,
    ops: Vec<Ops>,
    /// `Link`: connection `i` receives into `slab[i * RECV_BUF_BYTES..][..RECV_BUF_BYTES]`; leaked.
    slab: *mut u8,
    /// Whether connection `i` has a receive queued (`Multi`: its multishot receive armed).
    recv_queued: Vec<bool>,
    provided: Option<ProvidedBufs>,
}

/// Where the handler queues the next operations.
pub struct Queue<'r, 's> {
    sq: &'r mut SubmissionQueue<'s>,
    submitter: &'r Submitter<'s>,
    mode: FloorMode,
    ops: &'r [Ops],
    recv_queued: &'r mut [bool],
}

impl FloorRing {
    /// A ring for one closed-loop request per socket of `sockets`, each sending `request`.
    ///
    /// The sockets must stay open while the ring is used (a closed descriptor only makes its
    /// operations fail).
    pub fn new(mode: FloorMode, request: &[u8], sockets: &[RawFd]) -> io::Result<Self> {
        let request: &'static [u8] = request.to_vec().leak();
        let request_len = u32::try_from(request.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "request head too long"))?;
        // Room for every connection's operations: at most two queued and two completions each.
        let sq_entries = u32::try_from((2 * sockets.len() + 1).next_power_of_two())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "too many connections"))?;
        let (ring, flags) = build_ring(sq_entries, 2 * sq_entries.max(2048))?;
        let provided = match mode {
            FloorMode::Multi => Some(ProvidedBufs::register(&ring.submitter())?),
            FloorMode::Link => None,
        };
        // Filled, so every page is faulted in before the run rather than by the kernel during it.
        let slab_len = match mode {
            FloorMode::Link => sockets.len() * RECV_BUF_BYTES,
            FloorMode::Multi => 0,
        };
        let slab = vec![0xa5u8; slab_len].leak().as_mut_ptr();
        let mut ops = Vec::with_capacity(sockets.len());
        for (i, &socket) in sockets.iter().enumerate() {
            let fd = types::Fd(socket);
            let tag = (i as u64) << 8;
            let send = opcode::Send::new(fd, request.as_ptr(), request_len)
                // MSG_WAITALL: the kernel itself finishes a short send.
                .flags(libc::MSG_NOSIGNAL | libc::MSG_WAITALL)
                .build()
                .user_data(tag | OP_SEND);
            ops.push(match mode {
                FloorMode::Link => {
                    // Inside the leaked slab: connection i's own RECV_BUF_BYTES.
                    let buf = slab.wrapping_add(i * RECV_BUF_BYTES);
                    let recv =
                        opcode::Recv::new(fd, buf, RECV_BUF_LEN).build().user_data(tag | OP_RECV);
                    Ops {
                        send: send.flags(squeue::Flags::IO_LINK),
                        recv_first: recv_poll_first(recv.clone()),
                        recv_more: recv,
                    }
                }
                FloorMode::Multi => {
                    let recv = opcode::RecvMulti::new(fd, BUF_GROUP)
                        .build()
                        .user_data(tag | OP_RECV_MULTI);
                    Ops { send, recv_first: recv.clone(), recv_more: recv }
                }
            });
        }
        Ok(Self { ring, flags, mode, ops, slab, recv_queued: vec![false; sockets.len()], provided })
    }

    /// The ring set-up flags the kernel accepted.
    pub fn flags(&self) -> &'static str {
        self.flags
    }

    /// Runs the loop for `duration`: `start` queues the first operations, then `on_event` is
    /// called for every completion. Returns how many times the loop waited for completions.
    pub fn run(
        &mut self,
        duration: Duration,
        start: impl FnOnce(&mut Queue<'_, '_>) -> io::Result<()>,
        mut on_event: impl FnMut(Event<'_>, &mut Queue<'_, '_>) -> io::Result<()>,
    ) -> io::Result<u64> {
        // Leaked: the kernel may read it until the timeout completes.
        let deadline: &'static types::Timespec = Box::leak(Box::new(duration.into()));
        let (submitter, mut sq, mut cq) = self.ring.split();
        let mut queue = Queue {
            sq: &mut sq,
            submitter: &submitter,
            mode: self.mode,
            ops: &self.ops,
            recv_queued: &mut self.recv_queued,
        };
        queue.push(&opcode::Timeout::new(deadline).build().user_data(DEADLINE_USER_DATA))?;
        start(&mut queue)?;
        queue.sq.sync();
        let mut waits = 0;
        loop {
            match queue.submitter.submit_and_wait(1) {
                Ok(_) => {}
                // EBUSY: completions overflowed; reaping them below makes room.
                Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EBUSY)) => {}
                Err(e) => return Err(e),
            }
            waits += 1;
            cq.sync();
            for cqe in &mut cq {
                let user_data = cqe.user_data();
                if user_data == DEADLINE_USER_DATA {
                    // Operations still queued complete or are cancelled when the ring closes;
                    // the memory they point at is leaked, so it outlives them.
                    return Ok(waits);
                }
                let conn = usize::try_from(user_data >> 8).unwrap_or(usize::MAX);
                let res = cqe.result();
                let flags = cqe.flags();
                match user_data & 0xff {
                    OP_SEND => on_event(Event::Sent { conn, result: res }, &mut queue)?,
                    OP_RECV => {
                        queue.recv_queued[conn] = false;
                        let result = match usize::try_from(res) {
                            Ok(n) => {
                                let n = n.min(RECV_BUF_BYTES);
                                // SAFETY: the receive into connection `conn`'s part of the leaked
                                // slab has completed and no other receive into it is queued (see
                                // `Queue::receive`), so the kernel wrote these `n` bytes and no
                                // longer writes them; the next receive is queued only after
                                // the handler's borrow ends.
                                Ok(unsafe {
                                    std::slice::from_raw_parts(
                                        self.slab.add(conn * RECV_BUF_BYTES),
                                        n,
                                    )
                                })
                            }
                            Err(_) => Err(res),
                        };
                        // The slice is copied out of `self.slab` before `queue` is lent out again.
                        on_event(Event::Received { conn, result, more: false }, &mut queue)?;
                    }
                    OP_RECV_MULTI => {
                        let more = cqueue::more(flags);
                        if !more {
                            queue.recv_queued[conn] = false;
                        }
                        let provided = self.provided.as_mut().ok_or_else(|| {
                            io::Error::other("multishot completion without provided buffers")
                        })?;
                        match (usize::try_from(res), cqueue::buffer_select(flags)) {
                            (Ok(n), Some(bid)) => {
                                let bytes = provided.received(bid, n);
                                on_event(
                                    Event::Received { conn, result: Ok(bytes), more },
                                    &mut queue,
                                )?;
                                provided.put(bid);
                            }
                            (Ok(_), None) => on_event(
                                Event::Received { conn, result: Ok(&[]), more },
                                &mut queue,
                            )?,
                            (Err(_), _) => on_event(
                                Event::Received { conn, result: Err(res), more },
                                &mut queue,
                            )?,
                        }
                    }
                    _ => return Err(io::Error::other(format!("unknown user_data {user_data:#x}"))),
                }
            }
            if let Some(provided) = &self.provided {
                provided.publish();
            }
            queue.sq.sync();
        }
    }
}

impl Queue<'_, '_> {
    /// Queues connection `conn`'s request (and, in `Link` mode, the receive of its answer).
    pub fn request(&mut self, conn: usize) -> io::Result<()> {
        let ops = self.ops.get(conn).ok_or_else(|| io::Error::other("no such connection"))?;
        if self.mode == FloorMode::Link {
            self.claim_receive(conn)?;
            self.push(&ops.send)?;
            return self.push(&ops.recv_first);
        }
        self.push(&ops.send)
    }

    /// Queues a further receive on `conn` (`Link`), or arms its multishot receive (`Multi`).
    pub fn receive(&mut self, conn: usize) -> io::Result<()> {
        let ops = self.ops.get(conn).ok_or_else(|| io::Error::other("no such connection"))?;
        self.claim_receive(conn)?;
        self.push(&ops.recv_more)
    }

    fn claim_receive(&mut self, conn: usize) -> io::Result<()> {
        if std::mem::replace(&mut self.recv_queued[conn], true) {
            return Err(io::Error::other(format!(
                "connection {conn} already has a receive queued"
            )));
        }
        Ok(())
    }

    /// Queues `entry`, submitting what is queued first if the submission queue is full.
    fn push(&mut self, entry: &squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: every entry this module builds points only at leaked memory that lives
            // until the process exits (the request head, the receive slab, the deadline's
            // timespec), or at none (a multishot receive picks from the registered buffer ring);
            // receive buffers are read only as described in the module documentation.
            if unsafe { self.sq.push(entry) }.is_ok() {
                return Ok(());
            }
            self.sq.sync();
            match self.submitter.submit() {
                Err(e) if e.raw_os_error() != Some(libc::EINTR) => return Err(e),
                _ => self.sq.sync(),
            }
        }
    }
}

/// Builds the ring with the cheapest completion flags this kernel accepts, and names them.
fn build_ring(sq_entries: u32, cq_entries: u32) -> io::Result<(IoUring, &'static str)> {
    // Task work runs only when this thread waits (Linux 6.1), not on every interrupt.
    if let Ok(ring) = IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_cqsize(cq_entries)
        .build(sq_entries)
    {
        return Ok((ring, "SINGLE_ISSUER|DEFER_TASKRUN"));
    }
    // Linux 6.0: no forced interruption for task work.
    if let Ok(ring) = IoUring::builder()
        .setup_single_issuer()
        .setup_coop_taskrun()
        .setup_cqsize(cq_entries)
        .build(sq_entries)
    {
        return Ok((ring, "SINGLE_ISSUER|COOP_TASKRUN"));
    }
    let ring = IoUring::builder().setup_cqsize(cq_entries).build(sq_entries)?;
    Ok((ring, "none"))
}

/// Page-aligned memory for the provided-buffer ring's entries (the kernel requires the alignment).
#[derive(Clone)]
#[repr(C, align(4096))]
struct Page([u8; 4096]);

/// The `Multi` mode's receive buffers: `PROVIDED_BUFS` buffers of `RECV_BUF_BYTES`, handed to the
/// kernel through a registered buffer ring (`IORING_REGISTER_PBUF_RING`).
///
/// Each buffer is in exactly one place: in the ring (between the kernel's head and our tail), or
/// taken by the kernel for one completion and not yet put back.
struct ProvidedBufs {
    /// Entry 0 of the ring; leaked, page-aligned, `PROVIDED_BUFS` entries.
    entries: *mut types::BufRingEntry,
    /// All buffers back to back; leaked.
    bufs: &'static mut [u8],
    /// Our tail, published to the kernel by [`ProvidedBufs::publish`].
    tail: u16,
}

impl ProvidedBufs {
    fn register(submitter: &Submitter<'_>) -> io::Result<Self> {
        let entry_bytes = usize::from(PROVIDED_BUFS) * std::mem::size_of::<types::BufRingEntry>();
        let pages = vec![Page([0; 4096]); entry_bytes.div_ceil(4096)].leak();
        let entries = pages.as_mut_ptr().cast::<types::BufRingEntry>();
        // Filled, so every page is faulted in before the run rather than by the kernel during it.
        let bufs = vec![0xa5u8; usize::from(PROVIDED_BUFS) * RECV_BUF_BYTES].leak();
        // SAFETY: `entries` points at PROVIDED_BUFS zeroed, page-aligned ring entries that are
        // leaked, so they stay valid until the ring is destroyed at exit (the contract of
        // io_uring_register_buf_ring(3)).
        unsafe { submitter.register_buf_ring(entries as u64, PROVIDED_BUFS, BUF_GROUP)? };
        let mut this = Self { entries, bufs, tail: 0 };
        for bid in 0..PROVIDED_BUFS {
            this.put(bid);
        }
        this.publish();
        Ok(this)
    }

    /// Appends buffer `bid` to the ring; the kernel sees it after the next [`Self::publish`].
    fn put(&mut self, bid: u16) {
        let slot = usize::from(self.tail & (PROVIDED_BUFS - 1));
        let addr = self.bufs.as_mut_ptr() as u64 + u64::from(bid) * RECV_BUF_BYTES as u64;
        // SAFETY: `slot` < PROVIDED_BUFS, inside the leaked ring. The kernel only reads entries
        // between its head and our tail; as many entries as buffers exist and `bid` is out of the
        // ring, so fewer than PROVIDED_BUFS are in it and the slot at our tail is not among them.
        // The setters leave `resv` alone, which in entry 0 is the ring's tail.
        let entry = unsafe { &mut *self.entries.add(slot) };
        entry.set_addr(addr);
        entry.set_len(RECV_BUF_LEN);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Makes every [`Self::put`] so far visible to the kernel.
    fn publish(&self) {
        // SAFETY: `entries` is entry 0 of the ring, whose `resv` field is the ring's tail: a u16
        // inside leaked memory, aligned for u16 and so for AtomicU16 (same size and alignment).
        // Only this thread writes it; the kernel reads it with acquire ordering.
        let tail =
            unsafe { AtomicU16::from_ptr(types::BufRingEntry::tail(self.entries).cast_mut()) };
        // Release: the entries written before are visible to the kernel once it sees the tail.
        tail.store(self.tail, Ordering::Release);
    }

    /// Bytes the kernel received into buffer `bid` for a completion reaped, not yet put back.
    fn received(&self, bid: u16, len: usize) -> &[u8] {
        let start = usize::from(bid) * RECV_BUF_BYTES;
        &self.bufs[start..start + len.min(RECV_BUF_BYTES)]
    }
}
