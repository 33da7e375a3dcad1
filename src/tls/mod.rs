//! HTTPS: certificates, the rustls configuration every worker shares, the handshake, and the
//! transport that carries HTTP over TLS in user space.
//!
//! One [`Tls`] per process holds the current `rustls::ServerConfig` (certificates chosen by SNI,
//! ALPN `http/1.1`, TLS 1.2 and 1.3 with ring's AES-GCM and ChaCha20-Poly1305 suites only) and
//! the session-ticket keys. The ticketer is made once and put into every configuration, reloads
//! included, so a ticket issued by any worker before or after a reload resumes on any worker;
//! rustls rotates its keys every 6 hours, keeping the previous key to decrypt. No session-ID
//! cache is kept (it would be a lock shared by every worker): resumption is by tickets only.
//!
//! Reload (SIGHUP, or a change of the files seen by `--tls-watch`'s thread in `worker`): the
//! files are read and checked again; a set that fails is refused with a log line and the
//! running one stays. A good one replaces the configuration and bumps a generation counter; each worker compares that counter (one atomic load) at every accept and
//! takes the new configuration under a lock only when it moved. Connections keep the
//! configuration they were accepted with, so none is dropped.
//!
//! A connection: [`serve`] runs the handshake (bounded by the head timeout from accept), then —
//! at the one marked place — hands the keys to the kernel where it can (`ktls`), then runs the
//! same connection loop as plain HTTP over a [`TlsSocket`]. On the way out it sends
//! close_notify (through the kernel after a hand-off).

pub mod certs;
pub mod ktls;
mod stream;

use std::cell::RefCell;
use std::future::Future;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use monoio::net::TcpStream;
use monoio::time::Instant;
use rustls::server::{NoServerSessionStorage, ProducesTickets, ServerConfig};
use rustls::ServerConnection;
use tracing::{debug, info};

pub use certs::{CertError, CertFiles};
pub use ktls::KtlsMode;
pub use stream::TlsSocket;

use crate::conn::deadline::Wait;
use crate::conn::{self, Context};
use crate::socket::{SendError, Socket};

/// Why the TLS set-up failed.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate pair was refused.
    #[error(transparent)]
    Cert(#[from] CertError),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The process-wide TLS state: the files, the ticket keys, the current configuration.
pub struct Tls {
    files: Vec<CertFiles>,
    ticketer: Arc<dyn ProducesTickets>,
    secret_extraction: bool,
    current: Mutex<Arc<ServerConfig>>,
    generation: AtomicU64,
    names: Mutex<Vec<String>>,
    /// The files as they were just before the last read of them (the set in force, or the set
    /// refused after it). Held across a reload, so reloads run one at a time.
    read_as: Mutex<Fingerprint>,
}

/// Identity and change marks of every certificate and key file, in configuration order:
/// device, inode, size, modification time; `None` for a file that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fingerprint(Vec<Option<(u64, u64, u64, SystemTime)>>);

impl Fingerprint {
    /// The files as they are now.
    fn of(files: &[CertFiles]) -> Self {
        use std::os::unix::fs::MetadataExt;
        Self(
            files
                .iter()
                .flat_map(|f| [&f.cert, &f.key])
                .map(|p| {
                    let m = std::fs::metadata(p).ok()?;
                    Some((m.dev(), m.ino(), m.size(), m.modified().ok()?))
                })
                .collect(),
        )
    }
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("files", &self.files).finish_non_exhaustive()
    }
}

/// The crypto provider: ring, with its default suites (all AEAD: AES-GCM and
/// ChaCha20-Poly1305; no CBC, no RSA key exchange) and the groups X25519, P-256, P-384 in that
/// order of preference (ring's own list puts P-384 first, which costs several times X25519's CPU
/// per handshake).
#[allow(
    deprecated,
    reason = "ring is the chosen provider (no aws-lc); it lacks post-quantum key exchange"
)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    use rustls::crypto::ring::{default_provider, kx_group};
    Arc::new(rustls::crypto::CryptoProvider {
        kx_groups: vec![kx_group::X25519, kx_group::SECP256R1, kx_group::SECP384R1],
        ..default_provider()
    })
}

/// Loads and checks every pair in `files` (the default first) without building anything else:
/// the start-up check behind exit code 2.
pub fn check_files(files: &[CertFiles]) -> Result<(), CertError> {
    let provider = provider();
    for f in files {
        certs::load_pair(f, &provider, SystemTime::now())?;
    }
    Ok(())
}

impl Tls {
    /// Loads the certificates and builds the first configuration. `secret_extraction` keeps
    /// the traffic secrets extractable for a kernel hand-off.
    pub fn new(files: Vec<CertFiles>, secret_extraction: bool) -> Result<Self, TlsError> {
        let ticketer = rustls::crypto::ring::Ticketer::new()?;
        // Taken before the files are read: a change after this point is seen by the watcher.
        let read_as = Fingerprint::of(&files);
        let (config, names) = build(&files, &ticketer, secret_extraction)?;
        Ok(Self {
            files,
            ticketer,
            secret_extraction,
            current: Mutex::new(config),
            generation: AtomicU64::new(0),
            names: Mutex::new(names),
            read_as: Mutex::new(read_as),
        })
    }

    /// Reads the files again; on success new connections use them. On error nothing changes
    /// but the record of the files read (so a refused set is reported once, not at every
    /// check of [`Tls::files_changed`]).
    pub fn reload(&self) -> Result<(), TlsError> {
        let mut read_as = self.read_as.lock().unwrap_or_else(|p| p.into_inner());
        // Taken before the files are read: a change while they are read is seen next time.
        *read_as = Fingerprint::of(&self.files);
        let (config, names) = build(&self.files, &self.ticketer, self.secret_extraction)?;
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = config;
        *self.names.lock().unwrap_or_else(|p| p.into_inner()) = names;
        self.generation.fetch_add(1, Ordering::Release);
        Ok(())
    }

    /// Whether a certificate or key file differs from what the last load or reload read
    /// (replaced, rewritten, removed, or back after it could not be read).
    pub fn files_changed(&self) -> bool {
        let now = Fingerprint::of(&self.files);
        now != *self.read_as.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The DNS names the certificates serve (for the start-up block and the reload log line).
    pub fn names(&self) -> Vec<String> {
        self.names.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn snapshot(&self) -> (u64, Arc<ServerConfig>) {
        // The generation is read before the configuration: a reload in between is seen again at
        // the next accept, never missed.
        let generation = self.generation.load(Ordering::Acquire);
        let config = Arc::clone(&self.current.lock().unwrap_or_else(|p| p.into_inner()));
        (generation, config)
    }
}

/// Builds a configuration from `files`, with the shared ticketer.
fn build(
    files: &[CertFiles],
    ticketer: &Arc<dyn ProducesTickets>,
    secret_extraction: bool,
) -> Result<(Arc<ServerConfig>, Vec<String>), TlsError> {
    let provider = provider();
    let now = SystemTime::now();
    let pairs =
        files.iter().map(|f| certs::load_pair(f, &provider, now)).collect::<Result<Vec<_>, _>>()?;
    let resolver = certs::Resolver::new(pairs);
    let names = resolver.names().to_vec();
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.ticketer = Arc::clone(ticketer);
    config.session_storage = Arc::new(NoServerSessionStorage {});
    // The server's order (AES-256-GCM, AES-128-GCM, ChaCha20-Poly1305) decides, as scanners
    // such as testssl.sh expect (they rate "no server cipher order" high); every suite on
    // offer is an AEAD one either way.
    config.ignore_client_order = true;
    config.enable_secret_extraction = secret_extraction;
    Ok((Arc::new(config), names))
}

/// One worker's view of the TLS state.
pub struct WorkerTls {
    shared: Arc<Tls>,
    local: RefCell<(u64, Arc<ServerConfig>)>,
    /// Whether connections hand their keys to the kernel after the handshake.
    pub ktls: bool,
    /// The port of the first HTTPS listener (for `--redirect-http`).
    pub https_port: u16,
}

impl std::fmt::Debug for WorkerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerTls").field("https_port", &self.https_port).finish_non_exhaustive()
    }
}

impl WorkerTls {
    /// A worker's view of `shared`.
    pub fn new(shared: Arc<Tls>, ktls: bool, https_port: u16) -> Self {
        let local = RefCell::new(shared.snapshot());
        Self { shared, local, ktls, https_port }
    }

    /// The configuration for a new connection: the worker's copy, refreshed after a reload.
    fn config(&self) -> Arc<ServerConfig> {
        let mut local = self.local.borrow_mut();
        if self.shared.generation.load(Ordering::Acquire) != local.0 {
            *local = self.shared.snapshot();
        }
        Arc::clone(&local.1)
    }
}

/// Why a handshake ended without a connection.
#[derive(Debug, thiserror::Error)]
enum HandshakeError {
    /// The client closed before finishing.
    #[error("client closed during the TLS handshake")]
    Closed,
    /// The head timeout fired.
    #[error("TLS handshake timed out")]
    TimedOut,
    /// The client sent something rustls refused (an alert was sent).
    #[error("{0}")]
    Tls(std::io::Error),
    /// Sending failed.
    #[error(transparent)]
    Send(#[from] SendError),
}

/// Serves one accepted connection on an HTTPS listener.
pub fn serve(ctx: Rc<Context>, stream: TcpStream, peer: SocketAddr) -> impl Future<Output = ()> {
    let accepted = Instant::now();
    let socket = Socket::new(stream, ctx.config.send_timeout);
    async move {
        let socket = match socket {
            Ok(s) => s,
            Err(e) => {
                debug!(%peer, error = %e, "socket setup failed");
                return;
            }
        };
        let Some(tls) = ctx.tls.as_ref() else { return };
        let session = match ServerConnection::new(tls.config()) {
            Ok(s) => s,
            Err(e) => {
                info!(%peer, error = %e, "TLS session setup failed");
                return;
            }
        };
        let _registration = conn::Registration::new(&ctx);
        let mut stream = TlsSocket::new(socket, session);
        if tls.ktls {
            stream.read_whole_records();
        }
        match handshake(&ctx, &stream, accepted).await {
            Ok(()) => {}
            Err(HandshakeError::Closed) => {
                debug!(%peer, "client closed during the TLS handshake");
                return;
            }
            Err(e) => {
                info!(%peer, error = %e, "TLS handshake failed");
                return;
            }
        }
        debug!(%peer, version = ?stream.protocol(), sni = ?stream.server_name(), "TLS established");

        // ── kTLS hand-off: the one place where the kernel may take over record encryption ──
        // See `ktls` for the steps. `UserSpace`: the negotiated cipher is not one the kernel
        // takes both ways (or kTLS is off); `Failed`: the session was consumed, so close.
        let kernel = if tls.ktls {
            match ktls::hand_off(&mut stream) {
                ktls::HandOff::Kernel => true,
                ktls::HandOff::UserSpace => false,
                ktls::HandOff::Failed(e) => {
                    info!(%peer, error = %e, "kTLS hand-off failed; closing the connection");
                    return;
                }
            }
        } else {
            false
        };
        conn::record::tls_established(kernel);
        debug!(%peer, kernel, "TLS record layer");

        let result = conn::serve_on(&ctx, &stream, &peer, accepted).await;
        if let Err(e) = &result {
            conn::log_end(&peer, e);
        }
        // close_notify (RFC 8446 §6.1) unless the connection already failed or half-closed.
        if result.is_ok() {
            stream.close().await;
        }
    }
}

/// Runs the handshake to its end, the head timeout counting from accept.
async fn handshake(
    ctx: &Context,
    stream: &TlsSocket,
    accepted: Instant,
) -> Result<(), HandshakeError> {
    let deadline = accepted + ctx.config.header_timeout;
    while stream.is_handshaking() {
        stream.flush().await?;
        let ready = {
            let _armed = ctx.deadlines.arm(stream.socket().fd(), Wait::Head, deadline);
            stream.socket().readable().await
        };
        ready.map_err(|e| SendError::io("poll", e))?;
        match stream.advance() {
            Ok(true) => {}
            Ok(false) if Instant::now() >= deadline => return Err(HandshakeError::TimedOut),
            Ok(false) => return Err(HandshakeError::Closed),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                return Err(HandshakeError::Tls(e))
            }
            Err(e) => return Err(SendError::io("recv", e).into()),
        }
    }
    // The server's last flight (TLS 1.2 Finished, TLS 1.3 tickets).
    stream.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    /// Every idle HTTPS connection's task is this future (its session is boxed): a regression
    /// guard like the plain connection's.
    #[test]
    fn idle_tls_connection_task_stays_small() {
        let size = crate::conn::tests::task_size(super::serve);
        assert!(size <= 1280, "TLS connection future grew to {size} bytes");
    }

    /// The watcher's check compares the files with what the load in force read, recorded before
    /// reading: a change made before anyone first looks is reported, a refused set only once.
    #[test]
    fn files_changed_since_the_load_in_force() {
        use std::time::{Duration, SystemTime};
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target")
            .join(format!("tls-fingerprint-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        struct Remove(std::path::PathBuf);
        impl Drop for Remove {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
        let _remove = Remove(dir.clone());
        let files = super::CertFiles { cert: dir.join("c.pem"), key: dir.join("k.pem") };
        // Each write gets its own modification time, whatever the file system's clock grain.
        let mut stamp = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut write = |name: &str| {
            let cert = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
            for (path, pem) in
                [(&files.cert, cert.cert.pem()), (&files.key, cert.key_pair.serialize_pem())]
            {
                std::fs::write(path, pem).unwrap();
                stamp += Duration::from_secs(1);
                std::fs::File::options()
                    .write(true)
                    .open(path)
                    .unwrap()
                    .set_modified(stamp)
                    .unwrap();
            }
        };

        write("one.test");
        let tls = super::Tls::new(vec![files.clone()], false).unwrap();
        assert!(!tls.files_changed(), "nothing changed since the load");
        // Renewed before any check ran: still a change from the set in force.
        write("two.test");
        assert!(tls.files_changed(), "a change after the load went unseen");
        tls.reload().unwrap();
        assert_eq!(tls.names(), ["two.test"]);
        assert!(!tls.files_changed(), "the reload recorded what it read");
        // A broken key is refused; the old set stays, and the refusal is not repeated.
        std::fs::write(&files.key, "not a key").unwrap();
        assert!(tls.files_changed());
        assert!(tls.reload().is_err());
        assert_eq!(tls.names(), ["two.test"]);
        assert!(!tls.files_changed(), "a refused set is retried only after another change");
        write("three.test");
        assert!(tls.files_changed());
        tls.reload().unwrap();
        assert_eq!(tls.names(), ["three.test"]);
    }
}
