//! The connection adapter. actix-http answers a request it cannot parse — raw non-ASCII bytes or a brace in the
//! request target, a header section over its limit, a client too slow to send its head — by itself, before any
//! application code runs, with a bare status line and no body. [`ProblemStream`] wraps each connection and turns
//! exactly those answers (a 400, 408 or 431 with `content-length: 0`; the application never sends an error
//! without a problem body) into an RFC 9457 problem with a request id, like every other error.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::error::{ApiError, ErrorCode, PROBLEM_JSON};
use crate::messages::{Lang, Msg};

/// A connection whose parser-level error answers become problems.
pub struct ProblemStream<T> {
    inner: T,
    replacement: Option<Replacement>,
}

struct Replacement {
    bytes: Vec<u8>,
    written: usize,
    /// How many bytes of the original answer the writer is told were written.
    reported: usize,
}

impl<T> ProblemStream<T> {
    pub fn new(inner: T) -> Self {
        Self { inner, replacement: None }
    }
}

/// The problem response for a bare parser answer, if `buf` is one.
fn problem_for(buf: &[u8]) -> Option<Vec<u8>> {
    const BARE: [(&[u8], &str, ErrorCode, Msg); 3] = [
        (
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n",
            "400 Bad Request",
            ErrorCode::BadRequest,
            Msg::Unparsable,
        ),
        (
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n",
            "431 Request Header Fields Too Large",
            ErrorCode::HeadersTooLarge,
            Msg::HeadersTooLarge,
        ),
        (
            b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\n",
            "408 Request Timeout",
            ErrorCode::RequestTimeout,
            Msg::HeadTimeout,
        ),
    ];
    if !buf.ends_with(b"\r\n\r\n") {
        return None;
    }
    let (_, status_line, code, detail) = BARE.iter().find(|(prefix, ..)| buf.starts_with(prefix))?;
    let request_id = uuid::Uuid::now_v7().to_string();
    // The request could not be read, so neither could its Accept-Language: Chinese, the default.
    let mut problem = ApiError::BadRequest { code: *code, detail: detail.clone() }.to_problem(Lang::Zh);
    problem.status = status_line[..3].parse().unwrap_or(400);
    problem.request_id = Some(request_id.clone());
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    let mut out = format!(
        "HTTP/1.1 {status_line}\r\ncontent-type: {PROBLEM_JSON}\r\ncontent-length: {}\r\nconnection: close\r\n\
         x-request-id: {request_id}\r\nx-content-type-options: nosniff\r\ncache-control: no-store\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    Some(out)
}

impl<T: AsyncRead + Unpin> AsyncRead for ProblemStream<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ProblemStream<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.replacement.is_none() {
            if let Some(bytes) = problem_for(buf) {
                this.replacement = Some(Replacement { bytes, written: 0, reported: buf.len() });
            }
        }
        if let Some(r) = &mut this.replacement {
            while r.written < r.bytes.len() {
                match Pin::new(&mut this.inner).poll_write(cx, &r.bytes[r.written..]) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                    Poll::Ready(Ok(n)) => r.written += n,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => return Poll::Pending,
                }
            }
            let reported = r.reported;
            this.replacement = None;
            return Poll::Ready(Ok(reported));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
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
    fn only_bare_parser_answers_are_replaced() {
        let bare = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\ndate: x\r\n\r\n";
        let out = String::from_utf8(problem_for(bare).unwrap()).unwrap();
        assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\ncontent-type: application/problem+json\r\n"));
        assert!(out.contains("\"code\":\"bad_request\"") && out.contains("\"request_id\":\""));
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 120\r\ncontent-type: application/problem+json\r\n\r\n";
        assert!(problem_for(ours).is_none());
        assert!(problem_for(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
        let big = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\r\n";
        assert!(String::from_utf8(problem_for(big).unwrap()).unwrap().contains("\"status\":431"));
    }
}
