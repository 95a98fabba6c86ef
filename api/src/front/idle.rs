//! A stream that fails once no byte has moved for the idle deadline, either way. This closes
//! kept-alive connections that send nothing, bodies that stall, and readers that stop reading
//! a response (the write side would otherwise wait for them forever).

use rocket::tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use rocket::tokio::time::{sleep, Instant, Sleep};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

pub struct Idle<S> {
    inner: S,
    deadline: Duration,
    timer: Pin<Box<Sleep>>,
    expired: Arc<AtomicBool>,
}

impl<S> Idle<S> {
    pub fn new(inner: S, deadline: Duration) -> Idle<S> {
        Idle {
            inner,
            deadline,
            timer: Box::pin(sleep(deadline)),
            expired: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Set once the deadline has ended the stream (HTTP servers close an idle connection
    /// quietly whatever the read error, so the error alone does not tell).
    pub fn expired(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.expired)
    }

    fn moved(&mut self) {
        let at = Instant::now() + self.deadline;
        self.timer.as_mut().reset(at);
    }

    /// `Pending`, unless the deadline has passed.
    fn waiting<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        match self.timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.expired.store(true, Ordering::Relaxed);
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no byte moved for {} s", self.deadline.as_secs()),
                )))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    /// A write's outcome: bytes written reset the deadline; none yet start waiting.
    fn wrote(
        &mut self,
        cx: &mut Context<'_>,
        r: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match r {
            Poll::Pending => self.waiting(cx),
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.moved();
                }
                Poll::Ready(Ok(n))
            }
            other => other,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Idle<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Pending => self.waiting(cx),
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.moved();
                }
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Idle<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        self.wrote(cx, r)
    }

    // Vectored writes passed through: without them hyper copies every body into its own
    // buffer before writing it (a whole extra copy of each file body).
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.wrote(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Pending => self.waiting(cx),
            other => other,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_shutdown(cx) {
            Poll::Pending => self.waiting(cx),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rocket::tokio::io::{duplex, AsyncReadExt, AsyncWriteExt};

    #[rocket::async_test]
    async fn a_silent_peer_fails_the_read_after_the_deadline_and_bytes_reset_it() {
        let (mut near, far) = duplex(64);
        let mut idle = Idle::new(far, Duration::from_millis(200));
        let expired = idle.expired();
        near.write_all(b"x").await.unwrap();
        let mut b = [0u8; 1];
        idle.read_exact(&mut b).await.unwrap();
        let err = idle.read(&mut b).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(err.to_string().contains("no byte moved"), "{err}");
        assert!(expired.load(Ordering::Relaxed));
    }

    #[rocket::async_test]
    async fn a_reader_that_stops_reading_fails_the_write() {
        let (_near, far) = duplex(8);
        let mut idle = Idle::new(far, Duration::from_millis(200));
        let err = idle.write_all(&[0u8; 64]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }
}
