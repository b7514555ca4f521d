//! The tables of templates, webhooks, plugins and enrollment tokens. Secrets shown once (a
//! webhook's signing secret, an enrollment token) are printed below the table, labelled.

use brokkr_types::enrollment::{EnrollmentToken, EnrollmentTokenWithSecret};
use brokkr_types::plugins::{DryRunResult, PluginBinding, PluginInfo};
use brokkr_types::templates::Template;
use brokkr_types::webhooks::{Webhook, WebhookDelivery, WebhookWithSecret};

use crate::output::{table, time};

fn or_dash(value: Option<impl ToString>) -> String {
    value.map_or_else(|| "-".to_string(), |v| v.to_string())
}

pub fn templates(templates: &[Template]) -> String {
    let rows: Vec<Vec<String>> = templates
        .iter()
        .map(|t| {
            vec![
                t.name.clone(),
                t.id.to_string(),
                t.latest_version.to_string(),
                t.generator_id
                    .map_or_else(|| "shared".to_string(), |g| g.to_string()),
            ]
        })
        .collect();
    table(&["NAME", "ID", "VERSION", "OWNER"], &rows)
}

pub fn webhooks(webhooks: &[Webhook]) -> String {
    let rows: Vec<Vec<String>> = webhooks
        .iter()
        .map(|w| {
            vec![
                w.name.clone(),
                w.id.to_string(),
                w.url.clone(),
                w.event_types.join(","),
                w.enabled.to_string(),
            ]
        })
        .collect();
    table(&["NAME", "ID", "URL", "EVENTS", "ENABLED"], &rows)
}

pub fn webhook_with_secret(created: &WebhookWithSecret) -> String {
    let mut text = webhooks(std::slice::from_ref(&created.webhook));
    text.push_str(&format!(
        "signing secret (shown once): {}\n",
        created.secret
    ));
    text
}

pub fn deliveries(deliveries: &[WebhookDelivery]) -> String {
    let rows: Vec<Vec<String>> = deliveries
        .iter()
        .map(|d| {
            vec![
                d.event_type.clone(),
                d.status.as_str().to_string(),
                d.attempts.to_string(),
                or_dash(d.last_status_code),
                or_dash(d.last_error.as_deref()),
                time(&d.created_at),
            ]
        })
        .collect();
    table(
        &["EVENT", "STATUS", "ATTEMPTS", "CODE", "ERROR", "CREATED"],
        &rows,
    )
}

pub fn plugins(plugins: &[PluginInfo]) -> String {
    let rows: Vec<Vec<String>> = plugins
        .iter()
        .map(|p| {
            let bindings: Vec<String> = p
                .bindings
                .iter()
                .map(|b| format!("{}:{}", b.scope.as_str(), b.mode.as_str()))
                .collect();
            vec![
                p.name.clone(),
                p.id.to_string(),
                p.kind.clone(),
                p.digest.get(..12).unwrap_or(&p.digest).to_string(),
                or_dash((!bindings.is_empty()).then(|| bindings.join(","))),
            ]
        })
        .collect();
    table(&["NAME", "ID", "KIND", "DIGEST", "BINDINGS"], &rows)
}

pub fn bindings(bindings: &[PluginBinding]) -> String {
    let rows: Vec<Vec<String>> = bindings
        .iter()
        .map(|b| {
            vec![
                b.id.to_string(),
                b.scope.as_str().to_string(),
                or_dash(b.scope_id),
                b.mode.as_str().to_string(),
            ]
        })
        .collect();
    table(&["BINDING", "SCOPE", "SCOPE ID", "MODE"], &rows)
}

pub fn dry_run(results: &[DryRunResult]) -> String {
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|r| {
            let first = r.violations.first().map(|v| v.message.clone());
            vec![
                r.stack_id.to_string(),
                r.sequence_id.to_string(),
                if r.would_reject { "reject" } else { "pass" }.to_string(),
                or_dash(r.error.clone().or(first)),
            ]
        })
        .collect();
    table(&["STACK", "VERSION", "VERDICT", "FIRST VIOLATION"], &rows)
}

pub fn enrollment_tokens(tokens: &[EnrollmentToken]) -> String {
    let rows: Vec<Vec<String>> = tokens
        .iter()
        .map(|t| {
            vec![
                t.id.to_string(),
                or_dash((!t.name_prefix.is_empty()).then_some(t.name_prefix.as_str())),
                t.labels.join(","),
                t.uses_left.to_string(),
                time(&t.expires_at),
                t.revoked.to_string(),
            ]
        })
        .collect();
    table(
        &["ID", "PREFIX", "LABELS", "USES LEFT", "EXPIRES", "REVOKED"],
        &rows,
    )
}

pub fn token_with_secret(created: &EnrollmentTokenWithSecret) -> String {
    let mut text = enrollment_tokens(std::slice::from_ref(&created.enrollment_token));
    text.push_str(&format!("token (shown once): {}\n", created.token));
    text
}
