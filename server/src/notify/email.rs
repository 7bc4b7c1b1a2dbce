//! E-mail over SMTP with `lettre`: STARTTLS (required), implicit TLS or none, with
//! authentication when configured; rustls with ring, the platform's roots plus `ca_file`.
//! A message is multipart/alternative (plain text and HTML, UTF-8); a Thai subject is
//! RFC 2047-encoded by the builder.

use std::time::Duration;

use eitwatch_config::notify_config::{EmailSection, SmtpTls};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::outbox::Notification;

/// Why the SMTP client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    /// `from` is not a mailbox.
    #[error("notify.email.from: \"{from}\": {reason}")]
    From {
        /// The value.
        from: String,
        /// Why.
        reason: String,
    },
    /// The password's variable or file.
    #[error("notify.email.{0}")]
    Password(String),
    /// The CA file.
    #[error("notify.email.ca_file: {path}: {reason}")]
    Ca {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// TLS parameters.
    #[error("notify.email: {0}")]
    Tls(String),
}

/// A configured SMTP client.
#[derive(Debug, Clone)]
pub struct Email {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

/// What a send came to: taken, worth retrying, or refused for good.
#[derive(Debug)]
pub enum Sent {
    /// The server's answer (`250 …`).
    Ok(String),
    /// A transient failure (4xx, a connection or TLS failure, a timeout).
    Transient(String),
    /// A permanent refusal (5xx) or a message that cannot be built.
    Permanent(String),
}

impl Email {
    /// The client of `[notify.email]`.
    pub fn new(config: &EmailSection) -> Result<Email, EmailError> {
        let from: Mailbox = config.from.parse().map_err(|e: lettre::address::AddressError| EmailError::From {
            from: config.from.clone(),
            reason: e.to_string(),
        })?;
        let tls = match config.tls {
            SmtpTls::None => None,
            _ => {
                let mut params = TlsParameters::builder(config.host.clone());
                if let Some(path) = &config.ca_file {
                    let pem = std::fs::read(path)
                        .map_err(|e| EmailError::Ca { path: path.clone(), reason: e.to_string() })?;
                    let cert = Certificate::from_pem(&pem)
                        .map_err(|e| EmailError::Ca { path: path.clone(), reason: e.to_string() })?;
                    params = params.add_root_certificate(cert);
                }
                Some(params.build_rustls().map_err(|e| EmailError::Tls(e.to_string()))?)
            }
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(config.host.clone())
            .port(config.port())
            .timeout(Some(Duration::from_millis(config.timeout_ms)));
        builder = match (config.tls, tls) {
            (SmtpTls::Starttls, Some(p)) => builder.tls(Tls::Required(p)),
            (SmtpTls::Implicit, Some(p)) => builder.tls(Tls::Wrapper(p)),
            _ => builder.tls(Tls::None),
        };
        let password = eitwatch_config::notify_config::secret(
            config.password_env.as_deref(),
            config.password_file.as_deref(),
            "password",
        )
        .map_err(EmailError::Password)?;
        if let (Some(user), Some(password)) = (&config.username, password) {
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        Ok(Email { transport: builder.build(), from })
    }

    /// Sends one notification.
    pub async fn send(&self, n: &Notification) -> Sent {
        let to: Mailbox = match n.to.parse() {
            Ok(m) => m,
            Err(e) => return Sent::Permanent(format!("to: \"{}\": {e}", n.to)),
        };
        let message = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(n.subject.clone())
            .multipart(MultiPart::alternative_plain_html(n.text.clone(), n.html.clone()));
        let message = match message {
            Ok(m) => m,
            Err(e) => return Sent::Permanent(format!("message: {e}")),
        };
        match self.transport.send(message).await {
            Ok(r) => Sent::Ok(format!("{} {}", r.code(), r.message().collect::<Vec<_>>().join(" "))),
            Err(e) if e.is_permanent() => Sent::Permanent(e.to_string()),
            Err(e) => Sent::Transient(e.to_string()),
        }
    }
}
