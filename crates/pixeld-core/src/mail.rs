//! Outgoing email as a dependency: the server sends through lettre (file outbox or SMTP).

use async_trait::async_trait;

/// One plain-text message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Recipient address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
    /// Files attached (receipts' PDFs).
    pub attachments: Vec<Attachment>,
}

/// A file attached to a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// File name shown to the recipient.
    pub filename: String,
    /// Media type, e.g. `application/pdf`.
    pub content_type: String,
    /// The file.
    pub bytes: Vec<u8>,
}

/// Something that delivers email.
#[async_trait]
pub trait Mailer: Send + Sync {
    /// Sends one message.
    async fn send(&self, message: Message) -> crate::Result<()>;

    /// Deletes local copies of messages written before `before` (an outbox folder); returns
    /// how many. Mailers that keep no copies have nothing to do.
    async fn purge_copies(&self, before: time::OffsetDateTime) -> crate::Result<u64> {
        let _ = before;
        Ok(0)
    }
}
