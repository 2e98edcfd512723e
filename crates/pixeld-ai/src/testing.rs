//! A local server that speaks the Chat Completions wire format, so tests run the real client
//! ([`crate::OpenAiVision`]) over real HTTP. Enabled by the `testing` feature.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// One request the server received.
#[derive(Debug, Clone)]
pub struct Received {
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    /// The JSON body.
    pub body: Value,
}

#[derive(Default)]
struct Inner {
    received: Vec<Received>,
    answer: Option<(u16, Value)>,
}

/// A running fake provider; it stops when the test's runtime does.
#[derive(Clone)]
pub struct FakeVisionServer {
    /// Its base URL, to use as `api_base` (ends in `/v1`).
    pub api_base: String,
    inner: Arc<Mutex<Inner>>,
}

impl FakeVisionServer {
    /// Starts on a free loopback port. Until told otherwise it describes every picture as
    /// "A test picture." with tags `test`, `picture`.
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .route("/v1/chat/completions", post(completions))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            api_base: format!("http://{addr}/v1"),
            inner,
        }
    }

    /// Answers the next requests with this alt text and these tags.
    pub fn describe_as(&self, alt_text: &str, tags: &[&str]) {
        let content = json!({"alt_text": alt_text, "tags": tags}).to_string();
        self.answer(200, completion(&content));
    }

    /// Answers the next requests with `status` and `body` as they are.
    pub fn answer(&self, status: u16, body: Value) {
        self.lock().answer = Some((status, body));
    }

    /// Every request received so far.
    pub fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A Chat Completions answer whose message is `content`.
pub fn completion(content: &str) -> Value {
    json!({
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "test-vision-1",
        "choices": [{
            "index": 0,
            "finish_reason": "stop",
            "message": {"role": "assistant", "content": content, "refusal": null},
        }],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
    })
}

async fn completions(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(
                json!({"error": {"message": "We could not parse the JSON body of your request.",
                                        "type": "invalid_request_error"}}),
            ),
        )
            .into_response();
    };
    let mut inner = inner.lock().unwrap_or_else(|e| e.into_inner());
    inner.received.push(Received {
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body,
    });
    let (status, answer) = inner.answer.clone().unwrap_or_else(|| {
        (
            200,
            completion(r#"{"alt_text": "A test picture.", "tags": ["test", "picture"]}"#),
        )
    });
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        axum::Json(answer),
    )
        .into_response()
}
