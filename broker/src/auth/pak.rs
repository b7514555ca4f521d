//! PAK format: `brokkr_BR{short}_{long}`. The short token is the lookup key; only SHA-256 of
//! the long token is stored, and comparison is constant-time. Enrollment tokens have the same
//! shape with the prefix `brokkr_ET`.

use rand::RngExt;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use brokkr_types::Pak;

use crate::db::paks::StoredPak;

const PREFIX: &str = "brokkr_BR";
/// The prefix of agent enrollment tokens.
pub const ENROLLMENT_PREFIX: &str = "brokkr_ET";
pub const SHORT_LEN: usize = 8;
pub const LONG_LEN: usize = 32;

/// A freshly generated key: the full PAK (shown once) and what is stored.
#[derive(Debug)]
pub struct NewPak {
    pub pak: Pak,
    pub short: String,
    pub long_hash: [u8; 32],
}

impl NewPak {
    /// What the database keeps of it.
    pub fn stored(&self) -> StoredPak<'_> {
        StoredPak {
            short: &self.short,
            long_hash: &self.long_hash,
        }
    }
}

/// The two halves of a presented PAK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedPak<'a> {
    pub short: &'a str,
    pub long: &'a str,
}

pub(crate) fn random_token(len: usize) -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// Generates a new PAK from the operating system's CSPRNG-seeded generator.
pub fn generate() -> NewPak {
    generate_with(PREFIX)
}

/// A new secret of the PAK shape with another prefix (enrollment tokens).
pub fn generate_with(prefix: &str) -> NewPak {
    let short = random_token(SHORT_LEN);
    let long = random_token(LONG_LEN);
    let long_hash = hash_long(&long);
    NewPak {
        pak: Pak::new(format!("{prefix}{short}_{long}")),
        short,
        long_hash,
    }
}

/// A PAK made elsewhere (a Secret the Helm chart generated), taken as this broker's own.
pub fn adopt(text: &str) -> Option<NewPak> {
    let parsed = parse(text)?;
    Some(NewPak {
        pak: Pak::new(text.to_string()),
        short: parsed.short.to_string(),
        long_hash: hash_long(parsed.long),
    })
}

/// Splits a presented PAK; `None` when it is not of the Brokkr format.
pub fn parse(presented: &str) -> Option<ParsedPak<'_>> {
    parse_with(PREFIX, presented)
}

/// [`parse`] for secrets of the PAK shape with another prefix.
pub fn parse_with<'a>(prefix: &str, presented: &'a str) -> Option<ParsedPak<'a>> {
    let rest = presented.strip_prefix(prefix)?;
    let (short, long) = rest.split_once('_')?;
    let alnum =
        |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_alphanumeric());
    (alnum(short, SHORT_LEN) && alnum(long, LONG_LEN)).then_some(ParsedPak { short, long })
}

pub fn hash_long(long: &str) -> [u8; 32] {
    Sha256::digest(long.as_bytes()).into()
}

/// Compares the presented long token with a stored hash in constant time.
pub fn verify(long: &str, stored_hash: &[u8]) -> bool {
    hash_long(long).as_slice().ct_eq(stored_hash).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_paks_parse_and_verify() {
        let new = generate();
        let text = new.pak.expose().to_string();
        assert!(text.starts_with("brokkr_BR"));
        let parsed = parse(&text).unwrap();
        assert_eq!(parsed.short, new.short);
        assert!(verify(parsed.long, &new.long_hash));
        assert!(!verify("x".repeat(LONG_LEN).as_str(), &new.long_hash));
        assert!(
            !verify(parsed.long, &new.long_hash[..31]),
            "a short hash never matches"
        );
    }

    #[test]
    fn malformed_paks_are_rejected() {
        for bad in [
            "",
            "brokkr_BR",
            "brokkr_BRabc_def",
            "brk_gen_abc123",
            "brokkr_BRabcdefgh_short",
            "brokkr_BRabcdefg!_0123456789abcdef0123456789abcdef",
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn two_paks_differ() {
        assert_ne!(generate().pak, generate().pak);
    }
}
