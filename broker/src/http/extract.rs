//! Extractors whose rejections are problem+json: JSON bodies (unknown fields rejected, values
//! validated while parsing), query strings, path ids, and deployment-object bodies in JSON or YAML.

use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use brokkr_types::problem::FieldError;
use brokkr_types::requests::CreateDeploymentObject;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::error::ApiError;
use crate::app::Guard;
use crate::domain::Window;
use crate::state::AppState;

/// A JSON request body, parsed into a type that can only hold valid values.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

/// Reads the whole body, answering 413 beyond `broker.max_body_bytes`.
async fn body_bytes(request: Request, state: &AppState) -> Result<Bytes, ApiError> {
    Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge {
                    limit: usize::try_from(state.app.settings.broker.max_body_bytes)
                        .unwrap_or(usize::MAX),
                }
            } else {
                ApiError::bad_request("invalid_body", "the request body could not be read")
            }
        })
}

fn media_type(request: &Request) -> Option<String> {
    let value = request.headers().get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(
        value
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase(),
    )
}

fn is_json(media: &str) -> bool {
    media == "application/json" || (media.starts_with("application/") && media.ends_with("+json"))
}

fn is_yaml(media: &str) -> bool {
    matches!(
        media,
        "application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml"
    )
}

/// Parses JSON, telling syntax errors (400) from invalid values (422) and naming the field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::bad_request(
                "malformed_json",
                format!("the body is not valid JSON: {inner}"),
            );
        }
        let message = inner.to_string();
        let code = if message.starts_with("unknown field") {
            "unknown_field"
        } else if path.ends_with("target_expression") {
            "invalid_expression"
        } else {
            "validation_failed"
        };
        let message = strip_position(&message);
        ApiError::Unprocessable {
            code,
            detail: if path == "." {
                message.clone()
            } else {
                format!("{path}: {message}")
            },
            errors: vec![FieldError {
                location: path,
                message,
            }],
        }
    })
}

/// Drops serde_json's " at line 1 column 9" suffix, which adds nothing for a one-line body.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        match media_type(&request) {
            Some(media) if is_json(&media) => {}
            other => {
                return Err(ApiError::UnsupportedMediaType(format!(
                    "expected Content-Type: application/json, got {}",
                    other.as_deref().unwrap_or("none")
                )));
            }
        }
        let bytes = body_bytes(request, state).await?;
        parse_json(&bytes).map(Self)
    }
}

/// The YAML text of a new deployment object: `{"yaml_content": …}` as JSON, or a raw YAML
/// body sent with a YAML content type.
#[derive(Debug)]
pub struct ManifestBody(pub CreateDeploymentObject);

impl FromRequest<AppState> for ManifestBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let media = media_type(&request).unwrap_or_default();
        if is_json(&media) {
            let bytes = body_bytes(request, state).await?;
            return parse_json(&bytes).map(Self);
        }
        if !is_yaml(&media) {
            return Err(ApiError::UnsupportedMediaType(format!(
                "send JSON ({{\"yaml_content\": …}}) or YAML (Content-Type: application/yaml), got {}",
                if media.is_empty() { "none" } else { &media }
            )));
        }
        let bytes = body_bytes(request, state).await?;
        let yaml_content = String::from_utf8(bytes.to_vec()).map_err(|_| {
            ApiError::bad_request("invalid_body", "the YAML body is not valid UTF-8")
        })?;
        Ok(Self(CreateDeploymentObject { yaml_content }))
    }
}

/// A query string parsed into `T`.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        if query.to_ascii_lowercase().contains("%00") {
            return Err(ApiError::bad_request(
                "invalid_query",
                "query parameters must not contain NUL characters",
            ));
        }
        serde_urlencoded::from_str(query).map(Self).map_err(|e| {
            ApiError::bad_request("invalid_query", format!("invalid query string: {e}"))
        })
    }
}

/// A resource id from the path. A malformed id cannot name anything, so it answers 404.
#[derive(Debug, Clone, Copy)]
pub struct IdPath(pub Uuid);

/// A resource named in the path by id or by name (`/templates/{id or name}`).
#[derive(Debug, Clone)]
pub enum IdOrNamePath {
    Id(Uuid),
    Name(brokkr_types::Name),
}

impl<S: Send + Sync> FromRequestParts<S> for IdOrNamePath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::NotFound("resource"))?;
        if let Ok(id) = Uuid::parse_str(&raw) {
            return Ok(Self::Id(id));
        }
        brokkr_types::Name::parse(raw)
            .map(Self::Name)
            .map_err(|_| ApiError::NotFound("resource"))
    }
}

/// A resource id and a second path segment, such as `/agents/{id}/labels/{label}`.
#[derive(Debug, Clone)]
pub struct IdAnd<T>(pub Uuid, pub T);

fn parse_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound("resource"))
}

impl<S: Send + Sync> FromRequestParts<S> for IdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::NotFound("resource"))?;
        parse_id(&raw).map(Self)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IdAnd<String> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path((id, second)) = Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::NotFound("resource"))?;
        Ok(Self(parse_id(&id)?, second))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IdAnd<Uuid> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let IdAnd(id, second) = IdAnd::<String>::from_request_parts(parts, state).await?;
        Ok(Self(id, parse_id(&second)?))
    }
}

/// The hex SHA-256 digest naming a plugin module. Anything else names nothing: 404.
#[derive(Debug, Clone)]
pub struct DigestPath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for DigestPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::NotFound("module"))?;
        let digest = raw.len() == 64 && raw.bytes().all(|b| b.is_ascii_hexdigit());
        if digest {
            Ok(Self(raw.to_ascii_lowercase()))
        } else {
            Err(ApiError::NotFound("module"))
        }
    }
}

/// `?limit=&offset=` of every list endpoint.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Items per page, 1 to 1000 (default 100).
    pub limit: Option<u32>,
    /// Items to skip (default 0).
    pub offset: Option<u64>,
}

pub const DEFAULT_LIMIT: u32 = 100;
pub const MAX_LIMIT: u32 = 1000;

impl PageQuery {
    pub fn window(&self) -> Result<Window, ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("limit must be between 1 and {MAX_LIMIT}"),
            ));
        }
        Ok(Window {
            limit,
            offset: self.offset.unwrap_or(0),
        })
    }
}

/// `?dry_run=` and `?confirm=` of changes that can retarget.
#[derive(Debug, Default, Clone, Copy, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ChangeOptions {
    /// Only report which agents (or stacks) would gain and lose stacks; change nothing.
    pub dry_run: Option<bool>,
    /// Accept a change that untargets stacks from more agents than the guard allows.
    pub confirm: Option<bool>,
}

impl ChangeOptions {
    pub fn guard(self) -> Guard {
        Guard {
            dry_run: self.dry_run.unwrap_or(false),
            confirm: self.confirm.unwrap_or(false),
        }
    }
}

/// A long poll's `?wait=` (0 to `targeting.max_wait_seconds`) and the `If-None-Match` it holds on,
/// copied: a poll that waits need not keep the request's headers (and the connection's read
/// buffer they share) alive.
pub fn long_poll(
    state: &AppState,
    wait: Option<u64>,
    headers: &axum::http::HeaderMap,
) -> Result<(std::time::Duration, Option<String>), ApiError> {
    let max = state.app.settings.targeting.max_wait_seconds;
    let wait = wait.unwrap_or(0);
    if wait > max {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("wait must be between 0 and {max} seconds"),
        ));
    }
    let held = headers
        .get(axum::http::header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok((std::time::Duration::from_secs(wait), held))
}
