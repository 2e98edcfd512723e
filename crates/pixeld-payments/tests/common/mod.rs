//! A local stand-in for a provider's API: records what the client sent, answers canned JSON.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// One request as the fake provider received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body decoded as `application/x-www-form-urlencoded`, keys exactly as sent.
    pub fn form(&self) -> BTreeMap<String, String> {
        let fields: Vec<(String, String)> =
            form_urlencoded::parse(&self.body).into_owned().collect();
        let map: BTreeMap<String, String> = fields.iter().cloned().collect();
        assert_eq!(map.len(), fields.len(), "a form field was sent twice");
        map
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }
}

#[derive(Clone)]
struct Shared {
    status: StatusCode,
    answer: Value,
    received: Arc<Mutex<Vec<Received>>>,
}

/// A provider API on 127.0.0.1 that answers every request with one status and body.
pub struct FakeProvider {
    pub base_url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl FakeProvider {
    pub async fn answering(status: u16, answer: Value) -> Self {
        let received = Arc::new(Mutex::new(Vec::new()));
        let shared = Shared {
            status: StatusCode::from_u16(status).expect("a valid status"),
            answer,
            received: received.clone(),
        };
        let app = Router::new().fallback(record).with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let base_url = format!("http://{}", listener.local_addr().expect("local address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { base_url, received }
    }

    /// The single request the provider received.
    pub fn only_request(&self) -> Received {
        let received = self.received.lock().expect("not poisoned");
        assert_eq!(
            received.len(),
            1,
            "expected exactly one request: {received:?}"
        );
        received[0].clone()
    }

    pub fn request_count(&self) -> usize {
        self.received.lock().expect("not poisoned").len()
    }
}

async fn record(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared
        .received
        .lock()
        .expect("not poisoned")
        .push(Received {
            method,
            path: uri.path().to_owned(),
            headers,
            body: body.to_vec(),
        });
    (shared.status, axum::Json(shared.answer)).into_response()
}

/// An API root where nothing listens.
pub async fn unreachable_base_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let url = format!("http://{}", listener.local_addr().expect("local address"));
    drop(listener);
    url
}

/// The HTTP client a caller would pass in (reqwest is built without a default provider).
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// A fixed "now" for webhook tests.
pub fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(1_751_400_000).expect("a valid time")
}
