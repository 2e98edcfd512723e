//! Support in the browser: a user's requests (write, read the answers, reply, close) under
//! the account pages, and the operators' queue under `/admin/support`.

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use pixeld_core::support::{Author, Category, NewTicket, Status, Ticket, TicketMessage};
use uuid::Uuid;

use super::admin::refused;
use super::{
    Chrome, FormData, Web, framed_with, list_page, message_of, page_with, see_other, status_of,
    when,
};
use crate::AppState;
use crate::extract::Query;

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/support", get(list).post(create))
        .route("/support/{id}", get(thread))
        .route("/support/{id}/reply", post(reply))
        .route("/support/{id}/close", post(close))
        .route("/admin/support", get(queue))
        .route("/admin/support/{id}", get(operator_thread))
        .route("/admin/support/{id}/reply", post(operator_reply))
        .route("/admin/support/{id}/close", post(operator_close))
}

#[derive(serde::Deserialize)]
struct ListQuery {
    done: Option<String>,
    cursor: Option<String>,
    status: Option<String>,
}

fn notice_for(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "opened" => "Sent. The operators are told by email, and you will be when they answer.",
        "replied" => "Sent.",
        "answered" => "Answer sent; the requester is told by email.",
        "closed" => "Closed. Writing again opens it again.",
        _ => return None,
    })
}

struct Row {
    id: Uuid,
    subject: String,
    category: &'static str,
    status: &'static str,
    updated: String,
    requester: String,
}

impl Row {
    fn new(t: &Ticket, requester: String) -> Self {
        Self {
            id: t.id,
            subject: t.subject.clone(),
            category: t.category.as_str(),
            status: status_words(t.status),
            updated: when(t.updated_at),
            requester,
        }
    }
}

fn status_words(s: Status) -> &'static str {
    match s {
        Status::Open => "waiting for the team",
        Status::Answered => "answered",
        Status::Closed => "closed",
    }
}

#[derive(Template)]
#[template(path = "support.html")]
struct ListPage {
    c: Chrome,
    rows: Vec<Row>,
    next_cursor: Option<String>,
    categories: Vec<&'static str>,
    subject: String,
    category: String,
    body: String,
}

async fn list_view(
    st: &AppState,
    w: &Web,
    mut c: Chrome,
    cursor: Option<&str>,
    form: Option<&FormData>,
    status: StatusCode,
) -> Response {
    let (rows, next_cursor) = match st
        .app
        .support_requests(w.principal(), list_page(cursor))
        .await
    {
        Ok(p) => (
            p.items.iter().map(|t| Row::new(t, String::new())).collect(),
            p.next_cursor,
        ),
        Err(e) => {
            c = c.error(message_of(&e));
            (Vec::new(), None)
        }
    };
    page_with(
        status,
        &ListPage {
            c,
            rows,
            next_cursor,
            categories: Category::ALL.iter().map(|c| c.as_str()).collect(),
            subject: form
                .map(|f| f.get("subject").to_owned())
                .unwrap_or_default(),
            category: form.map_or("general", |f| f.get("category")).to_owned(),
            body: form.map(|f| f.get("body").to_owned()).unwrap_or_default(),
        },
    )
}

async fn list(State(st): State<AppState>, w: Web, Query(q): Query<ListQuery>) -> Response {
    let c = w
        .chrome("Support", "account")
        .notice_if(notice_for(q.done.as_deref()));
    list_view(&st, &w, c, q.cursor.as_deref(), None, StatusCode::OK).await
}

async fn create(State(st): State<AppState>, w: Web, f: FormData) -> Response {
    let result = match Category::parse(f.get("category")) {
        Some(category) => {
            st.app
                .open_support_request(
                    w.principal(),
                    NewTicket {
                        subject: f.get("subject").to_owned(),
                        category,
                        body: f.get("body").to_owned(),
                    },
                )
                .await
        }
        None => Err(pixeld_core::Error::invalid(
            "category",
            "must be general, billing, technical or privacy",
        )),
    };
    match result {
        Ok(t) => see_other(&format!("/support/{}?done=opened", t.ticket.id)),
        Err(e) => {
            let c = w.chrome("Support", "account").error(message_of(&e));
            list_view(&st, &w, c, None, Some(&f), status_of(&e)).await
        }
    }
}

struct MessageRow {
    mine: bool,
    from: String,
    at: String,
    body: String,
}

#[derive(Template)]
#[template(path = "support_thread.html")]
struct ThreadPage {
    c: Chrome,
    operator: bool,
    base: &'static str,
    row: Row,
    email: String,
    closed: bool,
    messages: Vec<MessageRow>,
    draft: String,
}

impl ThreadPage {
    /// One request's page, for its requester or for an operator.
    fn new(
        c: Chrome,
        operator: bool,
        ticket: &Ticket,
        requester: (&str, &str),
        messages: &[TicketMessage],
        draft: &str,
    ) -> Self {
        let (name, email) = requester;
        Self {
            c,
            operator,
            base: if operator {
                "/admin/support"
            } else {
                "/support"
            },
            closed: ticket.status == Status::Closed,
            row: Row::new(ticket, name.to_owned()),
            email: email.to_owned(),
            messages: message_rows(messages, operator, name),
            draft: draft.to_owned(),
        }
    }
}

fn message_rows(messages: &[TicketMessage], operator: bool, requester: &str) -> Vec<MessageRow> {
    messages
        .iter()
        .map(|m| {
            let by_user = m.author == Author::User;
            MessageRow {
                mine: by_user != operator,
                from: match (by_user, operator) {
                    (true, false) => "You".to_owned(),
                    (true, true) => requester.to_owned(),
                    (false, _) => "pixeld team".to_owned(),
                },
                at: when(m.created_at),
                body: m.body.clone(),
            }
        })
        .collect()
}

async fn thread_view(
    st: &AppState,
    w: &Web,
    c: Chrome,
    id: Uuid,
    draft: &str,
    status: StatusCode,
) -> Response {
    let user = &w.principal().user;
    match st.app.support_request(w.principal(), id).await {
        Ok(t) => page_with(
            status,
            &ThreadPage::new(
                c,
                false,
                &t.ticket,
                (&user.name, &user.email),
                &t.messages,
                draft,
            ),
        ),
        Err(e) => framed_with(
            status_of(&e),
            w.chrome("Support", "account").error(message_of(&e)),
            "<h1>Support</h1><p><a href=\"/support\">Your requests</a></p>",
        ),
    }
}

async fn thread(
    State(st): State<AppState>,
    w: Web,
    Path(id): Path<Uuid>,
    Query(q): Query<ListQuery>,
) -> Response {
    let c = w
        .chrome("Support", "account")
        .notice_if(notice_for(q.done.as_deref()));
    thread_view(&st, &w, c, id, "", StatusCode::OK).await
}

async fn reply(State(st): State<AppState>, w: Web, Path(id): Path<Uuid>, f: FormData) -> Response {
    match st
        .app
        .reply_to_support_request(w.principal(), id, f.get("body"))
        .await
    {
        Ok(_) => see_other(&format!("/support/{id}?done=replied")),
        Err(e) => {
            let c = w.chrome("Support", "account").error(message_of(&e));
            thread_view(&st, &w, c, id, f.get("body"), status_of(&e)).await
        }
    }
}

async fn close(State(st): State<AppState>, w: Web, Path(id): Path<Uuid>) -> Response {
    match st.app.close_support_request(w.principal(), id).await {
        Ok(_) => see_other(&format!("/support/{id}?done=closed")),
        Err(e) => {
            let c = w.chrome("Support", "account").error(message_of(&e));
            thread_view(&st, &w, c, id, "", status_of(&e)).await
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Operators

struct Filter {
    value: &'static str,
    label: &'static str,
    current: bool,
}

#[derive(Template)]
#[template(path = "admin_support.html")]
struct QueuePage {
    c: Chrome,
    filters: Vec<Filter>,
    status: String,
    rows: Vec<Row>,
    next_cursor: Option<String>,
}

async fn queue(State(st): State<AppState>, w: Web, Query(q): Query<ListQuery>) -> Response {
    if let Some(r) = refused(&w) {
        return r;
    }
    let mut c = w
        .chrome("Support", "admin")
        .notice_if(notice_for(q.done.as_deref()));
    let chosen = q.status.as_deref().unwrap_or("open");
    let status = match chosen {
        "all" => None,
        s => Some(Status::parse(s).unwrap_or(Status::Open)),
    };
    let chosen = status.map_or("all", Status::as_str);
    let (rows, next_cursor, code) = match st
        .app
        .support_queue(w.principal(), status, list_page(q.cursor.as_deref()))
        .await
    {
        Ok(p) => (
            p.items
                .iter()
                .map(|q| Row::new(&q.ticket, format!("{} <{}>", q.name, q.email)))
                .collect(),
            p.next_cursor,
            StatusCode::OK,
        ),
        Err(e) => {
            c = c.error(message_of(&e));
            (Vec::new(), None, status_of(&e))
        }
    };
    let filters = [
        ("open", "Waiting for the team"),
        ("answered", "Answered"),
        ("closed", "Closed"),
        ("all", "All"),
    ]
    .into_iter()
    .map(|(value, label)| Filter {
        value,
        label,
        current: value == chosen,
    })
    .collect();
    page_with(
        code,
        &QueuePage {
            c,
            filters,
            status: chosen.to_owned(),
            rows,
            next_cursor,
        },
    )
}

async fn operator_view(
    st: &AppState,
    w: &Web,
    c: Chrome,
    id: Uuid,
    draft: &str,
    status: StatusCode,
) -> Response {
    match st.app.operator_support_request(w.principal(), id).await {
        Ok((q, messages)) => page_with(
            status,
            &ThreadPage::new(c, true, &q.ticket, (&q.name, &q.email), &messages, draft),
        ),
        Err(e) => framed_with(
            status_of(&e),
            w.chrome("Support", "admin").error(message_of(&e)),
            "<h1>Operator</h1><p><a href=\"/admin/support\">Support requests</a></p>",
        ),
    }
}

async fn operator_thread(
    State(st): State<AppState>,
    w: Web,
    Path(id): Path<Uuid>,
    Query(q): Query<ListQuery>,
) -> Response {
    if let Some(r) = refused(&w) {
        return r;
    }
    let c = w
        .chrome("Support", "admin")
        .notice_if(notice_for(q.done.as_deref()));
    operator_view(&st, &w, c, id, "", StatusCode::OK).await
}

async fn operator_reply(
    State(st): State<AppState>,
    w: Web,
    Path(id): Path<Uuid>,
    f: FormData,
) -> Response {
    if let Some(r) = refused(&w) {
        return r;
    }
    match st
        .app
        .operator_reply(w.principal(), id, f.get("body"))
        .await
    {
        Ok(_) => see_other(&format!("/admin/support/{id}?done=answered")),
        Err(e) => {
            let c = w.chrome("Support", "admin").error(message_of(&e));
            operator_view(&st, &w, c, id, f.get("body"), status_of(&e)).await
        }
    }
}

async fn operator_close(State(st): State<AppState>, w: Web, Path(id): Path<Uuid>) -> Response {
    if let Some(r) = refused(&w) {
        return r;
    }
    match st.app.operator_close(w.principal(), id).await {
        Ok(_) => see_other(&format!("/admin/support/{id}?done=closed")),
        Err(e) => {
            let c = w.chrome("Support", "admin").error(message_of(&e));
            operator_view(&st, &w, c, id, "", status_of(&e)).await
        }
    }
}
