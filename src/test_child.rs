//! Tests only: an external server a unit test starts (nginx, moto), killed on drop, and a wait
//! until it listens that fails with the server's log when it exits first; where the tools
//! venv is.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The started process; dropping it kills and reaps it.
pub(crate) struct ChildServer(Child);

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Spawns `cmd` (no standard input or output; its standard error is the caller's to set,
/// and its log is expected in `log`) and waits up to `wait` for a
/// connection to `addr` to succeed.
pub(crate) fn spawn_listening(
    mut cmd: Command,
    addr: SocketAddr,
    log: &Path,
    wait: Duration,
) -> ChildServer {
    let what = cmd.get_program().to_string_lossy().into_owned();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let mut server = ChildServer(child);
    let deadline = Instant::now() + wait;
    while TcpStream::connect(addr).is_err() {
        if let Some(status) = server.0.try_wait().expect("poll the child") {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            panic!("{what} exited ({status}) before listening on {addr}:\n{text}");
        }
        assert!(Instant::now() < deadline, "{what} did not listen on {addr}");
        std::thread::sleep(Duration::from_millis(20));
    }
    server
}

/// An empty directory for one test's files: `ringcast-NAME-PID` under the temporary directory.
pub(crate) fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ringcast-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the test directory");
    dir
}

/// A port free on `addr`'s address now (the kernel's pick for port 0).
pub(crate) fn free_port(addr: SocketAddr) -> u16 {
    TcpListener::bind(addr).and_then(|l| l.local_addr()).expect("bind an ephemeral port").port()
}

/// The Python of the tools venv that scripts/install-test-deps.sh fills (`$RINGCAST_TOOLS`,
/// default `target/tools`), as the scripts find it.
pub(crate) fn tools_python() -> PathBuf {
    std::env::var_os("RINGCAST_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tools"))
        .join("venv/bin/python")
}
