//! Start-up probe: learns each ranged target's length before the run.
//!
//! `--range-size` needs the file length to draw aligned ranges. One blocking
//! `GET` with `Range: bytes=0-0` per target reads the complete length from
//! `Content-Range` (RFC 9110 §14.4), or from `Content-Length` when the server
//! ignores ranges and answers 200. It is not measured. `https` targets are
//! probed over a blocking rustls stream with the run's TLS configuration.

#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use rustls::{ClientConfig, ClientConnection, StreamOwned};

use crate::http::{parse_head, write_get, BodyFraming, HeadParse};
use crate::tls::server_name;
use crate::url::Scheme;
use crate::workload::{Origin, Workload};

/// A blocking connection for the probe: plain or TLS.
fn connect(
    origin: &Origin,
    timeout: Duration,
    tls: Option<&Arc<ClientConfig>>,
) -> Result<Box<dyn ReadWrite>, String> {
    let stream =
        TcpStream::connect_timeout(&origin.addr, timeout).map_err(|e| format!("connect: {e}"))?;
    stream.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    stream.set_write_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    if origin.scheme == Scheme::Http {
        return Ok(Box::new(stream));
    }
    let config = tls.ok_or("no TLS configuration")?;
    let name = server_name(&origin.host).ok_or("host is not a valid TLS server name")?;
    let session = ClientConnection::new(config.clone(), name).map_err(|e| e.to_string())?;
    Ok(Box::new(StreamOwned::new(session, stream)))
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// Fills in `size` for every target of `workload`, or says which one failed.
pub fn probe_sizes(
    workload: &mut Workload,
    timeout: Duration,
    tls: Option<&Arc<ClientConfig>>,
) -> Result<(), String> {
    for target in &mut workload.targets {
        let origin = &workload.origins[target.origin];
        let what =
            format!("probing {}://{}{}", origin.scheme.name(), origin.authority, target.path);
        let mut stream = connect(origin, timeout, tls).map_err(|e| format!("{what}: {e}"))?;
        let mut req = Vec::new();
        write_get(&mut req, &origin.authority, &target.path, Some((0, 0)));
        stream.write_all(&req).map_err(|e| format!("{what}: send: {e}"))?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head = loop {
            match parse_head(&buf) {
                Ok(HeadParse::Complete(h)) => break h,
                Ok(HeadParse::Partial) => {}
                Err(e) => return Err(format!("{what}: {e}")),
            }
            let n = stream.read(&mut chunk).map_err(|e| format!("{what}: receive: {e}"))?;
            if n == 0 {
                return Err(format!("{what}: connection closed before the response head"));
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let size = match (head.status, head.content_range_total, head.framing) {
            (206, Some(total), _) => total,
            (200, _, BodyFraming::Length(n)) => n,
            (200, _, BodyFraming::Empty) => 0,
            (status, ..) => {
                return Err(format!(
                    "{what}: status {status} without a usable Content-Range or Content-Length"
                ))
            }
        };
        target.size = Some(size);
    }
    Ok(())
}
