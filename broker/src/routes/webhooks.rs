//! `/api/v1/webhooks` and `/api/v1/webhook-deliveries`: the event catalogue, subscriptions
//! (an admin manages every one, a generator its own), secret rotation, test events, the
//! delivery log and redelivery.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use brokkr_types::Problem;
use brokkr_types::resources::Page;
use brokkr_types::webhooks::{
    CreateWebhook, DeliveryStatus, EventTypeInfo, TestEventSent, UpdateWebhook, Webhook,
    WebhookDelivery, WebhookWithSecret,
};
use serde::{Deserialize, Serialize};

use crate::http::caller::{AdminOrGenerator, Caller};
use crate::http::extract::{ApiJson, ApiQuery, IdPath, PageQuery};
use crate::http::{ApiResult, Secret};
use crate::state::AppState;

/// Every event type a subscription can name.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EventTypeList {
    pub items: Vec<EventTypeInfo>,
}

#[utoipa::path(get, path = "/api/v1/webhooks/event-types", tag = "webhooks",
    responses((status = 200, body = EventTypeList), (status = "4XX", body = Problem)))]
pub async fn event_types(
    State(state): State<AppState>,
    _caller: Caller<AdminOrGenerator>,
) -> Json<EventTypeList> {
    Json(EventTypeList {
        items: state.app.event_types(),
    })
}

#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks", request_body = CreateWebhook,
    responses((status = 201, body = WebhookWithSecret, description = "the subscription and its signing secret, shown once"),
              (status = "4XX", body = Problem)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    ApiJson(body): ApiJson<CreateWebhook>,
) -> ApiResult<(StatusCode, Secret<WebhookWithSecret>)> {
    let created = state.app.create_webhook(caller.requester(), body).await?;
    Ok((StatusCode::CREATED, Secret(created)))
}

#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks", params(PageQuery),
    responses((status = 200, body = Page<Webhook>), (status = "4XX", body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<Webhook>>> {
    let window = page.window()?;
    Ok(Json(
        state.app.list_webhooks(caller.requester(), window).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Webhook), (status = "4XX", body = Problem)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    IdPath(id): IdPath,
) -> ApiResult<Json<Webhook>> {
    Ok(Json(state.app.webhook(caller.requester(), id).await?))
}

#[utoipa::path(patch, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = uuid::Uuid, Path)), request_body = UpdateWebhook,
    responses((status = 200, body = Webhook), (status = "4XX", body = Problem)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    IdPath(id): IdPath,
    ApiJson(patch): ApiJson<UpdateWebhook>,
) -> ApiResult<Json<Webhook>> {
    Ok(Json(
        state
            .app
            .update_webhook(caller.requester(), id, patch)
            .await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 204), (status = "4XX", body = Problem)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    IdPath(id): IdPath,
) -> ApiResult<StatusCode> {
    state.app.delete_webhook(caller.requester(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/webhooks/{id}/rotate-secret", tag = "webhooks",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = WebhookWithSecret, description = "the new secret, shown once; the old one keeps signing for webhooks.secret_overlap_seconds"),
              (status = "4XX", body = Problem)))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    IdPath(id): IdPath,
) -> ApiResult<Secret<WebhookWithSecret>> {
    Ok(Secret(
        state
            .app
            .rotate_webhook_secret(caller.requester(), id)
            .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/webhooks/{id}/test", tag = "webhooks",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 202, body = TestEventSent), (status = "4XX", body = Problem)))]
pub async fn test(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    IdPath(id): IdPath,
) -> ApiResult<(StatusCode, Json<TestEventSent>)> {
    let sent = state.app.test_webhook(caller.requester(), id).await?;
    Ok((StatusCode::ACCEPTED, Json(sent)))
}

/// `?status=&limit=&offset=` of a subscription's delivery log.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    /// Only deliveries in this state.
    pub status: Option<DeliveryStatus>,
    pub limit: Option<u32>,
    pub offset: Option<u64>,
}

#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = uuid::Uuid, Path), DeliveryQuery),
    responses((status = 200, body = Page<WebhookDelivery>), (status = "4XX", body = Problem)))]
pub async fn deliveries(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    IdPath(id): IdPath,
    ApiQuery(query): ApiQuery<DeliveryQuery>,
) -> ApiResult<Json<Page<WebhookDelivery>>> {
    let window = PageQuery {
        limit: query.limit,
        offset: query.offset,
    }
    .window()?;
    Ok(Json(
        state
            .app
            .webhook_deliveries(caller.requester(), id, query.status, window)
            .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/webhook-deliveries/{id}/redeliver", tag = "webhooks",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 202, body = WebhookDelivery, description = "the new delivery of the same event"),
              (status = "4XX", body = Problem)))]
pub async fn redeliver(
    State(state): State<AppState>,
    caller: Caller<AdminOrGenerator>,
    IdPath(id): IdPath,
) -> ApiResult<(StatusCode, Json<WebhookDelivery>)> {
    let delivery = state.app.redeliver(caller.requester(), id).await?;
    Ok((StatusCode::ACCEPTED, Json(delivery)))
}
