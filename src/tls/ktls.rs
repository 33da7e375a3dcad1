//! Kernel TLS: whether to hand a connection's record keys to the kernel after the handshake
//! (`--ktls off|auto|on`), the start-up probe, and the hand-off hook.
//!
//! The probe attaches the `tls` upper-layer protocol to a connected loopback socket
//! (`sys::attach_tls_ulp`): a kernel without `CONFIG_TLS` answers `ENOENT`. `auto` then resolves
//! to off (logged once in the start-up block); `on` refuses to start.
//!
//! The hand-off ([`hand_off`]) is the single place where a connection leaves user-space TLS.
//! On this build it keeps every connection in user space; see its documentation for the steps a
//! kernel-capable build fills in and the interface it expects from `sys::ktls`.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;

use clap::ValueEnum;

use crate::sys;
use crate::tls::TlsSocket;

/// `--ktls`: whether connections hand their keys to the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KtlsMode {
    /// Never: records are encrypted in user space.
    Off,
    /// When the start-up probe finds kernel TLS.
    Auto,
    /// Always; refuse to start where the kernel cannot.
    On,
}

/// What the probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// The kernel accepts the `tls` ULP.
    Available,
    /// It does not, and why.
    Unavailable(String),
}

/// Attaches the `tls` ULP to one end of a loopback connection.
pub fn probe() -> Probe {
    match try_probe() {
        Ok(()) => Probe::Available,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
            Probe::Unavailable("the kernel has no TLS module (TCP_ULP \"tls\": ENOENT)".into())
        }
        Err(e) => Probe::Unavailable(format!("TCP_ULP \"tls\": {e}")),
    }
}

fn try_probe() -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let client = TcpStream::connect(listener.local_addr()?)?;
    let _server = listener.accept()?;
    sys::attach_tls_ulp(client.as_raw_fd())
}

/// Decides whether connections hand off, from the mode and the probe (pure). `Err` when the
/// mode is `on` and the kernel cannot.
pub fn resolve(mode: KtlsMode, probe: &Probe) -> Result<bool, String> {
    match (mode, probe) {
        (KtlsMode::Off, _) => Ok(false),
        (KtlsMode::Auto, Probe::Available) | (KtlsMode::On, Probe::Available) => Ok(true),
        (KtlsMode::Auto, Probe::Unavailable(_)) => Ok(false),
        (KtlsMode::On, Probe::Unavailable(why)) => {
            Err(format!("--ktls on: kernel TLS is not available: {why}"))
        }
    }
}

/// The result of a hand-off attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandOff {
    /// The connection stays in user-space TLS.
    UserSpace,
}

/// Hands the connection's traffic keys to the kernel, right after the handshake. Called only
/// when [`resolve`] said so.
///
/// The steps, for a build with `sys::ktls`:
/// 1. **Whole records only.** rustls's buffered session reads whatever the socket has, so it may
///    hold the first bytes of the record after the handshake; those would be lost to the
///    kernel, whose receive sequence starts after the last record rustls processed. So with a
///    hand-off planned the handshake's reads must stop at record boundaries: `Wire` peeks the
///    5-byte record header (`recv(MSG_PEEK)`) and consumes a record only when all of it is
///    queued (`FIONREAD`). After `process_new_packets` the session then holds no ciphertext.
/// 2. **Early application data.** A TLS 1.3 client sends its first request with Finished: it is
///    already decrypted in the session's plaintext buffer. Drain it (`reader().read`) into a
///    buffer the transport serves before reading the socket again — never dropped or
///    reordered. The server's tickets must have been flushed (`flush`), since rustls refuses to
///    extract with records still to send.
/// 3. **Keys.** `ServerConnection::dangerous_extract_secrets` (needs `enable_secret_extraction`,
///    set in `Tls::new` when kTLS is wanted) gives the negotiated suite's
///    `ConnectionTrafficSecrets` and the TX/RX sequence numbers. (The buffered session cannot
///    follow a later TLS 1.3 KeyUpdate: on one, the kernel reports the record and the
///    connection is closed cleanly; `UnbufferedServerConnection::dangerous_into_kernel_connection`
///    is the route to rekeying.)
/// 4. **Install.** `sys::attach_tls_ulp(fd)`, then `sys::ktls::install` — expected as
///    `fn install(fd: RawFd, version: rustls::ProtocolVersion, secrets: &rustls::ExtractedSecrets)
///    -> io::Result<()>`, setting `SOL_TLS`/`TLS_TX` and `TLS_RX` from
///    `tls12_crypto_info_aes_gcm_128/256` or `…_chacha20_poly1305`. Past step 3 the session is
///    gone: if the kernel refuses (`ENOPROTOOPT`/`EINVAL` for a cipher it lacks) the connection
///    is closed, which is why start-up should also probe each suite.
/// 5. **Plain from here.** The `TlsSocket` serves the early plaintext, then reads with plain
///    `recv` (control records — alerts, close_notify, KeyUpdate — taken with `recvmsg` +
///    `TLS_GET_RECORD_TYPE` on `EIO`), writes with plain `send`, sends close_notify as a record
///    of type alert (`TLS_SET_RECORD_TYPE`), and its [`crate::socket::BodyPath`] becomes
///    `Plain(&socket)`: memory, sendfile, splice and copy run unchanged.
///
/// Nothing of this runs here: without `sys::ktls` every connection stays in user space.
pub fn hand_off(_stream: &TlsSocket) -> HandOff {
    HandOff::UserSpace
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_resolve() {
        let no = Probe::Unavailable("no module".into());
        let cases = [
            (KtlsMode::Off, Probe::Available, Some(false)),
            (KtlsMode::Off, no.clone(), Some(false)),
            (KtlsMode::Auto, Probe::Available, Some(true)),
            (KtlsMode::Auto, no.clone(), Some(false)),
            (KtlsMode::On, Probe::Available, Some(true)),
            (KtlsMode::On, no, None),
        ];
        for (mode, probe, want) in cases {
            assert_eq!(resolve(mode, &probe).ok(), want, "{mode:?} {probe:?}");
        }
    }

    /// On this kernel (no `CONFIG_TLS`) the probe must say so rather than fail elsewhere; on a
    /// kernel with the module it must find it.
    #[test]
    fn probe_matches_the_kernel() {
        let module = std::path::Path::new("/sys/module/tls").exists();
        match probe() {
            Probe::Available => {}
            Probe::Unavailable(why) => assert!(!module, "module loaded but probe failed: {why}"),
        }
    }
}
