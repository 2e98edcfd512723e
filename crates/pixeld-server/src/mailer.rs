//! Email through lettre: `.eml` files in an outbox folder by default, SMTP when configured.

use std::path::PathBuf;

use async_trait::async_trait;
use lettre::message::Mailbox;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use pixeld_core::mail::{Mailer, Message};

use crate::config::MailConfig;

enum Transport {
    Outbox(AsyncFileTransport<Tokio1Executor>),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

/// The lettre-backed [`Mailer`].
pub struct LettreMailer {
    from: Mailbox,
    transport: Transport,
    outbox: Option<PathBuf>,
}

impl LettreMailer {
    /// Builds the transport named by the configuration; `outbox` is used when there is no SMTP URL.
    pub fn new(config: &MailConfig, outbox: PathBuf) -> anyhow::Result<Self> {
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|e| anyhow::anyhow!("mail.from `{}`: {e}", config.from))?;
        let transport = match &config.smtp_url {
            Some(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| anyhow::anyhow!("mail.smtp_url: {e}"))?
                    .build(),
            ),
            None => {
                std::fs::create_dir_all(&outbox).map_err(|e| {
                    anyhow::anyhow!("cannot create the outbox {}: {e}", outbox.display())
                })?;
                Transport::Outbox(AsyncFileTransport::new(outbox.clone()))
            }
        };
        let outbox = matches!(transport, Transport::Outbox(_)).then_some(outbox);
        Ok(Self {
            from,
            transport,
            outbox,
        })
    }
}

#[async_trait]
impl Mailer for LettreMailer {
    async fn send(&self, m: Message) -> pixeld_core::Result<()> {
        let to: Mailbox =
            m.to.parse()
                .map_err(|e| pixeld_core::Error::Internal(format!("recipient: {e}")))?;
        let builder = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(m.subject);
        // 8bit keeps links and tokens intact in the raw message (quoted-printable would
        // wrap and escape them), so they can be copied from an .eml file as they are.
        let text = lettre::message::SinglePart::builder()
            .header(lettre::message::header::ContentType::TEXT_PLAIN)
            .body(eight_bit_body(&m.body));
        let email = if m.attachments.is_empty() {
            builder.singlepart(text)
        } else {
            let mut parts = lettre::message::MultiPart::mixed().singlepart(text);
            for a in m.attachments {
                let ct =
                    lettre::message::header::ContentType::parse(&a.content_type).map_err(|e| {
                        pixeld_core::Error::Internal(format!(
                            "attachment type {}: {e}",
                            a.content_type
                        ))
                    })?;
                parts = parts
                    .singlepart(lettre::message::Attachment::new(a.filename).body(a.bytes, ct));
            }
            builder.multipart(parts)
        }
        .map_err(|e| pixeld_core::Error::Internal(format!("building email: {e}")))?;
        let sent = match &self.transport {
            Transport::Outbox(t) => t.send(email).await.map(drop).map_err(|e| e.to_string()),
            Transport::Smtp(t) => t.send(email).await.map(drop).map_err(|e| e.to_string()),
        };
        sent.map_err(|e| pixeld_core::Error::Internal(format!("sending email: {e}")))
    }

    async fn purge_copies(&self, before: time::OffsetDateTime) -> pixeld_core::Result<u64> {
        let Some(dir) = self.outbox.clone() else {
            return Ok(0);
        };
        let before = std::time::SystemTime::from(before);
        tokio::task::spawn_blocking(move || purge_outbox(&dir, before))
            .await
            .map_err(|e| pixeld_core::Error::Internal(format!("outbox purge: {e}")))?
    }
}

/// Deletes `.eml` files last written before `before`.
fn purge_outbox(dir: &std::path::Path, before: std::time::SystemTime) -> pixeld_core::Result<u64> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => {
            return Err(pixeld_core::Error::Internal(format!(
                "reading the outbox: {e}"
            )));
        }
    };
    let mut n = 0;
    for e in entries.flatten() {
        let path = e.path();
        if path.extension().is_none_or(|x| x != "eml") {
            continue;
        }
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t < before);
        if old && std::fs::remove_file(&path).is_ok() {
            n += 1;
        }
    }
    Ok(n)
}

/// The text as an 8bit body (CRLF line ends), so links and tokens stay intact and copyable in
/// the raw message; quoted-printable would wrap and escape them. Lines over RFC 5322's 998-byte
/// limit fall back to lettre's own choice of encoding.
fn eight_bit_body(text: &str) -> lettre::message::Body {
    use lettre::message::Body;
    use lettre::message::header::ContentTransferEncoding;
    let crlf = text.replace("\r\n", "\n").replace('\n', "\r\n");
    if crlf.split("\r\n").all(|l| l.len() <= 998) {
        Body::dangerous_pre_encoded(crlf.into_bytes(), ContentTransferEncoding::EightBit)
    } else {
        Body::new(crlf)
    }
}
