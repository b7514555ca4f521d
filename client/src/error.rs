//! What can go wrong talking to the broker, with the broker's problem+json answer kept whole.

use brokkr_types::Problem;

/// A failed call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The broker could not be reached, or the connection broke.
    #[error("cannot reach the broker: {0}")]
    Transport(#[from] reqwest::Error),
    /// The broker refused the request; `problem` is its RFC 7807 answer.
    #[error("{} ({}): {}", problem.status, problem.code, problem.detail)]
    Problem { problem: Box<Problem> },
    /// The broker answered something this client cannot read.
    #[error("the broker's answer is not usable: {0}")]
    Decode(String),
    /// The client was configured with something unusable (a bad URL, CA or certificate).
    #[error("invalid client settings: {0}")]
    Settings(String),
    /// A name the caller gave matches more than one resource.
    #[error("{0}")]
    Ambiguous(String),
}

impl ClientError {
    /// The problem's stable code (`not_found`, `validation_failed`, …), when the broker answered.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Problem { problem } => Some(problem.code.as_str()),
            _ => None,
        }
    }

    /// The HTTP status, when the broker answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Problem { problem } => Some(problem.status),
            _ => None,
        }
    }

    /// Whether the PAK itself was refused (rotated or revoked).
    pub fn is_unauthorized(&self) -> bool {
        self.status() == Some(401)
    }

    /// Whether the broker refused an agent's write because an admin set the agent inactive;
    /// the same write succeeds once it is active again.
    pub fn is_inactive(&self) -> bool {
        self.code() == Some("agent_inactive")
    }

    /// Whether asking again later can succeed: the broker was away, overloaded or timed out.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Transport(e) => e.is_connect() || e.is_timeout() || e.is_request(),
            Self::Problem { problem } => problem.status >= 500 || problem.status == 429,
            Self::Decode(_) | Self::Settings(_) | Self::Ambiguous(_) => false,
        }
    }
}

/// The problem of an error answer (a synthesised one when the body is not problem+json).
pub(crate) fn problem_of(status: u16, body: &[u8]) -> Problem {
    serde_json::from_slice(body).unwrap_or_else(|_| Problem {
        kind: "about:blank".into(),
        title: "unexpected answer".into(),
        status,
        detail: String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned(),
        code: "unexpected_answer".into(),
        request_id: None,
        errors: Vec::new(),
    })
}
