//! Support requests: a user writes to the instance's operators and they answer, in threads.
//!
//! A request (ticket) belongs to the account that opened it; any other account gets 404, as
//! for every other object. Operators (instance administrators) see every request in a queue,
//! oldest waiting first. Both sides are told of a new message by email, with a link and
//! never the message itself, so the mail copies hold no support content.
//!
//! Requests are the `support` retention class of `privacy.toml` (2 years by default): the
//! sweeper deletes a request with all its messages once it has been quiet that long. They are
//! in the account's data export, and they go with the account when it is purged.

use time::OffsetDateTime;
use uuid::Uuid;

use crate::mail::Message;
use crate::page::{Page, PageRequest};
use crate::principal::Principal;
use crate::tokens::Scope;
use crate::{Error, Pixeld, Result};

/// Longest subject, in characters.
pub const SUBJECT_MAX: usize = 200;
/// Longest message, in characters.
pub const BODY_MAX: usize = 10_000;
/// Requests one account may have open (not closed) at once.
pub const MAX_OPEN: i64 = 10;
/// Messages one request may hold.
pub const MAX_MESSAGES: i64 = 200;

/// What a request is about; operators sort by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// Anything else.
    General,
    /// Credits, plans, payments, invoices.
    Billing,
    /// Something does not work.
    Technical,
    /// A question about one's data or a privacy right.
    Privacy,
}

impl Category {
    /// Every category, in the order forms list them.
    pub const ALL: [Category; 4] = [
        Category::General,
        Category::Billing,
        Category::Technical,
        Category::Privacy,
    ];

    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::General => "general",
            Category::Billing => "billing",
            Category::Technical => "technical",
            Category::Privacy => "privacy",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Category::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Waiting for an operator (new, or the user wrote last).
    Open,
    /// An operator wrote last; waiting for the user.
    Answered,
    /// Closed by either side; a new message opens it again.
    Closed,
}

impl Status {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Answered => "answered",
            Status::Closed => "closed",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "open" => Status::Open,
            "answered" => Status::Answered,
            "closed" => Status::Closed,
            _ => return None,
        })
    }
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Author {
    /// The account that opened the request.
    User,
    /// An operator of the instance.
    Operator,
}

impl Author {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Author::User => "user",
            Author::Operator => "operator",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "user" => Author::User,
            "operator" => Author::Operator,
            _ => return None,
        })
    }
}

/// A support request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// UUIDv7.
    pub id: Uuid,
    /// The account that opened it.
    pub user_id: Uuid,
    /// One line.
    pub subject: String,
    /// What it is about.
    pub category: Category,
    /// Where it stands.
    pub status: Status,
    /// When it was opened.
    pub created_at: OffsetDateTime,
    /// When its last message was written or its status changed (retention counts from here).
    pub updated_at: OffsetDateTime,
    /// When it was closed, while it is.
    pub closed_at: Option<OffsetDateTime>,
}

/// One message of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketMessage {
    /// UUIDv7.
    pub id: Uuid,
    /// The request.
    pub ticket_id: Uuid,
    /// Which side wrote it.
    pub author: Author,
    /// The account that wrote it (none once an operator's account is deleted).
    pub author_id: Option<Uuid>,
    /// The text.
    pub body: String,
    /// When.
    pub created_at: OffsetDateTime,
}

/// A request with its messages, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thread {
    /// The request.
    pub ticket: Ticket,
    /// Its messages, oldest first.
    pub messages: Vec<TicketMessage>,
}

/// A request in the operators' queue, with who opened it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedTicket {
    /// The request.
    pub ticket: Ticket,
    /// The requester's email address.
    pub email: String,
    /// The requester's name.
    pub name: String,
}

/// What a user sends to open a request.
#[derive(Debug, Clone)]
pub struct NewTicket {
    /// One line, 1 to 200 characters.
    pub subject: String,
    /// What it is about.
    pub category: Category,
    /// The first message, 1 to 10 000 characters.
    pub body: String,
}

/// The subject, trimmed, or every problem with it.
fn clean_subject(s: &str) -> std::result::Result<String, &'static str> {
    let s = s.trim();
    if s.is_empty() {
        return Err("must not be empty");
    }
    if s.chars().count() > SUBJECT_MAX {
        return Err("must be at most 200 characters");
    }
    if s.chars().any(char::is_control) {
        return Err("must be one line without control characters");
    }
    Ok(s.to_owned())
}

/// The message, with line endings made `\n` and the ends trimmed.
fn clean_body(s: &str) -> std::result::Result<String, &'static str> {
    let s = s.replace("\r\n", "\n").replace('\r', "\n");
    let s = s.trim();
    if s.is_empty() {
        return Err("must not be empty");
    }
    if s.chars().count() > BODY_MAX {
        return Err("must be at most 10000 characters");
    }
    if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err("must not contain control characters (other than line breaks and tabs)");
    }
    Ok(s.to_owned())
}

fn body_field(s: &str) -> Result<String> {
    clean_body(s).map_err(|m| Error::invalid("body", m))
}

impl Pixeld {
    /// Opens a support request with its first message and tells the operators
    /// (`account:write`). At most [`MAX_OPEN`] requests may be open at once.
    pub async fn open_support_request(&self, p: &Principal, new: NewTicket) -> Result<Thread> {
        p.require_scope(Scope::AccountWrite)?;
        let subject = clean_subject(&new.subject);
        let body = clean_body(&new.body);
        let (subject, body) = match (subject, body) {
            (Ok(s), Ok(b)) => (s, b),
            (s, b) => {
                let mut errs = Vec::new();
                if let Err(m) = s {
                    errs.push(crate::error::FieldError {
                        field: "subject".into(),
                        message: m.into(),
                    });
                }
                if let Err(m) = b {
                    errs.push(crate::error::FieldError {
                        field: "body".into(),
                        message: m.into(),
                    });
                }
                return Err(Error::Invalid(errs));
            }
        };
        let now = self.now();
        let ticket = Ticket {
            id: Uuid::now_v7(),
            user_id: p.user.id,
            subject,
            category: new.category,
            status: Status::Open,
            created_at: now,
            updated_at: now,
            closed_at: None,
        };
        let first = TicketMessage {
            id: Uuid::now_v7(),
            ticket_id: ticket.id,
            author: Author::User,
            author_id: Some(p.user.id),
            body,
            created_at: now,
        };
        if !self.store.create_ticket(&ticket, &first, MAX_OPEN).await? {
            return Err(Error::State(format!(
                "you have {MAX_OPEN} open support requests: close one, or add to one of them"
            )));
        }
        self.notify_operators(&ticket, "New support request")
            .await?;
        tracing::info!(ticket = %ticket.id, user_id = %p.user.id, "support request opened");
        Ok(Thread {
            ticket,
            messages: vec![first],
        })
    }

    /// The caller's requests, newest first (`account:read`).
    pub async fn support_requests(&self, p: &Principal, page: PageRequest) -> Result<Page<Ticket>> {
        p.require_scope(Scope::AccountRead)?;
        let rows = self.store.tickets_of(p.user.id, page).await?;
        Ok(page.finish(rows, |t| t.id))
    }

    /// One of the caller's requests with its messages (`account:read`); 404 for anyone else's.
    pub async fn support_request(&self, p: &Principal, id: Uuid) -> Result<Thread> {
        p.require_scope(Scope::AccountRead)?;
        let ticket = self.own_ticket(p, id).await?;
        let messages = self.store.ticket_messages(id).await?;
        Ok(Thread { ticket, messages })
    }

    async fn own_ticket(&self, p: &Principal, id: Uuid) -> Result<Ticket> {
        self.store
            .ticket(id)
            .await?
            .filter(|t| t.user_id == p.user.id)
            .ok_or(Error::NotFound)
    }

    /// Adds the caller's message to one of their requests, which opens it again if it was
    /// answered or closed, and tells the operators (`account:write`).
    pub async fn reply_to_support_request(
        &self,
        p: &Principal,
        id: Uuid,
        body: &str,
    ) -> Result<TicketMessage> {
        p.require_scope(Scope::AccountWrite)?;
        let body = body_field(body)?;
        let ticket = self.own_ticket(p, id).await?;
        let msg = self
            .add_message(&ticket, Author::User, p.user.id, body, Status::Open)
            .await?;
        self.notify_operators(&ticket, "New message on a support request")
            .await?;
        Ok(msg)
    }

    /// Closes one of the caller's requests (`account:write`). Closing a closed one is a no-op.
    pub async fn close_support_request(&self, p: &Principal, id: Uuid) -> Result<Ticket> {
        p.require_scope(Scope::AccountWrite)?;
        let ticket = self.own_ticket(p, id).await?;
        self.close_ticket(ticket).await
    }

    async fn close_ticket(&self, ticket: Ticket) -> Result<Ticket> {
        if ticket.status == Status::Closed {
            return Ok(ticket);
        }
        let now = self.now();
        self.store.close_ticket(ticket.id, now).await?;
        Ok(Ticket {
            status: Status::Closed,
            updated_at: now,
            closed_at: Some(now),
            ..ticket
        })
    }

    async fn add_message(
        &self,
        ticket: &Ticket,
        author: Author,
        author_id: Uuid,
        body: String,
        status: Status,
    ) -> Result<TicketMessage> {
        let msg = TicketMessage {
            id: Uuid::now_v7(),
            ticket_id: ticket.id,
            author,
            author_id: Some(author_id),
            body,
            created_at: self.now(),
        };
        if !self
            .store
            .add_ticket_message(&msg, status, MAX_MESSAGES)
            .await?
        {
            return Err(Error::State(format!(
                "this request has {MAX_MESSAGES} messages, the most one can hold: open a new one"
            )));
        }
        Ok(msg)
    }

    /// Emails every operator that a request needs them: its subject and a link, no content.
    async fn notify_operators(&self, ticket: &Ticket, what: &str) -> Result<()> {
        let link = format!("{}/admin/support/{}", self.settings.public_url, ticket.id);
        for to in self.store.operator_emails().await? {
            self.mailer
                .send(Message {
                    to,
                    subject: format!("{what}: {}", ticket.subject),
                    body: format!(
                        "A support request ({}) is waiting for an answer.\n\nRead and answer it here:\n{link}\n",
                        ticket.category.as_str()
                    ),
                    attachments: Vec::new(),
                })
                .await?;
        }
        Ok(())
    }

    /// Requests of every account for operators (`admin`): by default those waiting for an
    /// answer; oldest first, so the longest wait is on top.
    pub async fn support_queue(
        &self,
        p: &Principal,
        status: Option<Status>,
        page: PageRequest,
    ) -> Result<Page<QueuedTicket>> {
        p.require_scope(Scope::Admin)?;
        let rows = self.store.support_queue(status, page).await?;
        Ok(page.finish(rows, |t| t.ticket.id))
    }

    /// Any request with its messages and requester, for operators (`admin`).
    pub async fn operator_support_request(
        &self,
        p: &Principal,
        id: Uuid,
    ) -> Result<(QueuedTicket, Vec<TicketMessage>)> {
        p.require_scope(Scope::Admin)?;
        let queued = self.store.queued_ticket(id).await?.ok_or(Error::NotFound)?;
        let messages = self.store.ticket_messages(id).await?;
        Ok((queued, messages))
    }

    /// An operator answers a request (`admin`): it becomes `answered`, and its requester gets
    /// an email with a link to it.
    pub async fn operator_reply(
        &self,
        p: &Principal,
        id: Uuid,
        body: &str,
    ) -> Result<TicketMessage> {
        p.require_scope(Scope::Admin)?;
        let body = body_field(body)?;
        let queued = self.store.queued_ticket(id).await?.ok_or(Error::NotFound)?;
        let msg = self
            .add_message(
                &queued.ticket,
                Author::Operator,
                p.user.id,
                body,
                Status::Answered,
            )
            .await?;
        self.mailer
            .send(Message {
                to: queued.email.clone(),
                subject: format!(
                    "Your support request has an answer: {}",
                    queued.ticket.subject
                ),
                body: format!(
                    "Hello {},\n\nthe pixeld team answered your support request “{}”.\n\n\
                     Read the answer and reply here:\n{}/support/{}\n",
                    queued.name, queued.ticket.subject, self.settings.public_url, id
                ),
                attachments: Vec::new(),
            })
            .await?;
        tracing::info!(ticket = %id, operator = %p.user.id, "support request answered");
        Ok(msg)
    }

    /// An operator closes a request (`admin`).
    pub async fn operator_close(&self, p: &Principal, id: Uuid) -> Result<Ticket> {
        p.require_scope(Scope::Admin)?;
        let queued = self.store.queued_ticket(id).await?.ok_or(Error::NotFound)?;
        self.close_ticket(queued.ticket).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_one_trimmed_line_of_at_most_200_characters() {
        assert_eq!(clean_subject("  Invoice  ").unwrap(), "Invoice");
        assert!(clean_subject("   ").is_err());
        assert!(clean_subject("a\nb").is_err());
        assert!(clean_subject(&"é".repeat(200)).is_ok());
        assert!(clean_subject(&"é".repeat(201)).is_err());
    }

    #[test]
    fn bodies_keep_line_breaks_and_tabs_but_refuse_other_control_characters() {
        assert_eq!(clean_body(" a\r\nb\r\tc ").unwrap(), "a\nb\n\tc");
        assert!(clean_body("\n\n").is_err());
        assert!(clean_body("bell\u{7}").is_err());
        assert!(clean_body(&"x".repeat(BODY_MAX)).is_ok());
        assert!(clean_body(&"x".repeat(BODY_MAX + 1)).is_err());
    }

    #[test]
    fn names_round_trip() {
        for c in Category::ALL {
            assert_eq!(Category::parse(c.as_str()), Some(c));
        }
        for s in [Status::Open, Status::Answered, Status::Closed] {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        for a in [Author::User, Author::Operator] {
            assert_eq!(Author::parse(a.as_str()), Some(a));
        }
        assert_eq!(Category::parse("sales"), None);
    }
}
