//! AWS credentials, found the standard way:
//! 1. `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`) in the environment;
//! 2. else the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`, default
//!    `~/.aws/credentials`), profile `AWS_PROFILE` (default `default`), keys
//!    `aws_access_key_id`, `aws_secret_access_key`, `aws_session_token`.
//!
//! The lookup ([`Credentials::resolve`]) takes the environment as a function and the file as
//! text so that it is tested without touching the process's environment. The secret never
//! appears in `Debug` output.

use std::fmt;
use std::path::PathBuf;

#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub(crate) access_key_id: String,
    pub(crate) secret_access_key: String,
    pub(crate) session_token: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("session_token", &self.session_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CredentialsError {
    #[error("no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or profile {profile:?} in {}", path.display())]
    Missing { profile: String, path: PathBuf },
    #[error("{}: {reason}", path.display())]
    File { path: PathBuf, reason: String },
}

impl Credentials {
    /// Looks the credentials up in the environment (`env`), then in the shared credentials
    /// file read by `read_file` (which returns `None` when the file does not exist).
    pub(crate) fn resolve(
        env: impl Fn(&str) -> Option<String>,
        read_file: impl Fn(&PathBuf) -> std::io::Result<Option<String>>,
    ) -> Result<Credentials, CredentialsError> {
        let nonempty = |name: &str| env(name).filter(|v| !v.is_empty());
        if let (Some(id), Some(secret)) =
            (nonempty("AWS_ACCESS_KEY_ID"), nonempty("AWS_SECRET_ACCESS_KEY"))
        {
            return Ok(Credentials {
                access_key_id: id,
                secret_access_key: secret,
                session_token: nonempty("AWS_SESSION_TOKEN"),
            });
        }
        let path =
            nonempty("AWS_SHARED_CREDENTIALS_FILE").map(PathBuf::from).unwrap_or_else(|| {
                PathBuf::from(nonempty("HOME").unwrap_or_default()).join(".aws/credentials")
            });
        let profile = nonempty("AWS_PROFILE").unwrap_or_else(|| "default".to_owned());
        let text = read_file(&path)
            .map_err(|e| CredentialsError::File { path: path.clone(), reason: e.to_string() })?;
        text.and_then(|t| from_profile(&t, &profile))
            .ok_or(CredentialsError::Missing { profile, path })
    }

    /// [`Credentials::resolve`] on the process's environment and file system.
    pub(crate) fn from_environment() -> Result<Credentials, CredentialsError> {
        Credentials::resolve(
            |name| std::env::var(name).ok(),
            |path| match std::fs::read_to_string(path) {
                Ok(text) => Ok(Some(text)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            },
        )
    }
}

/// The keys of `[profile]` in an INI-style credentials file (`#`/`;` comments, `key = value`).
fn from_profile(text: &str, profile: &str) -> Option<Credentials> {
    let (mut in_profile, mut id, mut secret, mut token) = (false, None, None, None);
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_profile = section.trim() == profile;
            continue;
        }
        if !in_profile {
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            let value = Some(value.trim().to_owned()).filter(|v| !v.is_empty());
            match key.trim().to_ascii_lowercase().as_str() {
                "aws_access_key_id" => id = value,
                "aws_secret_access_key" => secret = value,
                "aws_session_token" => token = value,
                _ => {}
            }
        }
    }
    Some(Credentials { access_key_id: id?, secret_access_key: secret?, session_token: token })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const FILE: &str = "\
# comment
[default]
aws_access_key_id = AKIADEFAULT
aws_secret_access_key = secret/default

[edge]
; comment
AWS_ACCESS_KEY_ID=AKIAEDGE
aws_secret_access_key=secret-edge
aws_session_token = token-edge
[broken]
aws_access_key_id = AKIAONLY
";

    fn resolve(vars: &[(&str, &str)], file: Option<&str>) -> Result<Credentials, CredentialsError> {
        let env: HashMap<String, String> =
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Credentials::resolve(
            |name| env.get(name).cloned(),
            |path| {
                assert!(path.ends_with("credentials") || path.ends_with("creds.ini"));
                Ok(file.map(str::to_owned))
            },
        )
    }

    /// The access key id and session token found, if any.
    type Found = Option<(String, Option<String>)>;

    /// Environment variables, the credentials file's text, what must be found.
    type Case<'a> = (&'a [(&'a str, &'a str)], Option<&'a str>, Found);

    fn ids(c: Result<Credentials, CredentialsError>) -> Found {
        c.ok().map(|c| (c.access_key_id, c.session_token))
    }

    #[test]
    fn lookup_order_table() {
        let some = |id: &str, token: Option<&str>| Some((id.to_owned(), token.map(str::to_owned)));
        let cases: &[Case] = &[
            (
                &[("AWS_ACCESS_KEY_ID", "AKIAENV"), ("AWS_SECRET_ACCESS_KEY", "s")],
                Some(FILE),
                some("AKIAENV", None),
            ),
            (
                &[
                    ("AWS_ACCESS_KEY_ID", "AKIAENV"),
                    ("AWS_SECRET_ACCESS_KEY", "s"),
                    ("AWS_SESSION_TOKEN", "t"),
                ],
                None,
                some("AKIAENV", Some("t")),
            ),
            // An id without a secret in the environment falls through to the file.
            (&[("AWS_ACCESS_KEY_ID", "AKIAENV")], Some(FILE), some("AKIADEFAULT", None)),
            (&[("HOME", "/root")], Some(FILE), some("AKIADEFAULT", None)),
            (
                &[("AWS_PROFILE", "edge"), ("AWS_SHARED_CREDENTIALS_FILE", "/x/creds.ini")],
                Some(FILE),
                some("AKIAEDGE", Some("token-edge")),
            ),
            (&[("AWS_PROFILE", "broken")], Some(FILE), None),
            (&[("AWS_PROFILE", "absent")], Some(FILE), None),
            (&[], None, None),
        ];
        for (vars, file, want) in cases {
            assert_eq!(&ids(resolve(vars, *file)), want, "{vars:?}");
        }
    }

    #[test]
    fn debug_hides_secrets() {
        let c = resolve(&[("AWS_PROFILE", "edge")], Some(FILE)).unwrap();
        let shown = format!("{c:?}");
        assert!(shown.contains("AKIAEDGE"));
        assert!(!shown.contains("secret-edge") && !shown.contains("token-edge"), "{shown}");
    }
}
