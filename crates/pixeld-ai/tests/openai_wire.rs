//! The real client against a local server speaking the Chat Completions wire format.

use pixeld_ai::testing::FakeVisionServer;
use pixeld_ai::{AiError, Describer, ImageInput, OpenAiVision, VisionConfig};
use serde_json::json;

fn client(api_base: &str, key: Option<&str>) -> OpenAiVision {
    let _ = rustls::crypto::ring::default_provider().install_default();
    OpenAiVision::new(
        VisionConfig {
            api_base: api_base.into(),
            api_key: key.map(str::to_owned),
            model: "test-vision".into(),
        },
        reqwest::Client::new(),
    )
}

const JPEG: ImageInput<'static> = ImageInput {
    bytes: b"\xff\xd8\xff\xe0fake",
    mime: "image/jpeg",
};

#[tokio::test]
async fn a_description_comes_back_and_the_request_is_what_the_api_expects() {
    let server = FakeVisionServer::start().await;
    server.describe_as("A red kite over a green hill.", &["kite", "Hill", "sky"]);
    let d = client(&server.api_base, Some("sk-local"))
        .describe(JPEG)
        .await
        .unwrap();
    assert_eq!(d.alt_text, "A red kite over a green hill.");
    assert_eq!(d.tags, ["kite", "hill", "sky"]);
    assert_eq!(d.model, "test-vision-1");

    let got = server.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].authorization.as_deref(), Some("Bearer sk-local"));
    let body = &got[0].body;
    assert_eq!(body["model"], json!("test-vision"));
    assert_eq!(body["store"], json!(false));
    assert!(body.get("user").is_none(), "no end-user identifier is sent");
    assert_eq!(body["response_format"]["type"], json!("json_object"));
    let parts = body["messages"][0]["content"].as_array().unwrap();
    assert_eq!(parts[0]["type"], json!("text"));
    assert_eq!(
        parts[1]["image_url"]["url"],
        json!("data:image/jpeg;base64,/9j/4GZha2U=")
    );
}

#[tokio::test]
async fn a_local_server_needs_no_key() {
    let server = FakeVisionServer::start().await;
    client(&server.api_base, None).describe(JPEG).await.unwrap();
    assert_eq!(server.received()[0].authorization, None);
}

#[tokio::test]
async fn provider_errors_carry_the_providers_message() {
    let server = FakeVisionServer::start().await;
    server.answer(
        401,
        json!({"error": {"message": "Incorrect API key provided: sk-bad.", "type": "invalid_request_error",
                         "code": "invalid_api_key"}}),
    );
    let e = client(&server.api_base, Some("sk-bad"))
        .describe(JPEG)
        .await
        .unwrap_err();
    assert!(
        matches!(e, AiError::Provider { status: 401, ref message } if message.starts_with("Incorrect API key")),
        "{e}"
    );
}

#[tokio::test]
async fn an_unreachable_provider_is_a_transport_error() {
    // A port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    drop(listener);
    let e = client(&base, None).describe(JPEG).await.unwrap_err();
    assert!(matches!(e, AiError::Transport(_)), "{e}");
}
