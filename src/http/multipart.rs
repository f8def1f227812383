//! `multipart/form-data` bodies (RFC 7578), read as a stream: a part's bytes are handed on in
//! the chunks the socket delivered, and the boundary is searched with one searcher built per
//! body. (actix-multipart built a searcher for every carriage return in a binary file and
//! copied the body around it, which held uploads to half the disk's speed.)

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest};
use bytes::{Buf, Bytes, BytesMut};
use futures_util::StreamExt;
use futures_util::future::{Ready, ready};
use memchr::memmem::Finder;

use crate::error::{Error, Result};

/// The most a part's header block may take.
const MAX_HEAD: usize = 16 * 1024;
/// The most text a body may carry before its first boundary.
const MAX_PREAMBLE: usize = 64 * 1024;

pub struct Multipart {
    payload: Payload,
    buf: BytesMut,
    /// `\r\n--boundary`, which ends every part. The body is read as if it began with `\r\n`,
    /// so the first boundary looks like the others.
    delimiter: Finder<'static>,
    state: State,
    eof: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum State {
    /// Before the first boundary.
    Preamble,
    /// Inside a part's bytes.
    Data,
    /// Just after a boundary: the next part's headers, or `--` for the end.
    Boundary,
    End,
}

/// One part: its name, its file name if it is a file, and its bytes through [`Field::chunk`].
pub struct Field<'a> {
    form: &'a mut Multipart,
    name: String,
    filename: Option<String>,
}

impl FromRequest for Multipart {
    type Error = Error;
    type Future = Ready<Result<Multipart>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        ready(boundary(req).map(|b| Multipart::new(&b, payload.take())))
    }
}

/// The boundary named by the request's `Content-Type`.
fn boundary(req: &HttpRequest) -> Result<String> {
    let not_multipart = || Error::bad("The body must be multipart/form-data");
    let value = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).ok_or_else(not_multipart)?;
    let mut params = split_params(value).into_iter();
    let essence = params.next().map(|(k, _)| k).unwrap_or_default();
    if !essence.eq_ignore_ascii_case("multipart/form-data") {
        return Err(not_multipart());
    }
    let boundary = params
        .find(|(k, _)| k.eq_ignore_ascii_case("boundary"))
        .and_then(|(_, v)| v)
        .ok_or_else(|| Error::bad("The multipart body names no boundary in its Content-Type"))?;
    // RFC 2046: 1 to 70 characters, none of them a line break.
    if boundary.is_empty() || boundary.len() > 70 || boundary.contains(['\r', '\n']) {
        return Err(Error::bad("The multipart boundary must be 1 to 70 characters on one line"));
    }
    Ok(boundary)
}

impl Multipart {
    fn new(boundary: &str, payload: Payload) -> Multipart {
        let mut buf = BytesMut::with_capacity(64 * 1024);
        buf.extend_from_slice(b"\r\n");
        Multipart {
            payload,
            buf,
            delimiter: Finder::new(format!("\r\n--{boundary}").as_bytes()).into_owned(),
            state: State::Preamble,
            eof: false,
        }
    }

    /// The next part; the rest of the previous one, if unread, is skipped.
    pub async fn next_field(&mut self) -> Result<Option<Field<'_>>> {
        loop {
            match self.state {
                State::End => return Ok(None),
                State::Data => while self.chunk().await?.is_some() {},
                State::Preamble => match self.delimiter.find(&self.buf) {
                    Some(i) => {
                        self.buf.advance(i + self.delimiter.needle().len());
                        self.state = State::Boundary;
                    }
                    None if self.buf.len() > MAX_PREAMBLE => {
                        return Err(Error::bad("The multipart body does not start with its boundary"));
                    }
                    None => self.fill_or("The multipart body holds no part").await?,
                },
                State::Boundary => {
                    let Some((name, filename)) = self.part_head().await? else {
                        self.state = State::End;
                        return Ok(None);
                    };
                    self.state = State::Data;
                    return Ok(Some(Field { form: self, name, filename }));
                }
            }
        }
    }

    /// Reads what follows a boundary: `None` for the closing `--`, else the part's name and file name.
    async fn part_head(&mut self) -> Result<Option<(String, Option<String>)>> {
        while self.buf.len() < 2 {
            self.fill_or("The multipart body ends after a boundary").await?;
        }
        if &self.buf[..2] == b"--" {
            return Ok(None); // Whatever follows the closing boundary is an epilogue, ignored.
        }
        let end = loop {
            if let Some(i) = memchr::memmem::find(&self.buf, b"\r\n\r\n") {
                // A boundary before the blank line: this part's headers never ended.
                if self.delimiter.find(&self.buf[..i]).is_some() {
                    return Err(Error::bad("A multipart part's headers are not ended by a blank line"));
                }
                break i;
            }
            if self.buf.len() > MAX_HEAD {
                return Err(Error::bad("A multipart part's headers are too long"));
            }
            self.fill_or("The multipart body ends inside a part's headers").await?;
        };
        // Transport padding (spaces, tabs) may follow the boundary on its line.
        let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf.advance(end + 4);
        let mut lines = head.split("\r\n");
        if !lines.next().unwrap_or_default().trim_matches([' ', '\t']).is_empty() {
            return Err(Error::bad("A multipart boundary is followed by text on its line"));
        }
        let disposition = lines
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-disposition"))
            .map(|(_, v)| v.to_string())
            .ok_or_else(|| Error::bad("A multipart part has no Content-Disposition"))?;
        let params = split_params(&disposition);
        let get = |key: &str| params.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).and_then(|(_, v)| v.clone());
        let name = get("name").ok_or_else(|| Error::bad("A multipart part has no name"))?;
        let filename = get("filename*").and_then(|v| extended_value(&v)).or_else(|| get("filename"));
        Ok(Some((name, filename)))
    }

    /// The next bytes of the current part; `None` at its end.
    async fn chunk(&mut self) -> Result<Option<Bytes>> {
        if self.state != State::Data {
            return Ok(None);
        }
        let delimiter_len = self.delimiter.needle().len();
        loop {
            if let Some(i) = self.delimiter.find(&self.buf) {
                if i > 0 {
                    return Ok(Some(self.buf.split_to(i).freeze()));
                }
                self.buf.advance(delimiter_len);
                self.state = State::Boundary;
                return Ok(None);
            }
            // All but a tail that could be the start of the delimiter belongs to the part.
            let sure = self.buf.len().saturating_sub(delimiter_len - 1);
            if sure > 0 {
                return Ok(Some(self.buf.split_to(sure).freeze()));
            }
            self.fill_or("The multipart body ends inside a part").await?;
        }
    }

    /// Reads more of the body; at its end, fails with `incomplete`.
    async fn fill_or(&mut self, incomplete: &str) -> Result<()> {
        if !self.eof {
            match self.payload.next().await {
                Some(Ok(bytes)) => {
                    self.buf.extend_from_slice(&bytes);
                    return Ok(());
                }
                Some(Err(e)) => return Err(Error::bad(format!("The request body could not be read: {e}"))),
                None => self.eof = true,
            }
        }
        Err(Error::bad(incomplete.to_string()))
    }
}

impl Field<'_> {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn filename(&self) -> Option<&str> {
        self.filename.as_deref()
    }

    /// The next bytes of this part; `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>> {
        self.form.chunk().await
    }
}

/// `value; key=value; key="quoted; value"` as (first item, no value) then (key, value) pairs.
fn split_params(header: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut chars = header.chars().peekable();
    loop {
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == ';' || c == '=' {
                break;
            }
            key.push(c);
            chars.next();
        }
        let mut value = None;
        if chars.peek() == Some(&'=') {
            chars.next();
            let mut v = String::new();
            while chars.peek() == Some(&' ') {
                chars.next();
            }
            if chars.peek() == Some(&'"') {
                chars.next();
                // Backslashes are kept as they are: browsers and Python clients send a quote
                // as `%22` and never escape a backslash (`C:\dir\db.sql` is a path).
                for c in chars.by_ref() {
                    if c == '"' {
                        break;
                    }
                    v.push(c);
                }
                // Anything between the closing quote and the next `;` is ignored.
                while chars.peek().is_some_and(|&c| c != ';') {
                    chars.next();
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ';' {
                        break;
                    }
                    v.push(c);
                    chars.next();
                }
                v = v.trim().to_string();
            }
            value = Some(v);
        }
        out.push((key.trim().to_string(), value));
        if chars.next().is_none() {
            return out;
        }
    }
}

/// An RFC 5987 value such as `UTF-8''na%C3%AFve.txt`, decoded; `None` if not UTF-8 or malformed.
fn extended_value(v: &str) -> Option<String> {
    let mut parts = v.splitn(3, '\'');
    let charset = parts.next()?;
    let _language = parts.next()?;
    let encoded = parts.next()?;
    if !charset.eq_ignore_ascii_case("utf-8") {
        return None;
    }
    percent_encoding::percent_decode_str(encoded).decode_utf8().ok().map(|s| s.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_with_quotes_and_backslashes() {
        let p = split_params(r#"form-data; name="backup_file"; filename="a; %22b%22.txt""#);
        assert_eq!(p[0], ("form-data".to_string(), None));
        assert_eq!(p[1], ("name".to_string(), Some("backup_file".to_string())));
        assert_eq!(p[2], ("filename".to_string(), Some("a; %22b%22.txt".to_string())));
        let p = split_params(r#"form-data; name="f"; filename="C:\dir\db.sql""#);
        assert_eq!(p[2], ("filename".to_string(), Some(r"C:\dir\db.sql".to_string())));
        let p = split_params("multipart/form-data; boundary=----x123");
        assert_eq!(p[1], ("boundary".to_string(), Some("----x123".to_string())));
    }

    #[test]
    fn extended_file_names() {
        assert_eq!(extended_value("UTF-8''na%C3%AFve.txt").as_deref(), Some("naïve.txt"));
        assert_eq!(extended_value("ISO-8859-1''x"), None);
        assert_eq!(extended_value("garbage"), None);
    }
}
