//! The `ringcast` binary: arguments (and `--config FILE`) → configuration → [`ringcast::run`].
//!
//! `ringcast check-config FILE [OPTIONS]` validates a configuration file and prints the
//! effective configuration. The word is recognised before the option parser runs, so
//! `ringcast [OPTIONS] [ROOT]` is unchanged (a directory named `check-config` is served as
//! `./check-config`).

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use ringcast::config_file::{self, FileError};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let mut argv: Vec<OsString> = std::env::args_os().collect();
    if argv.get(1).is_some_and(|a| a == "check-config") {
        return check_config(argv);
    }
    // `ringcast edge --origin URL ...`: the word selects the edge mode, which then needs
    // `--origin` (from the command line or the file).
    let edge = argv.get(1).is_some_and(|a| a == "edge");
    if edge {
        argv.remove(1);
    }
    let config = match config_file::load(std::mem::take(&mut argv)) {
        Ok(c) if edge && c.edge.is_none() => {
            eprintln!(
                "ringcast edge: --origin URL, --cache-dir DIR and --cache-size BYTES are needed"
            );
            return ExitCode::from(2);
        }
        Ok(c) => c,
        Err(FileError::Cli(e)) => e.exit(),
        Err(e) => {
            eprintln!("ringcast: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging();
    match ringcast::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("ringcast: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
}

fn check_config(argv: Vec<OsString>) -> ExitCode {
    let mut it = argv.into_iter();
    let program = it.next().unwrap_or_else(|| "ringcast".into());
    it.next(); // check-config
    let Some(file) = it.next() else {
        eprintln!("usage: ringcast check-config FILE [OPTIONS]");
        return ExitCode::from(2);
    };
    match config_file::check(program, &PathBuf::from(file), it.collect()) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(FileError::Cli(e)) => e.exit(),
        Err(e) => {
            eprintln!("ringcast: {e}");
            ExitCode::from(1)
        }
    }
}
