//! Evidence of inspections: uploads typed from their bytes, stored once per digest, served back with ranges,
//! retried with one Idempotency-Key, refused whole when too large or of the wrong type, and the own-records rule.

use std::io::{Read, Write};

use futures_util::future::join_all;
use rand::RngCore;
use serde_json::json;
use sha2::{Digest, Sha256};
use shuiwu::identity::Role;

use crate::helpers::*;
use crate::inspections::{inspection_body, record, team};
use crate::on_both_databases;

on_both_databases!(
    evidence_is_typed_stored_once_and_served_with_ranges,
    bad_uploads_leave_nothing_behind,
    evidence_follows_the_own_records_rule,
    retried_uploads_store_one_item,
    orphaned_files_are_swept,
);

/// The same tests with the evidence in S3-compatible storage (`cargo nextest run --features s3`, with
/// `SHUIWU_TEST_S3_URL` and the `AWS_*` variables of the endpoint; `.ci/run` starts one). The sweep's test stays
/// local: it ages files on disk.
#[cfg(feature = "s3")]
mod in_s3 {
    macro_rules! in_s3 {
        ($($name:ident),* $(,)?) => {
            $(
                mod $name {
                    use crate::helpers::{spawn_app_in_s3, Backend};
                    #[actix_rt::test]
                    async fn sqlite() {
                        super::super::$name(spawn_app_in_s3(Backend::Sqlite).await).await
                    }
                    #[actix_rt::test]
                    async fn postgres() {
                        super::super::$name(spawn_app_in_s3(Backend::Postgres).await).await
                    }
                }
            )*
        };
    }
    in_s3!(
        evidence_is_typed_stored_once_and_served_with_ranges,
        bad_uploads_leave_nothing_behind,
        evidence_follows_the_own_records_rule,
        retried_uploads_store_one_item,
    );
}

/// A file of `len` bytes starting with `head` (the rest random).
fn file(head: &[u8], len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes[..head.len()].copy_from_slice(head);
    bytes
}

const JPEG: &[u8] = &[0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00];
pub const PNG: &[u8] = &[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
const MP4: &[u8] = &[
    0, 0, 0, 0x18, b'f', b't', b'y', b'p', b'm', b'p', b'4', b'2', 0, 0, 0, 0, b'i', b's', b'o', b'm', b'm', b'p',
    b'4', b'2',
];
const HEIC: &[u8] = &[
    0, 0, 0, 0x18, b'f', b't', b'y', b'p', b'h', b'e', b'i', b'c', 0, 0, 0, 0, b'm', b'i', b'f', b'1', b'h', b'e',
    b'i', b'c',
];
const PDF: &[u8] = b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n";

/// A `multipart/form-data` body with one part; returns it and its content type.
pub fn form(part: &str, filename: &str, declared: &str, bytes: &[u8]) -> (Vec<u8>, String) {
    let boundary = format!("----shuiwu{}", uuid::Uuid::now_v7().simple());
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"{part}\"; filename=\"{filename}\"\r\nContent-Type: {declared}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (body, format!("multipart/form-data; boundary={boundary}"))
}

async fn upload(app: &TestApp, token: &str, inspection: &str, filename: &str, bytes: &[u8], key: Option<&str>) -> Resp {
    let (body, ct) = form("file", filename, "application/octet-stream", bytes);
    let mut req = app.post(&format!("/api/v1/inspections/{inspection}/evidence")).bearer(token);
    if let Some(k) = key {
        req = req.header("idempotency-key", k);
    }
    req.raw(body, &ct).send().await
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The blobs in the evidence store: the files of the local directory, or the objects under the app's S3 prefix.
async fn blobs(app: &TestApp) -> usize {
    fn walk(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir)
            .map(|entries| entries.flatten().map(|e| if e.path().is_dir() { walk(&e.path()) } else { 1 }).sum())
            .unwrap_or(0)
    }
    match &app.evidence_url {
        None => walk(&app.data_dir.join("evidence")),
        Some(url) => {
            use futures_util::StreamExt;
            let store = shuiwu::evidence::BlobStore::s3(url).expect("the test's S3 store");
            let all = store.older_than(chrono::Utc::now() + chrono::TimeDelta::days(1));
            all.map(|b| b.expect("listing the S3 store")).collect::<Vec<_>>().await.len()
        }
    }
}

/// A POST over a plain socket, for bodies the server stops reading: sends the head and as much of `body` as the
/// server takes (a write error once it has answered is expected), then reads the status line and headers.
async fn raw_post(app: &TestApp, path: &str, token: &str, content_type_and_length: &str, body: Vec<u8>) -> String {
    let addr = app.address.trim_start_matches("http://").to_string();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: {content_type_and_length}\r\n\r\n"
    );
    actix_rt::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
        s.write_all(head.as_bytes()).unwrap();
        let _ = s.write_all(&body);
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).to_string()
    })
    .await
    .unwrap()
}

fn rows(app: &TestApp) -> i64 {
    app.count("SELECT COUNT(*) AS n FROM evidence")
}

async fn evidence_is_typed_stored_once_and_served_with_ranges(app: TestApp) {
    let t = team(&app).await;
    let i = record(&app, &t.me_token, &inspection_body(&t, json!([]))).await;
    let id = i["id"].as_str().unwrap();
    let photo = file(JPEG, 300_000);
    let r = upload(&app, &t.me_token, id, "取水口计量设施.jpg", &photo, None).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let e = &r.body;
    let eid = e["id"].as_str().unwrap();
    assert_eq!(r.header("location").unwrap(), format!("/api/v1/inspections/{id}/evidence/{eid}"));
    // The type comes from the bytes, not from the part's declared `application/octet-stream`.
    assert_eq!(e["content_type"], "image/jpeg");
    assert_eq!(e["filename"], "取水口计量设施.jpg");
    assert_eq!(e["size_bytes"], 300_000);
    assert_eq!(e["sha256"], sha(&photo));
    assert_eq!(e["inspection_id"], id);
    assert_eq!(e["uploaded_by"], t.me.as_str(), "the uploader as its token names it");
    assert_eq!((rows(&app), blobs(&app).await), (1, 1));
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM audit_events WHERE action = 'evidence_uploaded'"), 1);

    // Served back whole, and by ranges.
    let path = format!("/api/v1/inspections/{id}/evidence/{eid}");
    let whole = app.get(&path).bearer(&t.partner_token).send().await;
    assert_eq!(whole.status, 200);
    assert_eq!(whole.bytes, photo, "the bytes served are the bytes stored");
    assert_eq!(sha(&whole.bytes), e["sha256"].as_str().unwrap());
    assert_eq!(whole.header("content-type").as_deref(), Some("image/jpeg"));
    assert_eq!(whole.header("accept-ranges").as_deref(), Some("bytes"));
    assert_eq!(whole.header("etag"), Some(format!("\"{}\"", sha(&photo))));
    let part = app.get(&path).bearer(&t.partner_token).header("range", "bytes=100-199").send().await;
    assert_eq!(part.status, 206);
    assert_eq!(part.bytes, photo[100..200].to_vec());
    assert_eq!(part.header("content-range").as_deref(), Some("bytes 100-199/300000"));
    let tail = app.get(&path).bearer(&t.partner_token).header("range", "bytes=-10").send().await;
    assert_eq!((tail.status, tail.bytes.clone()), (206, photo[299_990..].to_vec()));
    let open = app.get(&path).bearer(&t.partner_token).header("range", "bytes=299000-").send().await;
    assert_eq!((open.status, open.bytes.len()), (206, 1000));
    let past = app.get(&path).bearer(&t.partner_token).header("range", "bytes=300000-").send().await;
    assert_eq!(past.status, 416);
    assert_eq!(past.header("content-range").as_deref(), Some("bytes */300000"));

    // The same bytes again (another item, say from a colleague): a second record, one blob.
    let again = upload(&app, &t.partner_token, id, "IMG_0001.JPG", &photo, None).await;
    assert_eq!(again.status, 201, "{}", again.text);
    assert_ne!(again.body["id"], e["id"]);
    assert_eq!((rows(&app), blobs(&app).await), (2, 1));

    // The other types; a video served in ranges as a phone asks for it.
    let video = file(MP4, 2_000_000);
    for (name, bytes, ty) in [
        ("巡查录像.mp4", video.clone(), "video/mp4"),
        ("现场照片.heic", file(HEIC, 50_000), "image/heif"),
        ("截图.png", file(PNG, 40_000), "image/png"),
        ("询问笔录.pdf", file(PDF, 30_000), "application/pdf"),
    ] {
        let r = upload(&app, &t.me_token, id, name, &bytes, None).await;
        assert_eq!((r.status, r.body["content_type"].as_str()), (201, Some(ty)), "{name}: {}", r.text);
    }
    let v = app.get(&format!("/api/v1/inspections/{id}/evidence?include_total=true")).bearer(&t.legal).send().await;
    assert_eq!(v.body["total"], 6);
    let vid = v.body["items"][2]["id"].as_str().unwrap();
    let first_mb = app
        .get(&format!("/api/v1/inspections/{id}/evidence/{vid}"))
        .bearer(&t.legal)
        .header("range", "bytes=0-1048575")
        .send()
        .await;
    assert_eq!((first_mb.status, first_mb.bytes.len()), (206, 1_048_576));
    assert_eq!(first_mb.bytes, video[..1_048_576].to_vec());
    let feed = whole_feed(&app, "evidence").await;
    assert_eq!(feed.len(), 6);
    assert!(feed.iter().all(|c| c["data"]["sha256"].is_string()), "metadata only");
}

async fn bad_uploads_leave_nothing_behind(app: TestApp) {
    let t = team(&app).await;
    let i = record(&app, &t.me_token, &inspection_body(&t, json!([]))).await;
    let id = i["id"].as_str().unwrap();
    let path = format!("/api/v1/inspections/{id}/evidence");
    // A text file calling itself a JPEG: 415 from its bytes.
    let (body, ct) = form("file", "照片.jpg", "image/jpeg", b"not a picture at all, just text");
    app.post(&path).bearer(&t.me_token).raw(body, &ct).send().await.assert_problem(415, "unsupported_media_type");
    // An executable, a ZIP: 415.
    let (body, ct) = form("file", "x.zip", "application/zip", &file(b"PK\x03\x04", 1000));
    app.post(&path).bearer(&t.me_token).raw(body, &ct).send().await.assert_problem(415, "unsupported_media_type");
    // Not multipart at all: 415; no `file` part, an empty file: 400.
    app.post(&path)
        .bearer(&t.me_token)
        .raw(file(JPEG, 100), "image/jpeg")
        .send()
        .await
        .assert_problem(415, "unsupported_media_type");
    let (body, ct) = form("photo", "a.jpg", "image/jpeg", &file(JPEG, 100));
    app.post(&path).bearer(&t.me_token).raw(body, &ct).send().await.assert_problem(400, "validation_failed");
    let (body, ct) = form("file", "a.jpg", "image/jpeg", b"");
    app.post(&path).bearer(&t.me_token).raw(body, &ct).send().await.assert_problem(400, "validation_failed");
    assert_eq!((rows(&app), blobs(&app).await), (0, 0));

    // Over 50 MiB: 413 as soon as the headers say so, without reading the body (the client has sent 1 MiB of
    // its 60 when the answer arrives).
    let declared = format!("multipart/form-data; boundary=XYZ\r\nContent-Length: {}", 60 * 1024 * 1024);
    let answer = raw_post(&app, &path, &t.me_token, &declared, vec![b'x'; 1024 * 1024]).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // A file just over 50 MiB (the request length within the framing allowance): refused once 50 MiB have passed,
    // the rest not read (the client may find the connection closed under it).
    let (body, ct) = form("file", "big.jpg", "image/jpeg", &file(JPEG, 50 * 1024 * 1024 + 1));
    let declared = format!("{ct}\r\nContent-Length: {}", body.len());
    let answer = raw_post(&app, &path, &t.me_token, &declared, body).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert_eq!((rows(&app), blobs(&app).await), (0, 0));
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM audit_events WHERE action = 'evidence_uploaded'"), 0);
    // Exactly 50 MiB is taken.
    let max = file(PDF, 50 * 1024 * 1024);
    let r = upload(&app, &t.me_token, id, "卷宗.pdf", &max, None).await;
    assert_eq!((r.status, r.body["size_bytes"].as_i64()), (201, Some(50 * 1024 * 1024)), "{}", r.text);
    assert_eq!((rows(&app), blobs(&app).await), (1, 1));
}

async fn evidence_follows_the_own_records_rule(app: TestApp) {
    let t = team(&app).await;
    let i = record(&app, &t.me_token, &inspection_body(&t, json!([]))).await;
    let id = i["id"].as_str().unwrap();
    let r = upload(&app, &t.me_token, id, "a.jpg", &file(JPEG, 1000), None).await;
    let eid = r.body["id"].as_str().unwrap();
    let s = &t.stranger_token;
    upload(&app, s, id, "b.jpg", &file(JPEG, 1000), None).await.assert_problem(404, "not_found");
    app.get(&format!("/api/v1/inspections/{id}/evidence")).bearer(s).send().await.assert_problem(404, "not_found");
    app.get(&format!("/api/v1/inspections/{id}/evidence/{eid}"))
        .bearer(s)
        .send()
        .await
        .assert_problem(404, "not_found");
    upload(&app, &t.me_token, "no-such-inspection", "b.jpg", &file(JPEG, 1000), None)
        .await
        .assert_problem(404, "not_found");
    // Another inspection's evidence id under this inspection: 404.
    let other = record(&app, &t.stranger_token, &inspection_body(&t, json!([]))).await;
    let other_id = other["id"].as_str().unwrap();
    app.get(&format!("/api/v1/inspections/{other_id}/evidence/{eid}"))
        .bearer(&t.enforcement)
        .send()
        .await
        .assert_problem(404, "not_found");
    // Legal reads but does not upload; finance has no business here.
    assert_eq!(app.get(&format!("/api/v1/inspections/{id}/evidence/{eid}")).bearer(&t.legal).send().await.status, 200);
    upload(&app, &t.legal, id, "c.jpg", &file(JPEG, 1000), None).await.assert_problem(403, "forbidden");
    app.get(&format!("/api/v1/inspections/{id}/evidence"))
        .bearer(&app.token(&[Role::Finance]))
        .send()
        .await
        .assert_problem(403, "forbidden");
    assert_eq!(rows(&app), 1);
}

/// A phone on a poor connection sends the same photo again and again under one key (each time with a new
/// multipart boundary): one evidence item.
async fn retried_uploads_store_one_item(app: TestApp) {
    let t = team(&app).await;
    let i = record(&app, &t.me_token, &inspection_body(&t, json!([]))).await;
    let id = i["id"].as_str().unwrap();
    let photo = file(JPEG, 500_000);
    let results = join_all((0..5).map(|_| upload(&app, &t.me_token, id, "现场.jpg", &photo, Some("photo-1")))).await;
    let created: Vec<&Resp> = results.iter().filter(|r| r.status == 201).collect();
    assert!(!created.is_empty(), "{:?}", results.iter().map(|r| &r.text).collect::<Vec<_>>());
    for r in results.iter().filter(|r| r.status != 201) {
        r.assert_problem(409, "idempotency_key_in_flight");
    }
    for r in &created {
        assert_eq!(r.body, created[0].body, "every success is the one outcome");
    }
    let again = upload(&app, &t.me_token, id, "现场.jpg", &photo, Some("photo-1")).await;
    assert_eq!((again.status, &again.body), (201, &created[0].body));
    assert_eq!(again.header("idempotency-replayed").as_deref(), Some("true"));
    assert_eq!((rows(&app), blobs(&app).await), (1, 1));
    // Another photo under the same key is another request: 422, nothing stored.
    upload(&app, &t.me_token, id, "现场.jpg", &file(JPEG, 1000), Some("photo-1"))
        .await
        .assert_problem(422, "idempotency_key_reused");
    assert_eq!((rows(&app), blobs(&app).await), (1, 1));
    // Identical bytes to two inspections at once, without keys: two items, one blob.
    let second = record(&app, &t.me_token, &inspection_body(&t, json!([]))).await;
    let pair = [id, second["id"].as_str().unwrap()];
    let same = file(PNG, 200_000);
    let both = join_all(pair.iter().map(|i| upload(&app, &t.me_token, i, "同一张.png", &same, None))).await;
    assert!(both.iter().all(|r| r.status == 201), "{:?}", both.iter().map(|r| &r.text).collect::<Vec<_>>());
    assert_eq!((rows(&app), blobs(&app).await), (3, 2));

    // Only the streaming routes defer their key: an action with an empty non-JSON body is claimed as any other,
    // so its retry replays instead of running again (or failing its stale If-Match).
    let escalate = || {
        app.post(&format!("/api/v1/inspections/{id}/escalate"))
            .bearer(&t.enforcement)
            .header("if-match", "\"1\"")
            .header("idempotency-key", "esc-1")
            .raw(Vec::new(), "text/plain")
            .send()
    };
    let first = escalate().await;
    assert_eq!(first.status, 201, "{}", first.text);
    let again = escalate().await;
    assert_eq!((again.status, &again.body), (201, &first.body));
    assert_eq!(again.header("idempotency-replayed").as_deref(), Some("true"));
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM cases"), 1);
}

/// The blob file of `sha256` in the app's evidence directory.
fn blob_path(app: &TestApp, sha256: &str) -> std::path::PathBuf {
    app.data_dir.join("evidence").join("sha256").join(&sha256[..2]).join(sha256)
}

/// Makes a file look `age` old.
fn age(path: &std::path::Path, age: std::time::Duration) {
    let f = std::fs::File::options().append(true).open(path).unwrap();
    f.set_modified(std::time::SystemTime::now() - age).unwrap();
}

/// `shuiwu sweep-evidence` removes the files no record refers to once they are older than the grace period: not a
/// file a record uses, not a young one (an upload may be about to record it).
async fn orphaned_files_are_swept(app: TestApp) {
    let t = team(&app).await;
    let i = record(&app, &t.me_token, &inspection_body(&t, json!([]))).await;
    let bytes = file(PNG, 4_000);
    let (body, ct) = form("file", "取水口.png", "image/png", &bytes);
    let iid = i["id"].as_str().unwrap();
    let up = app.post(&format!("/api/v1/inspections/{iid}/evidence")).bearer(&t.me_token).raw(body, &ct).send().await;
    assert_eq!(up.status, 201, "{}", up.text);
    let used = up.body["sha256"].as_str().unwrap().to_string();
    let two_hours = std::time::Duration::from_secs(7_200);
    age(&blob_path(&app, &used), two_hours);
    // Two files left by uploads that never committed: one two hours ago, one just now.
    let mut orphans = Vec::new();
    for n in 0..2 {
        let content = file(PNG, 1_000 + n);
        let sha = hex::encode(Sha256::digest(&content));
        let path = blob_path(&app, &sha);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &content).unwrap();
        orphans.push(path);
    }
    age(&orphans[0], two_hours);

    let sweep = |args: &[&str]| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_shuiwu"));
        for (k, _) in std::env::vars() {
            if k.starts_with("SHUIWU_") {
                c.env_remove(k);
            }
        }
        let out = c
            .arg("sweep-evidence")
            .args(args)
            .env("SHUIWU_DATABASE_URL", &app.database_url)
            .env("SHUIWU_DATA_DIR", &app.data_dir)
            .env("SHUIWU_JWT_SECRET", JWT_SECRET)
            .env("SHUIWU_BOOTSTRAP_ADMIN_PASSWORD", "not used: the database exists")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let dry = sweep(&["--dry-run"]);
    assert!(dry.contains("checked 2 ") && dry.contains("would remove 1 "), "{dry}");
    assert!(orphans[0].exists(), "a dry run removes nothing");
    let done = sweep(&["--older-than", "1h"]);
    assert!(done.contains("checked 2 ") && done.contains("removed 1 "), "{done}");
    assert!(!orphans[0].exists(), "the old orphan is gone");
    assert!(orphans[1].exists(), "a young file may still be recorded: it stays");
    assert!(blob_path(&app, &used).exists(), "a file a record uses stays");
    let eid = up.body["id"].as_str().unwrap();
    let got = app.get(&format!("/api/v1/inspections/{iid}/evidence/{eid}")).bearer(&t.me_token).send().await;
    assert_eq!((got.status, got.bytes == bytes), (200, true));
    // Nothing left to do.
    assert!(sweep(&[]).contains("removed 0 "));
}
