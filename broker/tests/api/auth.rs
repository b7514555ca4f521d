//! Authentication: the documented headers, and 401 problems for missing, malformed and unknown PAKs.

use reqwest::Method;

use crate::helpers::*;

both_backends!(documented_headers_are_accepted, |app| {
    let (id, pak) = app.create_generator("ci").await;
    let path = format!("/api/v1/generators/{id}");
    for (name, value) in [
        ("Authorization", format!("Bearer {pak}")),
        ("Authorization", pak.clone()),
        ("X-Generator-Key", pak.clone()),
    ] {
        let response = app
            .request(Method::GET, &path, None)
            .header(name, value)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{name}");
    }
});

both_backends!(missing_malformed_and_unknown_paks_answer_401, |app| {
    let missing = app
        .request(Method::GET, "/api/v1/stacks", None)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.headers()["www-authenticate"], "Bearer");
    expect_problem(missing, 401, "unauthenticated").await;
    for bad in ["nonsense", "brokkr_BRshort_x", "brk_gen_abc123...xyz789"] {
        expect_problem(app.get("/api/v1/stacks", bad).await, 401, "invalid_pak").await;
    }
    let (_, pak) = app.create_generator("ci").await;
    let (prefix, long) = pak.rsplit_once('_').unwrap();
    let wrong_secret = format!("{prefix}_{}", long.chars().rev().collect::<String>());
    expect_problem(
        app.get("/api/v1/stacks", &wrong_secret).await,
        401,
        "invalid_pak",
    )
    .await;
    // The well-known PAK of the documentation is never accepted.
    let documented = "brokkr_BR3rVsDa_GK3QN7CDUzYc6iKgMkJ98M2WSimM5t6U8";
    expect_problem(
        app.get("/api/v1/generators", documented).await,
        401,
        "invalid_pak",
    )
    .await;
});

both_backends!(whoami_names_the_principal, |app| {
    let (agent, pak) = app.create_agent("edge", serde_json::json!({})).await;
    let me = expect_json(app.get("/api/v1/whoami", &pak).await, 200).await;
    assert_eq!(me["principal_type"], "agent");
    assert_eq!(me["id"], agent.to_string());
    let admin = expect_json(app.get("/api/v1/whoami", &app.admin).await, 200).await;
    assert_eq!(admin["principal_type"], "admin");
    assert!(admin["id"].is_null());
});

both_backends!(repeated_failures_are_throttled_and_audited, |app| {
    let app = app
        .respawn(|s| {
            s.broker.auth_failures_per_minute = 3;
            s.broker.auth_failure_audit_seconds = 1;
        })
        .await;
    let guess = "brokkr_BRguess123_0123456789abcdef0123456789abcdef";
    for _ in 0..3 {
        expect_problem(app.get("/api/v1/stacks", guess).await, 401, "invalid_pak").await;
    }
    let blocked = app.get("/api/v1/stacks", guess).await;
    assert_eq!(blocked.headers()["retry-after"], "60");
    expect_problem(blocked, 429, "too_many_failures").await;
    let valid = app.get("/api/v1/generators", &app.admin).await;
    assert_eq!(
        valid.status(),
        200,
        "a PAK that verifies is never throttled"
    );

    // The window's failures become one audit entry for the client.
    let entry = eventually_audited(&app, "auth.failed").await;
    assert_eq!(entry["actor_type"], "anonymous");
    let details = &entry["details"];
    assert_eq!(details["client"], "127.0.0.1", "{entry}");
    assert_eq!(
        (details["failures"].as_u64(), details["throttled"].as_u64()),
        (Some(4), Some(1))
    );
    assert_eq!(details["short_tokens"], serde_json::json!(["guess123"]));
});

both_backends!(trusted_proxies_name_the_client, |app| {
    let app = app
        .respawn(|s| {
            s.broker.auth_failures_per_minute = 2;
            s.broker.trusted_proxies = vec!["127.0.0.0/8".into()];
        })
        .await;
    let bad = "brokkr_BRguess123_0123456789abcdef0123456789abcdef";
    let from = |client: &'static str| {
        app.request(Method::GET, "/api/v1/stacks", Some(bad))
            .header("X-Forwarded-For", client)
            .send()
    };
    for _ in 0..2 {
        assert_eq!(from("203.0.113.7").await.unwrap().status(), 401);
    }
    assert_eq!(from("203.0.113.7").await.unwrap().status(), 429);
    assert_eq!(
        from("198.51.100.1, 203.0.113.8").await.unwrap().status(),
        401,
        "another client behind the same proxy is not throttled"
    );
});

/// The newest audit entry of `action`, once the broker has written one.
async fn eventually_audited(app: &TestApp, action: &str) -> serde_json::Value {
    let path = format!("/api/v1/admin/audit-logs?action={action}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let log = expect_json(app.get(&path, &app.admin).await, 200).await;
        if let Some(entry) = log["items"].as_array().and_then(|items| items.first()) {
            return entry.clone();
        }
        assert!(std::time::Instant::now() < deadline, "no {action} entry");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
