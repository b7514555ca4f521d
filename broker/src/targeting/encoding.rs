//! Content codings of target-state answers: identity, or zstd when the agent asks for it with
//! `Accept-Encoding: zstd`. A zstd answer is a series of frames, which every RFC 8878 decoder
//! reads as one stream: each deployment object's entry is compressed once and its frame shared
//! by every answer holding it; only the few bytes particular to one answer (the agent's id and
//! ETag, its policies and work orders) are compressed per answer.

use std::cell::RefCell;
use std::sync::OnceLock;

use bytes::Bytes;

/// Level of an entry's frame, made once per deployment object on the blocking pool.
pub const ENTRY_LEVEL: i32 = 3;
/// Level of the small parts compressed per answer.
const ANSWER_LEVEL: i32 = 1;

/// How an answer's body is coded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Zstd,
}

impl Encoding {
    /// The coding to answer a request with `Accept-Encoding: accept`: zstd when it is listed
    /// with a non-zero quality (RFC 9110 §12.5.3), identity otherwise.
    pub fn negotiate(accept: Option<&str>) -> Self {
        let zstd = accept.is_some_and(|value| {
            value.split(',').any(|item| {
                let mut parts = item.split(';');
                let coding = parts.next().unwrap_or_default().trim();
                let quality = parts
                    .filter_map(|p| p.trim().strip_prefix("q="))
                    .filter_map(|q| q.trim().parse::<f32>().ok())
                    .next_back()
                    .unwrap_or(1.0);
                coding.eq_ignore_ascii_case("zstd") && quality > 0.0
            })
        });
        if zstd { Self::Zstd } else { Self::Identity }
    }

    /// The `Content-Encoding` of an answer in this coding.
    pub fn content_encoding(self) -> Option<&'static str> {
        match self {
            Self::Identity => None,
            Self::Zstd => Some("zstd"),
        }
    }
}

thread_local! {
    /// One compression context per thread, reused by every answer made on it.
    static ANSWER_CONTEXT: RefCell<Option<zstd::bulk::Compressor<'static>>> =
        const { RefCell::new(None) };
}

/// `bytes` as one zstd frame at `level` (a fresh context: for entries, made once each).
pub fn frame_at(bytes: &[u8], level: i32) -> std::io::Result<Bytes> {
    zstd::bulk::compress(bytes, level).map(Bytes::from)
}

/// `bytes` as one zstd frame, made with this thread's context (for the small per-answer parts).
pub fn answer_frame(bytes: &[u8]) -> std::io::Result<Bytes> {
    ANSWER_CONTEXT.with(|context| {
        let mut context = context.borrow_mut();
        let compressor = match context.as_mut() {
            Some(compressor) => compressor,
            None => context.insert(zstd::bulk::Compressor::new(ANSWER_LEVEL)?),
        };
        compressor.compress(bytes).map(Bytes::from)
    })
}

/// The frame of `,` (between two entries), made once.
pub fn comma_frame() -> std::io::Result<Bytes> {
    static COMMA: OnceLock<Bytes> = OnceLock::new();
    if let Some(frame) = COMMA.get() {
        return Ok(frame.clone());
    }
    let frame = frame_at(b",", ANSWER_LEVEL)?;
    Ok(COMMA.get_or_init(|| frame).clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zstd_is_chosen_only_when_accepted() {
        assert_eq!(Encoding::negotiate(None), Encoding::Identity);
        assert_eq!(Encoding::negotiate(Some("gzip, br")), Encoding::Identity);
        assert_eq!(Encoding::negotiate(Some("gzip, zstd")), Encoding::Zstd);
        assert_eq!(Encoding::negotiate(Some("ZSTD;q=0.5")), Encoding::Zstd);
        assert_eq!(Encoding::negotiate(Some("zstd;q=0")), Encoding::Identity);
        assert_eq!(
            Encoding::negotiate(Some("zstd; q=0.0, gzip")),
            Encoding::Identity
        );
        assert_eq!(Encoding::negotiate(Some("zstdx")), Encoding::Identity);
        assert_eq!(Encoding::negotiate(Some("*")), Encoding::Identity);
    }

    #[test]
    fn frames_made_apart_decode_as_one_stream() {
        let parts = [
            answer_frame(br#"{"a":["#).unwrap(),
            frame_at(&[b'x'; 10_000], ENTRY_LEVEL).unwrap(),
            comma_frame().unwrap(),
            frame_at(b"\"y\"", ENTRY_LEVEL).unwrap(),
            answer_frame(b"]}").unwrap(),
        ];
        let stream: Vec<u8> = parts.concat();
        assert!(stream.len() < 200, "10,000 repeated bytes compress");
        let decoded = zstd::stream::decode_all(stream.as_slice()).unwrap();
        let expected = format!("{{\"a\":[{},\"y\"]}}", "x".repeat(10_000));
        assert_eq!(decoded, expected.as_bytes());
    }
}
