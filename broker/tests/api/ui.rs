//! The web console over HTTP: sign-in exchanges a PAK for a strict session cookie, sign-out and
//! PAK rotation end it, every write needs the session's CSRF token and a same-site origin, a
//! generator sees only its own stacks and the agents inside its reach, and the rollout part of
//! a stack's page long-polls until the rollout changes.

use reqwest::StatusCode;
use reqwest::header::{CONTENT_SECURITY_POLICY, LOCATION, SET_COOKIE};
use serde_json::json;

use crate::browser::{Browser, csrf_of, redirects_to_sign_in};
use crate::helpers::*;

both_backends!(signing_in_and_out, |app| {
    app.create_agent("edge-1", json!({ "labels": ["prod"] }))
        .await;
    let mut browser = Browser::new(&app);
    assert!(redirects_to_sign_in(&browser.get("/ui/fleet").await));

    let refused = browser
        .post("/ui/login", &[("pak", "brokkr_BRnot_a_real_key")])
        .await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(refused.headers().get(SET_COOKIE).is_none());
    assert!(refused.text().await.unwrap().contains("role=\"alert\""));

    let cookie = browser.sign_in(&app.admin).await;
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/ui", "Max-Age=43200"] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    assert!(
        !cookie.contains(&app.admin),
        "the PAK never reaches the browser"
    );
    let fleet = browser.get("/ui/fleet").await;
    let policy = fleet.headers()[CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_string();
    assert!(policy.contains("default-src 'none'") && policy.contains("script-src 'self'"));
    let page = fleet.text().await.unwrap();
    assert!(page.contains("edge-1") && page.contains("Signed in as <strong>admin"));

    let stale = browser.post("/ui/logout", &[("csrf", "forged")]).await;
    assert_eq!(stale.status(), StatusCode::FORBIDDEN);
    let out = browser
        .post("/ui/logout", &[("csrf", &csrf_of(&page))])
        .await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert!(
        out.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert!(redirects_to_sign_in(&browser.get("/ui/fleet").await));
});

both_backends!(
    agents_cannot_sign_in_and_sessions_end_with_their_pak,
    |app| {
        let (_, agent_pak) = app.create_agent("edge-1", json!({})).await;
        let mut browser = Browser::new(&app);
        let refused = browser.post("/ui/login", &[("pak", &agent_pak)]).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);

        let (generator, pak) = app.create_generator("ci").await;
        browser.sign_in(&pak).await;
        assert!(
            browser
                .page("/ui/stacks")
                .await
                .contains("Signed in as <strong>ci")
        );
        let rotated = app
            .post(
                &format!("/api/v1/generators/{generator}/rotate-pak"),
                &app.admin,
                json!({}),
            )
            .await;
        expect_json(rotated, 200).await;
        assert!(redirects_to_sign_in(&browser.get("/ui/stacks").await));
    }
);

both_backends!(idle_sessions_end, |app| {
    let app = app.respawn(|s| s.ui.idle_minutes = 0).await;
    let mut browser = Browser::new(&app);
    browser.sign_in(&app.admin).await;
    assert!(redirects_to_sign_in(&browser.get("/ui/fleet").await));
});

both_backends!(a_generator_sees_only_its_own, |app| {
    app.create_agent("payments-eu", json!({ "labels": ["payments"] }))
        .await;
    app.create_agent("search-eu", json!({ "labels": ["search"] }))
        .await;
    let (_, payments) = app
        .create_generator_reaching("payments-ci", "\"payments\" in agent.labels")
        .await;
    let (_, search) = app
        .create_generator_reaching("search-ci", "\"search\" in agent.labels")
        .await;
    let theirs = app
        .create_stack(&search, json!({ "name": "search-idx" }))
        .await;
    let ours = app.create_stack(&payments, json!({ "name": "api" })).await;

    let mut browser = Browser::new(&app);
    browser.sign_in(&payments).await;
    let fleet = browser.page("/ui/fleet").await;
    assert!(fleet.contains("payments-eu") && !fleet.contains("search-eu"));
    let stacks = browser.page("/ui/stacks").await;
    assert!(stacks.contains(&ours.to_string()) && !stacks.contains(&theirs.to_string()));
    let other = browser.get(&format!("/ui/stacks/{theirs}")).await;
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
    assert!(!other.text().await.unwrap().contains("search-idx"));
    let live = browser.get(&format!("/ui/stacks/{theirs}/rollout")).await;
    assert_eq!(live.status(), StatusCode::NOT_FOUND);
});

both_backends!(a_bad_fleet_expression_is_shown_on_the_page, |app| {
    let mut browser = Browser::new(&app);
    browser.sign_in(&app.admin).await;
    let page = browser
        .page("/ui/fleet?expression=agent.labels%20%3D%3D")
        .await;
    assert!(page.contains("role=\"alert\""), "{page}");
});

const V1: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n  namespace: default\ndata:\n  v: \"1\"\n";
const V2: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n  namespace: default\ndata:\n  v: \"2\"\n";

both_backends!(a_staged_rollout_is_followed_and_steered, |app| {
    app.create_agent("canary-1", json!({ "labels": ["prod", "canary"] }))
        .await;
    app.create_agent("edge-1", json!({ "labels": ["prod"] }))
        .await;
    let (_, generator) = app.create_generator("ci").await;
    let strategy = json!({ "waves": [{ "name": "canary", "agents": "\"canary\" in agent.labels" },
                                     { "name": "rest", "percent": 100 }],
                           "gate": { "min_healthy_percent": 0, "soak_seconds": 3600 } });
    let body = json!({ "name": "web", "labels": ["prod"], "rollout": strategy });
    let stack = app.create_stack(&generator, body).await;
    app.add_object(&generator, stack, V1).await;
    app.add_object(&generator, stack, V2).await;

    let mut browser = Browser::new(&app);
    browser.sign_in(&generator).await;
    let path = format!("/ui/stacks/{stack}");
    let page = browser.page(&path).await;
    assert!(
        page.contains("Staged rollout") && page.contains("canary"),
        "{page}"
    );
    let etag = page
        .split("data-etag=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let etag = etag.replace("&quot;", "\"");
    let live = format!("{path}/rollout?wait=1");
    let unchanged = browser
        .request(reqwest::Method::GET, &live)
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(unchanged.status(), StatusCode::NOT_MODIFIED);

    let forged = browser
        .post(&format!("{path}/rollout/pause"), &[("csrf", "nope")])
        .await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let cross_site = browser
        .request(reqwest::Method::POST, &format!("{path}/rollout/pause"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Origin", "https://evil.example")
        .body(format!("csrf={}", csrf_of(&page)))
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), StatusCode::FORBIDDEN);
    let paused = browser
        .post(
            &format!("{path}/rollout/pause"),
            &[("csrf", &csrf_of(&page))],
        )
        .await;
    assert_eq!(paused.status(), StatusCode::SEE_OTHER);
    assert_eq!(paused.headers()[LOCATION], format!("{path}?done=pause"));

    let changed = browser
        .request(reqwest::Method::GET, &format!("{path}/rollout?wait=5"))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::OK);
    let part = changed.text().await.unwrap();
    assert!(part.contains("paused") && part.contains("Resume"), "{part}");
    assert!(
        browser
            .page(&format!("{path}?done=pause"))
            .await
            .contains("The rollout is paused.")
    );
});

both_backends!(an_agent_page_and_the_audit_log, |app| {
    let (agent, _) = app
        .create_agent("edge-1", json!({ "labels": ["prod"] }))
        .await;
    let (_, generator) = app
        .create_generator_reaching("ci", "\"prod\" in agent.labels")
        .await;
    app.create_published_stack(&generator, json!({ "name": "web", "labels": ["prod"] }))
        .await;
    let mut browser = Browser::new(&app);
    browser.sign_in(&generator).await;
    let page = browser.page(&format!("/ui/agents/{agent}")).await;
    assert!(
        page.contains("Agent edge-1") && page.contains("label:prod"),
        "{page}"
    );
    let audit = browser.get("/ui/audit").await;
    assert_eq!(
        audit.status(),
        StatusCode::FORBIDDEN,
        "the audit log is the admin's"
    );

    let mut admin = Browser::new(&app);
    admin.sign_in(&app.admin).await;
    let all = admin.page("/ui/audit").await;
    assert!(
        all.contains("stack.created") && all.contains("agent.created"),
        "{all}"
    );
    let only = admin.page("/ui/audit?action=stack.*&actor_type=").await;
    assert!(
        only.contains("stack.created") && !only.contains(">agent.created<"),
        "{only}"
    );
});

both_backends!(webhook_deliveries_are_shown_and_redelivered, |app| {
    let receiver = crate::receiver::Receiver::start().await;
    let (_, generator) = app.create_generator("ci").await;
    let (hook, _) = crate::webhooks::subscribe(
        &app,
        &generator,
        &receiver.url,
        &["webhook.test"],
        json!({}),
    )
    .await;
    let tested = app
        .post(
            &format!("/api/v1/webhooks/{hook}/test"),
            &generator,
            json!({}),
        )
        .await;
    assert!(tested.status().is_success(), "{}", tested.status());
    receiver.received(1).await;

    let mut browser = Browser::new(&app);
    browser.sign_in(&generator).await;
    assert!(
        browser
            .page("/ui/webhooks")
            .await
            .contains(&hook.to_string())
    );
    let path = format!("/ui/webhooks/{hook}");
    let page = eventually("the delivery to be listed as delivered", || async {
        let page = browser.page(&path).await;
        page.contains("<td>delivered</td>").then_some(page)
    })
    .await;
    let at = page.find("/deliveries/").unwrap() + 12;
    let delivery = &page[at..at + 36];
    let again = browser
        .post(
            &format!("{path}/deliveries/{delivery}/redeliver"),
            &[("csrf", &csrf_of(&page))],
        )
        .await;
    assert_eq!(again.status(), StatusCode::SEE_OTHER);
    assert_eq!(receiver.received(2).await.len(), 2, "sent once more");

    let mut admin = Browser::new(&app);
    admin.sign_in(&app.admin).await;
    let (_, other) = app.create_generator("other").await;
    let mut stranger = Browser::new(&app);
    stranger.sign_in(&other).await;
    assert_eq!(stranger.get(&path).await.status(), StatusCode::NOT_FOUND);
    assert!(admin.page(&path).await.contains("webhook.test"));
});

both_backends!(work_orders_are_listed_with_their_runs, |app| {
    let (agent, _) = app
        .create_agent("edge-1", json!({ "labels": ["prod"] }))
        .await;
    let (_, generator) = app.create_generator("ci").await;
    let body = json!({ "type": "restart", "target": { "agent_ids": [agent] },
                       "spec": { "kind": "Deployment", "namespace": "web", "name": "api" } });
    let order =
        id_of(&expect_json(app.post("/api/v1/work-orders", &generator, body).await, 201).await);
    let mut browser = Browser::new(&app);
    browser.sign_in(&generator).await;
    let list = browser.page("/ui/work-orders").await;
    assert!(list.contains(&format!("/ui/work-orders/{order}")) && list.contains("restart"));
    let page = browser.page(&format!("/ui/work-orders/{order}")).await;
    assert!(
        page.contains(&format!("/ui/agents/{agent}")) && page.contains("pending"),
        "{page}"
    );
});

both_backends!(plugins_are_shown_and_bound_in_shadow_mode, |app| {
    let wasm = plugin_wasm("required_labels");
    let uploaded = app
        .upload_plugin("required-labels", wasm, Some(json!({ "keys": ["team"] })))
        .await;
    let plugin = id_of(&expect_json(uploaded, 201).await);
    let (_, generator) = app.create_generator("ci").await;
    let mut browser = Browser::new(&app);
    browser.sign_in(&generator).await;
    assert_eq!(
        browser.get("/ui/plugins").await.status(),
        StatusCode::FORBIDDEN
    );

    let mut admin = Browser::new(&app);
    admin.sign_in(&app.admin).await;
    assert!(admin.page("/ui/plugins").await.contains("required-labels"));
    let path = format!("/ui/plugins/{plugin}");
    let page = admin.page(&path).await;
    assert!(page.contains("Not bound."), "{page}");
    let bad = admin
        .post(
            &format!("{path}/bindings"),
            &[
                ("csrf", &csrf_of(&page)),
                ("scope", "stack"),
                ("scope_id", "nope"),
            ],
        )
        .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let bound = admin
        .post(
            &format!("{path}/bindings"),
            &[
                ("csrf", &csrf_of(&page)),
                ("scope", "global"),
                ("scope_id", ""),
            ],
        )
        .await;
    assert_eq!(bound.status(), StatusCode::SEE_OTHER);
    assert!(admin.page(&path).await.contains("global: shadow"));
    let plugin_json = expect_json(
        app.get(&format!("/api/v1/plugins/{plugin}"), &app.admin)
            .await,
        200,
    )
    .await;
    assert_eq!(plugin_json["bindings"][0]["mode"], "shadow");
});

both_backends!(
    enrollment_tokens_are_made_and_a_stack_says_whom_it_reaches,
    |app| {
        app.create_agent("edge-1", json!({ "labels": ["prod"] }))
            .await;
        let (_, generator) = app.create_generator("ci").await;
        let stack = app
            .create_published_stack(&generator, json!({ "name": "web", "labels": ["prod"] }))
            .await;
        let mut browser = Browser::new(&app);
        browser.sign_in(&generator).await;
        let page = browser.page(&format!("/ui/stacks/{stack}")).await;
        assert!(
            page.contains("edge-1") && page.contains("label:prod"),
            "{page}"
        );
        assert_eq!(
            browser.get("/ui/enrollment").await.status(),
            StatusCode::FORBIDDEN
        );

        let mut admin = Browser::new(&app);
        admin.sign_in(&app.admin).await;
        let page = admin.page("/ui/enrollment").await;
        let form = [
            ("csrf", csrf_of(&page)),
            ("name_prefix", "edge-".into()),
            ("labels", "prod, edge".into()),
            ("uses", "3".into()),
            ("hours", "2".into()),
        ];
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let made = admin.post("/ui/enrollment", &form).await;
        assert_eq!(made.status(), StatusCode::CREATED);
        let made = made.text().await.unwrap();
        let token = made
            .split("class=\"secret\">")
            .nth(1)
            .unwrap()
            .split('<')
            .next()
            .unwrap();
        assert!(token.starts_with("brokkr_ET"), "{token}");
        let again = admin.page("/ui/enrollment").await;
        assert!(
            !again.contains(token) && again.contains("edge-"),
            "the secret is shown once"
        );
        let enrolled = app
            .request(reqwest::Method::POST, "/api/v1/enroll", None)
            .json(&json!({ "token": token, "name": "berlin-1", "cluster_name": "berlin" }))
            .send()
            .await
            .unwrap();
        assert_eq!(enrolled.status(), StatusCode::CREATED);
    }
);
