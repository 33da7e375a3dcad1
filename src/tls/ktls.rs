//! Kernel TLS: whether to hand a connection's record keys to the kernel after the handshake
//! (`--ktls off|auto|on`), the start-up probe, the hand-off and what the connection does once
//! the kernel holds the keys.
//!
//! The probe (`sys::ktls::probe`, once per process, cached) attaches the `tls` upper-layer
//! protocol to loopback sockets and offers each cipher's keys in both directions. `auto` hands
//! a connection off when its negotiated cipher is supported both ways, and keeps it in user
//! space otherwise; `on` refuses to start where no cipher is; `off` never probes.
//!
//! The hand-off ([`hand_off`]) is the single place where a connection leaves user-space TLS:
//! 1. **Whole records only.** With a hand-off planned the handshake is read record by record
//!    ([`RecordBound`]): rustls never holds the first bytes of the record after the handshake
//!    (a request sent in the same flight as Finished), which the kernel must see whole.
//! 2. **Already decrypted.** Whatever plaintext rustls holds anyway is drained into a buffer
//!    the connection serves before it reads the socket again, never dropped or reordered.
//!    Everything rustls queued (the server's Finished, TLS 1.3 tickets) was flushed by the
//!    handshake; a session with bytes still to send stays in user space.
//! 3. **Keys.** `dangerous_extract_secrets` consumes the session; `sys::ktls::install` puts the
//!    ULP on the socket and gives it both directions' keys and sequence numbers (it starts TLS
//!    1.2 AES-GCM explicit nonces past every one rustls used). Past this step the session is
//!    gone: an error closes the connection.
//! 4. **Plain from here** ([`Kernel`]): reads are `recv` (control records, on `EIO`, through
//!    `recvmsg` with their record type), writes are `send`, bodies take the plain socket path
//!    (memory, sendfile, splice, copy unchanged), and the close sends close_notify.
//!
//! Limits of the buffered rustls session, by design:
//! - **KeyUpdate.** The kernel can take new receive keys from Linux 6.13, but the secrets
//!   extracted from a buffered `ServerConnection` cannot derive the next ones. A client's
//!   KeyUpdate therefore ends the connection cleanly (close_notify after the response in
//!   flight); clients reconnect. Clients such as curl, browsers and OpenSSL do not send one
//!   unless asked, or after about 2^24 records.
//! - **AES-GCM record limit.** RFC 8446 §5.5 allows about 2^24.5 records per key with AES-GCM
//!   (about 380 TB in 16 KiB records); the kernel counts records but never stops or rekeys by
//!   itself. Between requests the connection reads the kernel's send sequence number
//!   (`getsockopt(TLS_TX)`) and, past [`RECORD_LIMIT`], closes after the current response. A
//!   single response that alone sent more than the headroom (~100 GB) could pass the bound;
//!   the limit is per key, so the next connection starts afresh.

use std::cell::Cell;
use std::io;
use std::sync::OnceLock;

use clap::ValueEnum;
use rustls::{CipherSuite, ProtocolVersion};
use tracing::{debug, info};

use crate::socket::{SendError, Socket};
use crate::sys;
use crate::sys::ktls::{Cipher, ControlRecord, Support};

pub(crate) use crate::tls::stream::TlsSocket;

/// `--ktls`: whether connections hand their keys to the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KtlsMode {
    /// Never: records are encrypted in user space.
    Off,
    /// When the kernel supports the negotiated cipher in both directions.
    Auto,
    /// Always where it can; refuse to start where the kernel has no usable kTLS.
    On,
}

/// Records sent under one key after which a connection is closed between requests: 2^24,
/// below AES-GCM's 2^24.5 (RFC 8446 §5.5) with ~7.7 million records (~120 GB) of headroom
/// for the response in flight.
pub(crate) const RECORD_LIMIT: u64 = 1 << 24;

static SUPPORT: OnceLock<Support> = OnceLock::new();

/// What the kernel can do, probed once per process.
pub fn probe() -> &'static Support {
    SUPPORT.get_or_init(sys::ktls::probe)
}

/// Decides whether connections may hand off, from the mode and the probe (pure). `Err` when
/// the mode is `on` and the kernel cannot take any cipher in both directions.
pub fn resolve(mode: KtlsMode, support: &Support) -> Result<bool, String> {
    match mode {
        KtlsMode::Off => Ok(false),
        KtlsMode::Auto => Ok(support.any()),
        KtlsMode::On if support.any() => Ok(true),
        KtlsMode::On => Err(format!("--ktls on: kernel TLS is not available: {support}")),
    }
}

/// The start-up block's `ktls` line.
pub fn describe(mode: KtlsMode, support: &Support) -> String {
    match mode {
        KtlsMode::Off => "off".to_string(),
        _ if support.any() => format!(
            "{} (hand-off when the cipher is supported both ways): {support}",
            format!("{mode:?}").to_lowercase()
        ),
        _ => format!("off: {support}"),
    }
}

/// The kernel cipher of a negotiated suite (pure); `None` for one the kernel path does not know.
pub(crate) fn cipher_of(suite: CipherSuite) -> Option<Cipher> {
    use CipherSuite as S;
    match suite {
        S::TLS13_AES_128_GCM_SHA256
        | S::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
        | S::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => Some(Cipher::Aes128Gcm),
        S::TLS13_AES_256_GCM_SHA384
        | S::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
        | S::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => Some(Cipher::Aes256Gcm),
        S::TLS13_CHACHA20_POLY1305_SHA256
        | S::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
        | S::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => Some(Cipher::Chacha20Poly1305),
        _ => None,
    }
}

/// Where a connection's records are sealed and opened after [`hand_off`].
#[derive(Debug)]
pub enum HandOff {
    /// In user space (rustls), as before.
    UserSpace,
    /// In the kernel.
    Kernel,
    /// The session was consumed but the kernel refused the keys: the connection must close.
    Failed(io::Error),
}

/// Hands the connection's traffic keys to the kernel, right after the handshake, when the
/// negotiated cipher is supported both ways. Called only when [`resolve`] allowed it.
pub fn hand_off(stream: &mut TlsSocket) -> HandOff {
    // Whatever happens, the session (if it stays) reads without the handshake's bound.
    stream.read_freely();
    let support = probe();
    let Some((version, suite)) = stream.negotiated() else { return HandOff::UserSpace };
    match cipher_of(suite) {
        Some(c) if support.can_install(c) => {}
        cipher => {
            debug!(?suite, ?cipher, "kTLS: cipher not supported both ways; user-space TLS");
            return HandOff::UserSpace;
        }
    }
    match stream.move_to_kernel(version) {
        Ok(true) => HandOff::Kernel,
        Ok(false) => HandOff::UserSpace,
        Err(e) => HandOff::Failed(e),
    }
}

/// Reads during a handshake that must stop at record boundaries: how much of the current
/// record (header first) may still be read. Pure; the socket reads in `stream` use it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RecordBound {
    header: [u8; 5],
    /// Header bytes read of the current record (0..5).
    have: usize,
    /// Payload bytes of the current record still to read, once its header is complete.
    left: usize,
}

impl RecordBound {
    /// The most a read may take now, when offered `room` bytes.
    pub(crate) fn limit(&self, room: usize) -> usize {
        if self.have < 5 && self.left == 0 {
            room.min(5 - self.have)
        } else {
            room.min(self.left)
        }
    }

    /// Accounts for `bytes` just read (at most [`RecordBound::limit`] of them).
    pub(crate) fn consumed(&mut self, bytes: &[u8]) {
        if self.have < 5 && self.left == 0 {
            self.header[self.have..self.have + bytes.len()].copy_from_slice(bytes);
            self.have += bytes.len();
            if self.have == 5 {
                self.left = usize::from(u16::from_be_bytes([self.header[3], self.header[4]]));
                if self.left == 0 {
                    *self = RecordBound::default();
                }
            }
        } else {
            self.left -= bytes.len();
            if self.left == 0 {
                *self = RecordBound::default();
            }
        }
    }
}

/// A connection whose records the kernel seals and opens.
#[derive(Debug)]
pub(crate) struct Kernel {
    /// Plaintext rustls had decrypted before the hand-off, served first.
    early: Vec<u8>,
    /// How much of `early` was served.
    served: Cell<usize>,
    /// close_notify (or a KeyUpdate we cannot follow) was received: end of stream.
    ended: Cell<bool>,
    /// The AES-GCM cipher, to which the record limit applies.
    gcm: Option<Cipher>,
}

impl Kernel {
    pub(crate) fn new(early: Vec<u8>, cipher: Option<Cipher>, ended: bool) -> Self {
        let gcm = cipher.filter(|c| matches!(c, Cipher::Aes128Gcm | Cipher::Aes256Gcm));
        Self { early, served: Cell::new(0), ended: Cell::new(ended), gcm }
    }

    /// Whether a read would not block on the socket.
    pub(crate) fn has_buffered(&self) -> bool {
        self.served.get() < self.early.len() || self.ended.get()
    }

    /// Reads plaintext: first what rustls decrypted, then through the kernel.
    pub(crate) fn try_recv(&self, socket: &Socket, buf: &mut [u8]) -> io::Result<usize> {
        let at = self.served.get();
        if at < self.early.len() {
            let n = buf.len().min(self.early.len() - at);
            buf[..n].copy_from_slice(&self.early[at..at + n]);
            self.served.set(at + n);
            return Ok(n);
        }
        if self.ended.get() {
            return Ok(0);
        }
        if let Some(cipher) = self.gcm {
            let sent = sys::ktls::tx_record_seq(socket.fd(), cipher)?;
            if sent >= RECORD_LIMIT {
                info!(records = sent, "kTLS: AES-GCM record limit reached; closing the connection");
                self.ended.set(true);
                return Ok(0);
            }
        }
        loop {
            match socket.try_recv(buf) {
                Err(e) if e.raw_os_error() == Some(libc::EIO) => {}
                other => return other,
            }
            // Not application data: the record with its type.
            let (record_type, n) = sys::ktls::recv_record(socket.fd(), buf)?;
            match ControlRecord::classify(record_type, &buf[..n]) {
                ControlRecord::ApplicationData => return Ok(n),
                ControlRecord::CloseNotify => {
                    self.ended.set(true);
                    return Ok(0);
                }
                ControlRecord::KeyUpdate { .. } => {
                    info!("kTLS: the client sent a KeyUpdate, which a handed-off session cannot follow; closing the connection");
                    self.ended.set(true);
                    return Ok(0);
                }
                ControlRecord::NewSessionTicket => {} // not sent to servers; ignored
                ControlRecord::Alert { level, description } => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "TLS alert from the client (level {level}, description {description})"
                        ),
                    ))
                }
                ControlRecord::Unexpected { record_type } => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("TLS: unexpected record of type {record_type} after the handshake"),
                    ))
                }
            }
        }
    }

    /// Sends close_notify through the kernel without waiting (best effort).
    pub(crate) fn try_close_notify(socket: &Socket) {
        let _ = sys::ktls::send_close_notify(socket.fd());
    }

    /// Sends close_notify through the kernel, waiting for room within the send timeout.
    pub(crate) async fn close_notify(socket: &Socket) -> Result<(), SendError> {
        loop {
            match sys::ktls::send_close_notify(socket.fd()) {
                Ok(true) => return Ok(()),
                Ok(false) => socket.writable().await?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(SendError::io("close_notify", e)),
            }
        }
    }
}

/// The protocol version and suite of an established session, for [`hand_off`].
pub(crate) type Negotiated = (ProtocolVersion, CipherSuite);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::ktls::Directions;

    fn kernel_with(ciphers: &[Cipher]) -> Support {
        let mut s = Support { ulp: !ciphers.is_empty(), ..Support::default() };
        for c in ciphers {
            let both = Directions { tx: true, rx: true };
            match c {
                Cipher::Aes128Gcm => s.aes_128_gcm = both,
                Cipher::Aes256Gcm => s.aes_256_gcm = both,
                Cipher::Chacha20Poly1305 => s.chacha20_poly1305 = both,
            }
        }
        s
    }

    #[test]
    fn modes_resolve() {
        let yes = kernel_with(&[Cipher::Aes128Gcm]);
        let no = Support { unavailable: Some("no module".into()), ..Support::default() };
        let cases = [
            (KtlsMode::Off, &yes, Some(false)),
            (KtlsMode::Off, &no, Some(false)),
            (KtlsMode::Auto, &yes, Some(true)),
            (KtlsMode::Auto, &no, Some(false)),
            (KtlsMode::On, &yes, Some(true)),
            (KtlsMode::On, &no, None),
        ];
        for (mode, support, want) in cases {
            assert_eq!(resolve(mode, support).ok(), want, "{mode:?} {support:?}");
        }
        assert!(describe(KtlsMode::Auto, &no).starts_with("off: unavailable (no module)"));
        assert!(describe(KtlsMode::On, &yes).contains("AES-128-GCM tx+rx"));
    }

    #[test]
    fn suites_map_to_kernel_ciphers() {
        use CipherSuite as S;
        let cases = [
            (S::TLS13_AES_128_GCM_SHA256, Some(Cipher::Aes128Gcm)),
            (S::TLS13_AES_256_GCM_SHA384, Some(Cipher::Aes256Gcm)),
            (S::TLS13_CHACHA20_POLY1305_SHA256, Some(Cipher::Chacha20Poly1305)),
            (S::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, Some(Cipher::Aes128Gcm)),
            (S::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, Some(Cipher::Aes256Gcm)),
            (S::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, Some(Cipher::Chacha20Poly1305)),
            (S::TLS_RSA_WITH_AES_128_CBC_SHA, None),
        ];
        for (suite, want) in cases {
            assert_eq!(cipher_of(suite), want, "{suite:?}");
        }
    }

    /// Reads offered `room` bytes at a time over a stream of records never cross a record's end.
    #[test]
    fn record_bound_stops_at_record_ends() {
        // Records of 3, 0 and 300 payload bytes, then the start of another.
        let mut wire = Vec::new();
        for len in [3u16, 0, 300] {
            wire.extend_from_slice(&[23, 3, 3]);
            wire.extend_from_slice(&len.to_be_bytes());
            wire.extend(std::iter::repeat_n(7u8, usize::from(len)));
        }
        let ends = [8usize, 13, 318];
        for room in [1usize, 2, 4, 5, 64, 4096] {
            let mut bound = RecordBound::default();
            let mut at = 0;
            let mut stops = Vec::new();
            while at < wire.len() {
                let n = bound.limit(room).min(wire.len() - at);
                assert!(n > 0, "room {room} at {at}");
                bound.consumed(&wire[at..at + n]);
                at += n;
                if bound == RecordBound::default() {
                    stops.push(at);
                }
                // Never past the end of the record being read.
                assert!(
                    ends.iter().all(|&e| !(at > e && at - n < e)),
                    "room {room} crossed at {at}"
                );
            }
            assert_eq!(stops, ends, "room {room}");
        }
    }

    /// On a kernel without `CONFIG_TLS` the probe must say so; with the module it must find it.
    #[test]
    fn probe_matches_the_kernel() {
        let support = probe();
        if std::path::Path::new("/sys/module/tls").exists() {
            assert!(support.ulp, "module loaded but the probe failed: {support}");
        } else if !support.ulp {
            assert!(support.unavailable.is_some(), "{support:?}");
        }
    }
}
