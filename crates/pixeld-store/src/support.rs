//! Support requests and their messages on both backends (`SupportStore`).

macro_rules! ticket_cols {
    () => {
        "id, user_id, subject, category, status, created_at, updated_at, closed_at"
    };
}

macro_rules! support_impl {
    ($store:ty, $db:ty, $row:ty) => {
        mod support_sql {
            use super::*;
            use pixeld_core::support::*;

            fn decode(what: &str, v: &str) -> sqlx::Error {
                sqlx::Error::Decode(format!("unknown support {what} `{v}`").into())
            }

            pub(super) fn ticket(r: &$row) -> Result<Ticket, sqlx::Error> {
                let category: String = r.try_get("category")?;
                let status: String = r.try_get("status")?;
                Ok(Ticket {
                    id: r.try_get("id")?,
                    user_id: r.try_get("user_id")?,
                    subject: r.try_get("subject")?,
                    category: Category::parse(&category).ok_or_else(|| decode("category", &category))?,
                    status: Status::parse(&status).ok_or_else(|| decode("status", &status))?,
                    created_at: read_ts(r, "created_at")?,
                    updated_at: read_ts(r, "updated_at")?,
                    closed_at: read_ts_opt(r, "closed_at")?,
                })
            }

            pub(super) fn queued(r: &$row) -> Result<QueuedTicket, sqlx::Error> {
                Ok(QueuedTicket {
                    ticket: ticket(r)?,
                    email: r.try_get("email")?,
                    name: r.try_get("name")?,
                })
            }

            pub(super) fn message(r: &$row) -> Result<TicketMessage, sqlx::Error> {
                let author: String = r.try_get("author")?;
                Ok(TicketMessage {
                    id: r.try_get("id")?,
                    ticket_id: r.try_get("ticket_id")?,
                    author: Author::parse(&author).ok_or_else(|| decode("author", &author))?,
                    author_id: r.try_get("author_id")?,
                    body: r.try_get("body")?,
                    created_at: read_ts(r, "created_at")?,
                })
            }

            pub(super) async fn insert_message<'e, E>(x: E, m: &TicketMessage, max: i64) -> Result<bool, sqlx::Error>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                let r = sqlx::query(
                    "INSERT INTO support_messages (id, ticket_id, author, author_id, body, created_at) \
                     SELECT $1, $2, $3, $4, $5, $6 \
                     WHERE (SELECT COUNT(*) FROM support_messages WHERE ticket_id = $2) < $7")
                    .bind(m.id).bind(m.ticket_id).bind(m.author.as_str()).bind(m.author_id)
                    .bind(&m.body).bind(ts(m.created_at)).bind(max)
                    .execute(x).await?;
                Ok(r.rows_affected() == 1)
            }
        }

        #[async_trait::async_trait]
        impl pixeld_core::store::SupportStore for $store {
            async fn create_ticket(
                &self,
                t: &pixeld_core::support::Ticket,
                first: &pixeld_core::support::TicketMessage,
                max_open: i64,
            ) -> pixeld_core::store::StoreResult<bool> {
                let be = crate::backend_error;
                let mut tx = self.pool.begin().await.map_err(be)?;
                // The user's row is locked first (a row lock on PostgreSQL, the write lock on
                // SQLite), so two requests opened at once count each other and the limit is exact.
                sqlx::query("UPDATE users SET id = id WHERE id = $1")
                    .bind(t.user_id)
                    .execute(&mut *tx).await.map_err(be)?;
                let r = sqlx::query(concat!(
                    "INSERT INTO support_tickets (", ticket_cols!(), ") \
                     SELECT $1, $2, $3, $4, $5, $6, $7, $8 \
                     WHERE (SELECT COUNT(*) FROM support_tickets WHERE user_id = $2 AND status <> 'closed') < $9"))
                    .bind(t.id).bind(t.user_id).bind(&t.subject).bind(t.category.as_str())
                    .bind(t.status.as_str()).bind(ts(t.created_at)).bind(ts(t.updated_at))
                    .bind(t.closed_at.map(ts)).bind(max_open)
                    .execute(&mut *tx).await.map_err(be)?;
                if r.rows_affected() == 0 {
                    return Ok(false);
                }
                support_sql::insert_message(&mut *tx, first, 1).await.map_err(be)?;
                tx.commit().await.map_err(be)?;
                Ok(true)
            }

            async fn ticket(&self, id: uuid::Uuid) -> pixeld_core::store::StoreResult<Option<pixeld_core::support::Ticket>> {
                let row = sqlx::query(concat!("SELECT ", ticket_cols!(), " FROM support_tickets WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(&self.pool).await.map_err(crate::backend_error)?;
                row.as_ref().map(support_sql::ticket).transpose().map_err(crate::backend_error)
            }

            async fn tickets_of(
                &self,
                user_id: uuid::Uuid,
                page: pixeld_core::page::PageRequest,
            ) -> pixeld_core::store::StoreResult<Vec<pixeld_core::support::Ticket>> {
                let rows = sqlx::query(concat!("SELECT ", ticket_cols!(),
                        " FROM support_tickets WHERE user_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3"))
                    .bind(user_id).bind(page.after.unwrap_or(uuid::Uuid::max())).bind(page.fetch())
                    .fetch_all(&self.pool).await.map_err(crate::backend_error)?;
                rows.iter().map(support_sql::ticket).collect::<Result<_, _>>().map_err(crate::backend_error)
            }

            async fn ticket_messages(
                &self,
                ticket_id: uuid::Uuid,
            ) -> pixeld_core::store::StoreResult<Vec<pixeld_core::support::TicketMessage>> {
                let rows = sqlx::query(
                        "SELECT id, ticket_id, author, author_id, body, created_at \
                         FROM support_messages WHERE ticket_id = $1 ORDER BY id")
                    .bind(ticket_id)
                    .fetch_all(&self.pool).await.map_err(crate::backend_error)?;
                rows.iter().map(support_sql::message).collect::<Result<_, _>>().map_err(crate::backend_error)
            }

            async fn add_ticket_message(
                &self,
                m: &pixeld_core::support::TicketMessage,
                status: pixeld_core::support::Status,
                max_messages: i64,
            ) -> pixeld_core::store::StoreResult<bool> {
                let be = crate::backend_error;
                let mut tx = self.pool.begin().await.map_err(be)?;
                // The request is touched first, so that two writers to one request queue on its
                // row and the message count below is exact.
                let touched = sqlx::query(
                        "UPDATE support_tickets SET status = $1, updated_at = $2, closed_at = NULL WHERE id = $3")
                    .bind(status.as_str()).bind(ts(m.created_at)).bind(m.ticket_id)
                    .execute(&mut *tx).await.map_err(be)?;
                if touched.rows_affected() == 0 {
                    return Err(pixeld_core::store::StoreError::NotFound);
                }
                if !support_sql::insert_message(&mut *tx, m, max_messages).await.map_err(be)? {
                    return Ok(false);
                }
                tx.commit().await.map_err(be)?;
                Ok(true)
            }

            async fn close_ticket(&self, id: uuid::Uuid, at: time::OffsetDateTime) -> pixeld_core::store::StoreResult<bool> {
                let r = sqlx::query(
                        "UPDATE support_tickets SET status = 'closed', updated_at = $1, closed_at = $1 \
                         WHERE id = $2 AND status <> 'closed'")
                    .bind(ts(at)).bind(id)
                    .execute(&self.pool).await.map_err(crate::backend_error)?;
                Ok(r.rows_affected() == 1)
            }

            async fn support_queue(
                &self,
                status: Option<pixeld_core::support::Status>,
                page: pixeld_core::page::PageRequest,
            ) -> pixeld_core::store::StoreResult<Vec<pixeld_core::support::QueuedTicket>> {
                let rows = sqlx::query(
                        "SELECT t.id, t.user_id, t.subject, t.category, t.status, t.created_at, t.updated_at, \
                                t.closed_at, u.email, u.name \
                         FROM support_tickets t JOIN users u ON u.id = t.user_id \
                         WHERE ($1 = '' OR t.status = $1) AND t.id > $2 ORDER BY t.id LIMIT $3")
                    .bind(status.map_or("", |s| s.as_str()))
                    .bind(page.after.unwrap_or(uuid::Uuid::nil())).bind(page.fetch())
                    .fetch_all(&self.pool).await.map_err(crate::backend_error)?;
                rows.iter().map(support_sql::queued).collect::<Result<_, _>>().map_err(crate::backend_error)
            }

            async fn queued_ticket(&self, id: uuid::Uuid) -> pixeld_core::store::StoreResult<Option<pixeld_core::support::QueuedTicket>> {
                let row = sqlx::query(
                        "SELECT t.id, t.user_id, t.subject, t.category, t.status, t.created_at, t.updated_at, \
                                t.closed_at, u.email, u.name \
                         FROM support_tickets t JOIN users u ON u.id = t.user_id WHERE t.id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool).await.map_err(crate::backend_error)?;
                row.as_ref().map(support_sql::queued).transpose().map_err(crate::backend_error)
            }

            async fn purge_support_tickets(&self, before: time::OffsetDateTime) -> pixeld_core::store::StoreResult<u64> {
                // Messages cascade.
                let r = sqlx::query("DELETE FROM support_tickets WHERE updated_at < $1")
                    .bind(ts(before))
                    .execute(&self.pool).await.map_err(crate::backend_error)?;
                Ok(r.rows_affected())
            }

            async fn operator_emails(&self) -> pixeld_core::store::StoreResult<Vec<String>> {
                let rows = sqlx::query("SELECT email FROM users WHERE is_admin = $1 AND disabled_at IS NULL ORDER BY id")
                    .bind(true)
                    .fetch_all(&self.pool).await.map_err(crate::backend_error)?;
                rows.iter()
                    .map(|r| r.try_get::<String, _>("email"))
                    .collect::<Result<_, _>>()
                    .map_err(crate::backend_error)
            }
        }
    };
}
