//! The same storage behaviour, run on SQLite and on PostgreSQL (a fresh database per test).

use std::sync::Arc;

use pixeld_core::page::PageRequest;
use pixeld_core::roles::Role;
use pixeld_core::store::*;
use pixeld_store::testing::on_both;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

fn now() -> OffsetDateTime {
    pixeld_core::clock::truncate(OffsetDateTime::now_utc())
}

async fn user(store: &Arc<dyn Store>, email: &str) -> User {
    let at = now();
    let org = Org {
        id: Uuid::now_v7(),
        name: format!("{email} org"),
        personal: true,
        created_at: at,
    };
    let u = User {
        id: Uuid::now_v7(),
        email: email.into(),
        name: "Ada".into(),
        password_hash: "$argon2id$fake".into(),
        email_verified_at: None,
        is_admin: false,
        disabled_at: None,
        totp_secret: None,
        totp_pending_secret: None,
        totp_last_step: None,
        personal_org_id: org.id,
        created_at: at,
    };
    store.create_user(&u, &org).await.unwrap();
    u
}

#[tokio::test]
async fn a_user_round_trips_and_emails_are_unique_regardless_of_case() {
    on_both(|store| async move {
        let u = user(&store, "Ada@example.com").await;
        assert_eq!(store.user_by_id(u.id).await.unwrap().unwrap(), u);
        assert_eq!(
            store
                .user_by_email("ada@EXAMPLE.com")
                .await
                .unwrap()
                .unwrap()
                .id,
            u.id
        );
        let org = Org {
            id: Uuid::now_v7(),
            name: "x".into(),
            personal: true,
            created_at: now(),
        };
        let dup = User {
            id: Uuid::now_v7(),
            email: "ADA@example.com".into(),
            personal_org_id: org.id,
            ..u.clone()
        };
        assert!(matches!(
            store.create_user(&dup, &org).await,
            Err(StoreError::Conflict(_))
        ));
        // The failed sign-up left no orphan organisation behind.
        assert!(store.org_by_id(org.id).await.unwrap().is_none());
        let m = store
            .membership(u.personal_org_id, u.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(m.role, Role::Owner);
    })
    .await;
}

#[tokio::test]
async fn a_single_use_token_works_once_and_not_after_expiry() {
    on_both(|store| async move {
        let u = user(&store, "a@example.com").await;
        let t0 = now();
        let t = OneTimeToken {
            digest: "d1".into(),
            purpose: Purpose::ResetPassword,
            user_id: u.id,
            data: "x".into(),
            created_at: t0,
            expires_at: t0 + Duration::hours(1),
        };
        store.create_one_time_token(&t).await.unwrap();
        assert!(
            store
                .consume_one_time_token("d1", Purpose::VerifyEmail, t0)
                .await
                .unwrap()
                .is_none(),
            "wrong purpose"
        );
        assert_eq!(
            store
                .consume_one_time_token("d1", Purpose::ResetPassword, t0)
                .await
                .unwrap(),
            Some(t.clone())
        );
        assert!(
            store
                .consume_one_time_token("d1", Purpose::ResetPassword, t0)
                .await
                .unwrap()
                .is_none(),
            "second use"
        );
        let late = OneTimeToken {
            digest: "d2".into(),
            ..t.clone()
        };
        store.create_one_time_token(&late).await.unwrap();
        assert!(
            store
                .consume_one_time_token("d2", Purpose::ResetPassword, t0 + Duration::hours(1))
                .await
                .unwrap()
                .is_none()
        );
        let old = OneTimeToken {
            digest: "d3".into(),
            ..t
        };
        store.create_one_time_token(&old).await.unwrap();
        store
            .invalidate_one_time_tokens(u.id, Purpose::ResetPassword, t0)
            .await
            .unwrap();
        assert!(
            store
                .consume_one_time_token("d3", Purpose::ResetPassword, t0)
                .await
                .unwrap()
                .is_none()
        );
    })
    .await;
}

#[tokio::test]
async fn a_totp_step_is_accepted_once_and_recovery_codes_once_each() {
    on_both(|store| async move {
        let u = user(&store, "a@example.com").await;
        store
            .enable_totp(u.id, "SECRET", 100, &["c1".into(), "c2".into()])
            .await
            .unwrap();
        assert!(
            !store.advance_totp_step(u.id, 100).await.unwrap(),
            "replayed step"
        );
        assert!(
            !store.advance_totp_step(u.id, 99).await.unwrap(),
            "older step"
        );
        assert!(store.advance_totp_step(u.id, 101).await.unwrap());
        assert_eq!(store.recovery_codes_left(u.id).await.unwrap(), 2);
        assert!(store.use_recovery_code(u.id, "c1", now()).await.unwrap());
        assert!(!store.use_recovery_code(u.id, "c1", now()).await.unwrap());
        assert!(!store.use_recovery_code(u.id, "nope", now()).await.unwrap());
        assert_eq!(store.recovery_codes_left(u.id).await.unwrap(), 1);
        store.disable_totp(u.id).await.unwrap();
        let back = store.user_by_id(u.id).await.unwrap().unwrap();
        assert_eq!((back.totp_secret, back.totp_last_step), (None, None));
        assert_eq!(store.recovery_codes_left(u.id).await.unwrap(), 0);
    })
    .await;
}

#[tokio::test]
async fn sessions_are_found_by_digest_and_revoked_per_user() {
    on_both(|store| async move {
        let u = user(&store, "a@example.com").await;
        let other = user(&store, "b@example.com").await;
        let mk = |digest: &str, user_id| Session {
            id: Uuid::now_v7(),
            secret_digest: digest.into(),
            user_id,
            created_at: now(),
            last_seen_at: now(),
            expires_at: now() + Duration::days(1),
            ip: Some("127.0.0.1".into()),
            user_agent: None,
        };
        let (s1, s2, s3) = (mk("s1", u.id), mk("s2", u.id), mk("s3", other.id));
        for s in [&s1, &s2, &s3] {
            store.create_session(s).await.unwrap();
        }
        assert_eq!(store.session_by_digest("s1").await.unwrap().unwrap(), s1);
        assert!(
            !store.delete_session(other.id, s1.id).await.unwrap(),
            "another user's session"
        );
        assert_eq!(store.list_sessions(u.id).await.unwrap().len(), 2);
        assert_eq!(
            store
                .delete_other_sessions(u.id, Some(s1.id))
                .await
                .unwrap(),
            1
        );
        assert_eq!(store.list_sessions(u.id).await.unwrap(), vec![s1.clone()]);
        assert!(store.session_by_digest("s3").await.unwrap().is_some());
    })
    .await;
}

#[tokio::test]
async fn tokens_list_in_pages_and_revocation_sticks() {
    on_both(|store| async move {
        let u = user(&store, "a@example.com").await;
        let mut ids = vec![];
        for i in 0..5 {
            let t = ApiToken {
                id: Uuid::now_v7(),
                org_id: u.personal_org_id,
                user_id: u.id,
                name: format!("t{i}"),
                prefix: "pxd_abcdef".into(),
                secret_digest: format!("digest{i}"),
                scopes: "render".into(),
                created_at: now(),
                expires_at: None,
                last_used_at: None,
                last_used_ip: None,
                revoked_at: None,
            };
            store.create_token(&t).await.unwrap();
            ids.push(t.id);
        }
        let first = PageRequest {
            after: None,
            limit: 2,
        };
        let rows = store
            .list_tokens(u.personal_org_id, None, first)
            .await
            .unwrap();
        let page = first.finish(rows, |t| t.id);
        assert_eq!(
            page.items.iter().map(|t| t.id).collect::<Vec<_>>(),
            ids[..2]
        );
        let next = PageRequest::parse(page.next_cursor.as_deref(), Some(2)).unwrap();
        let rows = store
            .list_tokens(u.personal_org_id, Some(u.id), next)
            .await
            .unwrap();
        assert_eq!(
            rows.iter().map(|t| t.id).take(2).collect::<Vec<_>>(),
            ids[2..4]
        );
        assert!(
            store
                .list_tokens(u.personal_org_id, Some(Uuid::now_v7()), first)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            store
                .revoke_token(u.personal_org_id, ids[0], now())
                .await
                .unwrap()
        );
        assert!(
            !store
                .revoke_token(u.personal_org_id, ids[0], now())
                .await
                .unwrap()
        );
        assert!(
            !store
                .revoke_token(Uuid::now_v7(), ids[1], now())
                .await
                .unwrap(),
            "another org"
        );
        assert!(
            store
                .token_by_digest("digest0")
                .await
                .unwrap()
                .unwrap()
                .revoked_at
                .is_some()
        );
        store
            .touch_token(ids[1], now(), Some("10.0.0.1"))
            .await
            .unwrap();
        assert_eq!(
            store
                .token_by_digest("digest1")
                .await
                .unwrap()
                .unwrap()
                .last_used_ip
                .as_deref(),
            Some("10.0.0.1")
        );
    })
    .await;
}

#[tokio::test]
async fn an_invite_is_accepted_once_and_removing_a_member_revokes_their_tokens() {
    on_both(|store| async move {
        let owner = user(&store, "owner@example.com").await;
        let guest = user(&store, "guest@example.com").await;
        let org = Org {
            id: Uuid::now_v7(),
            name: "Agency".into(),
            personal: false,
            created_at: now(),
        };
        store.create_org(&org, owner.id).await.unwrap();
        let inv = Invite {
            id: Uuid::now_v7(),
            org_id: org.id,
            email: guest.email.clone(),
            role: Role::Member,
            secret_digest: "inv".into(),
            invited_by: owner.id,
            created_at: now(),
            expires_at: now() + Duration::days(7),
            accepted_at: None,
            revoked_at: None,
        };
        store.create_invite(&inv).await.unwrap();
        assert_eq!(
            store
                .list_invites(org.id, PageRequest::default())
                .await
                .unwrap()
                .len(),
            1
        );
        assert!(store.accept_invite(inv.id, guest.id, now()).await.unwrap());
        assert!(!store.accept_invite(inv.id, guest.id, now()).await.unwrap());
        assert!(
            store
                .list_invites(org.id, PageRequest::default())
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            store
                .membership(org.id, guest.id)
                .await
                .unwrap()
                .unwrap()
                .role,
            Role::Member
        );
        assert_eq!(
            store
                .list_members(org.id, PageRequest::default())
                .await
                .unwrap()
                .len(),
            2
        );
        assert_eq!(store.count_owners(org.id).await.unwrap(), 1);
        assert_eq!(
            store
                .orgs_of_user(guest.id, PageRequest::default())
                .await
                .unwrap()
                .len(),
            2
        );
        let t = ApiToken {
            id: Uuid::now_v7(),
            org_id: org.id,
            user_id: guest.id,
            name: "ci".into(),
            prefix: "pxd_abcdef".into(),
            secret_digest: "g".into(),
            scopes: "render".into(),
            created_at: now(),
            expires_at: None,
            last_used_at: None,
            last_used_ip: None,
            revoked_at: None,
        };
        store.create_token(&t).await.unwrap();
        assert!(store.remove_member(org.id, guest.id, now()).await.unwrap());
        assert!(store.membership(org.id, guest.id).await.unwrap().is_none());
        assert!(
            store
                .token_by_digest("g")
                .await
                .unwrap()
                .unwrap()
                .revoked_at
                .is_some()
        );
        let expired = Invite {
            id: Uuid::now_v7(),
            secret_digest: "old".into(),
            expires_at: now() - Duration::seconds(1),
            ..inv
        };
        store.create_invite(&expired).await.unwrap();
        assert!(
            !store
                .accept_invite(expired.id, guest.id, now())
                .await
                .unwrap()
        );
    })
    .await;
}

#[tokio::test]
async fn an_idempotency_key_replays_mismatches_and_expires() {
    on_both(|store| async move {
        let t0 = now();
        assert_eq!(
            store.idempotency_claim("c", "k", "h1", t0).await.unwrap(),
            IdempotencyClaim::Fresh
        );
        assert_eq!(
            store.idempotency_claim("c", "k", "h1", t0).await.unwrap(),
            IdempotencyClaim::InFlight
        );
        assert_eq!(
            store.idempotency_claim("c", "k", "h2", t0).await.unwrap(),
            IdempotencyClaim::Mismatch
        );
        assert_eq!(
            store
                .idempotency_claim("other", "k", "h2", t0)
                .await
                .unwrap(),
            IdempotencyClaim::Fresh
        );
        let resp = IdempotentResponse {
            status: 201,
            content_type: "application/json".into(),
            body: b"{\"ok\":1}".to_vec(),
        };
        store.idempotency_complete("c", "k", &resp).await.unwrap();
        assert_eq!(
            store.idempotency_claim("c", "k", "h1", t0).await.unwrap(),
            IdempotencyClaim::Replay(resp)
        );
        let later = t0 + Duration::hours(25);
        assert_eq!(
            store
                .idempotency_claim("c", "k", "h2", later)
                .await
                .unwrap(),
            IdempotencyClaim::Fresh
        );
        store.idempotency_release("c", "k").await.unwrap();
        assert_eq!(
            store
                .idempotency_claim("c", "k", "h3", later)
                .await
                .unwrap(),
            IdempotencyClaim::Fresh
        );
        assert_eq!(
            store
                .idempotency_purge(later + Duration::seconds(1))
                .await
                .unwrap(),
            2
        );
    })
    .await;
}

#[tokio::test]
async fn operator_flags_and_profile_changes_persist() {
    on_both(|store| async move {
        let u = user(&store, "a@example.com").await;
        let _other = user(&store, "b@example.com").await;
        store.set_admin(u.id, true).await.unwrap();
        store.set_disabled(u.id, Some(now())).await.unwrap();
        store
            .set_password_hash(u.id, "$argon2id$new")
            .await
            .unwrap();
        assert!(matches!(
            store.set_email(u.id, "B@example.com", now()).await,
            Err(StoreError::Conflict(_))
        ));
        store.set_email(u.id, "c@example.com", now()).await.unwrap();
        let back = store.user_by_id(u.id).await.unwrap().unwrap();
        assert!(back.is_admin && back.disabled_at.is_some() && back.email_verified_at.is_some());
        assert_eq!(
            (back.email.as_str(), back.password_hash.as_str()),
            ("c@example.com", "$argon2id$new")
        );
        assert!(matches!(
            store.set_admin(Uuid::now_v7(), true).await,
            Err(StoreError::NotFound)
        ));
        assert_eq!(
            store
                .list_users(PageRequest::default())
                .await
                .unwrap()
                .len(),
            2
        );
        store.ping().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_token_is_found_with_its_owner_and_role_in_one_lookup() {
    on_both(|store| async move {
        let u = user(&store, "a@example.com").await;
        let t = ApiToken {
            id: Uuid::now_v7(),
            org_id: u.personal_org_id,
            user_id: u.id,
            name: "t".into(),
            prefix: "pxd_abcdef".into(),
            secret_digest: "d".into(),
            scopes: "render".into(),
            created_at: now(),
            expires_at: Some(now() + Duration::days(1)),
            last_used_at: None,
            last_used_ip: None,
            revoked_at: None,
        };
        store.create_token(&t).await.unwrap();
        let (token, owner, role) = store.token_with_owner("d").await.unwrap().unwrap();
        assert_eq!(
            (token, owner.id, role),
            (t.clone(), u.id, Some(Role::Owner))
        );
        assert!(store.token_with_owner("nope").await.unwrap().is_none());
        store
            .remove_member(u.personal_org_id, u.id, now())
            .await
            .unwrap();
        let (_, _, role) = store.token_with_owner("d").await.unwrap().unwrap();
        assert_eq!(role, None, "a removed member's token has no role");
    })
    .await;
}

#[tokio::test]
async fn template_versions_are_immutable_and_saves_never_overwrite_each_other() {
    on_both(|store| async move {
        let u = user(&store, "designer@example.com").await;
        let at = now();
        let t = TemplateRecord {
            id: Uuid::now_v7(),
            org_id: u.personal_org_id,
            name: "Card".into(),
            latest_version: 1,
            created_by: u.id,
            created_at: at,
            updated_at: at,
        };
        let v = |n: i32, body: &str| TemplateVersion {
            template_id: t.id,
            version: n,
            body: body.into(),
            created_by: u.id,
            created_at: at + Duration::seconds(i64::from(n)),
        };
        store
            .create_template(&t, &v(1, "{\"one\":1}"))
            .await
            .unwrap();
        assert_eq!(
            store
                .template_in_org(t.org_id, t.id)
                .await
                .unwrap()
                .unwrap(),
            t
        );
        assert_eq!(
            store.template_in_org(Uuid::now_v7(), t.id).await.unwrap(),
            None,
            "other orgs see nothing"
        );
        assert_eq!(
            store.template_by_id(t.id).await.unwrap().unwrap().org_id,
            t.org_id
        );

        assert!(
            store
                .add_template_version(t.org_id, &v(2, "{\"two\":2}"), Some("Card v2"))
                .await
                .unwrap()
        );
        // A second writer who also started from version 1 loses, and changes nothing.
        assert!(
            !store
                .add_template_version(t.org_id, &v(2, "{\"lost\":0}"), None)
                .await
                .unwrap()
        );
        // Another org cannot save into it.
        assert!(
            !store
                .add_template_version(Uuid::now_v7(), &v(3, "{}"), None)
                .await
                .unwrap()
        );
        let now_t = store
            .template_in_org(t.org_id, t.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((now_t.latest_version, now_t.name.as_str()), (2, "Card v2"));
        assert_eq!(
            store.template_version(t.id, 1).await.unwrap().unwrap().body,
            "{\"one\":1}"
        );
        assert_eq!(
            store.template_version(t.id, 2).await.unwrap().unwrap().body,
            "{\"two\":2}"
        );
        let versions = store.list_template_versions(t.id, None, 10).await.unwrap();
        assert_eq!(
            versions.iter().map(|v| v.version).collect::<Vec<_>>(),
            vec![2, 1]
        );
        let older = store
            .list_template_versions(t.id, Some(2), 10)
            .await
            .unwrap();
        assert_eq!(older.iter().map(|v| v.version).collect::<Vec<_>>(), vec![1]);
        let listed = store
            .list_templates(t.org_id, PageRequest::default())
            .await
            .unwrap();
        assert_eq!(listed.len(), 1);

        // The render cache is indexed and goes with the template.
        let entry = RenderCacheEntry {
            cache_key: "k".repeat(64),
            org_id: t.org_id,
            template_id: t.id,
            format: "png".into(),
            bytes: 10,
            width: 1,
            height: 1,
            object_key: "o/renders/k.png".into(),
            created_at: at,
        };
        store.put_render_cache(&entry).await.unwrap();
        store.put_render_cache(&entry).await.unwrap();
        assert_eq!(
            store.render_cache(&entry.cache_key).await.unwrap().unwrap(),
            entry
        );
        assert_eq!(
            store
                .stale_render_cache(at + Duration::seconds(1), 10)
                .await
                .unwrap(),
            vec![entry.clone()]
        );
        assert!(store.stale_render_cache(at, 10).await.unwrap().is_empty());
        let removed = store
            .delete_template(t.org_id, t.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(removed, vec![entry.clone()]);
        assert_eq!(store.render_cache(&entry.cache_key).await.unwrap(), None);
        assert_eq!(store.template_version(t.id, 1).await.unwrap(), None);
        assert_eq!(store.delete_template(t.org_id, t.id).await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn signing_keys_rotate_and_revocation_sticks() {
    on_both(|store| async move {
        let u = user(&store, "keys@example.com").await;
        let key = |s: &str| SigningKey {
            id: Uuid::now_v7(),
            org_id: u.personal_org_id,
            secret: s.into(),
            created_at: now(),
            revoked_at: None,
        };
        let (a, b) = (key("pxs_a"), key("pxs_b"));
        store.create_signing_key(&a).await.unwrap();
        store.create_signing_key(&b).await.unwrap();
        let keys = store.list_signing_keys(u.personal_org_id).await.unwrap();
        assert_eq!(
            keys.iter().map(|k| k.secret.as_str()).collect::<Vec<_>>(),
            vec!["pxs_b", "pxs_a"]
        );
        assert!(
            store
                .revoke_signing_key(u.personal_org_id, a.id, now())
                .await
                .unwrap()
        );
        assert!(
            !store
                .revoke_signing_key(u.personal_org_id, a.id, now())
                .await
                .unwrap(),
            "only once"
        );
        assert!(
            !store
                .revoke_signing_key(Uuid::now_v7(), b.id, now())
                .await
                .unwrap(),
            "not from another org"
        );
        let keys = store.list_signing_keys(u.personal_org_id).await.unwrap();
        assert!(
            keys.iter()
                .find(|k| k.id == a.id)
                .unwrap()
                .revoked_at
                .is_some()
        );
        assert!(
            keys.iter()
                .find(|k| k.id == b.id)
                .unwrap()
                .revoked_at
                .is_none()
        );
    })
    .await;
}

fn job(org: Uuid, kind: &str, run_at: OffsetDateTime) -> Job {
    Job {
        id: Uuid::now_v7(),
        kind: kind.into(),
        org_id: org,
        payload: "{}".into(),
        state: "queued".into(),
        attempts: 0,
        run_at,
        locked_until: None,
        last_error: None,
        created_at: run_at,
        updated_at: run_at,
    }
}

#[tokio::test]
async fn jobs_are_claimed_when_due_once_and_again_after_a_lost_lease() {
    on_both(|store| async move {
        let u = user(&store, "jobs@example.com").await;
        let t0 = now();
        let later = job(u.personal_org_id, "later", t0 + Duration::minutes(10));
        let first = job(u.personal_org_id, "first", t0 - Duration::seconds(2));
        let second = job(u.personal_org_id, "second", t0 - Duration::seconds(1));
        for j in [&later, &second, &first] {
            store.enqueue_job(j).await.unwrap();
        }
        let lease = t0 + Duration::minutes(5);
        let a = store.claim_job(t0, lease).await.unwrap().unwrap();
        assert_eq!(
            (a.kind.as_str(), a.state.as_str(), a.attempts),
            ("first", "running", 1)
        );
        assert_eq!(a.locked_until, Some(lease));
        let b = store.claim_job(t0, lease).await.unwrap().unwrap();
        assert_eq!(
            b.kind, "second",
            "oldest due first; a running job is not handed out twice"
        );
        assert!(
            store.claim_job(t0, lease).await.unwrap().is_none(),
            "`later` is not due"
        );

        // `first` finishes; `second`'s worker dies: after its lease another worker takes it.
        store.finish_job(a.id, "done", None, t0).await.unwrap();
        let after_lease = lease + Duration::seconds(1);
        let again = store
            .claim_job(after_lease, after_lease + Duration::minutes(5))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((again.id, again.attempts), (b.id, 2));

        // A retry is due at its new time, not before.
        store
            .retry_job(
                again.id,
                after_lease + Duration::minutes(1),
                "receiver answered 500",
                after_lease,
            )
            .await
            .unwrap();
        let queued = store.job(again.id).await.unwrap().unwrap();
        assert_eq!(queued.state, "queued");
        assert_eq!(queued.last_error.as_deref(), Some("receiver answered 500"));
        assert!(
            store
                .claim_job(after_lease, after_lease + Duration::minutes(5))
                .await
                .unwrap()
                .is_none(),
            "the retry waits"
        );
        let t10 = t0 + Duration::minutes(10);
        let retried = store
            .claim_job(t10, t10 + Duration::minutes(5))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((retried.id, retried.attempts), (b.id, 3), "due first");
        store
            .finish_job(retried.id, "done", None, t10)
            .await
            .unwrap();
        let next = store
            .claim_job(t10, t10 + Duration::minutes(5))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(next.kind, "later");
        store
            .finish_job(next.id, "failed", Some("gave up"), t10)
            .await
            .unwrap();
        let waiting = job(u.personal_org_id, "waiting", t0 + Duration::days(1));
        store.enqueue_job(&waiting).await.unwrap();

        // Finished jobs (done or failed) are purged after their window; queued ones never.
        let purged = store.purge_jobs(t10 + Duration::seconds(1)).await.unwrap();
        assert_eq!(purged, 3);
        assert!(store.job(again.id).await.unwrap().is_none());
        assert!(store.job(waiting.id).await.unwrap().is_some());
    })
    .await;
}

#[tokio::test]
async fn concurrent_claims_never_share_a_job() {
    on_both(|store| async move {
        let u = user(&store, "claims@example.com").await;
        let t0 = now();
        for _ in 0..12 {
            store
                .enqueue_job(&job(u.personal_org_id, "render", t0))
                .await
                .unwrap();
        }
        let mut tasks = Vec::new();
        for _ in 0..6 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                while let Some(j) = store
                    .claim_job(t0, t0 + Duration::minutes(5))
                    .await
                    .unwrap()
                {
                    mine.push(j.id);
                }
                mine
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!((n, all.len()), (12, 12), "every job claimed exactly once");
    })
    .await;
}

#[tokio::test]
async fn render_jobs_and_webhook_deliveries_keep_their_state_and_log() {
    on_both(|store| async move {
        let u = user(&store, "hooks@example.com").await;
        let org = u.personal_org_id;
        let t0 = now();
        let r = RenderJob {
            id: Uuid::now_v7(),
            org_id: org,
            token_id: None,
            template_id: Uuid::now_v7(),
            version: 3,
            request: r#"{"data":{}}"#.into(),
            webhook_url: Some("https://example.com/hook".into()),
            metadata: Some(r#"{"order":42}"#.into()),
            status: "pending".into(),
            format: "png".into(),
            cache_key: None,
            width: None,
            height: None,
            bytes: None,
            cached: false,
            error_type: None,
            error_detail: None,
            created_at: t0,
            finished_at: None,
            batch_id: None,
        };
        let rj = job(org, "render", t0);
        store.create_render_job(&r, &rj).await.unwrap();
        // A row of a CSV batch is found by its batch, in order; other renders are not.
        let batch = Uuid::now_v7();
        let rows: Vec<RenderJob> = (0..3)
            .map(|_| RenderJob {
                id: Uuid::now_v7(),
                batch_id: Some(batch),
                webhook_url: None,
                ..r.clone()
            })
            .collect();
        for row in &rows {
            store
                .create_render_job(row, &job(org, "render", t0))
                .await
                .unwrap();
        }
        assert_eq!(store.render_batch(org, batch, 10).await.unwrap(), rows);
        assert_eq!(store.render_batch(org, batch, 2).await.unwrap(), rows[..2]);
        assert!(
            store
                .render_batch(Uuid::now_v7(), batch, 10)
                .await
                .unwrap()
                .is_empty(),
            "another organisation's batch id finds nothing"
        );
        assert_eq!(
            store.job(rj.id).await.unwrap().unwrap().kind,
            "render",
            "queued with it"
        );
        let mut done = r.clone();
        done.status = "completed".into();
        done.cache_key = Some("ab".repeat(32));
        done.width = Some(1200);
        done.height = Some(630);
        done.bytes = Some(12345);
        done.cached = true;
        done.finished_at = Some(t0);
        store.finish_render_job(&done).await.unwrap();
        assert_eq!(
            store.render_job(org, r.id).await.unwrap(),
            Some(done.clone())
        );
        assert_eq!(
            store.render_job(Uuid::now_v7(), r.id).await.unwrap(),
            None,
            "other org"
        );
        let listed = store
            .list_render_jobs(org, PageRequest::default())
            .await
            .unwrap();
        assert_eq!(listed.len(), 4);
        assert_eq!(listed[0], done);

        let mut d = WebhookDelivery {
            id: Uuid::now_v7(),
            org_id: org,
            event: "render.completed".into(),
            url: "https://example.com/hook".into(),
            payload: "{}".into(),
            status: "pending".into(),
            attempts: 0,
            next_attempt_at: Some(t0),
            last_status: None,
            last_error: None,
            created_at: t0,
            delivered_at: None,
        };
        store
            .create_webhook_delivery(&d, &job(org, "webhook", t0))
            .await
            .unwrap();
        for (n, code) in [(1, 500), (2, 200)] {
            d.attempts = n;
            d.last_status = Some(code);
            if code == 200 {
                d.status = "delivered".into();
                d.delivered_at = Some(t0);
                d.next_attempt_at = None;
            }
            let a = WebhookAttempt {
                id: Uuid::now_v7(),
                delivery_id: d.id,
                attempt: n,
                at: t0,
                status_code: Some(code),
                error: None,
                response_excerpt: Some("ok".into()),
                ms: 7,
            };
            store.record_webhook_attempt(&d, &a).await.unwrap();
        }
        assert_eq!(
            store.webhook_delivery(Some(org), d.id).await.unwrap(),
            Some(d.clone())
        );
        assert_eq!(
            store
                .webhook_delivery(Some(Uuid::now_v7()), d.id)
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            store.webhook_delivery(None, d.id).await.unwrap(),
            Some(d.clone())
        );
        let codes: Vec<_> = store
            .webhook_attempts(d.id)
            .await
            .unwrap()
            .iter()
            .map(|a| a.status_code)
            .collect();
        assert_eq!(codes, vec![Some(500), Some(200)]);
        assert_eq!(
            store
                .list_webhook_deliveries(org, PageRequest::default())
                .await
                .unwrap()
                .len(),
            1
        );

        // Retention: both go after their window, attempts with their delivery.
        assert_eq!(store.purge_webhook_deliveries(t0).await.unwrap(), 0);
        assert_eq!(store.purge_render_jobs(t0).await.unwrap(), 0);
        let later = t0 + Duration::seconds(1);
        assert_eq!(store.purge_webhook_deliveries(later).await.unwrap(), 1);
        // The render and the three rows of the batch.
        assert_eq!(store.purge_render_jobs(later).await.unwrap(), 4);
        assert!(store.render_batch(org, batch, 10).await.unwrap().is_empty());
        assert!(store.webhook_attempts(d.id).await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn support_requests_thread_queue_limit_purge_and_go_with_their_user() {
    use pixeld_core::support::{Author, Category, Status, Ticket, TicketMessage};
    on_both(|store| async move {
        let ada = user(&store, "ada@example.com").await;
        let op = user(&store, "op@example.com").await;
        store.set_admin(op.id, true).await.unwrap();
        let t0 = now();
        let ticket = |subject: &str| Ticket {
            id: Uuid::now_v7(),
            user_id: ada.id,
            subject: subject.into(),
            category: Category::Billing,
            status: Status::Open,
            created_at: t0,
            updated_at: t0,
            closed_at: None,
        };
        let msg = |ticket_id, author, author_id, body: &str, at| TicketMessage {
            id: Uuid::now_v7(),
            ticket_id,
            author,
            author_id,
            body: body.into(),
            created_at: at,
        };
        let a = ticket("Invoice address");
        let first = msg(a.id, Author::User, Some(ada.id), "Please fix it", t0);
        assert!(store.create_ticket(&a, &first, 2).await.unwrap());
        assert_eq!(store.ticket(a.id).await.unwrap().unwrap(), a);

        // The open-request limit counts requests that are not closed.
        let b = ticket("Second");
        assert!(
            store
                .create_ticket(&b, &msg(b.id, Author::User, Some(ada.id), "x", t0), 2)
                .await
                .unwrap()
        );
        let c = ticket("Third");
        assert!(
            !store
                .create_ticket(&c, &msg(c.id, Author::User, Some(ada.id), "x", t0), 2)
                .await
                .unwrap()
        );
        assert!(
            store.ticket(c.id).await.unwrap().is_none(),
            "nothing written"
        );
        assert!(store.close_ticket(b.id, t0).await.unwrap());
        assert!(
            !store.close_ticket(b.id, t0).await.unwrap(),
            "closed already"
        );
        assert!(
            store
                .create_ticket(&c, &msg(c.id, Author::User, Some(ada.id), "x", t0), 2)
                .await
                .unwrap()
        );

        // Newest first for the user, in pages.
        let first_page = store
            .tickets_of(
                ada.id,
                PageRequest {
                    after: None,
                    limit: 2,
                },
            )
            .await
            .unwrap();
        let ids: Vec<_> = first_page.iter().map(|t| t.id).collect();
        assert_eq!(ids, vec![c.id, b.id, a.id], "limit + 1 rows, newest first");
        let rest = store
            .tickets_of(
                ada.id,
                PageRequest {
                    after: Some(b.id),
                    limit: 2,
                },
            )
            .await
            .unwrap();
        assert_eq!(rest.iter().map(|t| t.id).collect::<Vec<_>>(), vec![a.id]);

        // An answer sets the status; a message beyond the limit is refused whole.
        let t1 = t0 + Duration::hours(1);
        let answer = msg(a.id, Author::Operator, Some(op.id), "Done", t1);
        assert!(
            store
                .add_ticket_message(&answer, Status::Answered, 3)
                .await
                .unwrap()
        );
        let now_a = store.ticket(a.id).await.unwrap().unwrap();
        assert_eq!((now_a.status, now_a.updated_at), (Status::Answered, t1));
        let third = msg(a.id, Author::User, Some(ada.id), "Thanks", t1);
        assert!(
            store
                .add_ticket_message(&third, Status::Open, 3)
                .await
                .unwrap()
        );
        let fourth = msg(a.id, Author::User, Some(ada.id), "One more", t1);
        assert!(
            !store
                .add_ticket_message(&fourth, Status::Open, 3)
                .await
                .unwrap()
        );
        let thread = store.ticket_messages(a.id).await.unwrap();
        assert_eq!(thread, vec![first.clone(), answer.clone(), third.clone()]);
        let gone = msg(Uuid::now_v7(), Author::User, Some(ada.id), "?", t1);
        assert!(matches!(
            store.add_ticket_message(&gone, Status::Open, 3).await,
            Err(StoreError::NotFound)
        ));

        // The operators' queue, by status, with the requester.
        let open = store
            .support_queue(Some(Status::Open), PageRequest::default())
            .await
            .unwrap();
        assert_eq!(
            open.iter().map(|q| q.ticket.id).collect::<Vec<_>>(),
            vec![a.id, c.id]
        );
        assert_eq!(open[0].email, "ada@example.com");
        let all = store
            .support_queue(None, PageRequest::default())
            .await
            .unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(
            store
                .queued_ticket(b.id)
                .await
                .unwrap()
                .unwrap()
                .ticket
                .status,
            Status::Closed
        );
        assert_eq!(
            store.operator_emails().await.unwrap(),
            vec!["op@example.com".to_owned()]
        );
        store.set_disabled(op.id, Some(t1)).await.unwrap();
        assert!(store.operator_emails().await.unwrap().is_empty());

        // Retention counts from the last activity.
        assert_eq!(store.purge_support_tickets(t0).await.unwrap(), 0);
        assert_eq!(
            store
                .purge_support_tickets(t0 + Duration::minutes(1))
                .await
                .unwrap(),
            2,
            "the two quiet requests"
        );
        assert!(store.ticket(c.id).await.unwrap().is_none());
        assert!(store.ticket(a.id).await.unwrap().is_some());

        // An operator's account going keeps their answer in the thread, without them.
        store
            .erase_account(op.id, &[op.personal_org_id], t1)
            .await
            .unwrap();
        let thread = store.ticket_messages(a.id).await.unwrap();
        assert_eq!(thread[1].author_id, None);
        assert_eq!(thread[1].body, "Done");
        // The requester's account going takes the request and its messages.
        store
            .erase_account(ada.id, &[ada.personal_org_id], t1)
            .await
            .unwrap();
        assert!(store.ticket(a.id).await.unwrap().is_none());
        assert!(store.ticket_messages(a.id).await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn the_open_support_request_limit_holds_when_requests_arrive_at_once() {
    use pixeld_core::support::{Author, Category, Status, Ticket, TicketMessage};
    on_both(|store| async move {
        let ada = user(&store, "ada@example.com").await;
        let t0 = now();
        let mut tasks = Vec::new();
        for i in 0..16 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let t = Ticket {
                    id: Uuid::now_v7(),
                    user_id: ada.id,
                    subject: format!("Question {i}"),
                    category: Category::General,
                    status: Status::Open,
                    created_at: t0,
                    updated_at: t0,
                    closed_at: None,
                };
                let m = TicketMessage {
                    id: Uuid::now_v7(),
                    ticket_id: t.id,
                    author: Author::User,
                    author_id: Some(ada.id),
                    body: "x".into(),
                    created_at: t0,
                };
                store.create_ticket(&t, &m, 5).await.unwrap()
            }));
        }
        let mut opened = 0;
        for t in tasks {
            opened += usize::from(t.await.unwrap());
        }
        assert_eq!(
            opened, 5,
            "exactly the limit, however the requests interleave"
        );
        let all = store
            .tickets_of(
                ada.id,
                PageRequest {
                    after: None,
                    limit: 50,
                },
            )
            .await
            .unwrap();
        assert_eq!(all.len(), 5);
    })
    .await;
}
