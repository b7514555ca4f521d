//! [`AppError`]: why a use case refused or failed, without any HTTP in it. The HTTP layer maps
//! each variant to a status and a problem+json body.

use brokkr_types::problem::FieldError;

pub use crate::db::StoreError;

/// A use case's failure.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The resource does not exist, or the requester may not know that it does.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The credential presented is not valid.
    #[error("{detail}")]
    Unauthenticated {
        code: &'static str,
        detail: &'static str,
    },
    /// The requester may not do this.
    #[error("{detail}")]
    Forbidden { code: &'static str, detail: String },
    /// The change conflicts with the current state (or needs confirmation).
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },
    /// The input is well-formed but cannot be accepted.
    #[error("{detail}")]
    Invalid {
        code: &'static str,
        detail: String,
        errors: Vec<FieldError>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Something that should not happen; the detail is logged, never shown.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::Forbidden {
            code: "forbidden",
            detail: detail.into(),
        }
    }

    pub fn invalid(code: &'static str, detail: impl Into<String>) -> Self {
        Self::Invalid {
            code,
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            detail: detail.into(),
        }
    }

    /// An agent whose status is not active tried to write.
    pub fn agent_inactive() -> Self {
        Self::Forbidden {
            code: "agent_inactive",
            detail: "this agent is inactive: it may read its target state, but an admin must set \
                     its status to active before it may write"
                .into(),
        }
    }
}

pub type AppResult<T> = Result<T, AppError>;
