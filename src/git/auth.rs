//! Credentials for HTTP(S) remotes, handed to libgit2 through its
//! credential callback. Secrets never reach a log line or an error message.

use std::fmt;
use std::path::PathBuf;

use crate::credentials::cookies::CookieJar;

/// Where the password comes from.
#[derive(Clone)]
pub enum Password {
    Value(String),
    /// Read again before every pass: rotated tokens need no restart.
    File(PathBuf),
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Password::Value(_) => f.write_str("Value(***)"),
            Password::File(p) => f.debug_tuple("File").field(p).finish(),
        }
    }
}

/// Username and password (or access token).
#[derive(Debug, Clone)]
pub struct Auth {
    pub username: String,
    pub password: Password,
}

/// Credentials resolved for one pass.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({}, ***)", self.username)
    }
}

impl Auth {
    /// The credentials to use now (reads the password file).
    pub fn resolve(&self) -> std::io::Result<Credentials> {
        let password = match &self.password {
            Password::Value(v) => v.clone(),
            Password::File(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| {
                    std::io::Error::new(
                        e.kind(),
                        format!("read password file {}: {e}", p.display()),
                    )
                })?;
                text.trim_end_matches(['\n', '\r']).to_string()
            }
        };
        Ok(Credentials {
            username: self.username.clone(),
            password,
        })
    }
}

/// SSH authentication and host verification.
#[derive(Debug, Clone)]
pub struct SshAuth {
    /// Private keys, tried in order.
    pub key_files: Vec<PathBuf>,
    /// `None`: do not verify host keys.
    pub known_hosts: Option<PathBuf>,
}

/// Everything a remote operation may need, resolved for one pass.
#[derive(Debug, Clone, Default)]
pub struct CredentialSet {
    /// For any URL without a more specific entry.
    pub default: Option<Credentials>,
    /// (URL prefix, credentials): the longest matching prefix wins.
    pub by_url: Vec<(String, Credentials)>,
    pub ssh: Option<SshAuth>,
    /// Cookies sent with HTTP requests they match.
    pub cookies: CookieJar,
}

impl CredentialSet {
    /// The username/password for `url`.
    pub fn for_url(&self, url: &str) -> Option<&Credentials> {
        self.by_url
            .iter()
            .filter(|(prefix, _)| url.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(_, c)| c)
            .or(self.default.as_ref())
    }
}
