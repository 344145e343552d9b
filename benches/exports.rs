//! Benchmark: a full export of 1 000 000 permits (`GET /api/v1/exports/permit`) on PostgreSQL, as NDJSON and as
//! CSV, read as fast as the client can: time, records per second, bytes, and the server's peak RSS (VmHWM) against
//! its RSS before.
//!
//!     cargo bench --bench exports
//!
//! Environment: `SHUIWU_BENCH_POSTGRES_URL`. The database `shuiwu_bench_exports` is seeded once (under a minute)
//! and reused.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Instant;

use common::*;
use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use shuiwu::identity::Role;

const PERMITS: i64 = 1_000_000;
const ZONES: i64 = 100;
const USERS: i64 = 10_000;

fn seed(conn: &mut PgConnection) {
    if count(conn, "SELECT COUNT(*)::bigint AS n FROM permits") >= PERMITS {
        return;
    }
    let t = Instant::now();
    eprintln!("seeding {USERS} water users, {ZONES} zones and {PERMITS} permits…");
    conn.batch_execute(&format!("{} ANALYZE;", permits_seed_sql(USERS, ZONES, PERMITS))).unwrap();
    eprintln!("seeded in {:.1} s", t.elapsed().as_secs_f64());
}

/// Peak and current resident memory of a process, in KiB.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// Downloads `path` and reads it as fast as it comes: body bytes, records (lines), seconds. The body is chunked
/// (a streamed response); the chunk framing is taken off as it is read.
fn download(port: u16, path: &str, token: &str) -> (u64, u64, f64) {
    let t = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n\r\n")
        .unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut head = Vec::new();
    let mut chunk = Chunked::default();
    let (mut bytes, mut lines) = (0u64, 0u64);
    loop {
        let n = s.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        let mut data = &buf[..n];
        if !chunk.in_body {
            let before = head.len();
            head.extend_from_slice(data);
            let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
            assert!(head.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&head[..end]));
            let text = String::from_utf8_lossy(&head[..end]).to_ascii_lowercase();
            assert!(text.contains("transfer-encoding: chunked"), "{text}");
            data = &buf[end + 4 - before..n];
            chunk.in_body = true;
        }
        chunk.feed(data, |payload| {
            bytes += payload.len() as u64;
            lines += payload.iter().filter(|b| **b == b'\n').count() as u64;
        });
    }
    assert!(chunk.done, "the download ended with its closing chunk");
    (bytes, lines, t.elapsed().as_secs_f64())
}

/// A decoder of HTTP/1.1 chunked framing, fed as bytes arrive.
#[derive(Default)]
struct Chunked {
    in_body: bool,
    /// Payload bytes left in the current chunk, then its CRLF.
    left: usize,
    trailing_crlf: usize,
    size_line: Vec<u8>,
    done: bool,
}

impl Chunked {
    fn feed(&mut self, mut data: &[u8], mut payload: impl FnMut(&[u8])) {
        while !data.is_empty() && !self.done {
            if self.left > 0 {
                let take = self.left.min(data.len());
                payload(&data[..take]);
                self.left -= take;
                data = &data[take..];
                if self.left == 0 {
                    self.trailing_crlf = 2;
                }
            } else if self.trailing_crlf > 0 {
                let take = self.trailing_crlf.min(data.len());
                self.trailing_crlf -= take;
                data = &data[take..];
            } else {
                let Some(nl) = data.iter().position(|b| *b == b'\n') else {
                    self.size_line.extend_from_slice(data);
                    return;
                };
                self.size_line.extend_from_slice(&data[..nl]);
                data = &data[nl + 1..];
                let line = String::from_utf8_lossy(&self.size_line).trim().to_string();
                self.size_line.clear();
                let size = usize::from_str_radix(line.split(';').next().unwrap(), 16).expect("a chunk size");
                if size == 0 {
                    self.done = true;
                }
                self.left = size;
            }
        }
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let url = database("shuiwu_bench_exports");
    let port = 18_095;
    migrate(&url);
    let mut conn = PgConnection::establish(&url).unwrap();
    seed(&mut conn);
    let (child, _) = start(&url, port);
    let token = token(&[Role::Platform]);
    std::thread::sleep(std::time::Duration::from_secs(1));
    let (_, idle) = memory(child.id());
    let mut report = Vec::new();
    for (format, path) in [("NDJSON", "/api/v1/exports/permit"), ("CSV", "/api/v1/exports/permit?format=csv")] {
        let (bytes, lines, secs) = download(port, path, &token);
        let (peak, _) = memory(child.id());
        report.push(format!(
            "{format:6}  {lines:>9} lines  {:>7.1} MB  {secs:>6.2} s  {:>9.0} records/s  server peak RSS {:.1} MiB (idle {:.1} MiB)",
            bytes as f64 / 1e6,
            lines as f64 / secs,
            peak as f64 / 1024.0,
            idle as f64 / 1024.0
        ));
    }
    stop(child);
    println!("\n== GET /api/v1/exports/permit, PostgreSQL, {PERMITS} permits (target: NDJSON ≤ 10 s, RSS ≤ 100 MB)");
    for line in report {
        println!("{line}");
    }
}
