//! Azure workload identity: the Pod's projected ServiceAccount token (a
//! federated credential) is exchanged for a Microsoft Entra access token
//! with the OAuth2 client-credentials grant and a JWT client assertion.
//! Azure DevOps takes that token as the password of a basic login.

use std::time::{Duration, SystemTime};

use crate::config::auth::AzureIdentity;
use crate::redact::redact;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The token endpoint of the identity's tenant.
pub fn token_url(id: &AzureIdentity) -> String {
    format!("{}{}/oauth2/v2.0/token", id.authority_host, id.tenant_id)
}

/// Exchange the federated token (read now: kubelet rotates it) for an
/// access token: (token, expiry).
pub fn access_token(
    agent: &ureq::Agent,
    id: &AzureIdentity,
) -> Result<(String, SystemTime), String> {
    let assertion = std::fs::read_to_string(&id.token_file).map_err(|e| {
        format!(
            "cannot read the federated token {}: {e}",
            id.token_file.display()
        )
    })?;
    let url = token_url(id);
    let proxy = super::proxy_for(&url)
        .map_err(|e| format!("Entra token request to {}: {e}", redact(&url)))?;
    let sent = agent
        .post(&url)
        .header("User-Agent", super::USER_AGENT)
        .config()
        .proxy(proxy)
        .build()
        .send_form([
            ("grant_type", "client_credentials"),
            ("client_id", id.client_id.as_str()),
            ("scope", id.scope.as_str()),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", assertion.trim()),
        ]);
    let (status, body) = super::read_answer("Entra token request", &url, sent)?;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    if status != 200 {
        // Entra says why (AADSTS70021: no matching federated identity...).
        let why = v["error_description"]
            .as_str()
            .or(v["error"].as_str())
            .and_then(|d| d.lines().next())
            .unwrap_or("no reason given");
        return Err(format!(
            "Entra token request to {} answered {status}: {}",
            redact(&url),
            redact(why)
        ));
    }
    let token = v["access_token"]
        .as_str()
        .ok_or("the Entra token answer has no access_token")?
        .to_string();
    // A number of seconds (sometimes written as a string).
    let lifetime = v["expires_in"]
        .as_u64()
        .or_else(|| v["expires_in"].as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(3600);
    Ok((token, SystemTime::now() + Duration::from_secs(lifetime)))
}
