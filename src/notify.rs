//! Sending one event to one destination: a signed webhook, an ntfy topic, or an e-mail. Blocking
//! (it runs in a delivery job on a blocking thread); every failure is a message for the log and
//! the UI, and the job retries with backoff.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::{Destination, DestinationKind, Smtp, SmtpTls};
use crate::model::notify::{Event, EventKind};

/// How long one try may take, connecting included.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Sends `event` to `dest`.
pub fn send(dest: &Destination, event: &Event) -> Result<(), String> {
    let body = serde_json::to_vec(event).map_err(|e| format!("the event cannot be written: {e}"))?;
    match &dest.kind {
        DestinationKind::Webhook { url, secret } => {
            let mut req = agent()
                .post(url)
                .header("Content-Type", "application/json")
                .header("User-Agent", concat!("bakch/", env!("CARGO_PKG_VERSION")))
                .header("X-Bakch-Event", event.event.as_str());
            if let Some(secret) = secret {
                req = req.header("X-Bakch-Signature", format!("sha256={}", signature(secret, &body)));
            }
            req.send(&body[..]).map(|_| ()).map_err(|e| format!("POST {url}: {e}"))
        }
        DestinationKind::Ntfy { url, token } => {
            let priority = match event.event {
                EventKind::Recovered | EventKind::Test => "default",
                _ => "high",
            };
            let mut req = agent()
                .post(url)
                .header("Title", ascii(&event.title()))
                .header("Priority", priority)
                .header("Tags", event.event.as_str());
            if let Some(token) = token {
                req = req.header("Authorization", format!("Bearer {token}"));
            }
            req.send(event.reason.as_bytes()).map(|_| ()).map_err(|e| format!("POST {url}: {e}"))
        }
        DestinationKind::Email(smtp) => mail(smtp, event),
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().timeout_global(Some(TIMEOUT)).build().new_agent()
}

/// HTTP headers take ASCII; a target's name may not be.
fn ascii(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii() && !c.is_ascii_control() { c } else { '?' }).collect()
}

/// The hex HMAC-SHA256 of `body` with `secret`: what `X-Bakch-Signature` carries after `sha256=`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

fn mail(smtp: &Smtp, event: &Event) -> Result<(), String> {
    use lettre::message::{Mailbox, header::ContentType};
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::{Message, SmtpTransport, Transport};

    let mailbox = |a: &str| a.parse::<Mailbox>().map_err(|e| format!("'{a}' is not an e-mail address: {e}"));
    let mut message = Message::builder().from(mailbox(&smtp.from)?).subject(event.title());
    for to in &smtp.to {
        message = message.to(mailbox(to)?);
    }
    let text = format!(
        "{}\n\nevent: {}\ntarget: {}\nstate: {}\ntime: {}\n",
        event.reason,
        event.event.as_str(),
        event.target_name.as_deref().unwrap_or("-"),
        event.state,
        event.time
    );
    let message =
        message.header(ContentType::TEXT_PLAIN).body(text).map_err(|e| format!("the e-mail cannot be built: {e}"))?;
    let builder = match smtp.tls {
        SmtpTls::Starttls => SmtpTransport::starttls_relay(&smtp.host),
        SmtpTls::Tls => SmtpTransport::relay(&smtp.host),
        SmtpTls::None => Ok(SmtpTransport::builder_dangerous(&smtp.host)),
    }
    .map_err(|e| format!("SMTP server {}: {e}", smtp.host))?;
    let mut builder = builder.port(smtp.port).timeout(Some(TIMEOUT));
    if let Some(user) = &smtp.username {
        let password = match &smtp.password_file {
            Some(p) => std::fs::read_to_string(p)
                .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
                .map_err(|e| format!("cannot read the SMTP password file {}: {e}", p.display()))?,
            None => String::new(),
        };
        builder = builder.credentials(Credentials::new(user.clone(), password));
    }
    builder.build().send(&message).map(|_| ()).map_err(|e| format!("SMTP server {}:{}: {e}", smtp.host, smtp.port))
}

#[cfg(test)]
mod tests {
    #[test]
    fn signature_is_the_rfc_4231_hmac() {
        // RFC 4231, test case 2.
        assert_eq!(
            super::signature("Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
