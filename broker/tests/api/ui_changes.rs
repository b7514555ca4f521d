//! The console's deeper views and actions: two versions compared field by field (a Secret's
//! values never shown), the convergence chart, retargeting previewed before it is confirmed, a
//! plugin's dry run over stored versions, revoking an enrollment token, and the fleet table
//! kept live by long poll.

use reqwest::StatusCode;
use reqwest::header::LOCATION;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::browser::{Browser, csrf_of};
use crate::helpers::*;

const V1: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n  namespace: default\ndata:\n  mode: blue\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: default\nstringData:\n  password: hunter2\n";
const V2: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n  namespace: default\ndata:\n  mode: green\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: default\nstringData:\n  password: swordfish\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n  namespace: default\n";

/// Text as a browser shows it: the entities the templates write decoded.
fn unescaped(html: &str) -> String {
    html.replace("&#x2f;", "/")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

/// What the `data-` attribute `name` of a live part of `page` holds.
fn attribute(page: &str, name: &str) -> String {
    let value = page
        .split(&format!("{name}=\""))
        .nth(1)
        .unwrap()
        .split('"')
        .next();
    unescaped(value.unwrap())
}

/// An agent's apply report for `object`.
async fn report_apply(app: &TestApp, agent: (Uuid, &str), object: &Value, failure: Option<&str>) {
    let body = json!({
        "idempotency_key": Uuid::new_v4().to_string(),
        "deployment_object_id": object["id"],
        "event_type": "apply",
        "status": if failure.is_some() { "failure" } else { "success" },
        "message": failure,
    });
    let path = format!("/api/v1/agents/{}/events", agent.0);
    expect_json(app.post(&path, agent.1, body).await, 201).await;
}

both_backends!(two_versions_are_compared_and_convergence_is_drawn, |app| {
    let (agent, agent_pak) = app
        .create_agent("edge-1", json!({ "labels": ["prod"] }))
        .await;
    let (_, generator) = app.create_generator("ci").await;
    let stack = app
        .create_stack(&generator, json!({ "name": "web", "labels": ["prod"] }))
        .await;
    let v1 = app.add_object(&generator, stack, V1).await;
    let v2 = app.add_object(&generator, stack, V2).await;

    let mut browser = Browser::new(&app);
    browser.sign_in(&generator).await;
    let path = format!("/ui/stacks/{stack}/diff");
    let diff = unescaped(&browser.page(&path).await);
    for shown in [
        "+ ConfigMap v1 default/extra",
        "~ ConfigMap v1 default/app",
        "data.mode",
        "\"blue\"",
        "\"green\"",
        "stringData.password",
    ] {
        assert!(diff.contains(shown), "{shown} in {diff}");
    }
    assert!(
        !diff.contains("hunter2") && !diff.contains("swordfish"),
        "a Secret's values are never shown"
    );
    let (id1, id2) = (v1["id"].as_str().unwrap(), v2["id"].as_str().unwrap());
    let backwards = format!("{path}?from={id2}&to={id1}");
    let backwards = unescaped(&browser.page(&backwards).await);
    assert!(
        backwards.contains("- ConfigMap v1 default/extra"),
        "{backwards}"
    );
    let same = format!("{path}?from={id1}&to={id1}");
    assert!(
        browser
            .page(&same)
            .await
            .contains("These versions hold the same objects.")
    );
    let bad = browser.get(&format!("{path}?from=nope")).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);

    let other = app
        .create_published_stack(&generator, json!({ "name": "other" }))
        .await;
    let foreign = expect_json(
        app.get(
            &format!("/api/v1/stacks/{other}/deployment-objects"),
            &generator,
        )
        .await,
        200,
    )
    .await;
    let foreign = format!(
        "{path}?from={}&to={id2}",
        foreign["items"][0]["id"].as_str().unwrap()
    );
    assert_eq!(browser.get(&foreign).await.status(), StatusCode::NOT_FOUND);
    let (_, outsider) = app.create_generator("other-team").await;
    let mut outsider_browser = Browser::new(&app);
    outsider_browser.sign_in(&outsider).await;
    assert_eq!(
        outsider_browser.get(&path).await.status(),
        StatusCode::NOT_FOUND
    );

    let page = browser.page(&format!("/ui/stacks/{stack}")).await;
    assert!(
        !page.contains("class=\"curve\""),
        "no curve before an apply"
    );
    report_apply(&app, (agent, &agent_pak), &v2, None).await;
    let page = browser.page(&format!("/ui/stacks/{stack}")).await;
    assert!(
        page.contains("class=\"curve\"") && page.contains("up to 1 of 1"),
        "{page}"
    );
});

both_backends!(retargeting_is_previewed_before_it_is_applied, |app| {
    app.create_agent("prod-1", json!({ "labels": ["prod"] }))
        .await;
    app.create_agent("staging-1", json!({ "labels": ["staging"] }))
        .await;
    let (_, generator) = app.create_generator("ci").await;
    let stack = app
        .create_published_stack(&generator, json!({ "name": "web", "labels": ["prod"] }))
        .await;
    let mut browser = Browser::new(&app);
    browser.sign_in(&app.admin).await;
    let page = browser.page(&format!("/ui/stacks/{stack}")).await;
    let csrf = csrf_of(&page);
    let path = format!("/ui/stacks/{stack}/retarget");
    let expression = "\"staging\" in agent.labels";

    let forged = browser
        .post(&path, &[("csrf", "nope"), ("expression", expression)])
        .await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let bad = browser
        .post(&path, &[("csrf", &csrf), ("expression", "agent.labels ==")])
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let preview = browser
        .post(&path, &[("csrf", &csrf), ("expression", expression)])
        .await;
    assert_eq!(preview.status(), StatusCode::OK);
    let preview = preview.text().await.unwrap();
    let gained = preview.split("would receive it").nth(1).unwrap();
    let (gained, lost) = gained.split_once("would lose it").unwrap();
    assert!(
        gained.contains("staging-1") && !gained.contains("prod-1"),
        "{preview}"
    );
    assert!(lost.contains("prod-1"), "{preview}");
    let stored = expect_json(
        app.get(&format!("/api/v1/stacks/{stack}"), &app.admin)
            .await,
        200,
    )
    .await;
    assert!(
        stored["target_expression"].is_null(),
        "a preview changes nothing"
    );

    let applied = browser
        .post(
            &path,
            &[
                ("csrf", &csrf_of(&preview)),
                ("expression", expression),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(applied.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        applied.headers()[LOCATION],
        format!("/ui/stacks/{stack}?done=retarget")
    );
    let stored = expect_json(
        app.get(&format!("/api/v1/stacks/{stack}"), &app.admin)
            .await,
        200,
    )
    .await;
    assert_eq!(stored["target_expression"], expression);
    let page = browser
        .page(&format!("/ui/stacks/{stack}?done=retarget"))
        .await;
    let reached = page.split("Agents it reaches").nth(1).unwrap();
    let reached = reached.split("</section>").next().unwrap();
    assert!(
        reached.contains("staging-1") && !reached.contains("prod-1"),
        "{reached}"
    );
    assert!(page.contains("The stack was retargeted."));
});

both_backends!(a_plugin_is_dry_run_from_its_page, |app| {
    let wasm = plugin_wasm("required_labels");
    let uploaded = app
        .upload_plugin("required-labels", wasm, Some(json!({ "keys": ["team"] })))
        .await;
    let plugin = id_of(&expect_json(uploaded, 201).await);
    let (_, generator) = app.create_generator("ci").await;
    app.create_published_stack(&generator, json!({ "name": "web" }))
        .await;
    let mut admin = Browser::new(&app);
    admin.sign_in(&app.admin).await;
    let path = format!("/ui/plugins/{plugin}");
    let page = admin.page(&path).await;
    let run = admin
        .post(
            &format!("{path}/dry-run"),
            &[
                ("csrf", &csrf_of(&page)),
                ("scope", "global"),
                ("scope_id", ""),
            ],
        )
        .await;
    assert_eq!(run.status(), StatusCode::OK);
    let run = run.text().await.unwrap();
    assert!(
        run.contains("would reject") && run.contains("team"),
        "{run}"
    );
    assert!(
        run.contains("Enforcing it would reject <strong class=\"bad\">1</strong> of 1"),
        "{run}"
    );
    assert!(
        admin.page(&path).await.contains("No verdict recorded yet."),
        "a dry run records nothing"
    );
    let forged = admin
        .post(
            &format!("{path}/dry-run"),
            &[("csrf", "nope"), ("scope", "global")],
        )
        .await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
});

both_backends!(an_enrollment_token_is_revoked_from_the_page, |app| {
    let body = json!({ "uses": 2, "expires_in_seconds": 3600 });
    let made = expect_json(
        app.post("/api/v1/enrollment-tokens", &app.admin, body)
            .await,
        201,
    )
    .await;
    let (id, token) = (
        made["enrollment_token"]["id"].as_str().unwrap().to_string(),
        made["token"].as_str().unwrap().to_string(),
    );
    let mut admin = Browser::new(&app);
    admin.sign_in(&app.admin).await;
    let page = admin.page("/ui/enrollment").await;
    let revoke = format!("/ui/enrollment/{id}/revoke");
    assert!(page.contains(&revoke), "{page}");
    let forged = admin.post(&revoke, &[("csrf", "nope")]).await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let revoked = admin.post(&revoke, &[("csrf", &csrf_of(&page))]).await;
    assert_eq!(revoked.status(), StatusCode::SEE_OTHER);
    let page = admin.page("/ui/enrollment").await;
    assert!(
        page.contains("revoked") && !page.contains(&revoke),
        "{page}"
    );
    let enrolled = app
        .request(reqwest::Method::POST, "/api/v1/enroll", None)
        .json(&json!({ "token": token, "name": "berlin-1", "cluster_name": "berlin" }))
        .send()
        .await
        .unwrap();
    expect_problem(enrolled, 401, "invalid_enrollment_token").await;
});

both_backends!(the_fleet_table_stays_live, |app| {
    let (agent, agent_pak) = app
        .create_agent("edge-1", json!({ "labels": ["prod"] }))
        .await;
    app.create_agent("lab-1", json!({ "labels": ["lab"] }))
        .await;
    let (_, generator) = app.create_generator("ci").await;
    let stack = app
        .create_stack(&generator, json!({ "name": "web", "labels": ["prod"] }))
        .await;
    let object = app.add_object(&generator, stack, V1).await;
    let mut browser = Browser::new(&app);
    browser.sign_in(&app.admin).await;
    let page = browser.page("/ui/fleet?labels=prod").await;
    assert!(page.contains("edge-1") && !page.contains("lab-1"));
    let live = attribute(&page, "data-live");
    assert!(live.starts_with("/ui/fleet/rows?labels=prod"), "{live}");
    let etag = attribute(&page, "data-etag");

    let unchanged = browser
        .request(reqwest::Method::GET, &format!("{live}&wait=1"))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(
        unchanged.status(),
        StatusCode::NOT_MODIFIED,
        "sent {etag}, the part's tag is {:?}",
        unchanged.headers().get("etag")
    );

    report_apply(
        &app,
        (agent, &agent_pak),
        &object,
        Some("forbidden: configmaps"),
    )
    .await;
    let changed = browser
        .request(reqwest::Method::GET, &format!("{live}&wait=20"))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::OK);
    assert_ne!(changed.headers()["etag"].to_str().unwrap(), etag);
    let rows = changed.text().await.unwrap();
    assert!(
        rows.contains("forbidden: configmaps") && !rows.contains("lab-1"),
        "{rows}"
    );
    let unknown = browser.get("/ui/fleet/rows?nope=1").await;
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);
});
