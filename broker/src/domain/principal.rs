//! Who is calling, as established by a PAK, and the roles endpoints admit.

use uuid::Uuid;

/// An authenticated principal.
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

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Generator => "generator",
            Self::Agent => "agent",
        }
    }
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
        let id = match self {
            Self::Admin => Uuid::nil(),
            Self::Generator(id) | Self::Agent(id) => id,
        };
        (self.role().name(), id)
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
        let (kind, id) = self.parts();
        (kind, (self != Self::Admin).then_some(id))
    }

    /// The generator this principal is, if it is one.
    pub fn generator(self) -> Option<Uuid> {
        match self {
            Self::Generator(id) => Some(id),
            _ => None,
        }
    }
}
