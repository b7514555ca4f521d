//! [`ApiError`]: every failure a handler can return, mapped to an RFC 7807 problem+json body
//! with a stable `code` and the request id. A 500 never reveals internals.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use brokkr_types::problem::{FieldError, PROBLEM_CONTENT_TYPE, Problem};

use super::request_id;
use crate::app::AppError;
use crate::app::error::StoreError;
use crate::auth::cache::AuthError;

/// An error answered to the client as `application/problem+json`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{detail}")]
    Unauthenticated {
        code: &'static str,
        detail: &'static str,
    },
    #[error("{detail}")]
    Forbidden { code: &'static str, detail: String },
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },
    #[error("{detail}")]
    BadRequest {
        code: &'static str,
        detail: String,
        errors: Vec<FieldError>,
    },
    #[error("{detail}")]
    Unprocessable {
        code: &'static str,
        detail: String,
        errors: Vec<FieldError>,
    },
    #[error("request body exceeds the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("this method is not allowed on this path")]
    MethodNotAllowed,
    #[error("{0}")]
    Unavailable(String),
    #[error("too many failed authentications from this address; retry in {retry_after} seconds")]
    TooManyFailures { retry_after: u64 },
    #[error("the broker is at its limit of requests in progress; retry shortly")]
    Overloaded,
    #[error("the request took longer than {seconds} seconds and was abandoned")]
    Timeout { seconds: u64 },
    #[error("internal error: {0}")]
    Internal(String),
    /// A refusal from below the handlers (the router, hyper) that carried no problem of its own.
    #[error("{detail}")]
    Status { status: StatusCode, detail: String },
}

impl ApiError {
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::Forbidden {
            code: "forbidden",
            detail: detail.into(),
        }
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    pub fn unprocessable(code: &'static str, detail: impl Into<String>) -> Self {
        Self::Unprocessable {
            code,
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    /// 503 for a database that cannot be reached right now; the cause is logged, not shown.
    fn database_unavailable(cause: &StoreError) -> Self {
        tracing::warn!(cause = %cause, "the database is unavailable");
        Self::Unavailable("the database is unavailable; retry shortly".into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::TooManyFailures { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Overloaded | Self::Timeout { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Status { status, .. } => *status,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated { code, .. } => code,
            Self::Forbidden { code, .. } => code,
            Self::NotFound(_) => "not_found",
            Self::Conflict { code, .. } => code,
            Self::BadRequest { code, .. } => code,
            Self::Unprocessable { code, .. } => code,
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Unavailable(_) => "unavailable",
            Self::TooManyFailures { .. } => "too_many_failures",
            Self::Overloaded => "overloaded",
            Self::Timeout { .. } => "timeout",
            Self::Internal(_) => "internal",
            Self::Status { status, .. } => match status.as_u16() {
                400 => "bad_request",
                404 => "not_found",
                405 => "method_not_allowed",
                408 => "request_timeout",
                413 => "payload_too_large",
                414 => "uri_too_long",
                415 => "unsupported_media_type",
                431 => "headers_too_large",
                s if s >= 500 => "internal",
                _ => "error",
            },
        }
    }

    /// The body sent to the client. Internal details stay in the log.
    pub fn to_problem(&self) -> Problem {
        let status = self.status();
        let detail = match self {
            Self::Internal(_) => {
                "an internal error occurred; quote the request id when reporting it".to_string()
            }
            other => other.to_string(),
        };
        let errors = match self {
            Self::BadRequest { errors, .. } | Self::Unprocessable { errors, .. } => errors.clone(),
            _ => Vec::new(),
        };
        let code = self.code();
        Problem {
            kind: format!("https://brokkr.dev/problems/{}", code.replace('_', "-")),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail,
            code: code.to_string(),
            request_id: request_id::current(),
            errors,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(cause) = &self {
            tracing::error!(cause = %cause, request_id = request_id::current().as_deref().unwrap_or("-"), "request failed");
        }
        let status = self.status();
        let body = serde_json::to_vec(&self.to_problem()).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
        );
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        let retry_after = match &self {
            Self::TooManyFailures { retry_after } => Some(*retry_after),
            Self::Overloaded | Self::Timeout { .. } | Self::Unavailable(_) => Some(1),
            _ => None,
        };
        if let Some(value) = retry_after.and_then(|s| HeaderValue::from_str(&s.to_string()).ok()) {
            headers.insert(header::RETRY_AFTER, value);
        }
        response
    }
}

impl From<AppError> for ApiError {
    fn from(err: AppError) -> Self {
        match err {
            AppError::NotFound(what) => Self::NotFound(what),
            AppError::Unauthenticated { code, detail } => Self::Unauthenticated { code, detail },
            AppError::Forbidden { code, detail } => Self::Forbidden { code, detail },
            AppError::Conflict { code, detail } => Self::Conflict { code, detail },
            AppError::Invalid {
                code,
                detail,
                errors,
            } => Self::Unprocessable {
                code,
                detail,
                errors,
            },
            AppError::Store(StoreError::Conflict(detail)) => Self::Conflict {
                code: "conflict",
                detail,
            },
            AppError::Store(other) if other.is_unavailable() => Self::database_unavailable(&other),
            AppError::Store(other) => Self::Internal(other.to_string()),
            AppError::Internal(cause) => Self::Internal(cause),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::Missing => Self::Unauthenticated {
                code: "unauthenticated",
                detail: "this endpoint requires a PAK in the Authorization or X-Generator-Key header",
            },
            AuthError::Malformed => Self::Unauthenticated {
                code: "invalid_pak",
                detail: "the PAK is malformed (expected brokkr_BR<short>_<long>)",
            },
            AuthError::Invalid => Self::Unauthenticated {
                code: "invalid_pak",
                detail: "the PAK is not valid (unknown, rotated or revoked)",
            },
            AuthError::Lookup(cause) if cause.is_unavailable() => {
                Self::database_unavailable(&cause)
            }
            AuthError::Lookup(cause) => Self::Internal(cause.to_string()),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Turns any error response that is not already problem+json (a rejection from the router
/// itself, say an undecodable path) into one, so every error the broker emits is a problem.
pub fn ensure_problem(response: Response) -> Response {
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_CONTENT_TYPE.as_bytes()));
    // The console answers people with pages of its own.
    let is_page = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if !(status.is_client_error() || status.is_server_error()) || is_problem || is_page {
        return response;
    }
    let detail = status
        .canonical_reason()
        .unwrap_or("the request was refused")
        .to_string();
    let mut problem = ApiError::Status { status, detail }.into_response();
    for name in [header::ALLOW, header::RETRY_AFTER] {
        if let Some(value) = response.headers().get(&name) {
            problem.headers_mut().insert(name, value.clone());
        }
    }
    problem
}
