//! A TCP proxy in front of PostgreSQL that the test can take down and bring back, so the
//! broker sees what a database restart looks like (connections terminated by the server,
//! then refused, then accepted again) without disturbing the server other tests use.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// The proxy: its port stays the same across outages.
#[derive(Debug)]
pub struct Proxy {
    pub port: u16,
    upstream: SocketAddr,
    serving: Option<JoinHandle<()>>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let serving = Some(tokio::spawn(forward(listener, upstream)));
        Self {
            port,
            upstream,
            serving,
        }
    }

    /// Closes the listener and every forwarded connection.
    pub async fn take_down(&mut self) {
        if let Some(serving) = self.serving.take() {
            serving.abort();
            let _ = serving.await;
        }
    }

    /// Listens again on the same port.
    pub async fn bring_back(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        self.serving = Some(tokio::spawn(forward(listener, self.upstream)));
    }
}

/// Accepts connections and pipes each to `upstream`; aborting it drops every pipe.
async fn forward(listener: TcpListener, upstream: SocketAddr) {
    let mut pipes = JoinSet::new();
    loop {
        let Ok((mut client, _)) = listener.accept().await else {
            continue;
        };
        pipes.spawn(async move {
            if let Ok(mut server) = TcpStream::connect(upstream).await {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            }
        });
        while pipes.try_join_next().is_some() {}
    }
}

/// Where the test PostgreSQL server listens, read from its URL.
pub fn postgres_address(url: &str) -> SocketAddr {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let host = host.split('/').next().unwrap_or("127.0.0.1:5432");
    let host = if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:5432")
    };
    let host = host.replace("localhost", "127.0.0.1");
    host.parse().unwrap()
}
