//! A bare HTTP/1.1 long poll for the fan-out scenarios: one connection per agent, the request
//! written whole, the answer read to its last byte and timed. A full client (reqwest over
//! hyper: a connection task, a dispatch channel and a response stream per request) costs the
//! load generator about as much CPU per answer as the broker spends; this reader costs a few
//! microseconds, so on the two cores both share the figure measures the broker.

use std::net::SocketAddr;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

/// Most response headers an answer may carry.
const MAX_HEADERS: usize = 32;

/// The bytes of a `GET path` to `host` with `headers`.
pub fn get(host: &str, path: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut text = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text.into_bytes()
}

/// The address of an `http://host:port` URL.
pub fn address_of(url: &str) -> Result<SocketAddr> {
    let authority = url
        .strip_prefix("http://")
        .with_context(|| format!("{url} is not a plain http:// URL"))?;
    authority
        .trim_end_matches('/')
        .parse()
        .with_context(|| format!("{url} does not name an address and port"))
}

/// An answer: when its last byte arrived, its status, and the connection (kept alive, as an
/// agent keeps it, until dropped).
#[derive(Debug)]
pub struct Answered {
    pub at: DateTime<Utc>,
    pub status: u16,
    pub connection: TcpStream,
}

/// Sends `request` on a new connection to `addr`, then reads its answer. Connecting and
/// sending hold a permit of `connecting`: a fleet's agents do not all connect in the same
/// millisecond, and a burst of thousands of connects can overflow the listen backlog, so the
/// figures would then time the kernel's SYN retransmits instead of the broker.
pub async fn exchange(
    addr: SocketAddr,
    request: &[u8],
    connecting: &Semaphore,
) -> Result<Answered> {
    let permit = connecting.acquire().await?;
    let mut connection = TcpStream::connect(addr).await?;
    connection.set_nodelay(true)?;
    connection.write_all(request).await?;
    drop(permit);
    let (at, status) = answer(&mut connection).await?;
    Ok(Answered {
        at,
        status,
        connection,
    })
}

/// Reads one answer whole (its `Content-Length` says how much body follows the head).
async fn answer(stream: &mut TcpStream) -> Result<(DateTime<Utc>, u16)> {
    let mut buf = Vec::with_capacity(2048);
    loop {
        if stream.read_buf(&mut buf).await? == 0 {
            bail!("the connection closed before an answer's head arrived");
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        let httparse::Status::Complete(head) = response.parse(&buf)? else {
            continue;
        };
        let status = response.code.unwrap_or_default();
        let length = body_length(status, response.headers)?;
        while buf.len() < head + length {
            if stream.read_buf(&mut buf).await? == 0 {
                bail!("the connection closed inside an answer's body");
            }
        }
        return Ok((Utc::now(), status));
    }
}

/// The body's length: `Content-Length`, or none for an answer that carries no body.
fn body_length(status: u16, headers: &[httparse::Header<'_>]) -> Result<usize> {
    let declared = headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .map(|h| std::str::from_utf8(h.value).map(str::trim));
    match declared {
        Some(value) => Ok(value?.parse()?),
        None if status == 304 || status == 204 => Ok(0),
        None => bail!("a {status} answer without Content-Length (this reader does not do chunks)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(name: &'a str, value: &'a [u8]) -> httparse::Header<'a> {
        httparse::Header { name, value }
    }

    #[test]
    fn a_body_is_as_long_as_declared() {
        let declared = [header("Content-Length", b" 42")];
        assert_eq!(body_length(200, &declared).unwrap(), 42);
        assert_eq!(body_length(304, &[]).unwrap(), 0);
        assert!(
            body_length(200, &[]).is_err(),
            "chunked answers are refused"
        );
    }

    #[test]
    fn requests_end_with_an_empty_line() {
        let bytes = get("h:1", "/p", &[("If-None-Match", "\"x\"")]);
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            "GET /p HTTP/1.1\r\nHost: h:1\r\nIf-None-Match: \"x\"\r\n\r\n"
        );
        assert_eq!(address_of("http://127.0.0.1:3000").unwrap().port(), 3000);
    }
}
