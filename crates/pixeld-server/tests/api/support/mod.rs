//! A real pixeld server on an ephemeral port, on SQLite or PostgreSQL, with a manual clock and
//! a file outbox, plus a browser-like client.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use pixeld_core::clock::ManualClock;
use pixeld_server::config::Config;
use pixeld_store::testing::{Backend, TestDb};
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Value, json};

pub const PASSWORD: &str = "correct horse battery staple";

pub struct TestApp {
    pub base: String,
    /// The application behind the server, for running the sweeper as the scheduler would.
    pub app: pixeld_core::Pixeld,
    pub clock: Arc<ManualClock>,
    pub outbox: PathBuf,
    pub backend: Backend,
    _db: TestDb,
    _dir: TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
}

pub struct TempDir(pub PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl TestApp {
    /// Starts a server; `None` when PostgreSQL is unavailable outside CI.
    pub async fn spawn(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Option<TestApp> {
        let db = TestDb::create(backend).await?;
        let dir = TempDir(
            std::env::temp_dir().join(format!("pixeld-it-{}", uuid::Uuid::now_v7().simple())),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut config = Config {
            data: dir.0.clone(),
            listen: addr,
            database_url: Some(db.url.clone()),
            // Stories sign in often from one address; the rate-limit story sets its own limits.
            rate_limit: pixeld_server::config::RateLimitConfig {
                per_ip_per_minute: 100_000,
                per_credential_per_minute: 100_000,
                sign_in_per_minute: 100_000,
                demo_per_minute: 100_000,
            },
            ..Config::default()
        };
        tweak(&mut config);
        let outbox = config.outbox_dir();
        let clock = Arc::new(ManualClock::default());
        let st = pixeld_server::state(config, clock.clone())
            .await
            .expect("server state");
        let core_app = st.app.clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            pixeld_server::serve_on(listener, st, async move {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Some(TestApp {
            base: format!("http://{addr}"),
            app: core_app,
            clock,
            outbox,
            backend,
            _db: db,
            _dir: dir,
            shutdown: Some(tx),
            handle: Some(handle),
        })
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            let _ = h.await;
        }
    }

    /// Every value in the database as text (see `TestDb::all_text`).
    pub async fn database_text(&self) -> String {
        self._db.all_text().await
    }

    /// The server's data folder (local objects, the outbox).
    pub fn data_dir(&self) -> std::path::PathBuf {
        self._dir.0.clone()
    }

    /// Every object in the object store, as text.
    pub fn objects_text(&self) -> String {
        fn walk(dir: &std::path::Path, out: &mut String) {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else if let Ok(bytes) = std::fs::read(&p) {
                    out.push_str(&p.display().to_string());
                    out.push('\n');
                    out.push_str(&String::from_utf8_lossy(&bytes));
                    out.push('\n');
                }
            }
        }
        let mut out = String::new();
        walk(&self._dir.0, &mut out);
        out
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A browser: keeps cookies and sends this site's Origin, as a page of the site would.
    pub fn browser(&self) -> reqwest::Client {
        let mut h = HeaderMap::new();
        h.insert("origin", HeaderValue::from_str(&self.base).unwrap());
        reqwest::Client::builder()
            .cookie_store(true)
            .default_headers(h)
            .build()
            .unwrap()
    }

    /// A client with no cookies and no Origin (curl, a script).
    pub fn plain(&self) -> reqwest::Client {
        reqwest::Client::new()
    }

    /// All mail sent to `to`, oldest first, as raw text.
    pub fn mail_to(&self, to: &str) -> Vec<String> {
        let mut found: Vec<(std::time::SystemTime, String)> = std::fs::read_dir(&self.outbox)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter_map(|e| {
                        let text = std::fs::read_to_string(e.path()).ok()?;
                        let modified = e.metadata().ok()?.modified().ok()?;
                        text.lines()
                            .any(|l| l.eq_ignore_ascii_case(&format!("To: {to}")))
                            .then_some((modified, text))
                    })
                    .collect()
            })
            .unwrap_or_default();
        found.sort_by_key(|(t, _)| *t);
        found.into_iter().map(|(_, t)| t).collect()
    }

    /// The token of the newest link to `path` sent to `to`.
    pub fn link_token(&self, to: &str, path: &str) -> String {
        let needle = format!("{path}?token=");
        self.mail_to(to)
            .iter()
            .rev()
            .find_map(|m| {
                let i = m.find(&needle)? + needle.len();
                Some(
                    m[i..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric())
                        .collect::<String>(),
                )
            })
            .unwrap_or_else(|| panic!("no mail to {to} with a link to {path}"))
    }

    pub async fn sign_up(&self, email: &str) -> reqwest::Response {
        self.plain()
            .post(self.url("/v1/auth/signup"))
            .json(&json!({"email": email, "password": PASSWORD, "age_confirmed": true}))
            .send()
            .await
            .unwrap()
    }

    /// Signs up and verifies `email`; returns a signed-in browser.
    pub async fn user(&self, email: &str) -> reqwest::Client {
        assert_eq!(self.sign_up(email).await.status(), 201);
        let token = self.link_token(email, "/verify-email");
        let r = self
            .plain()
            .post(self.url("/v1/auth/verify-email"))
            .json(&json!({"token": token}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let b = self.browser();
        let r = b
            .post(self.url("/v1/auth/signin"))
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        b
    }

    /// Signs up and verifies `email`, makes it an instance operator; returns a signed-in browser.
    pub async fn operator(&self, email: &str) -> reqwest::Client {
        let b = self.user(email).await;
        let u = self.app.store.user_by_email(email).await.unwrap().unwrap();
        self.app.store.set_admin(u.id, true).await.unwrap();
        b
    }

    /// Creates an API token with `scopes` from a signed-in browser; returns the secret.
    pub async fn token(&self, browser: &reqwest::Client, scopes: &[&str]) -> String {
        let r = browser
            .post(self.url("/v1/tokens"))
            .json(&json!({"name": "test", "scopes": scopes}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        r.json::<Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

/// Runs a story on SQLite and on PostgreSQL, each with a fresh server and database.
pub async fn both<F, Fut>(story: F)
where
    F: Fn(TestApp) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    both_with(|_| {}, story).await
}

/// Like [`both`], with a configuration tweak.
pub async fn both_with<C, F, Fut>(tweak: C, story: F)
where
    C: Fn(&mut Config),
    F: Fn(TestApp) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for backend in [Backend::Sqlite, Backend::Postgres] {
        if let Some(app) = TestApp::spawn(backend, &tweak).await {
            story(app).await;
        }
    }
}

/// Reads a JSON body.
pub async fn body(r: reqwest::Response) -> Value {
    r.json().await.unwrap()
}

/// Asserts a problem+json answer of `kind` with `status`; returns the body.
pub async fn problem(r: reqwest::Response, status: u16, kind: &str) -> Value {
    assert_eq!(r.status().as_u16(), status, "expected {status} {kind}");
    let ct = r
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(ct, "application/problem+json");
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["type"], format!("/problems/{kind}"), "{b}");
    assert_eq!(b["status"], status);
    assert!(
        b["request_id"].as_str().is_some_and(|s| !s.is_empty()),
        "problem without request_id: {b}"
    );
    b
}

/// A moto S3 server on a free loopback port, stopped on drop.
pub struct Moto {
    child: std::process::Child,
    /// `http://127.0.0.1:{port}`.
    pub endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts moto, or `None` (a skip) when it is not installed outside CI.
pub async fn moto() -> Option<Moto> {
    // This test's own HTTP client needs the TLS provider the server installs at start-up.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let bin = std::env::var("PIXELD_TEST_MOTO")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../.venv-tools/bin/moto_server")
        });
    if !bin.exists() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "moto_server is required under CI=true (scripts/setup test installs it)"
        );
        eprintln!(
            "skipping the S3 story: {} not found (run scripts/setup test)",
            bin.display()
        );
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new(bin)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let endpoint = format!("http://127.0.0.1:{port}");
    let moto = Moto { child, endpoint };
    for _ in 0..100 {
        if reqwest::get(format!("{}/", moto.endpoint)).await.is_ok() {
            return Some(moto);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("moto did not start");
}

/// Every key in the bucket.
pub async fn bucket_keys(endpoint: &str, bucket: &str) -> Vec<String> {
    let xml = reqwest::get(format!("{endpoint}/{bucket}?list-type=2"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    xml.split("<Key>")
        .skip(1)
        .map(|s| s.split("</Key>").next().unwrap().to_string())
        .collect()
}
