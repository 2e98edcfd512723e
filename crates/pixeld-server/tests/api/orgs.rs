use serde_json::{Value, json};
use time::Duration;

use crate::support::{PASSWORD, body, both, problem};

#[tokio::test]
async fn an_owner_invites_a_colleague_who_joins_with_the_invited_role() {
    both(|app| async move {
        let owner = app.user("owner@example.com").await;
        let org: Value = body(
            owner
                .post(app.url("/v1/orgs"))
                .json(&json!({"name": "Acme Studio"}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        let org_id = org["id"].as_str().unwrap().to_string();
        assert_eq!(org["role"], "owner");
        assert_eq!(org["personal"], false);

        let r = owner
            .post(app.url(&format!("/v1/orgs/{org_id}/invites")))
            .json(&json!({"email": "vic@example.com", "role": "viewer"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let invites = body(
            owner
                .get(app.url(&format!("/v1/orgs/{org_id}/invites")))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(invites["items"][0]["email"], "vic@example.com");
        let token = app.link_token("vic@example.com", "/invites/accept");

        let vic = app.user("vic@example.com").await;
        let eve = app.user("eve@example.com").await;
        let r = eve
            .post(app.url("/v1/invites/accept"))
            .json(&json!({"token": token}))
            .send()
            .await
            .unwrap();
        problem(r, 403, "forbidden").await;
        let joined = body(
            vic.post(app.url("/v1/invites/accept"))
                .json(&json!({"token": token}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(joined["id"], org_id.as_str());
        assert_eq!(joined["role"], "viewer");
        let r = vic
            .post(app.url("/v1/invites/accept"))
            .json(&json!({"token": token}))
            .send()
            .await
            .unwrap();
        problem(r, 400, "invalid-token").await;

        let orgs = body(vic.get(app.url("/v1/orgs")).send().await.unwrap()).await;
        assert_eq!(orgs["items"].as_array().unwrap().len(), 2);
        let members = body(
            owner
                .get(app.url(&format!("/v1/orgs/{org_id}/members")))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(members["items"].as_array().unwrap().len(), 2);

        // A viewer reads but cannot invite or rename, and acts in the org with the header.
        let as_vic = |rq: reqwest::RequestBuilder| rq.header("x-pixeld-org", &org_id).send();
        assert_eq!(
            as_vic(vic.get(app.url(&format!("/v1/orgs/{org_id}/members"))))
                .await
                .unwrap()
                .status(),
            200
        );
        let r = as_vic(
            vic.post(app.url(&format!("/v1/orgs/{org_id}/invites")))
                .json(&json!({"email": "x@example.com", "role": "member"})),
        )
        .await
        .unwrap();
        problem(r, 403, "forbidden").await;
        let r = vic
            .patch(app.url(&format!("/v1/orgs/{org_id}")))
            .json(&json!({"name": "Vic's now"}))
            .send()
            .await
            .unwrap();
        problem(r, 403, "forbidden").await;
        let me = body(as_vic(vic.get(app.url("/v1/me"))).await.unwrap()).await;
        assert_eq!(me["org"]["role"], "viewer");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn another_organisations_things_are_not_found_rather_than_forbidden() {
    both(|app| async move {
        let ada = app.user("ada@example.com").await;
        let bob = app.user("bob@example.com").await;
        let ada_org = body(ada.get(app.url("/v1/me")).send().await.unwrap()).await["org"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let ada_token = app.token(&ada, &["account:read", "account:write"]).await;
        let ada_token_id =
            body(ada.get(app.url("/v1/tokens")).send().await.unwrap()).await["items"][0]["id"]
                .as_str()
                .unwrap()
                .to_string();
        let bob_token = app.token(&bob, &["account:read", "account:write"]).await;

        let c = app.plain();
        for path in [
            format!("/v1/orgs/{ada_org}"),
            format!("/v1/orgs/{ada_org}/members"),
            format!("/v1/tokens/{ada_token_id}"),
        ] {
            problem(
                c.get(app.url(&path))
                    .bearer_auth(&bob_token)
                    .send()
                    .await
                    .unwrap(),
                404,
                "not-found",
            )
            .await;
            problem(
                bob.get(app.url(&path)).send().await.unwrap(),
                404,
                "not-found",
            )
            .await;
        }
        problem(
            c.delete(app.url(&format!("/v1/tokens/{ada_token_id}")))
                .bearer_auth(&bob_token)
                .send()
                .await
                .unwrap(),
            404,
            "not-found",
        )
        .await;
        problem(
            bob.get(app.url("/v1/me"))
                .header("x-pixeld-org", &ada_org)
                .send()
                .await
                .unwrap(),
            404,
            "not-found",
        )
        .await;
        // Ada's token still works: Bob's attempts changed nothing.
        assert_eq!(
            c.get(app.url("/v1/me"))
                .bearer_auth(&ada_token)
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn roles_change_only_within_the_rules_and_removed_members_lose_their_tokens() {
    both(|app| async move {
        let owner = app.user("owner@example.com").await;
        let org_id = body(
            owner
                .post(app.url("/v1/orgs"))
                .json(&json!({"name": "Agency"}))
                .send()
                .await
                .unwrap(),
        )
        .await["id"]
            .as_str()
            .unwrap()
            .to_string();
        owner
            .post(app.url(&format!("/v1/orgs/{org_id}/invites")))
            .json(&json!({"email": "adm@example.com", "role": "admin"}))
            .send()
            .await
            .unwrap();
        owner
            .post(app.url(&format!("/v1/orgs/{org_id}/invites")))
            .json(&json!({"email": "mem@example.com", "role": "member"}))
            .send()
            .await
            .unwrap();
        let adm = app.user("adm@example.com").await;
        adm.post(app.url("/v1/invites/accept"))
            .json(&json!({"token": app.link_token("adm@example.com", "/invites/accept")}))
            .send()
            .await
            .unwrap();
        let mem = app.user("mem@example.com").await;
        mem.post(app.url("/v1/invites/accept"))
            .json(&json!({"token": app.link_token("mem@example.com", "/invites/accept")}))
            .send()
            .await
            .unwrap();
        let members = body(
            owner
                .get(app.url(&format!("/v1/orgs/{org_id}/members")))
                .send()
                .await
                .unwrap(),
        )
        .await;
        let id_of = |email: &str| {
            members["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["email"] == email)
                .unwrap()["user_id"]
                .as_str()
                .unwrap()
                .to_string()
        };
        let (owner_id, adm_id, mem_id) = (
            id_of("owner@example.com"),
            id_of("adm@example.com"),
            id_of("mem@example.com"),
        );

        let in_org = |b: &reqwest::Client, rq: reqwest::RequestBuilder| {
            let _ = b;
            rq.header("x-pixeld-org", &org_id).send()
        };
        // An admin cannot make owners or touch the owner.
        let r = in_org(
            &adm,
            adm.patch(app.url(&format!("/v1/orgs/{org_id}/members/{mem_id}")))
                .json(&json!({"role": "owner"})),
        )
        .await
        .unwrap();
        problem(r, 403, "forbidden").await;
        let r = in_org(
            &adm,
            adm.delete(app.url(&format!("/v1/orgs/{org_id}/members/{owner_id}"))),
        )
        .await
        .unwrap();
        problem(r, 403, "forbidden").await;
        // The last owner cannot step down.
        let r = owner
            .patch(app.url(&format!("/v1/orgs/{org_id}/members/{owner_id}")))
            .header("x-pixeld-org", &org_id)
            .json(&json!({"role": "member"}))
            .send()
            .await
            .unwrap();
        problem(r, 409, "state-conflict").await;
        let r = owner
            .patch(app.url(&format!("/v1/orgs/{org_id}/members/{adm_id}")))
            .json(&json!({"role": "boss"}))
            .send()
            .await
            .unwrap();
        problem(r, 422, "validation").await;

        // A member's token for the org stops working when they are removed.
        let mem_token = {
            let r = mem
                .post(app.url("/v1/tokens"))
                .header("x-pixeld-org", &org_id)
                .json(&json!({"name": "agency", "scopes": ["account:read"]}))
                .send()
                .await
                .unwrap();
            body(r).await["token"].as_str().unwrap().to_string()
        };
        let me = body(
            app.plain()
                .get(app.url("/v1/me"))
                .bearer_auth(&mem_token)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(me["org"]["id"], org_id.as_str());
        let r = in_org(
            &adm,
            adm.delete(app.url(&format!("/v1/orgs/{org_id}/members/{mem_id}"))),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 204);
        problem(
            app.plain()
                .get(app.url("/v1/me"))
                .bearer_auth(&mem_token)
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

#[tokio::test]
async fn an_invitation_expires_after_seven_days() {
    both(|app| async move {
        let owner = app.user("owner@example.com").await;
        let org_id = body(
            owner
                .post(app.url("/v1/orgs"))
                .json(&json!({"name": "Agency"}))
                .send()
                .await
                .unwrap(),
        )
        .await["id"]
            .as_str()
            .unwrap()
            .to_string();
        owner
            .post(app.url(&format!("/v1/orgs/{org_id}/invites")))
            .json(&json!({"email": "late@example.com", "role": "member"}))
            .send()
            .await
            .unwrap();
        let token = app.link_token("late@example.com", "/invites/accept");
        let late = app.user("late@example.com").await;
        app.clock.advance(Duration::days(7) + Duration::seconds(1));
        // Sessions are long enough; sign in again anyway to be sure the refusal is the invite's.
        late.post(app.url("/v1/auth/signin"))
            .json(&json!({"email": "late@example.com", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        let r = late
            .post(app.url("/v1/invites/accept"))
            .json(&json!({"token": token}))
            .send()
            .await
            .unwrap();
        problem(r, 400, "invalid-token").await;
        app.stop().await;
    })
    .await;
}
