//! Authentication (PAK → [`Principal`], through a TTL cache) and the role checks handlers use.

pub mod cache;
pub mod caller;
pub mod pak;
pub mod throttle;

use uuid::Uuid;

pub use cache::Authenticator;
pub use caller::Caller;

/// Who is calling, as established by their PAK.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Principal {
    Admin,
    Generator(Uuid),
    Agent(Uuid),
}

/// The kind of principal, for endpoint-level checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Generator,
    Agent,
}

impl Principal {
    pub fn role(self) -> Role {
        match self {
            Self::Admin => Role::Admin,
            Self::Generator(_) => Role::Generator,
            Self::Agent(_) => Role::Agent,
        }
    }

    /// The stored `(principal_type, principal_id)` pair; the admin's id is the nil UUID.
    pub fn parts(self) -> (&'static str, Uuid) {
        match self {
            Self::Admin => ("admin", Uuid::nil()),
            Self::Generator(id) => ("generator", id),
            Self::Agent(id) => ("agent", id),
        }
    }

    pub fn from_parts(kind: &str, id: Uuid) -> Option<Self> {
        match kind {
            "admin" => Some(Self::Admin),
            "generator" => Some(Self::Generator(id)),
            "agent" => Some(Self::Agent(id)),
            _ => None,
        }
    }

    /// `(actor_type, actor_id)` as recorded in the audit log.
    pub fn actor(self) -> (&'static str, Option<Uuid>) {
        match self {
            Self::Admin => ("admin", None),
            Self::Generator(id) => ("generator", Some(id)),
            Self::Agent(id) => ("agent", Some(id)),
        }
    }
}
