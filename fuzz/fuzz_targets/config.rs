//! Fuzz target: the configuration file (`--config FILE`, `ringcast check-config`) on arbitrary
//! bytes.
//!
//! The input is written to a file (the parser's interface is a path) and checked as
//! `ringcast check-config FILE` would: no panic, an error renders as text, and an accepted file
//! round-trips: the effective configuration `check` prints is itself a file that `check`
//! accepts and prints again unchanged.
#![no_main]

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ringcast::config_file::check;

/// Two files in a directory of this process's own.
fn paths() -> &'static (PathBuf, PathBuf) {
    static PATHS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    PATHS.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("ringcast-fuzz-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the fuzz directory");
        (dir.join("input.toml"), dir.join("effective.toml"))
    })
}

fn check_file(path: &Path) -> Result<String, String> {
    check(OsString::from("ringcast"), path, Vec::new()).map_err(|e| e.to_string())
}

fuzz_target!(|data: &[u8]| {
    let (input, effective) = paths();
    std::fs::write(input, data).expect("write the input");
    let Ok(first) = check_file(input) else {
        return;
    };
    std::fs::write(effective, &first).expect("write the effective configuration");
    match check_file(effective) {
        Ok(second) => assert_eq!(first, second, "the effective configuration changed on a re-read"),
        Err(e) => panic!("the effective configuration was refused: {e}\n{first}"),
    }
});
