//! The accept loop: HTTP/1.1 connections served by hyper under bounds an exposed server needs.
//! At most `broker.max_connections` are open at once (further ones wait in the listen backlog
//! and never disturb established ones); a client must send a request's headers within
//! `broker.header_read_timeout_seconds`, which also closes keep-alive connections left idle;
//! accept errors (file descriptors exhausted) back off instead of spinning. With TLS the
//! handshake must also finish within that time, and the client certificate a connection
//! presented goes to every request on it. On shutdown every connection finishes its request
//! and closes.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tower::ServiceExt;

use super::tls::{ClientCertificate, Tls};

/// Bounds on connections, and TLS when it is on.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub tls: Option<Arc<Tls>>,
}

/// Connections the kernel completes and queues before the accept loop takes them. The usual
/// default (128) is far too few for a fleet: when a broker restarts, thousands of agents
/// reconnect at once, and every SYN beyond the queue is dropped and retried a second or more
/// later. Linux caps it at `net.core.somaxconn` (4096 by default).
pub const LISTEN_BACKLOG: u32 = 4096;

/// A listener on `addr` with a queue of [`LISTEN_BACKLOG`] connections.
pub fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Serves `router` on `listener` until `shutdown` completes, then drains every connection.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stop, stopped) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = accept(&listener, &permits) => accepted,
        };
        let (stream, peer, permit) = accepted;
        let connection = serve_connection(
            stream,
            peer,
            router.clone(),
            limits.clone(),
            stopped.clone(),
        );
        connections.spawn(async move {
            connection.await;
            drop(permit);
        });
        while connections.try_join_next().is_some() {}
    }
    let _ = stop.send(true);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// The next connection, once one of the permitted slots is free.
async fn accept(
    listener: &TcpListener,
    permits: &Arc<Semaphore>,
) -> (TcpStream, SocketAddr, OwnedSemaphorePermit) {
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            // The semaphore is never closed; wait for shutdown instead of spinning.
            std::future::pending::<()>().await;
            continue;
        };
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                return (stream, peer, permit);
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot accept a connection; retrying shortly");
                drop(permit);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Serves one connection: plain, or once its TLS handshake finished in time. The TLS states
/// (the handshake, the stream's buffers) are boxed apart, so the task of a plain connection,
/// held for as long as it stays open, carries none of them.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: ConnectionLimits,
    stopped: watch::Receiver<bool>,
) {
    match limits.tls.as_ref().and_then(|tls| tls.acceptor()) {
        None => serve_io(stream, peer, None, router, &limits, stopped).await,
        Some(acceptor) => {
            let tls = serve_tls(acceptor, stream, peer, router, &limits, stopped);
            Box::pin(tls).await;
        }
    }
}

async fn serve_tls(
    acceptor: tokio_rustls::TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: &ConnectionLimits,
    stopped: watch::Receiver<bool>,
) {
    let handshake = tokio::time::timeout(limits.header_read_timeout, acceptor.accept(stream));
    let stream = match handshake.await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => return,
    };
    let certificate = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|leaf| ClientCertificate(Arc::new(leaf.clone().into_owned())));
    serve_io(stream, peer, certificate, router, limits, stopped).await
}

async fn serve_io<I>(
    io: I,
    peer: SocketAddr,
    certificate: Option<ClientCertificate>,
    router: Router,
    limits: &ConnectionLimits,
    mut stopped: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = router.map_request(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        if let Some(certificate) = &certificate {
            request.extensions_mut().insert(certificate.clone());
        }
        request
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let connection = builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(service));
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        () = stop_requested(&mut stopped) => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

/// Completes once shutdown was asked for.
async fn stop_requested(stopped: &mut watch::Receiver<bool>) {
    while !*stopped.borrow_and_update() {
        if stopped.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_burst_of_connects_is_queued_before_it_is_accepted() {
        let listener = listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        // Nothing accepts: with the usual backlog of 128 the kernel drops the SYNs beyond it and
        // those connects wait for a retransmit (a second or more) instead of completing at once.
        let connects = (0..1000).map(|_| TcpStream::connect(addr));
        let burst = futures::future::try_join_all(connects);
        let connected = tokio::time::timeout(Duration::from_millis(900), burst).await;
        assert_eq!(
            connected
                .expect("every connect queued at once")
                .unwrap()
                .len(),
            1000
        );
    }

    #[tokio::test]
    async fn a_plain_connections_task_carries_no_tls_state() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (stream, peer) = listener.accept().await.unwrap();
        let limits = ConnectionLimits {
            max_connections: 1,
            header_read_timeout: Duration::from_secs(1),
            tls: None,
        };
        let stopped = watch::channel(false).1;
        let task = serve_connection(stream, peer, Router::new(), limits, stopped);
        let size = std::mem::size_of_val(&task);
        eprintln!("a plain connection's future: {size} bytes");
        assert!(size < 4096, "{size} bytes");
    }
}
