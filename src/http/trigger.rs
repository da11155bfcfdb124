//! `POST /sync`: a sync at once for a caller that proves the shared
//! secret, the way GitHub, GitLab, Bitbucket, Gitea and Forgejo sign their
//! webhooks, or with a bearer token.

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};

use super::{reply, HttpState, REQUEST_TIMEOUT};

/// Largest request body read (webhook payloads are small).
const MAX_BODY: usize = 4 * 1024 * 1024;

pub(super) async fn trigger(req: Request<Incoming>, state: &HttpState) -> Response<Full<Bytes>> {
    let Some(secret_file) = &state.trigger_secret_file else {
        return reply(StatusCode::NOT_FOUND, "not found\n");
    };
    // Read per request: a rotated secret needs no restart.
    let secret = match tokio::fs::read(secret_file).await {
        Ok(s) => trim_newline(s),
        Err(e) => {
            tracing::error!(path = %secret_file.display(), error = %e, "cannot read the sync trigger secret");
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
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    // An empty secret proves nothing.
    let signed = |name: &str, prefix: &str| {
        header(name)
            .and_then(|sig| sig.strip_prefix(prefix))
            .is_some_and(|hex| hmac_hex_ok(&secret, &body, hex))
    };
    let proven = !secret.is_empty()
        && (signed("x-hub-signature-256", "sha256=")
            // Bitbucket Cloud and Data Center: GitHub's old header name,
            // with SHA-256 (GitHub's own is SHA-1 there: not accepted).
            || signed("x-hub-signature", "sha256=")
            || signed("x-gitea-signature", "")
            || signed("x-forgejo-signature", "")
            || header("x-gitlab-token").is_some_and(|t| constant_eq(t.as_bytes(), &secret))
            || header("authorization")
                .and_then(|a| a.strip_prefix("Bearer "))
                .is_some_and(|t| constant_eq(t.trim().as_bytes(), &secret)));
    if !proven {
        tracing::warn!("sync trigger refused: no valid secret");
        return reply(StatusCode::UNAUTHORIZED, "unauthorized\n");
    }
    tracing::info!("sync triggered over HTTP");
    state.sync_now.notify_one();
    reply(StatusCode::ACCEPTED, "sync triggered\n")
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
