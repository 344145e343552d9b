//! Uploaded tables (bulk imports): a CSV file or an Excel workbook (`.xlsx`, its first sheet), spooled to a
//! temporary file as it arrives (never held in memory whole) and read back row by row.
//!
//! CSV is read with the `csv` crate: UTF-8 with or without a byte-order mark, Windows or Unix line endings, quoted
//! fields; a file Excel saved as "CSV (逗号分隔)" on a Chinese Windows is GBK, and is read as such (GB 18030).
//! Workbooks are read with `calamine`, cell by cell. Blank rows are skipped; line numbers are those a person sees
//! (the text line a CSV record starts on, the spreadsheet's row number).

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, Write};

use actix_web::http::header;
use actix_web::{web, HttpRequest};
use futures_util::StreamExt;

use crate::error::{ApiError, FieldError};
use crate::messages::Msg;

/// Columns a row may have (an import's tables have a handful).
pub const MAX_COLUMNS: usize = 64;
/// Largest uncompressed size of a workbook's parts together: a 20 MiB workbook of real data stays far below it; a
/// "zip bomb" that would unpack to gigabytes is refused before it is read.
pub const MAX_UNPACKED: u64 = 256 * 1024 * 1024;

/// The content type of an `.xlsx` workbook.
pub const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
/// What an import accepts, as a 415 says it.
pub const ACCEPTED: &str = "text/csv, application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// How an uploaded table is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFormat {
    Csv,
    Xlsx,
}

impl TableFormat {
    /// From the request's `Content-Type`: `text/csv` (also `application/csv`, `text/plain`), the `.xlsx` type, or
    /// `application/octet-stream` (decided from the file's first bytes once it has arrived). 415 otherwise.
    pub fn of(req: &HttpRequest) -> Result<Option<Self>, ApiError> {
        let ct = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase())
            .unwrap_or_default();
        match ct.as_str() {
            "text/csv" | "application/csv" | "text/plain" => Ok(Some(TableFormat::Csv)),
            XLSX => Ok(Some(TableFormat::Xlsx)),
            "application/octet-stream" => Ok(None),
            _ => Err(ApiError::UnsupportedMediaType { expected: ACCEPTED }),
        }
    }

    /// A workbook is a ZIP archive (`PK\x03\x04`); anything else is taken for CSV.
    pub fn sniff(file: &mut File) -> std::io::Result<Self> {
        let mut head = [0u8; 4];
        let n = std::io::Read::read(file, &mut head)?;
        file.rewind()?;
        Ok(if n == 4 && head == *b"PK\x03\x04" { TableFormat::Xlsx } else { TableFormat::Csv })
    }
}

/// The SHA-256 of a spooled file (hex), read from the start; the file is rewound afterwards.
pub fn sha256(file: &mut File) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    file.rewind()?;
    let mut h = Sha256::new();
    std::io::copy(file, &mut h)?;
    file.rewind()?;
    Ok(hex::encode(h.finalize()))
}

/// Writes the request body to an anonymous temporary file as it arrives, refusing more than `limit` bytes (413,
/// as soon as the limit is passed). The file is rewound, ready to read.
pub async fn spool(req: &HttpRequest, payload: &mut web::Payload, limit: usize) -> Result<File, ApiError> {
    if let Some(len) = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok()) {
        if len > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
    }
    let io = |e: std::io::Error| ApiError::internal(format!("spooling an upload: {e}"));
    let mut file = tempfile::tempfile().map_err(io)?;
    let mut size = 0usize;
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| ApiError::bad_request(Msg::BodyUnreadable))?;
        size += chunk.len();
        if size > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        // Chunks are small (tens of KiB) and land in the page cache: writing inline is cheaper than a thread hop.
        file.write_all(&chunk).map_err(io)?;
    }
    file.rewind().map_err(io)?;
    Ok(file)
}

/// A row of an uploaded table: its line, and its cells as text (trimmed).
pub struct Row {
    pub line: u64,
    pub cells: Vec<String>,
}

/// Reads `file` row by row, handing each non-blank row to `visit` (which may stop the reading with an error).
/// A file that cannot be read as a table is 400 naming `file`.
pub fn read_rows(
    file: File,
    format: TableFormat,
    visit: &mut dyn FnMut(Row) -> Result<(), ApiError>,
) -> Result<(), ApiError> {
    match format {
        TableFormat::Csv => read_csv(file, visit),
        TableFormat::Xlsx => read_xlsx(file, visit),
    }
}

fn unreadable(line: Option<u64>, why: String) -> ApiError {
    file_error(line, Msg::FileUnreadable(crate::domain::text::untrusted(&why, 200)))
}

fn file_error(line: Option<u64>, message: Msg) -> ApiError {
    let e = FieldError::new("file", message);
    ApiError::Validation {
        code: crate::error::ErrorCode::ValidationFailed,
        errors: vec![match line {
            Some(n) => e.at(n),
            None => e,
        }],
    }
}

/// Whether the whole file is UTF-8, read a block at a time (a character cut by a block's end is carried over).
/// Decided once for the file: short GBK text can happen to be valid UTF-8 (水源 is), so a field-by-field guess
/// would misread it.
fn is_utf8(file: &File) -> std::io::Result<bool> {
    let mut buf = vec![0u8; 64 * 1024];
    let (mut at, mut carried) = (0u64, 0usize);
    loop {
        let n = std::os::unix::fs::FileExt::read_at(file, &mut buf[carried..], at)?;
        if n == 0 {
            return Ok(carried == 0);
        }
        at += n as u64;
        let filled = carried + n;
        match std::str::from_utf8(&buf[..filled]) {
            Ok(_) => carried = 0,
            // Only an incomplete character at the very end may continue in the next block.
            Err(e) if e.error_len().is_none() && filled - e.valid_up_to() < 4 => {
                let rest = e.valid_up_to();
                buf.copy_within(rest..filled, 0);
                carried = filled - rest;
            }
            Err(_) => return Ok(false),
        }
    }
}

/// A field's text in the file's encoding: UTF-8, or GB 18030 (GBK) as Excel writes CSV on a Chinese Windows. In GBK
/// every byte of a multi-byte character is 0x40 or above, so commas, quotes and line breaks are never part of one
/// and the CSV structure reads the same in either encoding.
fn decode(bytes: &[u8], utf8: bool) -> Option<String> {
    if utf8 {
        std::str::from_utf8(bytes).ok().map(str::to_string)
    } else {
        encoding_rs::GB18030.decode_without_bom_handling_and_without_replacement(bytes).map(|s| s.into_owned())
    }
}

fn is_blank(cells: &[String]) -> bool {
    cells.iter().all(|c| c.is_empty())
}

/// The text line each CSV record starts on. The `csv` crate reports where a record's bytes begin, which can be the
/// end of the line before (a `\n` left from `\r\n`) or blank lines it skipped; the line a person sees is counted
/// here from the bytes themselves, read again from the spooled file (never all at once).
struct Lines {
    file: File,
    /// Bytes before the CSV text (a byte-order mark).
    offset: u64,
    /// Bytes counted so far, and the line breaks among them.
    pos: u64,
    breaks: u64,
}

impl Lines {
    fn read(&self, buf: &mut [u8], at: u64) -> std::io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(&self.file, buf, at)
    }

    /// The line of the first character at or after byte `start` of the CSV text that is not a line break.
    fn of(&mut self, start: u64) -> std::io::Result<u64> {
        let start = start + self.offset;
        let mut buf = [0u8; 8192];
        while self.pos < start {
            let want = buf.len().min((start - self.pos) as usize);
            let n = self.read(&mut buf[..want], self.pos)?;
            if n == 0 {
                break;
            }
            self.breaks += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
            self.pos += n as u64;
        }
        loop {
            let n = self.read(&mut buf[..256], self.pos)?;
            let content = buf[..n].iter().position(|b| !matches!(b, b'\r' | b'\n'));
            let skipped = content.unwrap_or(n);
            self.breaks += buf[..skipped].iter().filter(|b| **b == b'\n').count() as u64;
            self.pos += skipped as u64;
            if content.is_some() || n == 0 {
                return Ok(self.breaks + 1);
            }
        }
    }
}

fn read_csv(file: File, visit: &mut dyn FnMut(Row) -> Result<(), ApiError>) -> Result<(), ApiError> {
    let io = |e: std::io::Error| ApiError::internal(format!("reading an upload: {e}"));
    let utf8 = is_utf8(&file).map_err(io)?;
    let mut lines = Lines { file: file.try_clone().map_err(io)?, offset: 0, pos: 0, breaks: 0 };
    let mut input = BufReader::with_capacity(64 * 1024, file);
    // A UTF-8 byte-order mark (Excel's "CSV UTF-8") is not part of the first column's name.
    let bom = input.fill_buf().map(|b| b.starts_with(b"\xEF\xBB\xBF")).unwrap_or(false);
    if bom {
        input.consume(3);
        lines.offset = 3;
        lines.pos = 3;
    }
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(input);
    let mut record = csv::ByteRecord::new();
    loop {
        let at = reader.position().byte();
        match reader.read_byte_record(&mut record) {
            Ok(false) => return Ok(()),
            Ok(true) => {}
            Err(e) => {
                let line = lines.of(e.position().map_or(at, |p| p.byte())).map_err(io)?;
                return Err(unreadable(Some(line), e.to_string()));
            }
        }
        let line = lines.of(record.position().map_or(at, |p| p.byte())).map_err(io)?;
        if record.len() > MAX_COLUMNS {
            return Err(file_error(Some(line), Msg::TooManyColumns(MAX_COLUMNS)));
        }
        let mut cells = Vec::with_capacity(record.len());
        for field in record.iter() {
            let text = decode(field, utf8).ok_or_else(|| file_error(Some(line), Msg::TextEncoding))?;
            cells.push(text.trim().to_string());
        }
        if !is_blank(&cells) {
            visit(Row { line, cells })?;
        }
    }
}

/// A cell as text: whole numbers without a decimal point (Excel keeps every number as a float), other numbers in
/// their shortest exact form (`3.45`), text as it is.
fn cell_text(value: &calamine::DataRef<'_>) -> String {
    use calamine::DataRef as D;
    match value {
        D::Int(i) => i.to_string(),
        D::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        D::Float(f) => f.to_string(),
        D::String(s) | D::DateTimeIso(s) | D::DurationIso(s) => s.trim().to_string(),
        D::SharedString(s) => s.trim().to_string(),
        D::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_string(),
        D::DateTime(d) => d.as_f64().to_string(),
        D::Error(e) => format!("#{e}"),
        D::Empty => String::new(),
    }
}

/// Refuses a workbook whose parts would unpack to more than [`MAX_UNPACKED`] bytes, from the sizes its archive
/// directory declares, before anything is unpacked.
fn check_unpacked(file: &mut File, limit: u64) -> Result<(), ApiError> {
    let mut archive = zip::ZipArchive::new(&mut *file).map_err(|e| unreadable(None, e.to_string()))?;
    let mut total = 0u64;
    for i in 0..archive.len() {
        let entry = archive.by_index_raw(i).map_err(|e| unreadable(None, e.to_string()))?;
        total = total.saturating_add(entry.size());
    }
    drop(archive);
    file.rewind().map_err(|e| ApiError::internal(format!("reading an upload: {e}")))?;
    if total > limit {
        return Err(unreadable(None, format!("unpacks to more than {} MiB", limit / (1024 * 1024))));
    }
    Ok(())
}

fn read_xlsx(mut file: File, visit: &mut dyn FnMut(Row) -> Result<(), ApiError>) -> Result<(), ApiError> {
    use calamine::Reader;
    check_unpacked(&mut file, MAX_UNPACKED)?;
    let mut book = calamine::Xlsx::new(BufReader::new(file)).map_err(|e| unreadable(None, e.to_string()))?;
    let Some(first) = book.sheet_names().first().cloned() else { return Ok(()) };
    let mut cells = book.worksheet_cells_reader(&first).map_err(|e| unreadable(None, e.to_string()))?;
    let mut row: Option<(u32, Vec<String>)> = None;
    let mut emit = |r: Option<(u32, Vec<String>)>| -> Result<(), ApiError> {
        match r {
            Some((n, values)) if !is_blank(&values) => visit(Row { line: u64::from(n) + 1, cells: values }),
            _ => Ok(()),
        }
    };
    while let Some(cell) = cells.next_cell().map_err(|e| unreadable(None, e.to_string()))? {
        let (r, c) = cell.get_position();
        if row.as_ref().is_some_and(|(n, _)| *n != r) {
            emit(row.take())?;
        }
        let (_, values) = row.get_or_insert_with(|| (r, Vec::new()));
        let c = c as usize;
        let text = cell_text(cell.get_value());
        if text.is_empty() {
            continue;
        }
        if c >= MAX_COLUMNS {
            return Err(file_error(Some(u64::from(r) + 1), Msg::TooManyColumns(MAX_COLUMNS)));
        }
        if values.len() <= c {
            values.resize(c + 1, String::new());
        }
        values[c] = text;
    }
    emit(row.take())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows_of(bytes: &[u8]) -> Vec<(u64, Vec<String>)> {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(bytes).unwrap();
        f.rewind().unwrap();
        let mut out = Vec::new();
        read_rows(f, TableFormat::Csv, &mut |r| {
            out.push((r.line, r.cells));
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn csv_with_a_bom_crlf_quotes_and_blank_lines() {
        let rows = rows_of(b"\xEF\xBB\xBFa,b\r\n\r\n\"x, y\",\"\xE4\xB8\xAD\r\nz\"\r\n,,\r\n1,2\r\n\n\n3");
        assert_eq!(rows[0], (1, vec!["a".into(), "b".into()]));
        assert_eq!(rows[1], (3, vec!["x, y".into(), "中\r\nz".into()]));
        assert_eq!(rows[2], (6, vec!["1".into(), "2".into()]));
        assert_eq!(rows[3], (9, vec!["3".into()]));
        assert_eq!(rows.len(), 4);
        // Unix line endings, blank lines between.
        let rows = rows_of(b"h\n1\n\n\n2\n");
        assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), [1, 2, 5]);
    }

    #[test]
    fn gbk_csv_reads_as_chinese() {
        // "水务,1" in GBK.
        let rows = rows_of(b"\xCB\xAE\xCE\xF1,1\n");
        assert_eq!(rows[0].1, ["水务", "1"]);
        // 水源 in GBK (CB AE D4 B4) happens to be valid UTF-8: the file as a whole decides.
        let (gbk, _, _) = encoding_rs::GBK.encode("类别,水源\r\n非居民用水户,自备水源\r\n");
        let rows = rows_of(&gbk);
        assert_eq!(rows[0].1, ["类别", "水源"]);
        assert_eq!(rows[1].1, ["非居民用水户", "自备水源"]);
        // A long UTF-8 file whose characters straddle the blocks read is still UTF-8.
        let long = "水".repeat(30_000) + ",1\n";
        assert_eq!(rows_of(long.as_bytes())[0].1[1], "1");
    }

    #[test]
    fn a_workbook_that_unpacks_too_large_is_refused_before_reading() {
        let mut book = rust_xlsxwriter::Workbook::new();
        book.add_worksheet().write_string(0, 0, "x".repeat(10_000)).unwrap();
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&book.save_to_buffer().unwrap()).unwrap();
        f.rewind().unwrap();
        assert!(check_unpacked(&mut f, 5_000).is_err());
        check_unpacked(&mut f, MAX_UNPACKED).unwrap();
        assert!(read_rows(f, TableFormat::Xlsx, &mut |_| Ok(())).is_ok());
    }

    #[test]
    fn too_many_columns_is_refused() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(",".repeat(100).as_bytes()).unwrap();
        f.write_all(b"x\n").unwrap();
        f.rewind().unwrap();
        assert!(read_rows(f, TableFormat::Csv, &mut |_| Ok(())).is_err());
    }

    #[test]
    fn numbers_from_a_workbook() {
        use calamine::DataRef as D;
        assert_eq!(cell_text(&D::Float(120000.0)), "120000");
        assert_eq!(cell_text(&D::Float(3.45)), "3.45");
        assert_eq!(cell_text(&D::Int(2026)), "2026");
        assert_eq!(cell_text(&D::SharedString(" 赤水 ")), "赤水");
    }
}
