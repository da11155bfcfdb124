//! GitHub App authentication: sign a JWT (RS256) with the app's private
//! key, exchange it for an installation access token.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openssl::base64::encode_block;

use crate::config::auth::GithubApp;
use crate::redact::redact;

fn base64url(data: &[u8]) -> String {
    encode_block(data)
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_")
        .replace('\n', "")
}

/// The app's JWT: valid from a minute ago (clock drift) for nine minutes.
pub fn jwt(private_key_pem: &[u8], issuer: &str, now: u64) -> Result<String, String> {
    let key = openssl::pkey::PKey::private_key_from_pem(private_key_pem)
        .map_err(|_| "the GitHub App private key is not a valid PEM private key".to_string())?;
    let header = base64url(br#"{"alg":"RS256","typ":"JWT"}"#);
    let claims = serde_json::json!({ "iat": now - 60, "exp": now + 540, "iss": issuer });
    let payload = base64url(claims.to_string().as_bytes());
    let signing_input = format!("{header}.{payload}");
    let mut signer = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &key)
        .map_err(|e| format!("cannot sign the GitHub App JWT: {e}"))?;
    signer
        .update(signing_input.as_bytes())
        .map_err(|e| format!("cannot sign the GitHub App JWT: {e}"))?;
    let signature = signer
        .sign_to_vec()
        .map_err(|e| format!("cannot sign the GitHub App JWT: {e}"))?;
    Ok(format!("{signing_input}.{}", base64url(&signature)))
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// `2026-11-24T10:00:00Z` as a time.
pub fn parse_rfc3339_utc(s: &str) -> Option<SystemTime> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let d: Vec<i64> = date
        .split('-')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let t: Vec<i64> = time
        .split(':')
        .map(|p| p.split('.').next()?.parse().ok())
        .collect::<Option<_>>()?;
    if d.len() != 3 || t.len() != 3 {
        return None;
    }
    let secs = days_from_civil(d[0], d[1], d[2]) * 86400 + t[0] * 3600 + t[1] * 60 + t[2];
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

/// Exchange a fresh JWT for an installation token: (token, expiry).
pub fn installation_token(
    agent: &ureq::Agent,
    app: &GithubApp,
) -> Result<(String, SystemTime), String> {
    let pem = match &app.private_key {
        crate::git::Password::Value(v) => v.clone().into_bytes(),
        crate::git::Password::File(p) => std::fs::read(p).map_err(|e| {
            format!(
                "cannot read the GitHub App private key {}: {e}",
                p.display()
            )
        })?,
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let token = jwt(&pem, &app.issuer, now)?;
    let url = format!(
        "{}app/installations/{}/access_tokens",
        app.base_url, app.installation_id
    );
    let proxy = super::proxy_for(&url)
        .map_err(|e| format!("GitHub App token request to {}: {e}", redact(&url)))?;
    let sent = agent
        .post(&url)
        .header("Authorization", &format!("Bearer {token}"))
        .header("Accept", "application/vnd.github+json")
        .header("User-Agent", super::USER_AGENT)
        .config()
        .proxy(proxy)
        .build()
        .send_empty();
    let (status, body) = super::read_answer("GitHub App token request", &url, sent)?;
    if status != 201 && status != 200 {
        return Err(format!(
            "GitHub App token request to {} answered {status}",
            redact(&url)
        ));
    }
    let v: serde_json::Value = serde_json::from_str(&body)
        .map_err(|_| "GitHub App token answer is not JSON".to_string())?;
    let token = v["token"]
        .as_str()
        .ok_or("GitHub App token answer has no token")?
        .to_string();
    let expires = v["expires_at"]
        .as_str()
        .and_then(parse_rfc3339_utc)
        .unwrap_or_else(|| SystemTime::now() + Duration::from_secs(3600));
    Ok((token, expires))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        let t = parse_rfc3339_utc("2016-07-11T22:14:10Z").unwrap();
        assert_eq!(t.duration_since(UNIX_EPOCH).unwrap().as_secs(), 1468275250);
        assert!(parse_rfc3339_utc("nope").is_none());
    }

    #[test]
    fn jwt_verifies_with_the_public_key() {
        let rsa = openssl::rsa::Rsa::generate(2048).unwrap();
        let key = openssl::pkey::PKey::from_rsa(rsa).unwrap();
        let pem = key.private_key_to_pem_pkcs8().unwrap();
        let token = jwt(&pem, "12345", 1_700_000_000).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let decode = |s: &str| {
            let mut b = s.replace('-', "+").replace('_', "/");
            while b.len() % 4 != 0 {
                b.push('=');
            }
            openssl::base64::decode_block(&b).unwrap()
        };
        let claims: serde_json::Value = serde_json::from_slice(&decode(parts[1])).unwrap();
        assert_eq!(claims["iss"], "12345");
        let mut v =
            openssl::sign::Verifier::new(openssl::hash::MessageDigest::sha256(), &key).unwrap();
        v.update(format!("{}.{}", parts[0], parts[1]).as_bytes())
            .unwrap();
        assert!(v.verify(&decode(parts[2])).unwrap());
    }
}
