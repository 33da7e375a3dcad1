//! Kernel TLS (kTLS): hands a TLS session's record layer to the kernel after a user-space
//! handshake, so `sendfile`, `splice` and plain `send` on the socket write encrypted records and
//! `recv` returns decrypted application data.
//!
//! The handshake stays in user space (rustls). Once it is complete, [`install`] puts the `tls`
//! upper-layer protocol on the TCP socket (`setsockopt(SOL_TCP, TCP_ULP, "tls")`) and gives it
//! the traffic keys, IVs and next record sequence numbers of both directions
//! (`setsockopt(SOL_TLS, TLS_TX | TLS_RX, struct tls12_crypto_info_*)`). From then on every byte
//! written is sealed into TLS records by the kernel and every application-data record read is
//! opened by it.
//!
//! What the kernel does not do, and the caller must:
//! - Records already read from the socket before the hand-off are gone from the kernel's view:
//!   the caller decrypts them in user space (and feeds their plaintext to HTTP first) and must
//!   never have read a partial record (read the handshake record by record).
//! - Non-application records on receive (alerts, close_notify, TLS 1.3 KeyUpdate and
//!   NewSessionTicket): a plain `recv` fails with `EIO`; [`recv_record`] reads them with their
//!   record type, and [`ControlRecord::classify`] says what they are.
//! - Key updates: the kernel accepts new keys on an installed socket only from Linux 6.13
//!   ([`Support::rekey`]); before that, a KeyUpdate means closing the connection.
//! - close_notify on close: [`send_close_notify`].
//! - The AES-GCM record limit (about 2^24.5 records per key for TLS 1.3): the kernel counts
//!   sequence numbers but does not stop or rekey by itself.
//!
//! Failure: [`install`] validates and builds both directions before it touches the socket, so
//! an unsupported cipher leaves the socket plain. An error from the kernel after `TCP_ULP`
//! (for example `TLS_RX` refused after `TLS_TX` was accepted) leaves the socket in a state
//! neither side can continue: the caller closes the connection.

use std::ffi::c_int;
use std::fmt;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};

use rustls::{ConnectionTrafficSecrets, ExtractedSecrets, ProtocolVersion};

// From linux/tls.h. libc 0.2 exports `SOL_TLS` and `TCP_ULP` but keeps the rest of the kTLS
// uapi private, so the values are written out here (they are kernel ABI and never change).
const SOL_TLS: c_int = libc::SOL_TLS;
const TLS_TX: c_int = 1;
const TLS_RX: c_int = 2;
const TLS_SET_RECORD_TYPE: c_int = 1;
const TLS_GET_RECORD_TYPE: c_int = 2;
const TLS_1_2_VERSION: u16 = 0x0303;
const TLS_1_3_VERSION: u16 = 0x0304;
const TLS_CIPHER_AES_GCM_128: u16 = 51;
const TLS_CIPHER_AES_GCM_256: u16 = 52;
const TLS_CIPHER_CHACHA20_POLY1305: u16 = 54;

/// TLS record content types (RFC 8446 §5.1).
const CONTENT_ALERT: u8 = 21;
const CONTENT_HANDSHAKE: u8 = 22;
const CONTENT_APPLICATION_DATA: u8 = 23;

/// An AEAD the kernel can run, as negotiated by rustls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cipher {
    /// AES-128-GCM (`TLS_AES_128_GCM_SHA256`, `TLS_ECDHE_*_WITH_AES_128_GCM_SHA256`).
    Aes128Gcm,
    /// AES-256-GCM (`TLS_AES_256_GCM_SHA384`, `TLS_ECDHE_*_WITH_AES_256_GCM_SHA384`).
    Aes256Gcm,
    /// ChaCha20-Poly1305 (`TLS_CHACHA20_POLY1305_SHA256`, `TLS_ECDHE_*_WITH_CHACHA20_POLY1305_SHA256`).
    Chacha20Poly1305,
}

impl Cipher {
    /// Every cipher, in the order the probe tries them.
    pub const ALL: [Cipher; 3] = [Cipher::Aes128Gcm, Cipher::Aes256Gcm, Cipher::Chacha20Poly1305];

    /// The cipher of a rustls traffic secret.
    pub fn of(secrets: &ConnectionTrafficSecrets) -> Option<Cipher> {
        match secrets {
            ConnectionTrafficSecrets::Aes128Gcm { .. } => Some(Cipher::Aes128Gcm),
            ConnectionTrafficSecrets::Aes256Gcm { .. } => Some(Cipher::Aes256Gcm),
            ConnectionTrafficSecrets::Chacha20Poly1305 { .. } => Some(Cipher::Chacha20Poly1305),
            // The enum is non-exhaustive: a future AEAD is one the kernel path does not know.
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    /// The name used in logs and the start-up block.
    pub fn name(self) -> &'static str {
        match self {
            Cipher::Aes128Gcm => "AES-128-GCM",
            Cipher::Aes256Gcm => "AES-256-GCM",
            Cipher::Chacha20Poly1305 => "CHACHA20-POLY1305",
        }
    }

    fn kernel_type(self) -> u16 {
        match self {
            Cipher::Aes128Gcm => TLS_CIPHER_AES_GCM_128,
            Cipher::Aes256Gcm => TLS_CIPHER_AES_GCM_256,
            Cipher::Chacha20Poly1305 => TLS_CIPHER_CHACHA20_POLY1305,
        }
    }

    fn key_len(self) -> usize {
        match self {
            Cipher::Aes128Gcm => 16,
            Cipher::Aes256Gcm | Cipher::Chacha20Poly1305 => 32,
        }
    }

    /// Salt bytes of the kernel struct: the implicit part of the GCM nonce. ChaCha20 has none:
    /// its whole 12-byte IV goes in `iv`.
    fn salt_len(self) -> usize {
        match self {
            Cipher::Aes128Gcm | Cipher::Aes256Gcm => 4,
            Cipher::Chacha20Poly1305 => 0,
        }
    }
}

impl fmt::Display for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The TLS versions the kernel record layer speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// TLS 1.2 (RFC 5246): AES-GCM records carry an 8-byte explicit nonce.
    Tls12,
    /// TLS 1.3 (RFC 8446): the nonce is the IV XOR the record sequence number.
    Tls13,
}

impl Version {
    /// The kTLS version of a rustls protocol version; `None` for one the kernel does not do.
    pub fn of(version: ProtocolVersion) -> Option<Version> {
        match version {
            ProtocolVersion::TLSv1_2 => Some(Version::Tls12),
            ProtocolVersion::TLSv1_3 => Some(Version::Tls13),
            _ => None,
        }
    }

    fn kernel_value(self) -> u16 {
        match self {
            Version::Tls12 => TLS_1_2_VERSION,
            Version::Tls13 => TLS_1_3_VERSION,
        }
    }
}

/// Which way a key works.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Records we send (`TLS_TX`).
    Tx,
    /// Records we receive (`TLS_RX`).
    Rx,
}

impl Direction {
    fn optname(self) -> c_int {
        match self {
            Direction::Tx => TLS_TX,
            Direction::Rx => TLS_RX,
        }
    }
}

/// One `struct tls12_crypto_info_{aes_gcm_128,aes_gcm_256,chacha20_poly1305}` as bytes, laid
/// out as in linux/tls.h: `u16 version, u16 cipher_type` (native endian), then `iv`, `key`,
/// `salt`, `rec_seq` (big endian). All fields are byte arrays after the two `u16`s, so the C
/// structs have no padding. Zeroed on drop: it holds a traffic key.
pub struct CryptoInfo {
    buf: [u8; CryptoInfo::MAX_LEN],
    len: usize,
}

impl CryptoInfo {
    /// The largest struct: AES-256-GCM and ChaCha20-Poly1305, 4 + 8/12 + 32 + 4/0 + 8 bytes.
    const MAX_LEN: usize = 56;

    /// Builds the kernel struct for one direction.
    ///
    /// `iv` is the 12-byte IV as rustls extracts it: for AES-GCM the 4-byte implicit salt
    /// followed by 8 bytes; for ChaCha20-Poly1305 the whole nonce base. `seq` is the sequence
    /// number of the next record in this direction.
    ///
    /// TLS 1.3 (any cipher) and TLS 1.2 ChaCha20: the kernel XORs its IV with the sequence
    /// number, as RFC 8446 §5.3 and RFC 7905 do, so the IV goes in unchanged.
    ///
    /// TLS 1.2 AES-GCM (RFC 5288 §3): each record carries an 8-byte explicit nonce chosen by
    /// the sender. The kernel reads it from the record on receive; on send it writes its `iv`
    /// field and adds one per record. rustls sent records `0..seq` with explicit nonces
    /// `iv[4..] XOR n`, so starting the kernel at `iv[4..]` would repeat the nonce of record 0
    /// (the Finished message) under the same key. The kernel instead starts just above the
    /// aligned block that holds every nonce rustls used (see [`tls12_gcm_nonce_start`]).
    pub fn new(
        version: Version,
        direction: Direction,
        cipher: Cipher,
        seq: u64,
        key: &[u8],
        iv: &[u8; 12],
    ) -> io::Result<CryptoInfo> {
        if key.len() != cipher.key_len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{cipher} key of {} bytes, expected {}", key.len(), cipher.key_len()),
            ));
        }
        let salt_len = cipher.salt_len();
        let (salt, nonce) = iv.split_at(salt_len);
        let mut explicit = [0u8; 12];
        let explicit = &mut explicit[..nonce.len()];
        explicit.copy_from_slice(nonce);
        if version == Version::Tls12 && salt_len == 4 && direction == Direction::Tx {
            let rustls_base = u64::from_be_bytes(nonce.try_into().expect("8-byte GCM nonce"));
            let start = tls12_gcm_nonce_start(rustls_base, seq).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "TLS 1.2 record sequence exhausted")
            })?;
            explicit.copy_from_slice(&start.to_be_bytes());
        }
        let mut info = CryptoInfo { buf: [0; CryptoInfo::MAX_LEN], len: 0 };
        let mut at = 0;
        for field in [
            &version.kernel_value().to_ne_bytes()[..],
            &cipher.kernel_type().to_ne_bytes()[..],
            explicit,
            key,
            salt,
            &seq.to_be_bytes()[..],
        ] {
            info.buf[at..at + field.len()].copy_from_slice(field);
            at += field.len();
        }
        info.len = at;
        Ok(info)
    }

    /// Builds the kernel struct from a rustls traffic secret.
    pub fn from_rustls(
        version: Version,
        direction: Direction,
        seq: u64,
        secrets: &ConnectionTrafficSecrets,
    ) -> io::Result<CryptoInfo> {
        let (key, iv) = match secrets {
            ConnectionTrafficSecrets::Aes128Gcm { key, iv }
            | ConnectionTrafficSecrets::Aes256Gcm { key, iv }
            | ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => (key, iv),
            #[allow(unreachable_patterns)]
            _ => return Err(unsupported("a cipher the kernel does not know")),
        };
        let cipher = Cipher::of(secrets).ok_or_else(|| unsupported("unknown cipher"))?;
        let iv: &[u8; 12] = iv
            .as_ref()
            .try_into()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "IV is not 12 bytes"))?;
        CryptoInfo::new(version, direction, cipher, seq, key.as_ref(), iv)
    }

    /// The struct as `setsockopt` takes it.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Drop for CryptoInfo {
    fn drop(&mut self) {
        self.buf.fill(0);
        std::hint::black_box(&self.buf);
    }
}

impl fmt::Debug for CryptoInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CryptoInfo({} bytes)", self.len)
    }
}

/// The first explicit nonce the kernel may use for TLS 1.2 AES-GCM records after rustls sent
/// records `0..sent` with explicit nonces `base ^ n`. Those all lie in the block of
/// `sent.next_power_of_two()` values aligned around `base`; the kernel counts up from the
/// first value past that block, and would only come back into it after 2^64 minus the block
/// size records. `None` if `sent` is past 2^63 (never, with record limits of about 2^24).
pub fn tls12_gcm_nonce_start(base: u64, sent: u64) -> Option<u64> {
    let mask = sent.max(1).checked_next_power_of_two()? - 1;
    Some((base | mask).wrapping_add(1))
}

fn unsupported(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, format!("kTLS: {what}"))
}

/// What the probe found the kernel can do for one cipher.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Directions {
    /// `TLS_TX` accepted: the kernel encrypts.
    pub tx: bool,
    /// `TLS_RX` accepted: the kernel decrypts.
    pub rx: bool,
}

/// What this kernel's TLS can do, found once at start-up by [`probe`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Support {
    /// `setsockopt(TCP_ULP, "tls")` succeeded (the `tls` module is there or was loaded).
    pub ulp: bool,
    /// Why kTLS cannot be used at all, when `ulp` is false.
    pub unavailable: Option<String>,
    /// AES-128-GCM.
    pub aes_128_gcm: Directions,
    /// AES-256-GCM.
    pub aes_256_gcm: Directions,
    /// ChaCha20-Poly1305.
    pub chacha20_poly1305: Directions,
    /// The kernel accepts new keys on an installed socket (TLS 1.3 KeyUpdate; Linux 6.13+).
    pub rekey: bool,
}

impl Support {
    /// What the kernel can do for `cipher`.
    pub fn cipher(&self, cipher: Cipher) -> Directions {
        match cipher {
            Cipher::Aes128Gcm => self.aes_128_gcm,
            Cipher::Aes256Gcm => self.aes_256_gcm,
            Cipher::Chacha20Poly1305 => self.chacha20_poly1305,
        }
    }

    fn cipher_mut(&mut self, cipher: Cipher) -> &mut Directions {
        match cipher {
            Cipher::Aes128Gcm => &mut self.aes_128_gcm,
            Cipher::Aes256Gcm => &mut self.aes_256_gcm,
            Cipher::Chacha20Poly1305 => &mut self.chacha20_poly1305,
        }
    }

    /// Whether [`install`] can take over both directions of a session using `cipher`.
    pub fn can_install(&self, cipher: Cipher) -> bool {
        let d = self.cipher(cipher);
        self.ulp && d.tx && d.rx
    }

    /// Whether any cipher can be installed in both directions.
    pub fn any(&self) -> bool {
        Cipher::ALL.into_iter().any(|c| self.can_install(c))
    }
}

/// One line for the start-up block, e.g.
/// `AES-128-GCM tx+rx, AES-256-GCM tx+rx, CHACHA20-POLY1305 tx+rx, rekey no`.
impl fmt::Display for Support {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.ulp {
            let why = self.unavailable.as_deref().unwrap_or("TCP_ULP \"tls\" refused");
            return write!(f, "unavailable ({why})");
        }
        for cipher in Cipher::ALL {
            let d = self.cipher(cipher);
            let dirs = match (d.tx, d.rx) {
                (true, true) => "tx+rx",
                (true, false) => "tx",
                (false, true) => "rx",
                (false, false) => "no",
            };
            write!(f, "{cipher} {dirs}, ")?;
        }
        write!(f, "rekey {}", if self.rekey { "yes" } else { "no" })
    }
}

/// Finds what kernel TLS can do here: puts the `tls` ULP on connected loopback TCP sockets and
/// offers each cipher's TLS 1.3 keys (zeros) for both directions, one socket pair per cipher (a
/// socket takes the ULP and each direction's keys once). Rekey support is found by offering
/// the AES-128-GCM send keys a second time, which kernels before 6.13 refuse with `EBUSY`.
///
/// Never fails: whatever goes wrong is reported as "not supported", with the reason in
/// [`Support::unavailable`] when nothing works. Needs `lo` up. Costs a few socket pairs;
/// call once at start-up.
pub fn probe() -> Support {
    let mut support = Support::default();
    for cipher in Cipher::ALL {
        let pair = match LoopbackPair::new() {
            Ok(pair) => pair,
            Err(e) => {
                support.unavailable = Some(format!("loopback TCP pair: {e}"));
                return support;
            }
        };
        let fd = pair.client.as_raw_fd();
        if let Err(e) = set_ulp(fd) {
            support.unavailable = Some(match e.raw_os_error() {
                Some(libc::ENOENT) => "the kernel has no tls module (CONFIG_TLS)".to_owned(),
                _ => format!("setsockopt(TCP_ULP, \"tls\"): {e}"),
            });
            return support;
        }
        support.ulp = true;
        let key = [0u8; 32];
        let iv = [0u8; 12];
        let offer = |direction| {
            CryptoInfo::new(Version::Tls13, direction, cipher, 0, &key[..cipher.key_len()], &iv)
                .and_then(|info| set_crypto_info(fd, direction, &info))
                .is_ok()
        };
        let tx = offer(Direction::Tx);
        let rx = offer(Direction::Rx);
        if cipher == Cipher::Aes128Gcm && tx {
            support.rekey = offer(Direction::Tx);
        }
        *support.cipher_mut(cipher) = Directions { tx, rx };
    }
    support
}

/// A connected loopback TCP pair; the probe configures one end.
struct LoopbackPair {
    client: TcpStream,
    _server: TcpStream,
}

impl LoopbackPair {
    fn new() -> io::Result<LoopbackPair> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let client = TcpStream::connect(listener.local_addr()?)?;
        let (server, _) = listener.accept()?;
        Ok(LoopbackPair { client, _server: server })
    }
}

/// Hands both directions of a completed rustls session on the TCP socket `fd` to the kernel.
///
/// `version` is the session's protocol version (`conn.protocol_version()`, read before
/// extracting the secrets); `secrets` come from `dangerous_extract_secrets()` (the
/// `ServerConfig` needs `enable_secret_extraction = true`) or
/// `dangerous_into_kernel_connection()`, which also keeps what a later key update needs.
///
/// Before calling: everything rustls has to send is written to the socket (rustls refuses to
/// extract otherwise), and no byte of a record after the handshake has been read from the
/// socket unless rustls decrypted the whole record (its plaintext goes to HTTP before anything
/// read through the kernel).
///
/// Both structs are built first, so a cipher or version the kernel cannot take returns
/// `Unsupported` with the socket untouched. A kernel error after that leaves the socket
/// unusable (see the module doc).
pub fn install(fd: RawFd, version: ProtocolVersion, secrets: &ExtractedSecrets) -> io::Result<()> {
    let version = Version::of(version).ok_or_else(|| unsupported("TLS version"))?;
    let (tx_seq, tx) = &secrets.tx;
    let (rx_seq, rx) = &secrets.rx;
    let tx = CryptoInfo::from_rustls(version, Direction::Tx, *tx_seq, tx)?;
    let rx = CryptoInfo::from_rustls(version, Direction::Rx, *rx_seq, rx)?;
    set_ulp(fd)?;
    set_crypto_info(fd, Direction::Tx, &tx)?;
    set_crypto_info(fd, Direction::Rx, &rx)
}

/// Gives the kernel new TLS 1.3 keys for one direction after a KeyUpdate: `next` is what
/// rustls's `KernelConnection::update_rx_secret` / `update_tx_secret` return (sequence 0 and
/// the new secret). Needs Linux 6.13 ([`Support::rekey`]); before, the kernel refuses with
/// `EBUSY` and the connection must be closed. For receive, call it after [`recv_record`]
/// returned the KeyUpdate (from 6.13 the kernel decrypts nothing more until then); for send, after
/// our own KeyUpdate record went out under the old keys.
pub fn rekey(
    fd: RawFd,
    direction: Direction,
    next: &(u64, ConnectionTrafficSecrets),
) -> io::Result<()> {
    let (seq, secrets) = next;
    let info = CryptoInfo::from_rustls(Version::Tls13, direction, *seq, secrets)?;
    set_crypto_info(fd, direction, &info)
}

/// The sequence number of the next record the kernel sends on `fd` (records sent under the
/// current key), read back with `getsockopt(SOL_TLS, TLS_TX)`. `cipher` is the installed one
/// (the kernel wants the struct's exact size). The copy of the key the kernel returns with it
/// is zeroed.
pub fn tx_record_seq(fd: RawFd, cipher: Cipher) -> io::Result<u64> {
    let mut info = CryptoInfo { buf: [0; CryptoInfo::MAX_LEN], len: 24 + cipher.key_len() };
    let mut len = libc::socklen_t::try_from(info.len).expect("at most 56");
    // SAFETY: getsockopt(2) writes at most `len` (<= MAX_LEN) bytes into `info.buf`, which we
    // borrow exclusively for the call, and updates `len`.
    let rc =
        unsafe { libc::getsockopt(fd, SOL_TLS, TLS_TX, info.buf.as_mut_ptr().cast(), &mut len) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    if usize::try_from(len).ok() != Some(info.len) {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "TLS_TX: unexpected size"));
    }
    // rec_seq is the struct's last 8 bytes, big endian. `info` zeroes itself on drop.
    let seq = info.buf[info.len - 8..info.len].try_into().expect("8 bytes");
    Ok(u64::from_be_bytes(seq))
}

/// Puts the `tls` upper-layer protocol on the connected TCP socket `fd`. The kernel loads the
/// `tls` module on demand (`tcp-ulp-tls`); `ENOENT` means it has none.
pub fn set_ulp(fd: RawFd) -> io::Result<()> {
    setsockopt(fd, libc::SOL_TCP, libc::TCP_ULP, b"tls")
}

/// Gives the kernel the keys of one direction. The first call per direction installs them;
/// a second call (new keys after a TLS 1.3 KeyUpdate, sequence 0) needs Linux 6.13
/// ([`Support::rekey`]) and is refused with `EBUSY` before.
pub fn set_crypto_info(fd: RawFd, direction: Direction, info: &CryptoInfo) -> io::Result<()> {
    setsockopt(fd, SOL_TLS, direction.optname(), info.as_bytes())
}

fn setsockopt(fd: RawFd, level: c_int, name: c_int, value: &[u8]) -> io::Result<()> {
    let len = libc::socklen_t::try_from(value.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "option too long"))?;
    // SAFETY: setsockopt(2) reads `len` bytes from `value`, which we borrow for the call; a bad
    // descriptor or option yields an errno, never a write to our memory.
    let rc = unsafe { libc::setsockopt(fd, level, name, value.as_ptr().cast(), len) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Space for one `cmsghdr` carrying one byte (the record type), 8-byte aligned.
#[repr(C, align(8))]
struct CmsgSpace([u8; 32]);

/// Reads one record's plaintext (or the part that fits in `buf`) from a kTLS socket, without
/// blocking, with its TLS content type (23 for application data, 21 alert, 22 handshake).
///
/// A plain `recv` fails with `EIO` when the next record is not application data; this call
/// gives the kernel room for the `TLS_GET_RECORD_TYPE` control message, so it returns such a
/// record instead. The kernel never mixes two record types in one call. `Ok((23, 0))` is end
/// of stream (the peer closed TCP without close_notify when that is the first thing read).
pub fn recv_record(fd: RawFd, buf: &mut [u8]) -> io::Result<(u8, usize)> {
    let mut cmsg_space = CmsgSpace([0; 32]);
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // SAFETY: an all-zero msghdr is a valid empty one (null pointers, zero lengths).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg_space.0.as_mut_ptr().cast();
    msg.msg_controllen = cmsg_space.0.len();
    // SAFETY: recvmsg(2) writes at most `iov_len` bytes into `buf` and at most `msg_controllen`
    // bytes into `cmsg_space`, both exclusively borrowed and alive for the call.
    let rc = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) };
    let n = usize::try_from(rc).map_err(|_| io::Error::last_os_error())?;
    let mut record_type = CONTENT_APPLICATION_DATA;
    // SAFETY: the CMSG_* macros walk the control buffer the kernel filled, bounded by the
    // `msg_controllen` it set; CMSG_DATA points inside that buffer, and a TLS_GET_RECORD_TYPE
    // message carries one byte.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == SOL_TLS && (*cmsg).cmsg_type == TLS_GET_RECORD_TYPE {
                record_type = *libc::CMSG_DATA(cmsg);
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok((record_type, n))
}

/// Sends `payload` as one record of content type `record_type` through the kernel
/// (`TLS_SET_RECORD_TYPE`), without blocking or raising SIGPIPE. Returns the bytes taken.
pub fn send_record(fd: RawFd, record_type: u8, payload: &[u8]) -> io::Result<usize> {
    let mut cmsg_space = CmsgSpace([0; 32]);
    let mut iov =
        libc::iovec { iov_base: payload.as_ptr().cast_mut().cast(), iov_len: payload.len() };
    // SAFETY: an all-zero msghdr is a valid empty one (null pointers, zero lengths).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg_space.0.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE/CMSG_LEN are pure size computations.
    let (space, len) = unsafe { (libc::CMSG_SPACE(1), libc::CMSG_LEN(1)) };
    msg.msg_controllen = usize::try_from(space).expect("CMSG_SPACE(1) fits");
    // SAFETY: `msg_controllen` (CMSG_SPACE(1) = 24) is within the 32-byte aligned buffer, so
    // CMSG_FIRSTHDR is non-null and the header plus its one data byte lie inside it. sendmsg(2)
    // only reads the iovec (`payload`, borrowed) and the control buffer.
    let rc = unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = SOL_TLS;
        (*cmsg).cmsg_type = TLS_SET_RECORD_TYPE;
        (*cmsg).cmsg_len = usize::try_from(len).expect("CMSG_LEN(1) fits");
        *libc::CMSG_DATA(cmsg) = record_type;
        libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
    };
    usize::try_from(rc).map_err(|_| io::Error::last_os_error())
}

/// Sends a close_notify alert (level warning, RFC 8446 §6.1) through the kernel. `Ok(false)`
/// if the socket buffer had no room (retry when writable).
pub fn send_close_notify(fd: RawFd) -> io::Result<bool> {
    match send_record(fd, CONTENT_ALERT, &[1, 0]) {
        Ok(n) => Ok(n == 2),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
        Err(e) => Err(e),
    }
}

/// What a record read by [`recv_record`] means for the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlRecord {
    /// Application data: HTTP bytes.
    ApplicationData,
    /// close_notify (RFC 8446 §6.1): the peer sends nothing more.
    CloseNotify,
    /// Any other alert; with TLS 1.3 all of them are fatal (RFC 8446 §6.2).
    Alert {
        /// 1 warning, 2 fatal.
        level: u8,
        /// The alert description code.
        description: u8,
    },
    /// A TLS 1.3 KeyUpdate (RFC 8446 §4.6.3): new receive keys are needed before anything
    /// more can be read; with `update_requested` the peer asks us to update ours too.
    KeyUpdate {
        /// The peer asks for our own KeyUpdate.
        update_requested: bool,
    },
    /// A TLS 1.3 NewSessionTicket (a server receives none; ignorable for a client).
    NewSessionTicket,
    /// Anything else: a protocol violation after the handshake.
    Unexpected {
        /// The record's content type.
        record_type: u8,
    },
}

impl ControlRecord {
    /// Classifies one record's plaintext. Assumes one message per record, which is what
    /// rustls and the TLS stacks we know send for alerts and post-handshake messages.
    pub fn classify(record_type: u8, payload: &[u8]) -> ControlRecord {
        match (record_type, payload) {
            (CONTENT_APPLICATION_DATA, _) => ControlRecord::ApplicationData,
            (CONTENT_ALERT, [_, 0]) => ControlRecord::CloseNotify,
            (CONTENT_ALERT, [level, description]) => {
                ControlRecord::Alert { level: *level, description: *description }
            }
            // Handshake header: type (24 key_update, 4 new_session_ticket), 24-bit length.
            (CONTENT_HANDSHAKE, [24, 0, 0, 1, request @ (0 | 1)]) => {
                ControlRecord::KeyUpdate { update_requested: *request == 1 }
            }
            (CONTENT_HANDSHAKE, [4, ..]) => ControlRecord::NewSessionTicket,
            _ => ControlRecord::Unexpected { record_type },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [
        0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e,
        0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d,
        0x1e, 0x1f,
    ];
    const IV: [u8; 12] = [0xa0, 0xa1, 0xa2, 0xa3, 0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7];

    fn header(version: u16, cipher: u16) -> Vec<u8> {
        [version.to_ne_bytes(), cipher.to_ne_bytes()].concat()
    }

    /// Expected bytes written out field by field from linux/tls.h.
    #[test]
    fn crypto_info_layouts() {
        let seq = 0x0102_0304_0506_0708u64;
        let seq_be = [1, 2, 3, 4, 5, 6, 7, 8];
        let salt = &IV[..4];
        let nonce = &IV[4..];
        let cases: [(Version, Direction, Cipher, Vec<u8>); 6] = [
            // tls12_crypto_info_aes_gcm_128: iv[8] key[16] salt[4] rec_seq[8] = 40 bytes.
            (Version::Tls13, Direction::Tx, Cipher::Aes128Gcm, {
                [&header(0x0304, 51)[..], nonce, &KEY[..16], salt, &seq_be].concat()
            }),
            // tls12_crypto_info_aes_gcm_256: iv[8] key[32] salt[4] rec_seq[8] = 56 bytes.
            (Version::Tls13, Direction::Rx, Cipher::Aes256Gcm, {
                [&header(0x0304, 52)[..], nonce, &KEY[..], salt, &seq_be].concat()
            }),
            // tls12_crypto_info_chacha20_poly1305: iv[12] key[32] salt[0] rec_seq[8] = 56.
            (Version::Tls13, Direction::Tx, Cipher::Chacha20Poly1305, {
                [&header(0x0304, 54)[..], &IV[..], &KEY[..], &seq_be].concat()
            }),
            (Version::Tls12, Direction::Tx, Cipher::Chacha20Poly1305, {
                [&header(0x0303, 54)[..], &IV[..], &KEY[..], &seq_be].concat()
            }),
            // TLS 1.2 GCM receive: the explicit nonce comes from each record; iv as extracted.
            (Version::Tls12, Direction::Rx, Cipher::Aes128Gcm, {
                [&header(0x0303, 51)[..], nonce, &KEY[..16], salt, &seq_be].concat()
            }),
            // TLS 1.2 GCM send: past the block of nonces rustls used for records 0..seq.
            (Version::Tls12, Direction::Tx, Cipher::Aes256Gcm, {
                let start = tls12_gcm_nonce_start(0xb0b1_b2b3_b4b5_b6b7, seq).unwrap();
                [&header(0x0303, 52)[..], &start.to_be_bytes(), &KEY[..], salt, &seq_be].concat()
            }),
        ];
        for (version, direction, cipher, want) in cases {
            let key = &KEY[..cipher.key_len()];
            let info = CryptoInfo::new(version, direction, cipher, seq, key, &IV).unwrap();
            assert_eq!(info.as_bytes(), &want[..], "{version:?} {direction:?} {cipher}");
        }
    }

    #[test]
    fn crypto_info_sizes_match_the_kernel_structs() {
        for (cipher, size) in
            [(Cipher::Aes128Gcm, 40), (Cipher::Aes256Gcm, 56), (Cipher::Chacha20Poly1305, 56)]
        {
            let key = &KEY[..cipher.key_len()];
            let info = CryptoInfo::new(Version::Tls13, Direction::Tx, cipher, 0, key, &IV).unwrap();
            assert_eq!(info.as_bytes().len(), size, "{cipher}");
        }
    }

    #[test]
    fn wrong_key_length_is_refused() {
        let err = CryptoInfo::new(Version::Tls13, Direction::Tx, Cipher::Aes128Gcm, 0, &KEY, &IV)
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn from_rustls_secrets() {
        let secrets = ConnectionTrafficSecrets::Chacha20Poly1305 {
            key: rustls::crypto::cipher::AeadKey::from(KEY),
            iv: rustls::crypto::cipher::Iv::new(IV),
        };
        let info = CryptoInfo::from_rustls(Version::Tls13, Direction::Rx, 7, &secrets).unwrap();
        let want = [&header(0x0304, 54)[..], &IV[..], &KEY[..], &7u64.to_be_bytes()].concat();
        assert_eq!(info.as_bytes(), &want[..]);
        // rustls's public constructor makes 32-byte keys only: one labelled AES-128 is refused.
        let secrets = ConnectionTrafficSecrets::Aes128Gcm {
            key: rustls::crypto::cipher::AeadKey::from(KEY),
            iv: rustls::crypto::cipher::Iv::new(IV),
        };
        assert!(CryptoInfo::from_rustls(Version::Tls13, Direction::Rx, 0, &secrets).is_err());
    }

    /// No explicit nonce the kernel will use repeats one rustls used: `base ^ n` for n < sent.
    #[test]
    fn tls12_gcm_nonces_never_repeat() {
        let bases = [0, 1, 0xff, 0x8000_0000_0000_0000, u64::MAX - 3, 0xb0b1_b2b3_b4b5_b6b7];
        for base in bases {
            for sent in [0u64, 1, 2, 3, 4, 5, 17, 64, 1000] {
                let start = tls12_gcm_nonce_start(base, sent).unwrap();
                let used: Vec<u64> = (0..sent).map(|n| base ^ n).collect();
                for j in 0..2048u64 {
                    let next = start.wrapping_add(j);
                    assert!(!used.contains(&next), "base {base:#x} sent {sent} record {j}");
                }
            }
        }
        assert_eq!(tls12_gcm_nonce_start(0x10, 1), Some(0x11));
        assert_eq!(tls12_gcm_nonce_start(0x10, 3), Some(0x14));
        assert_eq!(tls12_gcm_nonce_start(0, u64::MAX), None);
    }

    /// RFC 8446 §5.1 content types; §6 alerts; §4.6.3 KeyUpdate.
    #[test]
    fn control_records() {
        let cases: [(u8, &[u8], ControlRecord); 9] = [
            (23, b"GET / HTTP/1.1\r\n", ControlRecord::ApplicationData),
            (21, &[1, 0], ControlRecord::CloseNotify),
            (21, &[2, 0], ControlRecord::CloseNotify),
            (21, &[2, 40], ControlRecord::Alert { level: 2, description: 40 }),
            (22, &[24, 0, 0, 1, 0], ControlRecord::KeyUpdate { update_requested: false }),
            (22, &[24, 0, 0, 1, 1], ControlRecord::KeyUpdate { update_requested: true }),
            (22, &[24, 0, 0, 1, 2], ControlRecord::Unexpected { record_type: 22 }),
            (22, &[4, 0, 0, 2, 0, 0], ControlRecord::NewSessionTicket),
            (20, &[1], ControlRecord::Unexpected { record_type: 20 }),
        ];
        for (record_type, payload, want) in cases {
            assert_eq!(
                ControlRecord::classify(record_type, payload),
                want,
                "{record_type} {payload:?}"
            );
        }
    }

    #[test]
    fn support_summary() {
        let none = Support { unavailable: Some("no module".into()), ..Support::default() };
        assert_eq!(none.to_string(), "unavailable (no module)");
        assert!(!none.any());
        let all = Directions { tx: true, rx: true };
        let some = Support {
            ulp: true,
            aes_128_gcm: all,
            aes_256_gcm: Directions { tx: true, rx: false },
            ..Support::default()
        };
        assert_eq!(
            some.to_string(),
            "AES-128-GCM tx+rx, AES-256-GCM tx, CHACHA20-POLY1305 no, rekey no"
        );
        assert!(some.can_install(Cipher::Aes128Gcm));
        assert!(!some.can_install(Cipher::Aes256Gcm));
        assert!(some.any());
    }

    /// On a kernel without TLS (this one's CONFIG_TLS is off) the probe says so instead of
    /// failing; on one with it, AES-128-GCM works both ways (every kTLS kernel has it).
    #[test]
    fn probe_reports_either_way() {
        let support = probe();
        if support.ulp {
            assert!(support.can_install(Cipher::Aes128Gcm), "{support}");
        } else {
            assert!(support.unavailable.is_some());
            assert!(!support.any());
        }
    }
}
