//! The operator's command line, run as a real process on SQLite and on PostgreSQL.

use std::path::PathBuf;
use std::process::{Command, Output};

use pixeld_store::testing::{Backend, TestDb};

struct Env {
    data: PathBuf,
    db: TestDb,
}

impl Env {
    async fn new(backend: Backend) -> Option<Env> {
        let db = TestDb::create(backend).await?;
        let data = std::env::temp_dir().join(format!("pixeld-cli-{}", now_nanos()));
        Some(Env { data, db })
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_pixeld"))
            .args(args)
            .env("PIXELD_DATA", &self.data)
            .env("PIXELD_DATABASE_URL", &self.db.url)
            .env_remove("PIXELD_CONFIG")
            .output()
            .expect("pixeld runs")
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

fn now_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test]
async fn an_operator_creates_promotes_lists_and_disables_users() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(env) = Env::new(backend).await else {
            continue;
        };
        let o = env.run(&["migrate"]);
        assert!(o.status.success(), "{}", text(&o));
        assert!(text(&o).contains("migrations applied"));

        let o = env.run(&[
            "admin",
            "create-user",
            "--email",
            "ops@example.com",
            "--password",
            "correct horse battery staple",
        ]);
        assert!(o.status.success(), "{}", text(&o));
        let o = env.run(&[
            "admin",
            "create-user",
            "--email",
            "ops@example.com",
            "--password",
            "correct horse battery staple",
        ]);
        assert_eq!(
            o.status.code(),
            Some(2),
            "a duplicate is refused: {}",
            text(&o)
        );
        assert!(text(&o).contains("already exists"));
        let o = env.run(&[
            "admin",
            "create-user",
            "--email",
            "weak@example.com",
            "--password",
            "password",
        ]);
        assert_eq!(o.status.code(), Some(2));
        assert!(text(&o).contains("password"), "{}", text(&o));

        assert!(
            env.run(&["admin", "promote", "ops@example.com"])
                .status
                .success()
        );
        let o = env.run(&["admin", "list-users", "--json"]);
        let users: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(users.len(), 1);
        assert_eq!(users[0]["email"], "ops@example.com");
        assert_eq!(users[0]["is_admin"], true);
        assert_eq!(users[0]["email_verified"], true);

        let o = env.run(&["admin", "disable-user", "ops@example.com"]);
        assert!(o.status.success(), "{}", text(&o));
        let o = env.run(&["admin", "list-users", "--json"]);
        assert!(String::from_utf8_lossy(&o.stdout).contains("\"disabled\":true"));
        let o = env.run(&["admin", "promote", "nobody@example.com"]);
        assert!(!o.status.success());
        assert!(text(&o).contains("no user with the email address nobody@example.com"));
    }
}

#[tokio::test]
async fn config_check_explains_every_problem() {
    let dir = std::env::temp_dir().join(format!("pixeld-cfg-{}", now_nanos()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("pixeld.toml");
    std::fs::write(
        &file,
        "public_url = \"ftp://nope\"\n[session]\nidle_minutes = 0\n",
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_pixeld"))
        .args(["config", "check", "--config"])
        .arg(&file)
        .env_remove("PIXELD_DATA")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let t = text(&o);
    assert!(
        t.contains("public_url") && t.contains("session.idle_minutes"),
        "{t}"
    );

    std::fs::write(&file, "listen = \"127.0.0.1:9999\"\ntypo_key = 1\n").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_pixeld"))
        .args(["config", "check", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("typo_key"),
        "unknown keys are named: {}",
        text(&o)
    );

    std::fs::write(&file, "listen = \"127.0.0.1:9999\"\n").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_pixeld"))
        .args(["config", "check", "--config"])
        .arg(&file)
        .env("PIXELD_DATA", &dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("127.0.0.1:9999"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn serve_starts_with_no_configuration_and_stops_cleanly_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("pixeld-serve-{}", now_nanos()));
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_pixeld"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("PIXELD_DATA", &dir)
        .env_remove("PIXELD_DATABASE_URL")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Ready means answering /healthz, not merely accepting connections.
    let mut up = false;
    for _ in 0..200 {
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            let _ = stream.write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n");
            let mut answer = String::new();
            let _ = stream.read_to_string(&mut answer);
            if answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200") {
                up = true;
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(up, "the server listens");
    assert!(dir.join("pixeld.db").exists(), "SQLite under PIXELD_DATA");
    assert!(dir.join("outbox").is_dir(), "outbox under PIXELD_DATA");
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "graceful shutdown exits 0: {exit:?}");
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    assert!(
        out.contains(&format!("http://127.0.0.1:{port}")),
        "prints the URL: {out}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn write_jpeg(path: &std::path::Path, w: u32, h: u32) {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x * y) % 256) as u8])
    });
    img.save_with_format(path, image::ImageFormat::Jpeg)
        .unwrap();
}

#[test]
fn optimize_converts_a_folder_names_failures_and_carries_on() {
    let dir = std::env::temp_dir().join(format!("pixeld-opt-{}", now_nanos()));
    let input = dir.join("in");
    std::fs::create_dir_all(input.join("nested")).unwrap();
    write_jpeg(&input.join("a.jpg"), 1200, 800);
    write_jpeg(&input.join("nested/b.jpg"), 600, 400);
    std::fs::write(
        input.join("broken.jpg"),
        b"\xff\xd8\xff\xe0 not really a jpeg",
    )
    .unwrap();
    std::fs::write(input.join("notes.txt"), b"ignored: not an image extension").unwrap();
    let out = dir.join("out");
    let o = Command::new(env!("CARGO_BIN_EXE_pixeld"))
        .args(["optimize"])
        .arg(&input)
        .arg("-o")
        .arg(&out)
        .args(["--width", "300", "--format", "webp", "-q", "70"])
        .output()
        .unwrap();
    let t = text(&o);
    assert_eq!(
        o.status.code(),
        Some(1),
        "one failure makes the run fail: {t}"
    );
    assert!(t.contains("broken.jpg"), "the failing file is named: {t}");
    assert!(t.contains("total (2 optimized, 1 failed)"), "{t}");
    for (file, w, h) in [("a.webp", 300, 200), ("nested/b.webp", 300, 200)] {
        let img = image::ImageReader::open(out.join(file))
            .unwrap()
            .with_guessed_format()
            .unwrap()
            .into_dimensions()
            .unwrap();
        assert_eq!(img, (w, h), "{file}");
    }
    assert!(!out.join("notes.webp").exists());

    let o = Command::new(env!("CARGO_BIN_EXE_pixeld"))
        .args(["optimize"])
        .arg(input.join("a.jpg"))
        .arg("-o")
        .arg(&out)
        .args(["--fit", "sideways"])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(2),
        "bad options are a usage error: {}",
        text(&o)
    );
    assert!(text(&o).contains("fit"), "{}", text(&o));

    let o = Command::new(env!("CARGO_BIN_EXE_pixeld"))
        .args(["analyze"])
        .arg(input.join("a.jpg"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (
            v["format"].as_str(),
            v["width"].as_u64(),
            v["height"].as_u64()
        ),
        (Some("jpeg"), Some(1200), Some(800))
    );
    assert!(v["blurhash"].as_str().is_some_and(|s| !s.is_empty()));
    let o = Command::new(env!("CARGO_BIN_EXE_pixeld"))
        .args(["analyze"])
        .arg(input.join("broken.jpg"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(text(&o).contains("broken.jpg"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// One allocator for the whole process: the C libraries' `malloc` and `free` (libc's own, and
/// a shared codec's such as libdav1d) resolve to pixeld's mimalloc, like the Rust code's, so
/// memory that changes hands between them is freed by the allocator that made it. glibc's
/// loader reports each binding with `LD_DEBUG=bindings`.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn c_libraries_allocate_with_the_binarys_allocator() {
    let bin = env!("CARGO_BIN_EXE_pixeld");
    let o = Command::new(bin)
        .arg("--version")
        .env("LD_DEBUG", "bindings")
        .env("LD_BIND_NOW", "1")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let log = String::from_utf8_lossy(&o.stderr);
    let bindings: Vec<&str> = log
        .lines()
        .filter(|l| {
            ["malloc", "free", "calloc", "realloc"]
                .iter()
                .any(|f| l.contains(&format!("symbol `{f}'")))
        })
        .collect();
    let from_libc = bindings.iter().filter(|l| l.contains("/libc.so")).count();
    assert!(
        from_libc >= 2,
        "libc's own malloc and free are bound: {bindings:#?}"
    );
    for line in &bindings {
        let target = line.split(" to ").nth(1).unwrap_or_default();
        assert!(
            target.starts_with(bin),
            "every allocation function resolves to the pixeld binary: {line}"
        );
    }
}

#[tokio::test]
async fn an_operator_grants_and_adjusts_credits_with_a_reason_on_record() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(env) = Env::new(backend).await else {
            continue;
        };
        for (email, admin) in [("ops@example.com", true), ("customer@example.com", false)] {
            let mut args = vec!["admin", "create-user", "--email", email];
            if admin {
                args.push("--admin");
            }
            let o = Command::new(env!("CARGO_BIN_EXE_pixeld"))
                .args(&args)
                .env("PIXELD_DATA", &env.data)
                .env("PIXELD_DATABASE_URL", &env.db.url)
                .env("PIXELD_ADMIN_PASSWORD", "correct horse battery staple")
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", text(&o));
        }
        let grant = [
            "admin",
            "credits",
            "grant",
            "--user",
            "customer@example.com",
            "--amount",
            "500",
            "--reason",
            "launch promotion",
            "--source",
            "promo",
            "--key",
            "launch-2026",
            "--by",
            "ops@example.com",
        ];
        let o = env.run(&grant);
        assert!(o.status.success(), "{}", text(&o));
        assert!(text(&o).contains("grant +500 credits"), "{}", text(&o));
        assert!(text(&o).contains("balance now 500"), "{}", text(&o));
        // The same key again changes nothing.
        let o = env.run(&grant);
        assert!(o.status.success());
        assert!(text(&o).contains("already done"), "{}", text(&o));

        let o = env.run(&[
            "admin",
            "credits",
            "adjust",
            "--user",
            "customer@example.com",
            "--amount",
            "-120",
            "--reason",
            "refunded order 42",
            "--by",
            "ops@example.com",
        ]);
        assert!(o.status.success(), "{}", text(&o));
        assert!(text(&o).contains("adjust -120 credits"), "{}", text(&o));

        // Below zero, without a reason, or by a non-operator: refused with a clear message.
        let o = env.run(&[
            "admin",
            "credits",
            "adjust",
            "--user",
            "customer@example.com",
            "--amount",
            "-1000",
            "--reason",
            "typo",
            "--by",
            "ops@example.com",
        ]);
        assert_eq!(o.status.code(), Some(2));
        assert!(
            text(&o).contains("cannot take it below zero"),
            "{}",
            text(&o)
        );
        let o = env.run(&[
            "admin",
            "credits",
            "grant",
            "--user",
            "customer@example.com",
            "--amount",
            "5",
            "--reason",
            " ",
            "--by",
            "ops@example.com",
        ]);
        assert_eq!(o.status.code(), Some(2));
        assert!(text(&o).contains("reason is required"), "{}", text(&o));
        let o = env.run(&[
            "admin",
            "credits",
            "grant",
            "--user",
            "customer@example.com",
            "--amount",
            "5",
            "--reason",
            "self-service",
            "--by",
            "customer@example.com",
        ]);
        assert!(!o.status.success());
        assert!(
            text(&o).contains("not an instance administrator"),
            "{}",
            text(&o)
        );

        let o = env.run(&[
            "admin",
            "credits",
            "balance",
            "--user",
            "customer@example.com",
        ]);
        assert!(o.status.success(), "{}", text(&o));
        assert!(text(&o).contains("380 credits available"), "{}", text(&o));
        assert!(text(&o).contains("ledger consistent"), "{}", text(&o));
    }
}

/// A server process with its own data folder and database, started and killed by the test.
struct Server {
    child: std::process::Child,
    port: u16,
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn http(port: u16, request: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

impl Server {
    async fn start(env: &Env, config: &std::path::Path) -> Server {
        let port = free_port();
        // Killed and waited for by `Drop` (or below, when start-up fails).
        #[allow(clippy::zombie_processes)]
        let child = Command::new(env!("CARGO_BIN_EXE_pixeld"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--config")
            .arg(config)
            .env("PIXELD_DATA", &env.data)
            .env("PIXELD_DATABASE_URL", &env.db.url)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..300 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                && http(port, "GET /healthz HTTP/1.0\r\n\r\n").0 == 200
            {
                return Server { child, port };
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let mut child = child;
        let _ = child.kill();
        let _ = child.wait();
        panic!("the server did not start");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_server_killed_mid_request_charges_nothing_and_its_hold_is_released_after_restart() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(env) = Env::new(backend).await else {
            continue;
        };
        std::fs::create_dir_all(&env.data).unwrap();
        // An image server on this machine that accepts the fetch and never answers, so the
        // upload is mid-request (credits held) when the server is killed.
        let hang = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let hang_port = hang.local_addr().unwrap().port();
        let (arrived, arrivals) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for s in hang.incoming().flatten() {
                let _ = arrived.send(());
                held.push(s);
            }
        });
        let config = env.data.join("pixeld.toml");
        std::fs::write(
            &config,
            "request_timeout_secs = 1\n\
             [fetch]\nallow_networks = [\"127.0.0.1/32\"]\ntimeout_secs = 60\n\
             [credits]\nreservation_timeout_secs = 2\n\
             [retention]\nsweep_interval_secs = 1\n",
        )
        .unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_pixeld"))
            .args(["admin", "create-user", "--email", "crash@example.com"])
            .env("PIXELD_DATA", &env.data)
            .env("PIXELD_DATABASE_URL", &env.db.url)
            .env("PIXELD_ADMIN_PASSWORD", "correct horse battery staple")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));

        let mut server = Server::start(&env, &config).await;
        let sign_in = format!(
            "POST /v1/auth/signin HTTP/1.0\r\nContent-Type: application/json\r\nOrigin: http://127.0.0.1:{p}\r\n\
             Content-Length: {n}\r\n\r\n{b}",
            p = server.port,
            b = r#"{"email":"crash@example.com","password":"correct horse battery staple"}"#,
            n = r#"{"email":"crash@example.com","password":"correct horse battery staple"}"#.len(),
        );
        // Sign in (a session cookie), then create an API token as a browser would.
        let token = {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
            s.write_all(sign_in.as_bytes()).unwrap();
            let mut raw = String::new();
            s.read_to_string(&mut raw).unwrap();
            assert!(
                raw.starts_with("HTTP/1.0 200") || raw.starts_with("HTTP/1.1 200"),
                "{raw}"
            );
            let cookie = raw
                .lines()
                .find_map(|l| {
                    l.strip_prefix("set-cookie: ")
                        .or(l.strip_prefix("Set-Cookie: "))
                })
                .and_then(|c| c.split(';').next())
                .expect("a session cookie")
                .to_string();
            let body = r#"{"name":"crash","scopes":["images:write","images:read","billing:read"]}"#;
            let (status, answer) = http(
                server.port,
                &format!(
                    "POST /v1/tokens HTTP/1.0\r\nContent-Type: application/json\r\nOrigin: http://127.0.0.1:{}\r\n\
                     Cookie: {cookie}\r\nContent-Length: {}\r\n\r\n{body}",
                    server.port,
                    body.len()
                ),
            );
            assert_eq!(status, 201, "{answer}");
            let v: serde_json::Value = serde_json::from_str(&answer).unwrap();
            v["token"].as_str().unwrap().to_string()
        };
        let balance = |port: u16| {
            let (status, answer) = http(
                port,
                &format!("GET /v1/credits HTTP/1.0\r\nAuthorization: Bearer {token}\r\n\r\n"),
            );
            assert_eq!(status, 200, "{answer}");
            let v: serde_json::Value = serde_json::from_str(&answer).unwrap();
            (
                v["available"].as_i64().unwrap(),
                v["held"].as_i64().unwrap(),
            )
        };
        assert_eq!(balance(server.port), (100, 0));

        // An upload by URL: the credit is held, then the fetch hangs.
        let port = server.port;
        let json = format!(r#"{{"url":"http://127.0.0.1:{hang_port}/photo.jpg"}}"#);
        let upload = format!(
            "POST /v1/images HTTP/1.0\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{json}",
            json.len()
        );
        std::thread::spawn(move || http(port, &upload));
        arrivals
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("the server fetches the URL");
        assert_eq!(
            balance(server.port),
            (99, 1),
            "the credit is held mid-request"
        );
        server.child.kill().unwrap();
        server.child.wait().unwrap();
        drop(server);

        // Restarted: the sweeper finds the abandoned hold and gives the credit back, once.
        let server = Server::start(&env, &config).await;
        let mut seen = (0, 0);
        for _ in 0..100 {
            seen = balance(server.port);
            if seen == (100, 0) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        assert_eq!(seen, (100, 0), "the abandoned hold was released");
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        assert_eq!(balance(server.port), (100, 0), "and released only once");
        let o = env.run(&["admin", "credits", "balance", "--user", "crash@example.com"]);
        assert!(text(&o).contains("ledger consistent"), "{}", text(&o));
    }
}

#[test]
fn retention_show_prints_the_windows_in_force_and_refuses_a_broken_privacy_file() {
    let dir = std::env::temp_dir().join(format!("pixeld-ret-{}", now_nanos()));
    std::fs::create_dir_all(&dir).unwrap();
    let privacy = dir.join("privacy.toml");
    std::fs::write(
        &privacy,
        "policy_version = \"acme-1\"\n[[class]]\nid = \"request_logs\"\nname = \"Logs\"\n\
         what = \"w\"\nwhy = \"y\"\nkeep = \"30d\"\ntruncate_ip_after = \"1d\"\nthen = \"t\"\n",
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_pixeld"))
        .args(["retention", "show"])
        .env("PIXELD_RETENTION__PRIVACY_FILE", &privacy)
        .env("PIXELD_DATA", &dir)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("policy version acme-1"), "{t}");
    assert!(t.contains("uploads              24 hours"), "{t}");
    assert!(
        t.contains("request_logs         30 days (IP cut to its network after 1 day)"),
        "{t}"
    );
    std::fs::write(
        &privacy,
        "policy_version = \"x\"\n[[class]]\nid = \"uploads\"\nname = \"U\"\nwhat = \"w\"\n\
         why = \"y\"\nkeep = \"3d\"\nthen = \"t\"\n",
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_pixeld"))
        .args(["retention", "show"])
        .env("PIXELD_RETENTION__PRIVACY_FILE", &privacy)
        .env("PIXELD_DATA", &dir)
        .output()
        .unwrap();
    assert_ne!(o.status.code(), Some(0));
    assert!(text(&o).contains("at most 24h"), "{}", text(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_prints_alt_text_names_failures_and_needs_a_provider() {
    let vision = pixeld_ai::testing::FakeVisionServer::start().await;
    vision.describe_as("A colourful noise pattern.", &["pattern", "noise"]);
    let dir = std::env::temp_dir().join(format!("pixeld-describe-{}", now_nanos()));
    std::fs::create_dir_all(&dir).unwrap();
    write_jpeg(&dir.join("a.jpg"), 1600, 1200);
    std::fs::write(dir.join("broken.jpg"), b"\xff\xd8\xff\xe0 nope").unwrap();
    let run = |with_provider: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_pixeld"));
        c.arg("describe")
            .arg(dir.join("a.jpg"))
            .arg(dir.join("broken.jpg"))
            .env("PIXELD_DATA", &dir)
            .env_remove("PIXELD_CONFIG");
        if with_provider {
            c.env("PIXELD_AI__VISION__API_BASE", &vision.api_base)
                .env("PIXELD_AI__VISION__MODEL", "test-vision");
        }
        tokio::task::spawn_blocking(move || c.output())
    };
    let o = run(true).await.unwrap().unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "one failure fails the run: {t}");
    let line: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(line["alt_text"], "A colourful noise pattern.");
    assert_eq!(line["tags"], serde_json::json!(["pattern", "noise"]));
    assert!(t.contains("broken.jpg"), "the failing file is named: {t}");
    // One request: the broken file never reached the provider; the copy is small.
    let sent = vision.received();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].body["store"], serde_json::json!(false));
    assert_eq!(sent[0].authorization, None, "no key configured, none sent");

    let o = run(false).await.unwrap().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("[ai.vision]"), "{}", text(&o));
    let _ = std::fs::remove_dir_all(&dir);
}
