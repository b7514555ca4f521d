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
    let mut settings = settings_for(&app.database_url);
    settings.broker.auth_failures_per_minute = 3;
    let first = app;
    let app = spawn_app_with(settings, None)
        .await
        .with_admin(&first.admin);
    let guess = "brokkr_BRguess123_0123456789abcdef0123456789abcdef";
    for _ in 0..3 {
        expect_problem(app.get("/api/v1/stacks", guess).await, 401, "invalid_pak").await;
    }
    let blocked = app.get("/api/v1/stacks", guess).await;
    assert_eq!(blocked.headers()["retry-after"], "60");
    expect_problem(blocked, 429, "too_many_failures").await;
    let even_valid = app.get("/api/v1/generators", &app.admin).await;
    assert_eq!(
        even_valid.status(),
        429,
        "the address is refused for the rest of its minute"
    );

    // Another broker (its own throttle) reads the audit log: every failure was recorded.
    let reader = spawn_app_with(settings_for(&app.database_url), None)
        .await
        .with_admin(&first.admin);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let log = expect_json(
            reader
                .get("/api/v1/admin/audit-logs?action=auth.failed", &reader.admin)
                .await,
            200,
        )
        .await;
        let entries = log["items"].as_array().unwrap().clone();
        if entries.len() >= 3 {
            assert_eq!(entries[0]["actor_type"], "anonymous");
            assert_eq!(entries[0]["details"]["short_token"], "guess123");
            assert_eq!(entries[0]["details"]["address"], "127.0.0.1");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "failures not audited: {entries:?}"
        );
        tokio::task::yield_now().await;
    }
});
