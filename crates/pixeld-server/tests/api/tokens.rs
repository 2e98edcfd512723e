use serde_json::{Value, json};
use time::Duration;

use crate::support::{body, both, problem};

#[tokio::test]
async fn malformed_unknown_expired_and_revoked_tokens_get_the_same_401() {
    both(|app| async move {
        let b = app.user("ada@example.com").await;
        let good = app.token(&b, &["account:read"]).await;
        let expiring: Value = body(
            b.post(app.url("/v1/tokens"))
                .json(&json!({"name": "short", "scopes": ["account:read"], "expires_at": (time::OffsetDateTime::now_utc() + Duration::hours(1)).format(&time::format_description::well_known::Rfc3339).unwrap()}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        let expiring_secret = expiring["token"].as_str().unwrap().to_string();
        let revoked = app.token(&b, &["account:read"]).await;
        let list: Value = body(b.get(app.url("/v1/tokens")).send().await.unwrap()).await;
        let revoked_id = list["items"].as_array().unwrap().iter().find(|t| revoked.starts_with(t["prefix"].as_str().unwrap())).unwrap()["id"].as_str().unwrap().to_string();
        assert_eq!(b.delete(app.url(&format!("/v1/tokens/{revoked_id}"))).send().await.unwrap().status(), 204);

        let c = app.plain();
        let me = |auth: String| c.get(app.url("/v1/me")).header("authorization", auth).send();
        assert_eq!(me(format!("Bearer {good}")).await.unwrap().status(), 200);
        assert_eq!(me(format!("Bearer {expiring_secret}")).await.unwrap().status(), 200);
        app.clock.advance(Duration::hours(2));

        let mut typo = good.clone().into_bytes();
        typo[8] = if typo[8] == b'a' { b'b' } else { b'a' };
        let unknown = pixeld_core::tokens::mint().secret;
        let mut bodies = vec![];
        for auth in [
            format!("Bearer {}", String::from_utf8(typo).unwrap()),
            format!("Bearer {unknown}"),
            format!("Bearer {expiring_secret}"),
            format!("Bearer {revoked}"),
            "Bearer ".to_string(),
            format!("Basic {good}"),
        ] {
            let r = me(auth.clone()).await.unwrap();
            assert_eq!(r.headers().get("www-authenticate").unwrap(), "Bearer realm=\"pixeld\"");
            let mut p = problem(r, 401, "unauthenticated").await;
            p.as_object_mut().unwrap().remove("request_id");
            bodies.push(p);
        }
        assert!(bodies.windows(2).all(|w| w[0] == w[1]), "every refusal looks the same: {bodies:?}");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_missing_scope_is_named_and_roles_cap_what_a_token_may_carry() {
    both(|app| async move {
        let b = app.user("ada@example.com").await;
        let reader = app.token(&b, &["account:read"]).await;
        let c = app.plain();
        let r = c
            .post(app.url("/v1/tokens"))
            .bearer_auth(&reader)
            .json(&json!({"name": "x", "scopes": ["account:read"]}))
            .send()
            .await
            .unwrap();
        let p = problem(r, 403, "missing-scope").await;
        assert_eq!(p["scope"], "account:write");

        // A token cannot mint a token with more power than it has.
        let writer = app.token(&b, &["account:read", "account:write"]).await;
        let r = c
            .post(app.url("/v1/tokens"))
            .bearer_auth(&writer)
            .json(&json!({"name": "x", "scopes": ["render"]}))
            .send()
            .await
            .unwrap();
        problem(r, 422, "validation").await;
        let r = c
            .post(app.url("/v1/tokens"))
            .bearer_auth(&writer)
            .json(&json!({"name": "x", "scopes": ["account:read"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);

        let bad = b
            .post(app.url("/v1/tokens"))
            .json(&json!({"name": "", "scopes": ["render", "images:delete", "admin"]}))
            .send()
            .await
            .unwrap();
        let p = problem(bad, 422, "validation").await;
        let messages: Vec<String> = p["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["message"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(messages.len(), 3, "{messages:?}");
        assert!(messages.iter().any(|m| m.contains("images:delete")));
        assert!(messages.iter().any(|m| m.contains("administrators")));

        let far = (time::OffsetDateTime::now_utc() + Duration::days(400))
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        let r = b
            .post(app.url("/v1/tokens"))
            .json(&json!({"name": "x", "scopes": ["render"], "expires_at": far}))
            .send()
            .await
            .unwrap();
        problem(r, 422, "validation").await;
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn the_token_list_shows_prefix_and_last_use_but_never_the_secret() {
    both(|app| async move {
        let b = app.user("ada@example.com").await;
        let secret = app.token(&b, &["account:read"]).await;
        app.plain()
            .get(app.url("/v1/me"))
            .bearer_auth(&secret)
            .send()
            .await
            .unwrap();
        let list_text = b
            .get(app.url("/v1/tokens"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!list_text.contains(&secret));
        let list: Value = serde_json::from_str(&list_text).unwrap();
        let t = &list["items"][0];
        assert_eq!(t["prefix"], &secret[..10]);
        assert_eq!(t["scopes"], json!(["account:read"]));
        assert_eq!(t["last_used_ip"], "127.0.0.1");
        assert!(t["last_used_at"].is_string());
        let id = t["id"].as_str().unwrap();
        let one = body(
            b.get(app.url(&format!("/v1/tokens/{id}")))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(one["id"], id);
        problem(
            b.get(app.url("/v1/tokens/not-a-uuid"))
                .send()
                .await
                .unwrap(),
            404,
            "not-found",
        )
        .await;
        problem(
            b.get(app.url(&format!("/v1/tokens/{}", uuid::Uuid::now_v7())))
                .send()
                .await
                .unwrap(),
            404,
            "not-found",
        )
        .await;
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn token_lists_are_paginated_with_cursors() {
    both(|app| async move {
        let b = app.user("ada@example.com").await;
        for _ in 0..5 {
            app.token(&b, &["render"]).await;
        }
        let mut seen = vec![];
        let mut cursor: Option<String> = None;
        loop {
            let mut url = app.url("/v1/tokens?limit=2");
            if let Some(c) = &cursor {
                url.push_str(&format!("&cursor={c}"));
            }
            let page = body(b.get(url).send().await.unwrap()).await;
            let items = page["items"].as_array().unwrap();
            assert!(items.len() <= 2);
            seen.extend(items.iter().map(|t| t["id"].as_str().unwrap().to_string()));
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        assert_eq!(seen.len(), 5);
        let mut sorted = seen.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 5, "no token twice");
        problem(
            b.get(app.url("/v1/tokens?limit=0")).send().await.unwrap(),
            422,
            "validation",
        )
        .await;
        problem(
            b.get(app.url("/v1/tokens?cursor=%21%21"))
                .send()
                .await
                .unwrap(),
            422,
            "validation",
        )
        .await;
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_token_used_a_moment_ago_is_refused_as_soon_as_it_is_revoked() {
    both(|app| async move {
        let b = app.user("ada@example.com").await;
        let secret = app.token(&b, &["account:read"]).await;
        let c = app.plain();
        // Used twice: the second answer may come from the in-memory authentication cache.
        for _ in 0..2 {
            assert_eq!(
                c.get(app.url("/v1/me"))
                    .bearer_auth(&secret)
                    .send()
                    .await
                    .unwrap()
                    .status(),
                200
            );
        }
        let id = body(b.get(app.url("/v1/tokens")).send().await.unwrap()).await["items"][0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            b.delete(app.url(&format!("/v1/tokens/{id}")))
                .send()
                .await
                .unwrap()
                .status(),
            204
        );
        problem(
            c.get(app.url("/v1/me"))
                .bearer_auth(&secret)
                .send()
                .await
                .unwrap(),
            401,
            "unauthenticated",
        )
        .await;
        app.stop().await;
    })
    .await;
}
