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
