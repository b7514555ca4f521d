//! The `console` scenario: the web console's fleet page (`GET /ui/fleet`, 100 agents a page,
//! rendered HTML) walked page by page as a signed-in admin, one request at a time.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use brokkr_bench::fleet::Fleet;
use brokkr_bench::load::{Summary, run_load};

/// Signs in as the admin; returns the session cookie (`name=value`).
async fn sign_in(fleet: &Fleet) -> Result<String> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let response = client
        .post(format!("{}/ui/login", fleet.url))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string([(
            "pak",
            fleet.admin.as_str(),
        )])?)
        .send()
        .await?;
    if response.status() != 303 {
        bail!("sign-in answered {}", response.status());
    }
    let cookie = response
        .headers()
        .get("set-cookie")
        .context("no session cookie")?
        .to_str()?;
    Ok(cookie.split(';').next().unwrap_or_default().to_string())
}

/// Fleet pages for `seconds`, walking every page of `agents`.
pub async fn fleet_pages(fleet: &Fleet, agents: usize, seconds: u64) -> Result<Summary> {
    // What autovacuum does within a minute of the bulk registration: fresh planner statistics.
    if fleet.database_url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(&fleet.database_url).await?;
        sqlx::query("ANALYZE").execute(&pool).await?;
        pool.close().await;
    }
    let cookie = sign_in(fleet).await?;
    let (client, url) = (fleet.client.clone(), fleet.url.clone());
    let pages = agents.div_ceil(100).max(1);
    run_load(1, Duration::from_secs(seconds), move |i| {
        let page = format!("{url}/ui/fleet?offset={}", (i % pages) * 100);
        let request = client.get(page).header("Cookie", cookie.clone());
        async move {
            let response = request.send().await?;
            if response.status() != 200 {
                bail!("{}", response.status());
            }
            Ok(response.bytes().await?.len() as u64)
        }
    })
    .await
}
