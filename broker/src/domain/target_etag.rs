//! The ETag of an agent's target state: a digest of which deployment object each stack is at.

use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Digest of `(stack, deployment object)` pairs (already ordered) and of the other parts of the
/// body (the policies the agent must run, the work waiting for it); 32 hex characters.
pub fn etag(agent_id: Uuid, pairs: &[(Uuid, Uuid)], parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(agent_id.as_bytes());
    for part in parts {
        // Length-prefixed, so moving bytes between parts changes the digest.
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    for (stack, object) in pairs {
        hasher.update(stack.as_bytes());
        hasher.update(object.as_bytes());
    }
    hex::encode(&hasher.finalize()[..16])
}

/// Whether an `If-None-Match` header value matches `etag` (handles lists, `W/` and `*`).
pub fn matches(if_none_match: &str, etag: &str) -> bool {
    if_none_match.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.trim_start_matches("W/").trim_matches('"') == etag
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_changes_with_content() {
        let agent = Uuid::new_v4();
        let (s, d1, d2) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(
            etag(agent, &[(s, d1)], &[b"[]"]),
            etag(agent, &[(s, d1)], &[b"[]"])
        );
        assert_ne!(
            etag(agent, &[(s, d1)], &[b"[]"]),
            etag(agent, &[(s, d2)], &[b"[]"])
        );
        assert_ne!(
            etag(agent, &[], &[b"[]"]),
            etag(Uuid::new_v4(), &[], &[b"[]"])
        );
    }

    #[test]
    fn if_none_match_forms() {
        assert!(matches("\"abc\"", "abc"));
        assert!(matches("W/\"abc\"", "abc"));
        assert!(matches("\"x\", \"abc\"", "abc"));
        assert!(matches("*", "abc"));
        assert!(!matches("\"abd\"", "abc"));
    }
}
