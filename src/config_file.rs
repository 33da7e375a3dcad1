//! The configuration file (`--config FILE`, TOML) and `ringcast check-config`.
//!
//! A key is a command-line option's long name (`max-connections`; `max_connections` is read
//! the same), `root` is the served directory, and a value is what the option takes: a string,
//! an integer, `true` for a switch, an array for a repeatable option. Every key is checked with
//! the command line's own parser, so the file accepts exactly what the command line accepts and
//! a new option needs nothing here. Errors name the file, the line and the reason.
//!
//! Precedence: the file's values are placed before the command line's, and a later occurrence
//! of an option wins, so the command line overrides the file. Repeatable options (`mime`,
//! `cache-control`) add to the file's list. `root` from the file applies unless the command line
//! names one.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command, CommandFactory, FromArgMatches};

use crate::config::{Args, Config};

/// Why the configuration (file and command line together) was refused.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A key or value in the file is wrong.
    #[error("{}:{line}: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line of the offending key or value.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The command line itself is wrong (clap's message, usage and exit code apply).
    #[error(transparent)]
    Cli(#[from] clap::Error),
    /// The merged options fail validation.
    #[error("{}{source}", file.as_ref().map(|p| format!("{}: ", p.display())).unwrap_or_default())]
    Config {
        /// The file, when one was read.
        file: Option<PathBuf>,
        /// Why.
        source: crate::config::ConfigError,
    },
}

fn command() -> Command {
    // A later occurrence of an option replaces an earlier one: that is how the command line,
    // placed after the file's options, overrides them.
    Args::command().args_override_self(true)
}

/// Parses the command line `argv` (program name first), reading `--config FILE` if given.
pub fn parse_args(argv: Vec<OsString>) -> Result<Args, FileError> {
    Ok(Args::from_arg_matches(&matches(argv)?)?)
}

/// The command line merged with the file it names, as clap matches.
fn matches(argv: Vec<OsString>) -> Result<ArgMatches, FileError> {
    let cli = command().try_get_matches_from(&argv)?;
    let Some(path) = cli.get_one::<PathBuf>("config").cloned() else {
        return Ok(cli);
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|source| FileError::Read { path: path.clone(), source })?;
    let file = file_args(&text).map_err(|(line, reason)| FileError::Invalid {
        path: path.clone(),
        line,
        reason,
    })?;
    let mut merged = Vec::with_capacity(argv.len() + file.options.len() + 2);
    merged.push(argv.first().cloned().unwrap_or_else(|| "ringcast".into()));
    merged.extend(file.options);
    merged.extend(argv.into_iter().skip(1));
    if let Some(root) = file.root {
        if cli.value_source("root") != Some(ValueSource::CommandLine) {
            if merged.iter().any(|a| a == "--") {
                // `--` already on the command line: a root there follows it.
                return Err(FileError::Invalid {
                    path,
                    line: root.1,
                    reason: "root: cannot combine with `--` on the command line".into(),
                });
            }
            merged.push("--".into());
            merged.push(root.0.into());
        }
    }
    Ok(command().try_get_matches_from(merged)?)
}

/// Parses the command line and validates the result into a [`Config`].
pub fn load(argv: Vec<OsString>) -> Result<Config, FileError> {
    let args = parse_args(argv)?;
    let file = args.config.clone();
    Config::from_args(args).map_err(|source| FileError::Config { file, source })
}

/// The file's options as command-line arguments, and its `root` with its line.
struct FileArgs {
    options: Vec<OsString>,
    root: Option<(String, usize)>,
}

/// Turns the file into arguments, checking each key and value with the command line's parser.
/// Errors are (line, reason).
fn file_args(text: &str) -> Result<FileArgs, (usize, String)> {
    let table = toml::de::DeTable::parse(text).map_err(|e| {
        let line = e.span().map_or(1, |s| line_of(text, s.start));
        (line, format!("not valid TOML: {}", e.message().trim_end()))
    })?;
    let cmd = command();
    let mut out = FileArgs { options: Vec::new(), root: None };
    // In file order, so the first error reported is the first in the file.
    let mut entries: Vec<_> = table.get_ref().iter().collect();
    entries.sort_by_key(|(k, _)| k.span().start);
    for (key, value) in entries {
        let line = line_of(text, key.span().start);
        let name = key.get_ref().replace('_', "-");
        let value_line = line_of(text, value.span().start);
        if name == "root" {
            let Some(root) = value.get_ref().as_str() else {
                return Err((
                    value_line,
                    format!("root: expected a string, found {}", value.get_ref().type_str()),
                ));
            };
            out.root = Some((root.to_string(), value_line));
            continue;
        }
        if name == "tls" {
            out.options.extend(tls_table(text, value)?);
            continue;
        }
        let arg = cmd
            .get_arguments()
            .find(|a| {
                a.get_long() == Some(name.as_str())
                    && !matches!(name.as_str(), "config" | "help" | "version")
            })
            .ok_or_else(|| (line, unknown_key(&cmd, key.get_ref())))?;
        let mut args: Vec<OsString> = Vec::new();
        let flag = format!("--{name}");
        match value.get_ref() {
            toml::de::DeValue::Array(items) => {
                if !matches!(arg.get_action(), ArgAction::Append) {
                    return Err((value_line, format!("{name}: takes one value, not an array")));
                }
                for item in items {
                    let v = scalar(&name, arg, item.get_ref())
                        .map_err(|r| (line_of(text, item.span().start), r))?;
                    args.push(flag.clone().into());
                    args.extend(v.map(OsString::from));
                }
            }
            v => {
                let switch = !arg.get_action().takes_values();
                match (switch, v.as_bool()) {
                    (true, Some(true)) => args.push(flag.clone().into()),
                    (true, Some(false)) => {}
                    (true, None) => {
                        return Err((
                            value_line,
                            format!("{name}: expected true or false, found {}", v.type_str()),
                        ));
                    }
                    (false, _) => {
                        let v = scalar(&name, arg, v).map_err(|r| (value_line, r))?;
                        args.push(flag.clone().into());
                        args.extend(v.map(OsString::from));
                    }
                }
            }
        }
        // The command line's parser decides whether the value is good, with its own message.
        let mut check = vec![OsString::from("ringcast")];
        check.extend(args.iter().cloned());
        if let Err(e) = command().try_get_matches_from(check) {
            return Err((value_line, format!("{name}: {}", clap_reason(&e))));
        }
        out.options.extend(args);
    }
    Ok(out)
}

/// The `[tls]` table: `[[tls.cert]]` entries (`cert`, `key`, optional `default = true`) become
/// `--tls-cert`/`--tls-key` pairs, the default first (else the first in the file).
fn tls_table(
    text: &str,
    value: &toml::Spanned<toml::de::DeValue<'_>>,
) -> Result<Vec<OsString>, (usize, String)> {
    use toml::de::DeValue;
    let at = |span: std::ops::Range<usize>| line_of(text, span.start);
    let DeValue::Table(table) = value.get_ref() else {
        return Err((at(value.span()), "tls: expected a table ([[tls.cert]] entries)".into()));
    };
    let mut pairs: Vec<(bool, String, String)> = Vec::new();
    for (key, entries) in table.iter() {
        if key.get_ref() != "cert" {
            return Err((
                at(key.span()),
                format!("unknown key `tls.{}` (known: tls.cert)", key.get_ref()),
            ));
        }
        let DeValue::Array(entries) = entries.get_ref() else {
            return Err((at(entries.span()), "tls.cert: expected [[tls.cert]] tables".into()));
        };
        for entry in entries {
            let line = at(entry.span());
            let DeValue::Table(fields) = entry.get_ref() else {
                return Err((line, "tls.cert: expected a table with cert and key".into()));
            };
            let (mut cert, mut key, mut default) = (None, None, false);
            for (k, v) in fields.iter() {
                let line = at(k.span());
                match (k.get_ref().as_ref(), v.get_ref()) {
                    ("cert", DeValue::String(p)) => cert = Some(p.to_string()),
                    ("key", DeValue::String(p)) => key = Some(p.to_string()),
                    ("default", DeValue::Boolean(b)) => default = *b,
                    ("cert" | "key", other) => {
                        let reason = format!(
                            "tls.cert.{}: expected a file name, found {}",
                            k.get_ref(),
                            other.type_str()
                        );
                        return Err((line, reason));
                    }
                    ("default", other) => {
                        let reason = format!(
                            "tls.cert.default: expected true or false, found {}",
                            other.type_str()
                        );
                        return Err((line, reason));
                    }
                    (other, _) => {
                        let reason =
                            format!("unknown key `tls.cert.{other}` (known: cert, key, default)");
                        return Err((line, reason));
                    }
                }
            }
            let (Some(cert), Some(key)) = (cert, key) else {
                return Err((line, "tls.cert: needs both cert and key".into()));
            };
            if default && pairs.iter().any(|p| p.0) {
                return Err((line, "tls.cert: only one entry may be the default".into()));
            }
            pairs.push((default, cert, key));
        }
    }
    // Stable: the default moves to the front, the others keep their order.
    pairs.sort_by_key(|p| !p.0);
    let mut args = Vec::new();
    for (_, cert, key) in pairs {
        args.extend(["--tls-cert".into(), cert.into(), "--tls-key".into(), key.into()]);
    }
    Ok(args)
}

/// A scalar TOML value as the option's argument text.
fn scalar(name: &str, arg: &Arg, v: &toml::de::DeValue<'_>) -> Result<Option<String>, String> {
    use toml::de::DeValue;
    match v {
        DeValue::String(s) => Ok(Some(s.to_string())),
        DeValue::Integer(i) => {
            let digits: String = i.as_str().chars().filter(|&c| c != '_').collect();
            let digits = digits.trim_start_matches('+');
            let body =
                ["0x", "0o", "0b"].iter().find_map(|p| digits.strip_prefix(p)).unwrap_or(digits);
            i128::from_str_radix(body, i.radix())
                .map(|n| Some(n.to_string()))
                .map_err(|e| format!("{name}: bad integer: {e}"))
        }
        DeValue::Boolean(b) if arg.get_action().takes_values() => Ok(Some(b.to_string())),
        other => Err(format!(
            "{name}: expected {}, found {}",
            arg.get_value_names()
                .and_then(|n| n.first())
                .map_or("a value".into(), |n| n.to_string()),
            other.type_str()
        )),
    }
}

fn unknown_key(cmd: &Command, key: &str) -> String {
    let mut known: Vec<&str> = cmd
        .get_arguments()
        .filter_map(Arg::get_long)
        .filter(|l| !matches!(*l, "config" | "help" | "version"))
        .collect();
    known.push("root");
    known.push("tls");
    known.sort_unstable();
    format!("unknown key `{key}` (known keys: {})", known.join(", "))
}

/// The reason in a clap error, without its `error:` prefix and usage lines.
fn clap_reason(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let first = text.lines().next().unwrap_or_default();
    first.strip_prefix("error: ").unwrap_or(first).to_string()
}

/// 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

/// The effective configuration as a TOML file that `--config` reads back: every option of the
/// command line, with its default when neither the file nor the command line set it, and the
/// root as the canonical path the server will serve.
fn to_toml(matches: &ArgMatches, config: &Config) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "root = {}", toml_string(&config.root.display().to_string()));
    let cmd = command();
    let mut args: Vec<&Arg> = cmd
        .get_arguments()
        .filter(|a| a.get_long().is_some_and(|l| !matches!(l, "config" | "help" | "version")))
        .collect();
    args.sort_by_key(|a| a.get_long());
    for arg in args {
        let (Some(long), id) = (arg.get_long(), arg.get_id().as_str()) else { continue };
        if !arg.get_action().takes_values() {
            let on = matches.get_flag(id);
            let _ = writeln!(out, "{long} = {on}");
            continue;
        }
        let values: Vec<String> = matches
            .get_raw(id)
            .map(|v| v.map(|s| toml_value(&s.to_string_lossy())).collect())
            .unwrap_or_default();
        match (arg.get_action(), values.as_slice()) {
            (ArgAction::Append, _) => {
                let _ = writeln!(out, "{long} = [{}]", values.join(", "));
            }
            (_, []) => {
                let _ = writeln!(out, "# {long}: not set");
            }
            (_, [v, ..]) => {
                let _ = writeln!(out, "{long} = {v}");
            }
        }
    }
    out
}

/// An integer as a TOML integer, anything else as a string.
fn toml_value(raw: &str) -> String {
    match raw.parse::<i64>() {
        Ok(n) if n.to_string() == raw => raw.to_string(),
        _ => toml_string(raw),
    }
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `ringcast check-config FILE [OPTIONS]`: loads the file (and any options after it), validates
/// everything, and returns the effective configuration as TOML.
pub fn check(program: OsString, file: &Path, rest: Vec<OsString>) -> Result<String, FileError> {
    let mut argv = vec![program, "--config".into(), file.as_os_str().to_owned()];
    argv.extend(rest);
    let matches = matches(argv)?;
    let args = Args::from_arg_matches(&matches)?;
    let file = args.config.clone();
    let config = Config::from_args(args).map_err(|source| FileError::Config { file, source })?;
    Ok(to_toml(&matches, &config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    #[test]
    fn file_errors_name_the_line() {
        // (file, line, part of the reason)
        let cases: &[(&str, usize, &str)] = &[
            ("listen = \"127.0.0.1:1\"\nbogus = 1\n", 2, "unknown key `bogus`"),
            ("\n\nmax-connections = \"many\"\n", 3, "max-connections: invalid value 'many'"),
            ("workers = 0\nlisten = \"nowhere\"\n", 2, "listen: invalid value 'nowhere'"),
            ("serve-dotfiles = \"yes\"\n", 1, "expected true or false"),
            ("index = [\"a\"]\n", 1, "takes one value, not an array"),
            ("keepalive-timeout = \"10x\"\n", 1, "invalid duration unit"),
            ("x = = 1\n", 1, "not valid TOML"),
            ("[section]\nlisten = \"127.0.0.1:1\"\n", 1, "unknown key `section`"),
            ("[[tls.cert]]\ncert = \"a\"\n", 1, "needs both cert and key"),
            ("[[tls.cert]]\ncert = \"a\"\nkey = 1\n", 3, "expected a file name"),
            ("[[tls.cert]]\ncert = \"a\"\nkey = \"b\"\nsni = 1\n", 4, "unknown key `tls.cert.sni`"),
            ("[tls]\nciphers = \"x\"\n", 2, "unknown key `tls.ciphers`"),
            (
                "[[tls.cert]]\ncert = \"a\"\nkey = \"b\"\ndefault = true\n\
                 [[tls.cert]]\ncert = \"c\"\nkey = \"d\"\ndefault = true\n",
                5,
                "only one entry may be the default",
            ),
            ("config = \"other.toml\"\n", 1, "unknown key `config`"),
            ("max-ranges = 1.5\n", 1, "found float"),
            ("root = 5\n", 1, "root: expected a string"),
        ];
        for (text, line, reason) in cases {
            match file_args(text) {
                Err((l, r)) => {
                    assert_eq!(l, *line, "{text:?}: {r}");
                    assert!(r.contains(reason), "{text:?}: {r}");
                }
                Ok(_) => panic!("{text:?} accepted"),
            }
        }
    }

    #[test]
    fn file_values_become_arguments() {
        let text = "listen = \"127.0.0.1:9\"\nmax_connections = 0x10\nserve-dotfiles = true\n\
                    no-precompressed = false\nmime = [\"foo=text/x-foo\", \"bar=text/x-bar\"]\n\
                    drain-timeout = 3\nroot = \"/srv\"\n";
        let f = file_args(text).unwrap();
        let got: Vec<String> = f.options.iter().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(
            got,
            [
                "--listen",
                "127.0.0.1:9",
                "--max-connections",
                "16",
                "--serve-dotfiles",
                "--mime",
                "foo=text/x-foo",
                "--mime",
                "bar=text/x-bar",
                "--drain-timeout",
                "3"
            ]
        );
        assert_eq!(f.root, Some(("/srv".to_string(), 7)));
    }

    #[test]
    fn tls_certificates_become_pairs_default_first() {
        let text = "tls-listen = [\"127.0.0.1:0\"]\n\
                    [[tls.cert]]\ncert = \"a.crt\"\nkey = \"a.key\"\n\
                    [[tls.cert]]\ncert = \"b.crt\"\nkey = \"b.key\"\ndefault = true\n";
        let f = file_args(text).unwrap();
        let got: Vec<String> = f.options.iter().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(
            got,
            [
                "--tls-listen",
                "127.0.0.1:0",
                "--tls-cert",
                "b.crt",
                "--tls-key",
                "b.key",
                "--tls-cert",
                "a.crt",
                "--tls-key",
                "a.key"
            ]
        );
    }

    #[test]
    fn command_line_overrides_the_file() {
        let dir = std::env::temp_dir().join(format!("ringcast-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("a.toml");
        std::fs::write(
            &file,
            format!(
                "listen = \"127.0.0.1:7000\"\nworkers = 3\nroot = {}\nmime = [\"a=text/a\"]\n",
                toml_string(&dir.display().to_string())
            ),
        )
        .unwrap();
        let f = file.to_str().unwrap();
        let a =
            parse_args(argv(&["ringcast", "--config", f, "--workers", "2", "--mime", "b=text/b"]))
                .unwrap();
        assert_eq!(a.listen.port(), 7000);
        assert_eq!(a.workers, Some(2));
        assert_eq!(a.root, dir);
        assert_eq!(a.mime_overrides.len(), 2);
        let a = parse_args(argv(&["ringcast", "--config", f, "/tmp"])).unwrap();
        assert_eq!(a.root, PathBuf::from("/tmp"));
        assert_eq!(a.workers, Some(3));
        // Without a file the command line parses exactly as before.
        let a = parse_args(argv(&["ringcast", "--workers", "1", "/tmp"])).unwrap();
        assert_eq!((a.workers, a.root), (Some(1), PathBuf::from("/tmp")));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn check_output_reads_back() {
        let m = matches(argv(&["ringcast", "--mime", "a=text/a", "--serve-dotfiles", "/tmp"]));
        let m = m.unwrap();
        let c = Config::from_args(Args::from_arg_matches(&m).unwrap()).unwrap();
        let text = to_toml(&m, &c);
        for line in [
            "mime = [\"a=text/a\"]",
            "serve-dotfiles = true",
            "no-precompressed = false",
            "max-connections = 16384",
            "keepalive-timeout = \"60s\"",
            "# metrics-listen: not set",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} not in\n{text}");
        }
        let back = file_args(&text).unwrap();
        assert_eq!(back.root, Some((c.root.display().to_string(), 1)));
    }
}
