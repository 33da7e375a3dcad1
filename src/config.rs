//! The command line, turned into one validated, immutable [`Config`].
//!
//! Parsing is clap's; validation (the root is a directory we can open, limits are sane) happens
//! once in [`Config::from_args`], so workers never see an invalid value.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::body::Strategy;

/// Which event-loop driver the workers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Driver {
    /// io_uring when the kernel allows it, else epoll (with one log line saying why).
    Auto,
    /// io_uring only; fail to start without it.
    Uring,
    /// epoll (monoio's legacy driver).
    Epoll,
}

/// `ringcast [OPTIONS] [ROOT]`: serve a directory over HTTP/1.1.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "ringcast",
    version,
    about,
    long_about = None,
    after_help = "Validate a configuration file and print the effective configuration:\n  \
                  ringcast check-config FILE [OPTIONS]\n\n\
                  Run as a caching edge in front of an HTTP origin (PURGE on --metrics-listen):\n  \
                  ringcast edge --origin URL --cache-dir DIR --cache-size BYTES [OPTIONS]\n\n\
                  Signals: SIGTERM/SIGINT drain and exit; SIGUSR1 reopens the access log;\n\
                  SIGHUP reloads the TLS certificates."
)]
pub struct Args {
    /// Directory to serve.
    #[arg(default_value = ".")]
    pub root: PathBuf,

    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Worker threads, each pinned to one CPU [default: the CPUs this process may run on].
    #[arg(long)]
    pub workers: Option<usize>,

    /// Event-loop driver.
    #[arg(long, value_enum, default_value_t = Driver::Auto)]
    pub driver: Driver,

    /// How a response body is moved to the socket.
    #[arg(long, value_enum, default_value_t = Strategy::Auto)]
    pub body_strategy: Strategy,

    /// Time allowed to receive a whole request head, from its first byte (not reset by data).
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub header_timeout: Duration,

    /// How long an idle keep-alive connection is kept open.
    #[arg(long, value_parser = parse_duration, default_value = "60s")]
    pub keepalive_timeout: Duration,

    /// How long a send may make no progress before the connection is cut.
    #[arg(long, value_parser = parse_duration, default_value = "60s")]
    pub send_timeout: Duration,

    /// On SIGINT/SIGTERM, how long in-flight responses may take to finish.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub drain_timeout: Duration,

    /// Read options from this TOML file (keys are the long option names); options given on
    /// the command line override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Serve Prometheus metrics (`GET /metrics`) on this address, apart from the data port.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,

    /// Access log: a file (reopened on SIGUSR1), `-` for standard output, or `off`.
    #[arg(long, value_name = "PATH|-|off", default_value = "off", value_parser = crate::access_log::Target::parse)]
    pub access_log: crate::access_log::Target,

    /// Access-log line format.
    #[arg(long, value_enum, default_value_t = crate::access_log::Format::Combined)]
    pub log_format: crate::access_log::Format,

    /// Largest request head (request line and fields), in bytes; larger gets 431.
    #[arg(long, default_value_t = 16 * 1024)]
    pub max_header_bytes: usize,

    /// Longest request target, in bytes; longer gets 414.
    #[arg(long, default_value_t = 8 * 1024)]
    pub max_uri_bytes: usize,

    /// Open connections per worker; past it the worker stops accepting until one closes.
    #[arg(long, default_value_t = 16 * 1024)]
    pub max_connections: usize,

    /// Largest request body read and discarded to keep a connection (GET with a body);
    /// a larger body closes the connection after the response.
    #[arg(long, default_value_t = 64 * 1024)]
    pub max_discard_bytes: u64,

    /// Index file served for a directory path ending in `/`.
    #[arg(long, default_value = "index.html")]
    pub index: String,

    /// Serve files and directories whose name starts with a dot (hidden by default: 404).
    #[arg(long)]
    pub serve_dotfiles: bool,

    /// Most ranges honoured in one request; a request asking for more gets the whole file (200).
    #[arg(long, default_value_t = crate::http::range::DEFAULT_MAX_RANGES)]
    pub max_ranges: usize,

    /// Add or override a media type: `--mime EXT=TYPE` (repeatable).
    #[arg(long = "mime", value_name = "EXT=TYPE", value_parser = crate::http::mime::parse_override)]
    pub mime_overrides: Vec<(String, String)>,

    /// Set `Cache-Control` for an extension: `--cache-control EXT=VALUE` (repeatable; an empty
    /// VALUE removes the rule, `*` as EXT applies to every extension without a rule).
    #[arg(long = "cache-control", value_name = "EXT=VALUE", value_parser = crate::http::cache::parse_override)]
    pub cache_overrides: Vec<(String, String)>,

    /// Allow cross-origin requests from ORIGIN (`https://player.example`) or any origin (`*`).
    #[arg(long, value_name = "ORIGIN|*", value_parser = crate::http::cors::Cors::parse)]
    pub cors: Option<crate::http::cors::Cors>,

    /// Do not look for precompressed `FILE.br` / `FILE.gz` variants of text files.
    #[arg(long)]
    pub no_precompressed: bool,

    /// Open files kept per worker (descriptor, validators and small contents); 0 disables the
    /// cache.
    #[arg(long, default_value_t = 1024)]
    pub file_cache_entries: usize,

    /// How often a cached file is checked against the file system (changed, replaced,
    /// deleted).
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    pub file_cache_revalidate: Duration,

    /// Bytes of small-file contents kept in memory per worker.
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    pub memory_cache_bytes: u64,

    /// Largest file whose contents are kept in memory.
    #[arg(long, default_value_t = 64 * 1024)]
    pub memory_max_file: u64,

    /// Serve HTTPS on this address too (repeatable; port 0 picks a free port).
    #[arg(long, value_name = "ADDR")]
    pub tls_listen: Vec<SocketAddr>,

    /// PEM certificate chain, leaf first (repeatable, paired in order with `--tls-key`; the
    /// first pair is the default, the others are chosen by SNI from their DNS names).
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Vec<PathBuf>,

    /// PEM private key (RSA or ECDSA) of the `--tls-cert` at the same position.
    #[arg(long, value_name = "FILE")]
    pub tls_key: Vec<PathBuf>,

    /// Kernel TLS after the handshake: `auto` when the kernel has it, `on` refuses to start
    /// without it.
    #[arg(long, value_enum, default_value_t = crate::tls::KtlsMode::Auto)]
    pub ktls: crate::tls::KtlsMode,

    /// Answer every request on the plain listener with a 301 to the same URL over HTTPS.
    #[arg(long)]
    pub redirect_http: bool,

    /// Check the certificate and key files this often and reload them when they change (as
    /// SIGHUP does) [default: only on SIGHUP].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub tls_watch: Option<Duration>,

    /// Edge mode (`ringcast edge`): the origin to cache, `http://HOST[:PORT]`.
    #[arg(long, value_name = "URL")]
    pub origin: Option<String>,

    /// Edge mode: the directory holding cached bodies and metadata.
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Edge mode: the disk budget for cached bodies, in bytes (least recently used evicted).
    #[arg(long, value_name = "BYTES")]
    pub cache_size: Option<u64>,

    /// Edge mode: freshness lifetime for responses that state none [default: stored only
    /// with a validator and revalidated on each use].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub cache_default_ttl: Option<Duration>,

    /// Edge mode: objects are fetched and stored in aligned slices of this many bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 1024 * 1024)]
    pub slice_size: u64,

    /// Edge mode: a query parameter left out of the cache key (repeatable; signed-URL tokens).
    #[arg(long, value_name = "NAME")]
    pub cache_ignore_param: Vec<String>,

    /// Edge mode: this deployment's id in `CDN-Loop` (RFC 8586); a request already carrying
    /// it is refused with 508.
    #[arg(long, value_name = "ID", default_value = "ringcast")]
    pub cdn_id: String,
}

/// Errors found while validating the command line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The root cannot be opened as a directory.
    #[error("root {path}: {source}")]
    Root {
        /// The root as given.
        path: PathBuf,
        /// Why it cannot be used.
        source: std::io::Error,
    },
    /// The root is not a directory.
    #[error("root {0}: not a directory")]
    NotADirectory(PathBuf),
    /// A numeric option is out of range.
    #[error("{0}")]
    Invalid(String),
    /// A certificate or key file is unusable.
    #[error(transparent)]
    Certificate(#[from] crate::tls::CertError),
}

/// The validated configuration every worker runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// The served directory, canonical.
    pub root: PathBuf,
    /// Listening address.
    pub listen: SocketAddr,
    /// Number of workers (0 means: one per allowed CPU, decided at start).
    pub workers: usize,
    /// Event-loop driver.
    pub driver: Driver,
    /// Body strategy.
    pub body_strategy: Strategy,
    /// See [`Args::header_timeout`].
    pub header_timeout: Duration,
    /// See [`Args::keepalive_timeout`].
    pub keepalive_timeout: Duration,
    /// See [`Args::send_timeout`].
    pub send_timeout: Duration,
    /// See [`Args::drain_timeout`].
    pub drain_timeout: Duration,
    /// The configuration file read, if any.
    pub config_file: Option<PathBuf>,
    /// See [`Args::metrics_listen`].
    pub metrics_listen: Option<SocketAddr>,
    /// See [`Args::access_log`].
    pub access_log: crate::access_log::Target,
    /// See [`Args::log_format`].
    pub log_format: crate::access_log::Format,
    /// See [`Args::max_header_bytes`].
    pub max_header_bytes: usize,
    /// See [`Args::max_uri_bytes`].
    pub max_uri_bytes: usize,
    /// See [`Args::max_connections`].
    pub max_connections: usize,
    /// See [`Args::max_discard_bytes`].
    pub max_discard_bytes: u64,
    /// See [`Args::index`].
    pub index: String,
    /// See [`Args::serve_dotfiles`].
    pub serve_dotfiles: bool,
    /// See [`Args::max_ranges`].
    pub max_ranges: usize,
    /// See [`Args::mime_overrides`].
    pub mime_overrides: Vec<(String, String)>,
    /// See [`Args::cache_overrides`].
    pub cache_overrides: Vec<(String, String)>,
    /// See [`Args::cors`].
    pub cors: Option<crate::http::cors::Cors>,
    /// Serve precompressed variants (the inverse of [`Args::no_precompressed`]).
    pub precompressed: bool,
    /// The per-worker open-file cache limits.
    pub file_cache: crate::fs::cache::Limits,
    /// See [`Args::tls_listen`].
    pub tls_listen: Vec<SocketAddr>,
    /// Certificate and key files, the default first.
    pub tls_certs: Vec<crate::tls::CertFiles>,
    /// See [`Args::ktls`].
    pub ktls: crate::tls::KtlsMode,
    /// See [`Args::redirect_http`].
    pub redirect_http: bool,
    /// See [`Args::tls_watch`].
    pub tls_watch: Option<Duration>,
    /// Edge mode (`--origin`), when configured.
    pub edge: Option<EdgeConfig>,
}

/// The edge mode's settings (`ringcast edge`).
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    /// The origin's address (resolved at start-up).
    pub origin: SocketAddr,
    /// The origin's `Host` value (`host[:port]` as given in the URL).
    pub origin_host: String,
    /// See [`Args::cache_dir`].
    pub cache_dir: PathBuf,
    /// See [`Args::cache_size`].
    pub cache_size: u64,
    /// See [`Args::cache_default_ttl`].
    pub default_ttl: Option<Duration>,
    /// See [`Args::slice_size`].
    pub slice_size: u64,
    /// See [`Args::cache_ignore_param`].
    pub ignore_params: Vec<String>,
    /// See [`Args::cdn_id`].
    pub cdn_id: String,
}

impl Config {
    /// Validates parsed arguments.
    pub fn from_args(args: Args) -> Result<Self, ConfigError> {
        let root = std::fs::canonicalize(&args.root)
            .map_err(|source| ConfigError::Root { path: args.root.clone(), source })?;
        if !root.is_dir() {
            return Err(ConfigError::NotADirectory(args.root));
        }
        if args.workers == Some(0) {
            return Err(ConfigError::Invalid("--workers must be at least 1".into()));
        }
        if args.max_header_bytes < 256 {
            return Err(ConfigError::Invalid("--max-header-bytes must be at least 256".into()));
        }
        if args.max_uri_bytes == 0 || args.max_uri_bytes > args.max_header_bytes {
            return Err(ConfigError::Invalid(
                "--max-uri-bytes must be between 1 and --max-header-bytes".into(),
            ));
        }
        if args.max_connections == 0 {
            return Err(ConfigError::Invalid("--max-connections must be at least 1".into()));
        }
        if args.metrics_listen.is_some_and(|m| m == args.listen && m.port() != 0) {
            return Err(ConfigError::Invalid(
                "--metrics-listen must differ from --listen: metrics never share the data port"
                    .into(),
            ));
        }
        if let crate::access_log::Target::File(path) = &args.access_log {
            if path.is_dir() {
                return Err(ConfigError::Invalid(format!(
                    "--access-log {}: is a directory",
                    path.display()
                )));
            }
        }
        if args.index.is_empty() || args.index.contains('/') || args.index.starts_with('.') {
            return Err(ConfigError::Invalid("--index must be a plain file name".into()));
        }
        let tls_certs = tls_certs(&args)?;
        let edge = edge_config(&args)?;
        Ok(Self {
            root,
            listen: args.listen,
            workers: args.workers.unwrap_or(0),
            driver: args.driver,
            body_strategy: args.body_strategy,
            header_timeout: args.header_timeout,
            keepalive_timeout: args.keepalive_timeout,
            send_timeout: args.send_timeout,
            drain_timeout: args.drain_timeout,
            config_file: args.config,
            metrics_listen: args.metrics_listen,
            access_log: args.access_log,
            log_format: args.log_format,
            max_header_bytes: args.max_header_bytes,
            max_uri_bytes: args.max_uri_bytes,
            max_connections: args.max_connections,
            max_discard_bytes: args.max_discard_bytes,
            index: args.index,
            serve_dotfiles: args.serve_dotfiles,
            max_ranges: args.max_ranges,
            mime_overrides: args.mime_overrides,
            cache_overrides: args.cache_overrides,
            cors: args.cors,
            precompressed: !args.no_precompressed,
            file_cache: crate::fs::cache::Limits {
                max_entries: args.file_cache_entries,
                memory_budget: args.memory_cache_bytes,
                memory_max_file: args.memory_max_file.min(args.memory_cache_bytes),
                revalidate: args.file_cache_revalidate,
            },
            tls_listen: args.tls_listen,
            tls_certs,
            ktls: args.ktls,
            redirect_http: args.redirect_http,
            tls_watch: args.tls_watch,
            edge,
        })
    }
}

/// The edge settings, checked: all or nothing of `--origin`, `--cache-dir`, `--cache-size`;
/// an `http://` origin whose host resolves; a slice size of at least 4 KiB.
fn edge_config(args: &Args) -> Result<Option<EdgeConfig>, ConfigError> {
    let Some(url) = &args.origin else {
        if args.cache_dir.is_some() || args.cache_size.is_some() {
            return Err(ConfigError::Invalid("--cache-dir and --cache-size need --origin".into()));
        }
        return Ok(None);
    };
    let (Some(cache_dir), Some(cache_size)) = (&args.cache_dir, args.cache_size) else {
        return Err(ConfigError::Invalid("--origin needs --cache-dir and --cache-size".into()));
    };
    let Some(rest) = url.strip_prefix("http://") else {
        return Err(ConfigError::Invalid(format!("--origin {url}: only http:// origins")));
    };
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() {
        return Err(ConfigError::Invalid(format!("--origin {url}: no host")));
    }
    let with_port = if authority.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let origin = std::net::ToSocketAddrs::to_socket_addrs(&with_port)
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| ConfigError::Invalid(format!("--origin {url}: cannot resolve")))?;
    if args.slice_size < 4096 {
        return Err(ConfigError::Invalid("--slice-size must be at least 4096".into()));
    }
    Ok(Some(EdgeConfig {
        origin,
        origin_host: authority.to_string(),
        cache_dir: cache_dir.clone(),
        cache_size,
        default_ttl: args.cache_default_ttl,
        slice_size: args.slice_size,
        ignore_params: args.cache_ignore_param.clone(),
        cdn_id: args.cdn_id.clone(),
    }))
}

/// The certificate pairs, checked: paired in order, present exactly when HTTPS is served, and
/// each loadable (a file that is missing, unparsable, expired or whose key does not match is
/// named in the error).
fn tls_certs(args: &Args) -> Result<Vec<crate::tls::CertFiles>, ConfigError> {
    if args.tls_cert.len() != args.tls_key.len() {
        return Err(ConfigError::Invalid(format!(
            "--tls-cert and --tls-key come in pairs: {} certificates, {} keys",
            args.tls_cert.len(),
            args.tls_key.len()
        )));
    }
    if args.tls_listen.is_empty() {
        if !args.tls_cert.is_empty() {
            return Err(ConfigError::Invalid("--tls-cert needs --tls-listen".into()));
        }
        if args.redirect_http {
            return Err(ConfigError::Invalid("--redirect-http needs --tls-listen".into()));
        }
        if args.tls_watch.is_some() {
            return Err(ConfigError::Invalid("--tls-watch needs --tls-listen".into()));
        }
        return Ok(Vec::new());
    }
    if args.tls_cert.is_empty() {
        return Err(ConfigError::Invalid("--tls-listen needs --tls-cert and --tls-key".into()));
    }
    if args.tls_listen.iter().any(|a| *a == args.listen && a.port() != 0) {
        return Err(ConfigError::Invalid("--tls-listen must differ from --listen".into()));
    }
    let pairs: Vec<crate::tls::CertFiles> = args
        .tls_cert
        .iter()
        .zip(&args.tls_key)
        .map(|(cert, key)| crate::tls::CertFiles { cert: cert.clone(), key: key.clone() })
        .collect();
    crate::tls::check_files(&pairs)?;
    Ok(pairs)
}

/// Parses `250ms`, `10s`, `5m`, `1h`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("invalid duration {s:?}: expected e.g. 10s"))?;
    let d = match unit {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        _ => return Err(format!("invalid duration unit in {s:?}: use ms, s, m or h")),
    };
    if d.is_zero() {
        return Err(format!("duration {s:?} must be positive"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let cases: &[(&str, Option<Duration>)] = &[
            ("10s", Some(Duration::from_secs(10))),
            ("10", Some(Duration::from_secs(10))),
            ("250ms", Some(Duration::from_millis(250))),
            ("2m", Some(Duration::from_secs(120))),
            ("1h", Some(Duration::from_secs(3600))),
            ("0s", None),
            ("s", None),
            ("10x", None),
            ("-1s", None),
        ];
        for (input, want) in cases {
            assert_eq!(parse_duration(input).ok(), *want, "{input}");
        }
    }
}
