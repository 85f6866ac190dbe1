//! Requests that HTTP cannot parse (a garbled request line, headers past hyper's buffer) are
//! answered by hyper itself, with an empty body. This wrapper around a connection's socket
//! gives those answers a Verifik JSON body: hyper's own error heads are recognisable (a 4xx
//! status, `connection: close` and `content-length: 0`, which no answer of ours has: every
//! error of ours has a JSON body) and are rewritten as they are written.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const HYPER_ERROR_MARK: &[u8] = b"\r\nconnection: close\r\ncontent-length: 0\r\n";

pub struct ParseErrorBodies<S> {
    inner: S,
    /// A replacement being written, and how much of it has gone out.
    replacing: Option<(Vec<u8>, usize)>,
}

impl<S> ParseErrorBodies<S> {
    pub fn new(inner: S) -> Self {
        ParseErrorBodies {
            inner,
            replacing: None,
        }
    }
}

/// The JSON answer for one of hyper's empty error heads; `None` for anything else.
fn replacement(buf: &[u8]) -> Option<Vec<u8>> {
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = &buf[..head_end];
    if !head.starts_with(b"HTTP/1.1 4")
        || !head
            .windows(HYPER_ERROR_MARK.len())
            .any(|w| w == HYPER_ERROR_MARK)
    {
        return None;
    }
    let status_line_end = head.windows(2).position(|w| w == b"\r\n")?;
    let status_line = &head[..status_line_end];
    let message = match status_line.get(9..12) {
        Some(b"431") => "headers_too_large",
        Some(b"414") => "uri_too_long",
        _ => "bad_request",
    };
    let body = format!(r#"{{"message":"{message}","code":"ERROR"}}"#);
    let mut out = status_line.to_vec();
    out.extend_from_slice(
        format!(
            "\r\nconnection: close\r\ncontent-type: application/json\r\ncache-control: no-store\r\nx-content-type-options: nosniff\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    Some(out)
}

impl<S: AsyncRead + Unpin> AsyncRead for ParseErrorBodies<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ParseErrorBodies<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.replacing.is_none() {
            match replacement(buf) {
                Some(bytes) => this.replacing = Some((bytes, 0)),
                None => return Pin::new(&mut this.inner).poll_write(cx, buf),
            }
        }
        // Hyper calls again with the same bytes until they are reported written: they are,
        // once the whole replacement has gone out.
        if let Some((bytes, sent)) = &mut this.replacing {
            while *sent < bytes.len() {
                match Pin::new(&mut this.inner).poll_write(cx, &bytes[*sent..]) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                    Poll::Ready(Ok(n)) => *sent += n,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => return Poll::Pending,
                }
            }
        }
        this.replacing = None;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hypers_empty_error_heads_get_json_bodies_and_nothing_else_changes() {
        let hyper_400 = b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: Tue, 01 Dec 2026 10:52:53 GMT\r\n\r\n";
        let out = String::from_utf8(replacement(hyper_400).expect("rewritten")).expect("utf-8");
        assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{out}");
        assert!(
            out.ends_with("\r\n\r\n{\"message\":\"bad_request\",\"code\":\"ERROR\"}"),
            "{out}"
        );
        assert!(out.contains("content-length: 40\r\n"), "{out}");
        let hyper_431 = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";
        let out = String::from_utf8(replacement(hyper_431).expect("rewritten")).expect("utf-8");
        assert!(
            out.ends_with("{\"message\":\"headers_too_large\",\"code\":\"ERROR\"}"),
            "{out}"
        );
        let ours = b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 45\r\n\r\n{}";
        assert!(replacement(ours).is_none());
        assert!(replacement(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(replacement(b"{\"data\": 1}").is_none());
    }
}
