//! `GET /api/v1/agents/{id}/target-state`: the full desired state of an agent with an ETag.
//! `If-None-Match` with the current ETag answers `304 Not Modified` from memory, without the
//! database; with `?wait=N` (N ≤ `targeting.max_wait_seconds`) the request is held until the
//! state changes or N seconds pass. With `Accept-Encoding: zstd` a full answer is compressed
//! (`Content-Encoding: zstd`); the ETag names the state, whichever coding carries it.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use brokkr_types::Problem;
use serde::Deserialize;

use crate::app::target_state::TargetState;
use crate::http::ApiResult;
use crate::http::caller::{AdminOrAgent, Caller};
use crate::http::extract::{ApiQuery, IdPath, long_poll};
use crate::http::parts_body::PartsBody;
use crate::state::AppState;
use crate::targeting::encoding::Encoding;

/// `?wait=` of a long poll.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TargetStateQuery {
    /// Seconds to wait for a change when `If-None-Match` matches (0–60).
    pub wait: Option<u64>,
}

fn with_etag(mut response: Response, etag: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(&format!("\"{etag}\"")) {
        response.headers_mut().insert(header::ETAG, value);
    }
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    response
}

#[utoipa::path(get, path = "/api/v1/agents/{id}/target-state", tag = "agents",
    params(("id" = Uuid, Path), TargetStateQuery,
           ("If-None-Match" = Option<String>, Header, description = "ETag of the state the agent holds"),
           ("Accept-Encoding" = Option<String>, Header, description = "`zstd` for a compressed answer")),
    responses((status = 200, body = brokkr_types::target_state::TargetState),
               (status = 304, description = "unchanged"), (status = "4XX", body = Problem)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller<AdminOrAgent>,
    IdPath(id): IdPath,
    ApiQuery(query): ApiQuery<TargetStateQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (wait, held) = long_poll(&state, query.wait, &headers)?;
    let accept = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok());
    let encoding = Encoding::negotiate(accept);
    // A waiting poll holds none of the request's headers: they share the connection's read
    // buffer, which hyper would otherwise have to replace while the poll waits.
    drop(headers);
    let answer = state
        .app
        .target_state(caller.requester(), id, (held.as_deref(), wait), encoding)
        .await?;
    Ok(match answer {
        TargetState::Full {
            body,
            etag,
            encoding,
        } => {
            let body = axum::body::Body::new(PartsBody::new(body));
            let mut response = ([(header::CONTENT_TYPE, "application/json")], body).into_response();
            if let Some(coding) = encoding.content_encoding() {
                let value = HeaderValue::from_static(coding);
                response
                    .headers_mut()
                    .insert(header::CONTENT_ENCODING, value);
            }
            with_etag(response, &etag)
        }
        TargetState::NotModified { etag } => {
            with_etag(StatusCode::NOT_MODIFIED.into_response(), &etag)
        }
    })
}
