//! Connection ageing for load balancing: after `max_connection_age` a
//! connection gets an HTTP/2 GOAWAY (tonic's graceful shutdown of that
//! connection: the client opens new calls on a new connection, calls in
//! flight finish), and after a further `max_connection_age_grace` it is
//! closed whatever is still running on it.
//!
//! Why not tonic's own grace: in tonic 0.14, `max_connection_age` *with*
//! `max_connection_age_grace` never sends GOAWAY; it waits for age + grace
//! and then drops the connection, failing every call in flight. So the
//! server uses tonic's `max_connection_age` alone (GOAWAY, then a drain
//! without limit) and [`AgedConnection`] enforces the grace by ending the
//! socket at age + grace.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;
use tonic::transport::server::{Connected, TcpConnectInfo};

/// A TCP connection that fails its reads and writes once its lifetime has
/// passed, which makes the HTTP/2 server drop it.
pub struct AgedConnection {
    inner: TcpStream,
    /// `None`: the connection may live forever.
    end: Option<Pin<Box<Sleep>>>,
}

impl AgedConnection {
    /// `inner`, ended after `lifetime` if given.
    pub fn new(inner: TcpStream, lifetime: Option<Duration>) -> Self {
        Self {
            inner,
            end: lifetime.map(|lifetime| Box::pin(tokio::time::sleep(lifetime))),
        }
    }

    /// `Err` once the lifetime has passed; otherwise registers the waker so
    /// the connection's task runs again when it does.
    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        let ended = match &mut self.end {
            Some(end) => end.as_mut().poll(cx).is_ready(),
            None => false,
        };
        if ended {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "connection past its max age and grace",
            ));
        }
        Ok(())
    }
}

impl Connected for AgedConnection {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

impl AsyncRead for AgedConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.check(cx)?;
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for AgedConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.check(cx)?;
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check(cx)?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
