//! `POST /sync`: a sync at once for a caller that proves the shared
//! secret, the way GitHub, GitLab, Bitbucket, Gitea and Forgejo sign their
//! webhooks, or with a bearer token.

use std::path::Path;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{HeaderMap, Request, Response, StatusCode};

use super::{reply, HttpState, Hush, REQUEST_TIMEOUT};

/// Largest request body read (webhook payloads are small).
const MAX_BODY: usize = 4 * 1024 * 1024;

/// Answer a `POST /sync`, counted in `git_sync_trigger_requests_total`.
pub(super) async fn trigger(req: Request<Incoming>, state: &HttpState) -> Response<Full<Bytes>> {
    let answer = answer(req, state).await;
    state
        .metrics
        .trigger(answer.status() == StatusCode::ACCEPTED);
    answer
}

async fn answer(req: Request<Incoming>, state: &HttpState) -> Response<Full<Bytes>> {
    let Some(secret_file) = &state.trigger_secret_file else {
        return reply(StatusCode::NOT_FOUND, "not found\n");
    };
    // Read per request: a rotated secret needs no restart.
    let secret = match read_secret(secret_file).await {
        Ok(s) => s,
        Err(e) => {
            if let Some(unsaid) = Hush::speak_shared(&state.no_secret) {
                tracing::error!(error = %e, unlogged = unsaid, "sync trigger refused: its secret is unusable");
            }
            return reply(StatusCode::INTERNAL_SERVER_ERROR, "secret unavailable\n");
        }
    };
    let headers = req.headers().clone();
    let body = Limited::new(req.into_body(), MAX_BODY).collect();
    let body = match tokio::time::timeout(REQUEST_TIMEOUT, body).await {
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(_)) => return reply(StatusCode::PAYLOAD_TOO_LARGE, "body too large\n"),
        Err(_) => return reply(StatusCode::REQUEST_TIMEOUT, "body too slow\n"),
    };
    if let Err(why) = proves(&headers, &body, &secret) {
        // A sender set up wrong retries, and anyone may knock: at most one
        // warning a minute, every refusal at -v.
        match Hush::speak_shared(&state.unproven) {
            Some(unsaid) => {
                tracing::warn!(reason = %why, unlogged = unsaid, "sync trigger refused")
            }
            None => tracing::debug!(reason = %why, "sync trigger refused"),
        }
        return reply(StatusCode::UNAUTHORIZED, "unauthorized\n");
    }
    tracing::info!("sync triggered over HTTP");
    state.sync_now.notify_one();
    reply(StatusCode::ACCEPTED, "sync triggered\n")
}

/// Why the secret could not be read, or is no secret.
#[derive(Debug, thiserror::Error)]
pub(super) enum SecretError {
    #[error("cannot read {path}: {source}")]
    Unreadable {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is empty: no request can prove it")]
    Empty { path: String },
}

/// The secret in `path`, without the newline an editor or `echo` leaves.
pub(super) async fn read_secret(path: &Path) -> Result<Vec<u8>, SecretError> {
    let shown = || path.display().to_string();
    let secret = tokio::fs::read(path)
        .await
        .map_err(|source| SecretError::Unreadable {
            path: shown(),
            source,
        })?;
    let secret = trim_newline(secret);
    if secret.is_empty() {
        return Err(SecretError::Empty { path: shown() });
    }
    Ok(secret)
}

/// The headers that carry a proof, as senders spell them.
const PROOF_HEADERS: [&str; 6] = [
    "X-Hub-Signature-256",
    "X-Hub-Signature",
    "X-Gitea-Signature",
    "X-Forgejo-Signature",
    "X-Gitlab-Token",
    "Authorization",
];

/// Whether the request proves `secret` (not empty): by a signature of the
/// body or by the secret itself. If not, why not, for the log: what it
/// offered, and what would do.
fn proves(headers: &HeaderMap, body: &[u8], secret: &[u8]) -> Result<(), String> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let signed = |name: &str, prefix: &str| {
        header(name)
            .and_then(|sig| sig.strip_prefix(prefix))
            .is_some_and(|hex| hmac_hex_ok(secret, body, hex))
    };
    let proven = signed("x-hub-signature-256", "sha256=")
        // Bitbucket Cloud and Data Center: GitHub's old header name,
        // with SHA-256 (GitHub's own is SHA-1 there: not accepted).
        || signed("x-hub-signature", "sha256=")
        || signed("x-gitea-signature", "")
        || signed("x-forgejo-signature", "")
        || header("x-gitlab-token").is_some_and(|t| constant_eq(t.as_bytes(), secret))
        || header("authorization")
            .and_then(|a| a.strip_prefix("Bearer "))
            .is_some_and(|t| constant_eq(t.trim().as_bytes(), secret));
    if proven {
        return Ok(());
    }
    let offered: Vec<&str> = PROOF_HEADERS
        .into_iter()
        .filter(|name| headers.contains_key(*name))
        .collect();
    Err(match offered[..] {
        [] => format!(
            "no signature nor token: the sender needs the secret, to send one of {}",
            PROOF_HEADERS.join(", ")
        ),
        ["X-Hub-Signature"]
            if header("x-hub-signature").is_some_and(|s| s.starts_with("sha1=")) =>
        {
            "a SHA-1 signature only (X-Hub-Signature): SHA-256 is needed, in X-Hub-Signature-256"
                .into()
        }
        ["Authorization"] if !header("authorization").is_some_and(|a| a.starts_with("Bearer ")) => {
            "an Authorization header that is not \"Bearer <secret>\"".into()
        }
        _ => format!("{}: does not match the secret", offered.join(", ")),
    })
}

fn trim_newline(mut s: Vec<u8>) -> Vec<u8> {
    while s.last().is_some_and(|c| *c == b'\n' || *c == b'\r') {
        s.pop();
    }
    s
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && openssl::memcmp::eq(a, b)
}

/// Whether `hex` is the HMAC-SHA256 of `body` under `secret`, as GitHub,
/// Bitbucket, Gitea and Forgejo sign a webhook (after their prefix).
fn hmac_hex_ok(secret: &[u8], body: &[u8], hex: &str) -> bool {
    let Some(mac) = hmac_sha256(secret, body) else {
        return false;
    };
    let expected: String = mac.iter().map(|b| format!("{b:02x}")).collect();
    constant_eq(
        hex.trim().to_ascii_lowercase().as_bytes(),
        expected.as_bytes(),
    )
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    let key = openssl::pkey::PKey::hmac(key).ok()?;
    let mut signer =
        openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &key).ok()?;
    signer.update(data).ok()?;
    signer.sign_to_vec().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_signatures() {
        // HMAC-SHA256("It's a Secret to Everybody", "Hello, World!"), from
        // GitHub's documentation of webhook signatures.
        let hex = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        let secret = b"It's a Secret to Everybody";
        assert!(hmac_hex_ok(secret, b"Hello, World!", hex));
        assert!(hmac_hex_ok(secret, b"Hello, World!", &hex.to_uppercase()));
        assert!(!hmac_hex_ok(b"wrong", b"Hello, World!", hex));
        assert!(!hmac_hex_ok(secret, b"Hello, World?", hex));
        assert!(!hmac_hex_ok(secret, b"Hello, World!", &hex[..40]));
        assert!(!hmac_hex_ok(secret, b"Hello, World!", ""));
    }
}
