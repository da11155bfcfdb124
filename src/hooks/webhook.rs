//! The webhook: an HTTP request with the header `Gitsync-Hash`.

use super::Hook;
use crate::config::gitconfig::Tls;
use crate::config::ops::WebhookConfig;
use crate::credentials::RenewingAgent;
use crate::redact::redact;

pub struct Webhook {
    cfg: WebhookConfig,
    agent: RenewingAgent,
}

impl Webhook {
    pub fn new(cfg: WebhookConfig, tls: &Tls) -> Self {
        let agent = RenewingAgent::new(cfg.timeout, tls);
        Webhook { cfg, agent }
    }
}

impl Hook for Webhook {
    fn name(&self) -> &'static str {
        "webhook"
    }

    fn run(&self, hash: &str) -> Result<(), String> {
        let url = redact(&self.cfg.url);
        let request = ureq::http::Request::builder()
            .method(self.cfg.method.as_str())
            .uri(&self.cfg.url)
            .header("Gitsync-Hash", hash)
            .body(())
            .map_err(|e| format!("webhook {url}: {e}"))?;
        let proxy = crate::credentials::proxy_for(&self.cfg.url)
            .map_err(|e| format!("webhook {url}: {e}"))?;
        let agent = self.agent.get(&self.cfg.url);
        let request = agent.configure_request(request).proxy(proxy).build();
        // Not reaching the receiver is a failure (retried) whatever the
        // status setting, as upstream.
        let response = agent
            .run(request)
            .map_err(|e| format!("webhook {url}: {}", redact(&e.to_string())))?;
        let Some(want) = self.cfg.success_status else {
            // Fire and forget: any answer will do.
            return Ok(());
        };
        let got = response.status().as_u16();
        if got == want {
            Ok(())
        } else {
            Err(format!("webhook {url} answered {got}, expected {want}"))
        }
    }
}
