//! Receiving an evidence upload: `multipart/form-data` with one part named `file`, streamed to an anonymous
//! temporary file while its SHA-256 and size are taken; more than [`MAX_BYTES`] is 413 as soon as it is passed
//! (or at once, from `Content-Length`), and the rest is not read. The type is decided from the file's leading bytes
//! (`infer`), whatever the part declares: JPEG, PNG, HEIC/HEIF, MP4 and PDF are taken, anything else is 415.

use std::fs::File;
use std::io::Write;

use actix_multipart::Multipart;
use actix_web::http::header;
use actix_web::{web, HttpRequest};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::messages::Msg;

/// Largest evidence file: 50 MiB.
pub const MAX_BYTES: u64 = 50 * 1024 * 1024;
/// Room for the multipart framing around the file.
const FRAMING: u64 = 64 * 1024;
/// What a 415 says is taken.
pub const ACCEPTED: &str = "multipart/form-data with a JPEG, PNG, HEIC, MP4 or PDF file";

/// The types taken, as `infer` names them.
const TYPES: [&str; 5] = ["image/jpeg", "image/png", "image/heif", "video/mp4", "application/pdf"];

/// A received file, spooled and summed up.
#[derive(Debug)]
pub struct Upload {
    pub file: File,
    pub filename: String,
    pub content_type: &'static str,
    pub size: u64,
    pub sha256: String,
}

/// A file name as kept: its last path segment, without control characters, at most 255 characters; a name from the
/// type when none is left.
fn clean_name(given: Option<&str>, content_type: &str) -> String {
    let base = given.unwrap_or_default().rsplit(['/', '\\']).next().unwrap_or_default();
    let name = crate::domain::text::untrusted(base.trim(), 255);
    if name.is_empty() || name == "." || name == ".." {
        let ext = content_type.rsplit('/').next().unwrap_or("bin");
        format!("evidence.{ext}")
    } else {
        name
    }
}

/// The file part as it arrived, before its type is known.
struct Spooled {
    file: File,
    filename: Option<String>,
    size: u64,
    sha256: String,
    /// The first bytes, for the type.
    head: Vec<u8>,
}

fn io(e: std::io::Error) -> ApiError {
    ApiError::internal(format!("spooling an upload: {e}"))
}

/// Reads the upload of `req` (see the module documentation).
pub async fn receive(req: &HttpRequest, payload: web::Payload) -> Result<Upload, ApiError> {
    let is_multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("multipart/form-data"));
    if !is_multipart {
        return Err(ApiError::UnsupportedMediaType { expected: ACCEPTED });
    }
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BYTES + FRAMING) {
        return Err(ApiError::PayloadTooLarge { limit: MAX_BYTES as usize });
    }
    let mut form = Multipart::new(req.headers(), payload);
    let mut received: Option<Spooled> = None;
    while let Some(part) = form.next().await {
        let mut part = part.map_err(|_| ApiError::bad_request(Msg::BodyUnreadable))?;
        let name = part.name().unwrap_or_default().to_string();
        if name != "file" {
            return Err(ApiError::invalid(crate::domain::text::untrusted(&name, 64), Msg::UnknownField));
        }
        if received.is_some() {
            return Err(ApiError::invalid("file", Msg::OneFileOnly));
        }
        let filename = part.content_disposition().and_then(|d| {
            d.get_filename()
                .map(str::to_string)
                .or_else(|| d.get_filename_ext().map(|v| String::from_utf8_lossy(&v.value).into_owned()))
        });
        let mut file = tempfile::tempfile().map_err(io)?;
        let mut hash = Sha256::new();
        let mut head: Vec<u8> = Vec::with_capacity(8192);
        let mut size = 0u64;
        while let Some(chunk) = part.next().await {
            let chunk = chunk.map_err(|_| ApiError::bad_request(Msg::BodyUnreadable))?;
            size += chunk.len() as u64;
            if size > MAX_BYTES {
                return Err(ApiError::PayloadTooLarge { limit: MAX_BYTES as usize });
            }
            if head.len() < 8192 {
                let take = (8192 - head.len()).min(chunk.len());
                head.extend_from_slice(&chunk[..take]);
            }
            hash.update(&chunk);
            file.write_all(&chunk).map_err(io)?;
        }
        received = Some(Spooled { file, filename, size, sha256: hex::encode(hash.finalize()), head });
    }
    let Some(Spooled { file, filename, size, sha256, head }) = received else {
        return Err(ApiError::invalid("file", Msg::Required));
    };
    if size == 0 {
        return Err(ApiError::invalid("file", Msg::NotEmpty));
    }
    let content_type = infer::get(&head)
        .map(|t| t.mime_type())
        .and_then(|m| TYPES.into_iter().find(|t| *t == m))
        .ok_or(ApiError::UnsupportedMediaType { expected: ACCEPTED })?;
    Ok(Upload { file, filename: clean_name(filename.as_deref(), content_type), content_type, size, sha256 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_paths_and_controls() {
        assert_eq!(clean_name(Some("C:\\Users\\li\\现场照片.jpg"), "image/jpeg"), "现场照片.jpg");
        assert_eq!(clean_name(Some("../../etc/passwd"), "image/png"), "passwd");
        assert_eq!(clean_name(Some(".."), "application/pdf"), "evidence.pdf");
        assert_eq!(clean_name(None, "video/mp4"), "evidence.mp4");
    }
}
