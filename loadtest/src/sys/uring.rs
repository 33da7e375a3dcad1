//! Socket operations submitted to the thread's io_uring that tokio-uring 0.5 does not offer.
//!
//! - [`recv`]: `IORING_OP_RECV` (Linux 5.6) into the spare capacity of a `Vec`.
//!   Sockets take the socket path directly instead of tokio-uring's generic
//!   `read` (file position, `kiocb` set-up), which is measurably cheaper per request.
//! - [`send_all`]: `IORING_OP_SEND` (Linux 5.6), repeated until every byte is queued.
//! - [`recv_discard`]: `IORING_OP_RECV` with `MSG_TRUNC`: for TCP the kernel
//!   drops up to `len` queued bytes without copying them (`tcp(7)`), so a body
//!   can be received and counted without ever touching its bytes.
//! - [`send_then_recv`]: a send linked (`IOSQE_IO_LINK`, Linux 5.3) to the
//!   receive of the response, both queued before the task yields, so one
//!   request costs one task wake-up instead of two. The receive carries
//!   `IORING_RECVSEND_POLL_FIRST` (Linux 5.19): right after a request the
//!   response cannot be there yet, so the kernel arms its poll at once instead
//!   of first trying a receive that would fail with `EAGAIN`.
//! - [`sleep_until`]: `IORING_OP_TIMEOUT` with `IORING_TIMEOUT_ABS` (Linux 5.5)
//!   on `CLOCK_MONOTONIC`: an hrtimer-precise wait that is one more entry in the
//!   next batch of submissions, not a `timerfd` with its own system calls and
//!   epoll registration.
//!
//! Operations are built with the `io-uring` crate and handed to tokio-uring's
//! public `UnsubmittedOneshot`, which keeps the operation's data (the buffer)
//! alive until the kernel completes it, even if the awaiting future is dropped
//! on a timeout. The caller keeps the socket open while an operation is
//! queued; once submitted, the kernel holds its own reference to the socket.

use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;

use io_uring::{cqueue, opcode, squeue, types};
use tokio_uring::{OneshotOutputTransform, UnsubmittedOneshot};

use super::DiscardBuf;

fn cqe_result(cqe: &cqueue::Entry) -> io::Result<usize> {
    let res = cqe.result();
    if res >= 0 {
        Ok(res.unsigned_abs() as usize)
    } else {
        Err(io::Error::from_raw_os_error(-res))
    }
}

fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// Completion of [`recv`]: the buffer grows by the bytes received.
pub struct RecvInto;

impl OneshotOutputTransform for RecvInto {
    type Output = (io::Result<usize>, Vec<u8>);
    type StoredData = Vec<u8>;

    fn transform_oneshot_output(self, mut buf: Vec<u8>, cqe: cqueue::Entry) -> Self::Output {
        let res = cqe_result(&cqe);
        if let Ok(n) = res {
            let new_len = buf.len() + n;
            assert!(new_len <= buf.capacity(), "kernel reported more bytes than the buffer holds");
            // SAFETY: the kernel wrote `n` bytes at `buf.len()..`, inside the spare capacity
            // (checked above) that `recv` offered it; those bytes are now initialised.
            unsafe { buf.set_len(new_len) };
        }
        (res, buf)
    }
}

/// Receives at most `max` bytes from socket `fd`, appended to `buf` (within its spare capacity).
pub async fn recv(fd: RawFd, mut buf: Vec<u8>, max: usize) -> (io::Result<usize>, Vec<u8>) {
    let len = max.min(buf.capacity() - buf.len());
    // The pointer targets the spare capacity; `buf` moves into the operation's stable data,
    // and moving a Vec does not move its heap allocation, so the pointer stays valid.
    let ptr = buf.spare_capacity_mut().as_mut_ptr().cast::<u8>();
    let sqe = opcode::Recv::new(types::Fd(fd), ptr, len_u32(len)).build();
    UnsubmittedOneshot::new(buf, RecvInto, sqe).submit().await
}

/// Completion of a send: the bytes queued and the buffer back.
pub struct SendFrom;

impl OneshotOutputTransform for SendFrom {
    type Output = (io::Result<usize>, Vec<u8>);
    type StoredData = Vec<u8>;

    fn transform_oneshot_output(self, buf: Vec<u8>, cqe: cqueue::Entry) -> Self::Output {
        (cqe_result(&cqe), buf)
    }
}

/// Sends all of `buf` on socket `fd` (`MSG_NOSIGNAL`: a closed peer is an error, not SIGPIPE).
pub async fn send_all(fd: RawFd, mut buf: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
    let mut sent = 0;
    while sent < buf.len() {
        // Heap pointer into `buf`, which the operation owns until completion.
        let ptr = buf[sent..].as_ptr();
        let sqe = opcode::Send::new(types::Fd(fd), ptr, len_u32(buf.len() - sent))
            .flags(libc::MSG_NOSIGNAL)
            .build();
        let (res, back) = UnsubmittedOneshot::new(buf, SendFrom, sqe).submit().await;
        buf = back;
        match res {
            Ok(0) => return (Err(io::ErrorKind::WriteZero.into()), buf),
            Ok(n) => sent += n,
            Err(e) => return (Err(e), buf),
        }
    }
    (Ok(()), buf)
}

/// Completion of [`recv_discard`].
pub struct Dropped;

impl OneshotOutputTransform for Dropped {
    type Output = io::Result<usize>;
    type StoredData = Rc<DiscardBuf>;

    fn transform_oneshot_output(self, _span: Rc<DiscardBuf>, cqe: cqueue::Entry) -> Self::Output {
        cqe_result(&cqe)
    }
}

/// Drops up to `max` queued bytes from TCP socket `fd` without copying; 0 means the peer closed.
pub async fn recv_discard(fd: RawFd, span: Rc<DiscardBuf>, max: usize) -> io::Result<usize> {
    let len = max.min(span.len());
    // The kernel is given a real, writable span of `len` bytes (kept alive by the
    // operation), so even a kernel that ignored MSG_TRUNC would stay inside it.
    let ptr = span.as_mut_ptr();
    let sqe = opcode::Recv::new(types::Fd(fd), ptr, len_u32(len)).flags(libc::MSG_TRUNC).build();
    UnsubmittedOneshot::new(span, Dropped, sqe).submit().await
}

/// `IORING_RECVSEND_POLL_FIRST` (`include/uapi/linux/io_uring.h`): arm the poll before trying.
const RECVSEND_POLL_FIRST: u16 = 1;

/// Byte offset of `ioprio` in `struct io_uring_sqe` (after `opcode: u8` and `flags: u8`).
const SQE_IOPRIO_OFFSET: usize = 2;

const _: () = assert!(std::mem::size_of::<squeue::Entry>() == 64);

/// Sets `ioprio` of a built SQE, which io-uring 0.6 does not expose for `Recv`.
fn with_ioprio(sqe: squeue::Entry, ioprio: u16) -> squeue::Entry {
    // SAFETY: `squeue::Entry` is `#[repr(C)]` around `struct io_uring_sqe`, the 64-byte kernel ABI
    // (size asserted above), and every bit pattern of it is valid plain data. `ioprio` is the
    // native-endian u16 at byte offset 2 of that ABI, which the kernel reads for receives as
    // IORING_RECVSEND_* flags.
    let mut raw: [u8; 64] = unsafe { std::mem::transmute(sqe) };
    raw[SQE_IOPRIO_OFFSET..SQE_IOPRIO_OFFSET + 2].copy_from_slice(&ioprio.to_ne_bytes());
    // SAFETY: as above; only the ioprio field changed, to a value the kernel accepts for RECV.
    unsafe { std::mem::transmute::<[u8; 64], squeue::Entry>(raw) }
}

/// Sets `IORING_RECVSEND_POLL_FIRST` on a built receive: the kernel arms its poll at once
/// instead of first trying a receive that would fail with `EAGAIN` (right after a request).
pub fn recv_poll_first(recv: squeue::Entry) -> squeue::Entry {
    with_ioprio(recv, RECVSEND_POLL_FIRST)
}

/// Sends all of `req` on socket `fd` and receives at most `max` bytes of the answer into `buf`.
///
/// The send (`MSG_WAITALL`, so the kernel itself retries a short send, and `MSG_NOSIGNAL`)
/// is linked to the receive: the receive starts only once every byte is queued, and is
/// cancelled (`ECANCELED`) if the send fails. Both operations are queued before the first
/// is awaited, so they reach the kernel in the same `io_uring_enter`.
pub async fn send_then_recv(
    fd: RawFd,
    req: Vec<u8>,
    mut buf: Vec<u8>,
    max: usize,
) -> (io::Result<usize>, Vec<u8>, io::Result<usize>, Vec<u8>) {
    // Heap pointer into `req`, which the send operation owns until completion.
    let send = opcode::Send::new(types::Fd(fd), req.as_ptr(), len_u32(req.len()))
        .flags(libc::MSG_NOSIGNAL | libc::MSG_WAITALL)
        .build()
        .flags(squeue::Flags::IO_LINK);
    let len = max.min(buf.capacity() - buf.len());
    // Spare capacity of `buf`, which the receive operation owns until completion.
    let ptr = buf.spare_capacity_mut().as_mut_ptr().cast::<u8>();
    let recv = recv_poll_first(opcode::Recv::new(types::Fd(fd), ptr, len_u32(len)).build());
    // Both are pushed to the submission queue before anything is awaited, in this order.
    let send = UnsubmittedOneshot::new(req, SendFrom, send).submit();
    let recv = UnsubmittedOneshot::new(buf, RecvInto, recv).submit();
    let (sent, req) = send.await;
    let (received, buf) = recv.await;
    (sent, req, received, buf)
}

/// Completion of [`sleep_until`].
pub struct Expired;

impl OneshotOutputTransform for Expired {
    type Output = io::Result<()>;
    type StoredData = Box<types::Timespec>;

    fn transform_oneshot_output(
        self,
        _ts: Box<types::Timespec>,
        cqe: cqueue::Entry,
    ) -> io::Result<()> {
        // A timeout that is not cancelled completes with ETIME.
        match cqe.result() {
            r if r == -libc::ETIME || r >= 0 => Ok(()),
            r => Err(io::Error::from_raw_os_error(-r)),
        }
    }
}

/// Completes once `CLOCK_MONOTONIC` reaches `deadline_ns` (an absolute io_uring timeout).
pub async fn sleep_until(deadline_ns: u64) -> io::Result<()> {
    // Boxed so the kernel's pointer stays valid while the operation owns it.
    let ts = Box::new(
        types::Timespec::new()
            .sec(deadline_ns / 1_000_000_000)
            .nsec(u32::try_from(deadline_ns % 1_000_000_000).unwrap_or(0)),
    );
    let sqe = opcode::Timeout::new(&*ts).flags(types::TimeoutFlags::ABS).build();
    UnsubmittedOneshot::new(ts, Expired, sqe).submit().await
}
