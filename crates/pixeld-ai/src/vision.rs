//! Image descriptions (alt text and tags) from a vision model behind an OpenAI-compatible
//! Chat Completions endpoint (`POST {api_base}/chat/completions`).

use std::fmt;

use async_trait::async_trait;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::AiError;

/// Longest alt text kept, in characters (screen readers read it whole; ~2 sentences).
pub const MAX_ALT_TEXT_CHARS: usize = 300;
/// Most tags kept.
pub const MAX_TAGS: usize = 12;
/// Longest tag kept, in characters.
pub const MAX_TAG_CHARS: usize = 40;
/// Longest slice of a non-JSON error body quoted back in [`AiError::Provider`].
const QUOTED_BODY_CHARS: usize = 200;

/// The instruction every request carries. It asks for facts about the picture only: no
/// guesses about who a person is.
pub const INSTRUCTION: &str = "Describe this image for someone who cannot see it. Answer with \
a JSON object with two members: \"alt_text\", one or two plain sentences (at most 250 \
characters) saying what the image shows, without starting with \"Image of\" and without \
naming or guessing the identity of any person; and \"tags\", an array of up to 10 short \
lowercase keywords (objects, setting, colours, style). Answer with the JSON object only.";

/// Where the vision model is and how to call it.
#[derive(Clone)]
pub struct VisionConfig {
    /// Base URL up to and including the version, e.g. `https://api.openai.com/v1` or
    /// `http://127.0.0.1:11434/v1` (Ollama).
    pub api_base: String,
    /// Bearer key; `None` for local servers that take none.
    pub api_key: Option<String>,
    /// Model name, e.g. `gpt-4o-mini` or `llava:13b`.
    pub model: String,
}

// The key stays out of logs.
impl fmt::Debug for VisionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VisionConfig")
            .field("api_base", &self.api_base)
            .field("api_key", &self.api_key.as_ref().map(|_| "…"))
            .field("model", &self.model)
            .finish()
    }
}

/// A picture to describe, already made small and stripped of metadata by the caller.
#[derive(Debug, Clone, Copy)]
pub struct ImageInput<'a> {
    /// Encoded bytes.
    pub bytes: &'a [u8],
    /// Their media type (`image/jpeg`, `image/png`, `image/webp`).
    pub mime: &'a str,
}

/// What a model said about a picture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Description {
    /// One or two sentences for the `alt` attribute (at most [`MAX_ALT_TEXT_CHARS`]).
    pub alt_text: String,
    /// Lowercase keywords, without duplicates (at most [`MAX_TAGS`]).
    pub tags: Vec<String>,
    /// The model that wrote it, as the provider named it.
    pub model: String,
}

/// Something that describes pictures.
#[async_trait]
pub trait Describer: Send + Sync {
    /// Who receives the pictures, for the privacy page (e.g. `api.openai.com`).
    fn recipient(&self) -> String;
    /// The model asked.
    fn model(&self) -> &str;
    /// Describes one picture.
    async fn describe(&self, image: ImageInput<'_>) -> Result<Description, AiError>;
}

/// A vision model behind an OpenAI-compatible Chat Completions endpoint.
#[derive(Debug, Clone)]
pub struct OpenAiVision {
    config: VisionConfig,
    http: reqwest::Client,
}

impl OpenAiVision {
    /// A client over the caller's HTTP client (its timeouts apply).
    pub fn new(config: VisionConfig, http: reqwest::Client) -> Self {
        Self { config, http }
    }

    /// The JSON body sent for `image` (public so that its privacy properties can be tested).
    pub fn request_body(&self, image: ImageInput<'_>) -> Value {
        let data = base64::engine::general_purpose::STANDARD.encode(image.bytes);
        json!({
            "model": self.config.model,
            // OpenAI: do not keep this request or its answer (for distillation or evals).
            "store": false,
            "temperature": 0,
            "max_tokens": 400,
            "response_format": {"type": "json_object"},
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": INSTRUCTION},
                    {"type": "image_url", "image_url": {
                        "url": format!("data:{};base64,{data}", image.mime),
                        "detail": "low",
                    }},
                ]},
            ],
        })
    }
}

#[async_trait]
impl Describer for OpenAiVision {
    fn recipient(&self) -> String {
        reqwest::Url::parse(&self.config.api_base)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| self.config.api_base.clone())
    }

    fn model(&self) -> &str {
        &self.config.model
    }

    async fn describe(&self, image: ImageInput<'_>) -> Result<Description, AiError> {
        let base = self.config.api_base.trim_end_matches('/');
        let mut request = self
            .http
            .post(format!("{base}/chat/completions"))
            .json(&self.request_body(image));
        if let Some(key) = &self.config.api_key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let body = response.bytes().await.map_err(transport)?;
        if !status.is_success() {
            return Err(AiError::Provider {
                status: status.as_u16(),
                message: error_message(&body)
                    .unwrap_or_else(|| status.canonical_reason().unwrap_or("no message").into()),
            });
        }
        parse_completion(&body, &self.config.model)
    }
}

/// The message of an OpenAI error object (`{"error": {"message": …}}`), or the start of a
/// non-JSON body.
fn error_message(body: &[u8]) -> Option<String> {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        let e = v.get("error")?;
        return e
            .get("message")
            .and_then(Value::as_str)
            .or_else(|| e.as_str())
            .map(str::to_owned);
    }
    let text: String = String::from_utf8_lossy(body)
        .chars()
        .take(QUOTED_BODY_CHARS)
        .collect();
    (!text.trim().is_empty()).then_some(text)
}

/// Reads a Chat Completions answer into a [`Description`].
pub fn parse_completion(body: &[u8], asked_model: &str) -> Result<Description, AiError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| AiError::Malformed(format!("not JSON: {e}")))?;
    let choice = v
        .get("choices")
        .and_then(|c| c.get(0))
        .ok_or_else(|| AiError::Malformed("no choices in the answer".into()))?;
    let message = choice
        .get("message")
        .ok_or_else(|| AiError::Malformed("the choice has no message".into()))?;
    if let Some(refusal) = message.get("refusal").and_then(Value::as_str) {
        return Err(AiError::Refused(refusal.to_owned()));
    }
    let content = message
        .get("content")
        .and_then(Value::as_str)
        .ok_or_else(|| AiError::Malformed("the message has no text content".into()))?;
    let truncated = choice.get("finish_reason").and_then(Value::as_str) == Some("length");
    let parsed: Value = serde_json::from_str(strip_fences(content)).map_err(|e| {
        AiError::Malformed(if truncated {
            "the model ran out of tokens before finishing its JSON".into()
        } else {
            format!("the model did not answer with a JSON object: {e}")
        })
    })?;
    let alt_text = parsed
        .get("alt_text")
        .and_then(Value::as_str)
        .map(clean_alt_text)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| AiError::Malformed("the answer has no alt_text".into()))?;
    let tags = parsed
        .get("tags")
        .and_then(Value::as_array)
        .map(|a| clean_tags(a.iter().filter_map(Value::as_str)))
        .unwrap_or_default();
    let model = v
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or(asked_model)
        .to_owned();
    Ok(Description {
        alt_text,
        tags,
        model,
    })
}

/// Models sometimes wrap JSON in a Markdown code fence despite being asked not to.
fn strip_fences(s: &str) -> &str {
    let t = s.trim();
    let Some(rest) = t.strip_prefix("```") else {
        return t;
    };
    let rest = rest.strip_prefix("json").unwrap_or(rest);
    rest.strip_suffix("```").unwrap_or(rest).trim()
}

/// One line of at most [`MAX_ALT_TEXT_CHARS`], whitespace collapsed, cut at a word boundary.
fn clean_alt_text(s: &str) -> String {
    let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= MAX_ALT_TEXT_CHARS {
        return one_line;
    }
    let cut: String = one_line.chars().take(MAX_ALT_TEXT_CHARS - 1).collect();
    let cut = match cut.rfind(' ') {
        Some(i) if i > MAX_ALT_TEXT_CHARS / 2 => &cut[..i],
        _ => &cut,
    };
    format!("{}…", cut.trim_end_matches([',', ';', ':', ' ']))
}

/// Lowercase, trimmed, non-empty, at most [`MAX_TAG_CHARS`] each, no duplicates, at most
/// [`MAX_TAGS`], in the model's order.
fn clean_tags<'a>(tags: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in tags {
        let t = t
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase();
        let t = t.trim_matches(|c: char| c == '#' || c.is_ascii_punctuation());
        if t.is_empty() || t.chars().count() > MAX_TAG_CHARS || out.iter().any(|o| o == t) {
            continue;
        }
        out.push(t.to_owned());
        if out.len() == MAX_TAGS {
            break;
        }
    }
    out
}

/// Describes a transport failure with its causes (reqwest's own message is terse).
fn transport(error: reqwest::Error) -> AiError {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    AiError::Transport(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn completion(content: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-mini-2024-07-18",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
        }))
        .unwrap()
    }

    #[test]
    fn a_plain_answer_is_read_and_cleaned() {
        let d = parse_completion(
            &completion(
                r##"{"alt_text": "  A red bicycle\nleaning on a brick wall. ", "tags": ["Bicycle", "red", "bicycle", " Brick  Wall ", "#urban", ""]}"##,
            ),
            "gpt-4o-mini",
        )
        .unwrap();
        assert_eq!(d.alt_text, "A red bicycle leaning on a brick wall.");
        assert_eq!(d.tags, ["bicycle", "red", "brick wall", "urban"]);
        assert_eq!(d.model, "gpt-4o-mini-2024-07-18");
    }

    #[test]
    fn a_fenced_answer_is_read() {
        let d = parse_completion(
            &completion("```json\n{\"alt_text\": \"A cat.\", \"tags\": []}\n```"),
            "m",
        )
        .unwrap();
        assert_eq!(d.alt_text, "A cat.");
        assert!(d.tags.is_empty());
    }

    #[test]
    fn long_alt_text_is_cut_at_a_word() {
        let long = "word ".repeat(200);
        let d = parse_completion(
            &completion(&json!({"alt_text": long, "tags": []}).to_string()),
            "m",
        )
        .unwrap();
        assert!(d.alt_text.chars().count() <= MAX_ALT_TEXT_CHARS);
        assert!(d.alt_text.ends_with("word…"), "{}", d.alt_text);
    }

    #[test]
    fn too_many_tags_are_capped() {
        let tags: Vec<String> = (0..50).map(|i| format!("tag{i}")).collect();
        let d = parse_completion(
            &completion(&json!({"alt_text": "x", "tags": tags}).to_string()),
            "m",
        )
        .unwrap();
        assert_eq!(d.tags.len(), MAX_TAGS);
        assert_eq!(d.tags[0], "tag0");
    }

    #[test]
    fn unusable_answers_are_clear_errors() {
        let e = parse_completion(&completion("A dog on a beach."), "m").unwrap_err();
        assert!(
            matches!(e, AiError::Malformed(ref m) if m.contains("JSON object")),
            "{e}"
        );
        let e = parse_completion(&completion(r#"{"tags": ["a"]}"#), "m").unwrap_err();
        assert!(
            matches!(e, AiError::Malformed(ref m) if m.contains("alt_text")),
            "{e}"
        );
        let e = parse_completion(b"<html>", "m").unwrap_err();
        assert!(matches!(e, AiError::Malformed(_)), "{e}");
        let refusal = serde_json::to_vec(&json!({"choices": [{"message": {
            "role": "assistant", "content": null, "refusal": "I can't help with that."}}]}))
        .unwrap();
        let e = parse_completion(&refusal, "m").unwrap_err();
        assert!(matches!(e, AiError::Refused(ref m) if m == "I can't help with that."));
        let cut = serde_json::to_vec(&json!({"choices": [{"finish_reason": "length",
            "message": {"role": "assistant", "content": "{\"alt_text\": \"A long"}}]}))
        .unwrap();
        let e = parse_completion(&cut, "m").unwrap_err();
        assert!(e.to_string().contains("ran out of tokens"), "{e}");
    }

    #[test]
    fn error_bodies_give_the_providers_message() {
        assert_eq!(
            error_message(br#"{"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}"#)
                .as_deref(),
            Some("Incorrect API key provided")
        );
        assert_eq!(
            error_message(br#"{"error": "model not found"}"#).as_deref(),
            Some("model not found")
        );
        assert_eq!(
            error_message(b"Bad Gateway").as_deref(),
            Some("Bad Gateway")
        );
        assert_eq!(error_message(b"  "), None);
    }

    #[test]
    fn the_request_asks_not_to_be_stored_and_names_nobody() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let v = OpenAiVision::new(
            VisionConfig {
                api_base: "https://api.openai.com/v1".into(),
                api_key: Some("sk-test".into()),
                model: "gpt-4o-mini".into(),
            },
            reqwest::Client::new(),
        );
        let body = v.request_body(ImageInput {
            bytes: b"\xff\xd8\xff",
            mime: "image/jpeg",
        });
        assert_eq!(body["store"], json!(false));
        assert!(body.get("user").is_none());
        assert!(body.get("metadata").is_none());
        let url = body["messages"][0]["content"][1]["image_url"]["url"]
            .as_str()
            .unwrap();
        assert_eq!(url, "data:image/jpeg;base64,/9j/");
        assert_eq!(v.recipient(), "api.openai.com");
        assert!(!format!("{:?}", v).contains("sk-test"));
    }
}
