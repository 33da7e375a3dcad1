//! Command line → one validated, immutable [`Config`].
//!
//! Everything that can be checked before the first request is checked here:
//! URLs parse and resolve, a duration or request limit exists, options that
//! cannot be combined are refused. Ranged workloads probe each file's length
//! once (see [`crate::probe`]) before the run starts.

#![forbid(unsafe_code)]

use std::net::ToSocketAddrs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;

use crate::tls::{self, TlsOptions, Trust};
use crate::url::{Scheme, Url, UrlError};
use crate::workload::{self, Catalog, Origin, Target, Workload, OBJECT_PLACEHOLDER};
use crate::zipf::Zipf;

/// `ringcast-load [OPTIONS] URL...`
#[derive(Debug, Parser)]
#[command(
    name = "ringcast-load",
    version,
    about = "Open-loop HTTP/1.1 load generator that measures tail latency honestly",
    after_help = "Also: `ringcast-load plot A.json B.json -o out.svg` draws latency percentile curves."
)]
pub struct Args {
    /// URLs to request, round robin (http:// or https://); with --catalog, one URL template.
    #[arg(value_name = "URL")]
    pub urls: Vec<String>,
    /// File with one URL a line and an optional integer weight after it.
    #[arg(long = "urls", value_name = "FILE")]
    pub urls_file: Option<PathBuf>,
    /// Concurrent connections (HLS: connections are the viewers).
    #[arg(short = 'c', long, default_value_t = 1)]
    pub connections: usize,
    /// Worker threads, each pinned to its own CPU with its own io_uring.
    #[arg(short = 't', long, default_value_t = 1)]
    pub threads: usize,
    /// Measured run length, e.g. 10s, 500ms, 2m.
    #[arg(short = 'd', long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Unrecorded time before the measured run.
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    pub warmup: Duration,
    /// Stop after exactly this many requests (split evenly over the threads; HLS: the viewers).
    #[arg(long)]
    pub requests: Option<u64>,
    /// Per-request timeout, from the actual send to the end of the body.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    pub timeout: Duration,
    /// Open loop: schedule this many requests per second in total.
    #[arg(short = 'R', long, value_name = "REQ_PER_S")]
    pub rate: Option<f64>,
    /// Ask each request for a random aligned range of this many bytes.
    #[arg(long, value_name = "BYTES")]
    pub range_size: Option<u64>,
    /// HLS mode: master (or media) playlist each viewer plays.
    #[arg(long, value_name = "URL")]
    pub hls: Option<String>,
    /// HLS mode: simulated viewers.
    #[arg(long, value_name = "N")]
    pub viewers: Option<usize>,
    /// Receive bodies without copying them (recv with MSG_TRUNC); bytes are still counted.
    #[arg(long)]
    pub discard: bool,
    /// Status every response must have (default: any 2xx; 206 with --range-size).
    #[arg(long, value_name = "CODE")]
    pub expect_status: Option<u16>,
    /// CRC-32 (hex, as `crc32` prints it) every response body must have.
    #[arg(long, value_name = "HEX")]
    pub checksum: Option<String>,
    /// Request objects 0..N of a catalog: the URL's `{i}` (else a last path segment) is the object.
    #[arg(long, value_name = "N")]
    pub catalog: Option<u64>,
    /// Zipf exponent of the catalog's popularity (object 0 most popular; 0 = uniform).
    #[arg(long, value_name = "ALPHA", default_value_t = 0.0)]
    pub zipf: f64,
    /// Seed of the catalog's object draws (the same seed asks for the same objects).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Open a new connection for every request (to measure connection and handshake rates).
    #[arg(long)]
    pub new_conn: bool,
    /// https: trust the CA certificates in this PEM file (default: the system bundle).
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// https: do not verify the server's certificate (as curl --insecure).
    #[arg(short = 'k', long)]
    pub insecure: bool,
    /// https: no TLS session resumption; every new connection makes a full handshake.
    #[arg(long)]
    pub no_resume: bool,
    /// Write the results as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write the latency percentile distribution in HdrHistogram text format.
    #[arg(long, value_name = "FILE")]
    pub hgrm: Option<PathBuf>,
    /// No per-second progress lines.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// HLS workload settings.
#[derive(Debug, Clone)]
pub struct HlsConfig {
    /// The playlist URL.
    pub url: Url,
    /// Address of its origin; only this origin is ever contacted.
    pub origin: Origin,
}

/// TLS settings, present when any origin is `https`.
#[derive(Debug, Clone)]
pub struct TlsSetup {
    /// The client configuration; each thread takes a copy with its own session cache.
    pub config: Arc<rustls::ClientConfig>,
    /// Resume sessions (`--no-resume` turns it off).
    pub resume: bool,
}

/// A validated run description.
#[derive(Debug, Clone)]
pub struct Config {
    /// Request mix (empty in HLS mode).
    pub workload: Workload,
    /// HLS mode, if chosen.
    pub hls: Option<HlsConfig>,
    /// Connections (or viewers) in total.
    pub connections: usize,
    /// Worker threads.
    pub threads: usize,
    /// Measured run length.
    pub duration: Option<Duration>,
    /// Unrecorded warm-up.
    pub warmup: Duration,
    /// Request limit.
    pub requests: Option<u64>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Open-loop rate, requests per second.
    pub rate: Option<f64>,
    /// Discard bodies with `MSG_TRUNC`.
    pub discard: bool,
    /// A new connection per request.
    pub new_conn: bool,
    /// TLS, when an origin is `https`.
    pub tls: Option<TlsSetup>,
    /// Expected status; `None` = any 2xx.
    pub expect_status: Option<u16>,
    /// Expected body CRC-32.
    pub checksum: Option<u32>,
    /// JSON output path.
    pub json: Option<PathBuf>,
    /// hgrm output path.
    pub hgrm: Option<PathBuf>,
    /// Print per-second lines.
    pub progress: bool,
}

/// Why the command line was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Neither `--duration` nor `--requests`.
    #[error("refusing to start without a limit: give --duration or --requests")]
    NoLimit,
    /// No URL, `--urls` file or `--hls`.
    #[error("nothing to request: give URLs, --urls FILE or --hls URL")]
    NoTarget,
    /// A URL did not parse.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// A host name did not resolve.
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        /// `host:port` that failed.
        host: String,
        /// The resolver's error.
        source: std::io::Error,
    },
    /// The `--urls` file could not be read or parsed.
    #[error("--urls {path}: {reason}")]
    UrlsFile {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The TLS configuration could not be built (e.g. an unreadable `--cacert`).
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// Any other invalid value or combination.
    #[error("{0}")]
    Invalid(String),
}

/// Parses `10s`, `500ms`, `250us`, `2m`, `1h` or a bare number of seconds; fractions allowed.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let value: f64 =
        number.parse().map_err(|_| format!("{s:?}: expected a duration like 10s or 500ms"))?;
    let seconds_per_unit = match unit {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use us, ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(value * seconds_per_unit).map_err(|e| format!("{s:?}: {e}"))
}

fn resolve(url: &Url) -> Result<Origin, ConfigError> {
    let addr = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .and_then(|mut addrs| addrs.next().ok_or_else(|| std::io::Error::other("no address")))
        .map_err(|source| ConfigError::Resolve { host: url.authority.clone(), source })?;
    Ok(Origin {
        scheme: url.scheme,
        host: url.host.clone(),
        authority: url.authority.clone(),
        addr,
    })
}

/// `--catalog N --zipf ALPHA --seed S` over the one URL `listed` holds, if asked for.
fn catalog(
    args: &Args,
    listed: &[(String, u32)],
    hls: bool,
) -> Result<Option<Catalog>, ConfigError> {
    let invalid = |m: &str| Err(ConfigError::Invalid(m.to_owned()));
    let Some(objects) = args.catalog else {
        if args.zipf != 0.0 {
            return invalid("--zipf needs --catalog N");
        }
        return Ok(None);
    };
    if hls || listed.len() != 1 || args.range_size.is_some() {
        return invalid(
            "--catalog takes exactly one URL (template), without --hls, --urls or --range-size",
        );
    }
    let popularity = Zipf::new(objects, args.zipf)
        .map_err(|e| ConfigError::Invalid(format!("--catalog/--zipf: {e}")))?;
    let url = Url::parse(&listed[0].0)?;
    if url.authority.contains(OBJECT_PLACEHOLDER) {
        return invalid("--catalog: the object placeholder {i} belongs in the path");
    }
    let (prefix, suffix) = Catalog::template(&url.target);
    // The one URL is the workload's only origin.
    Ok(Some(Catalog {
        origin: 0,
        prefix,
        suffix,
        popularity: Arc::new(popularity),
        seed: args.seed,
    }))
}

/// The TLS set-up for a run whose origins include `https` ones (`any_https`).
fn tls_setup(args: &Args, any_https: bool) -> Result<Option<TlsSetup>, ConfigError> {
    let invalid = |m: &str| Err(ConfigError::Invalid(m.to_owned()));
    if !any_https {
        if args.cacert.is_some() || args.insecure || args.no_resume {
            return invalid("--cacert, --insecure and --no-resume need an https:// URL");
        }
        return Ok(None);
    }
    let trust = match (&args.cacert, args.insecure) {
        (Some(_), true) => return invalid("--cacert and --insecure cannot be combined"),
        (Some(path), false) => Trust::CaFile(path.clone()),
        (None, true) => Trust::Insecure,
        (None, false) if Path::new(tls::SYSTEM_CA_BUNDLE).exists() => {
            Trust::CaFile(PathBuf::from(tls::SYSTEM_CA_BUNDLE))
        }
        (None, false) => {
            return Err(ConfigError::Invalid(format!(
                "https:// needs --cacert FILE or --insecure (no system CA bundle at {})",
                tls::SYSTEM_CA_BUNDLE
            )))
        }
    };
    let opts = TlsOptions { trust, resume: !args.no_resume };
    let config = tls::client_config(&opts)?;
    Ok(Some(TlsSetup { config: Arc::new(config), resume: opts.resume }))
}

impl Config {
    /// Validates `args`. Ranged workloads still need [`crate::probe::probe_sizes`] afterwards.
    pub fn from_args(args: Args) -> Result<Self, ConfigError> {
        let invalid = |m: &str| Err(ConfigError::Invalid(m.to_owned()));
        if args.duration.is_none() && args.requests.is_none() {
            return Err(ConfigError::NoLimit);
        }
        if args.duration.is_some_and(|d| d.is_zero()) || args.requests == Some(0) {
            return invalid("--duration and --requests must be positive");
        }
        if args.connections == 0 || args.threads == 0 {
            return invalid("--connections and --threads must be at least 1");
        }
        if args.timeout.is_zero() {
            return invalid("--timeout must be positive");
        }
        if let Some(rate) = args.rate {
            if !(rate.is_finite() && rate > 0.0) {
                return invalid("--rate must be a positive number of requests per second");
            }
        }
        if args.range_size == Some(0) {
            return invalid("--range-size must be positive");
        }
        let checksum = match &args.checksum {
            None => None,
            Some(_) if args.discard => {
                return invalid(
                    "--checksum needs the body bytes; it cannot be combined with --discard",
                )
            }
            Some(hex) => {
                Some(u32::from_str_radix(hex.trim_start_matches("0x"), 16).map_err(|_| {
                    ConfigError::Invalid(format!("--checksum {hex:?}: expected 8 hex digits"))
                })?)
            }
        };

        let mut connections = args.connections;
        let hls = match (&args.hls, args.viewers) {
            (None, None) => None,
            (None, Some(_)) => return invalid("--viewers needs --hls URL"),
            (Some(url), viewers) => {
                if !args.urls.is_empty() || args.urls_file.is_some() || args.range_size.is_some() {
                    return invalid("--hls cannot be combined with URLs, --urls or --range-size");
                }
                if args.rate.is_some() {
                    return invalid("--hls paces each viewer like a player; --rate does not apply");
                }
                connections = viewers.unwrap_or(connections);
                if connections == 0 {
                    return invalid("--viewers must be at least 1");
                }
                let url = Url::parse(url)?;
                let origin = resolve(&url)?;
                Some(HlsConfig { url, origin })
            }
        };

        let mut listed: Vec<(String, u32)> = args.urls.iter().map(|u| (u.clone(), 1)).collect();
        if let Some(path) = &args.urls_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| ConfigError::UrlsFile { path: path.clone(), reason: e.to_string() })?;
            let parsed = workload::parse_urls_file(&text)
                .map_err(|reason| ConfigError::UrlsFile { path: path.clone(), reason })?;
            listed.extend(parsed);
        }
        if listed.is_empty() && hls.is_none() {
            return Err(ConfigError::NoTarget);
        }
        let mut workload = Workload { range_size: args.range_size, ..Workload::default() };
        let mut weights = Vec::new();
        for (text, weight) in &listed {
            let url = Url::parse(text)?;
            let origin = resolve(&url)?;
            let origin_index = match workload.origins.iter().position(|o| *o == origin) {
                Some(i) => i,
                None => {
                    workload.origins.push(origin);
                    workload.origins.len() - 1
                }
            };
            workload.targets.push(Target {
                origin: origin_index,
                path: url.target.clone(),
                size: None,
            });
            weights.push(*weight);
        }
        workload.rotation = workload::weighted_rotation(&weights);
        workload.catalog = catalog(&args, &listed, hls.is_some())?;
        let any_https = workload.origins.iter().any(|o| o.scheme == Scheme::Https)
            || hls.as_ref().is_some_and(|h| h.origin.scheme == Scheme::Https);
        let tls = tls_setup(&args, any_https)?;

        let expect_status = args.expect_status.or(args.range_size.map(|_| 206));
        if expect_status.is_some_and(|s| !(100..=999).contains(&s)) {
            return invalid("--expect-status must be a three-digit status code");
        }

        Ok(Self {
            workload,
            hls,
            connections,
            threads: args.threads.min(connections),
            duration: args.duration,
            warmup: args.warmup,
            requests: args.requests,
            timeout: args.timeout,
            rate: args.rate,
            discard: args.discard,
            new_conn: args.new_conn,
            tls,
            expect_status,
            checksum,
            json: args.json,
            hgrm: args.hgrm,
            progress: !args.quiet,
        })
    }

    /// The server behind origin index `i` (in HLS mode there is one, the playlist's).
    pub fn workload_origin(&self, i: usize) -> &Origin {
        match &self.hls {
            Some(h) => &h.origin,
            None => &self.workload.origins[i],
        }
    }

    /// Whether `status` counts as success.
    pub fn status_ok(&self, status: u16) -> bool {
        match self.expect_status {
            Some(want) => status == want,
            None => (200..300).contains(&status),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let cases: &[(&str, Option<Duration>)] = &[
            ("10s", Some(Duration::from_secs(10))),
            ("10", Some(Duration::from_secs(10))),
            ("500ms", Some(Duration::from_millis(500))),
            ("1.5s", Some(Duration::from_millis(1500))),
            ("250us", Some(Duration::from_micros(250))),
            ("2m", Some(Duration::from_secs(120))),
            ("1h", Some(Duration::from_secs(3600))),
            ("", None),
            ("s", None),
            ("10x", None),
            ("-1s", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_duration(s).ok(), *want, "{s:?}");
        }
    }

    fn config(args: &[&str]) -> Result<Config, ConfigError> {
        let mut argv = vec!["ringcast-load"];
        argv.extend_from_slice(args);
        Config::from_args(Args::try_parse_from(argv).expect("clap accepts"))
    }

    #[test]
    fn refuses_unbounded_or_empty_runs() {
        assert!(matches!(config(&["http://127.0.0.1:1/"]), Err(ConfigError::NoLimit)));
        assert!(matches!(config(&["-d", "1s"]), Err(ConfigError::NoTarget)));
        for bad in [
            &["-d", "0s", "http://127.0.0.1:1/"][..],
            &["--requests", "0", "http://127.0.0.1:1/"],
            &["-d", "1s", "-c", "0", "http://127.0.0.1:1/"],
            &["-d", "1s", "-R", "0", "http://127.0.0.1:1/"],
            &["-d", "1s", "--discard", "--checksum", "0", "http://127.0.0.1:1/"],
            &["-d", "1s", "--viewers", "3", "http://127.0.0.1:1/"],
            &["-d", "1s", "ftp://127.0.0.1:1/"],
            &["-d", "1s", "--insecure", "http://127.0.0.1:1/"],
            &["-d", "1s", "--no-resume", "http://127.0.0.1:1/"],
            &["-d", "1s", "-k", "--cacert", "/dev/null", "https://127.0.0.1:1/"],
            &["-d", "1s", "--cacert", "/nonexistent.pem", "https://127.0.0.1:1/"],
            &["-d", "1s", "--zipf", "1", "http://127.0.0.1:1/"],
            &["-d", "1s", "--catalog", "0", "http://127.0.0.1:1/"],
            &["-d", "1s", "--catalog", "10", "--zipf=-1", "http://127.0.0.1:1/"],
            &["-d", "1s", "--catalog", "10", "http://127.0.0.1:1/a", "http://127.0.0.1:1/b"],
            &["-d", "1s", "--catalog", "10", "--range-size", "10", "http://127.0.0.1:1/"],
        ] {
            assert!(config(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn defaults_and_expectations() {
        let c =
            config(&["--requests", "5", "http://127.0.0.1:1/a", "http://127.0.0.1:1/b"]).unwrap();
        assert_eq!(c.workload.origins.len(), 1);
        assert_eq!(c.workload.rotation, vec![0, 1]);
        assert!(c.status_ok(204) && !c.status_ok(301));
        let c = config(&["-d", "1s", "--range-size", "4096", "http://127.0.0.1:1/a"]).unwrap();
        assert!(c.status_ok(206) && !c.status_ok(200));
        let c = config(&[
            "-d",
            "1s",
            "-c",
            "8",
            "-t",
            "4",
            "--hls",
            "http://127.0.0.1:1/m.m3u8",
            "--viewers",
            "2",
        ])
        .unwrap();
        assert_eq!((c.connections, c.threads), (2, 2));
    }

    #[test]
    fn https_and_catalogs() {
        let c = config(&["-d", "1s", "-k", "--no-resume", "https://127.0.0.1:1/a"]).unwrap();
        let tls = c.tls.expect("https sets up TLS");
        assert!(!tls.resume);
        assert_eq!(c.workload.origins[0].scheme, Scheme::Https);
        assert!(config(&["-d", "1s", "http://127.0.0.1:1/"]).unwrap().tls.is_none());
        let c = config(&[
            "-d",
            "1s",
            "--catalog",
            "1000",
            "--zipf",
            "0.9",
            "--seed",
            "5",
            "http://127.0.0.1:1/obj/{i}.bin",
        ])
        .unwrap();
        let catalog = c.workload.catalog.expect("catalog");
        assert_eq!((catalog.prefix.as_str(), catalog.suffix.as_str()), ("/obj/", ".bin"));
        assert_eq!((catalog.popularity.len(), catalog.seed), (1000, 5));
    }
}
