//! Download of a multi-file backup: a tar built on the fly from its blobs, written in chunks
//! into a channel that the HTTP response streams. No temp copy, bounded memory.

use std::io::{self, Write};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::Store;
use crate::model::backup::BackupFile;

/// Chunks queued between the tar writer and the socket (64 x 256 KiB at most in flight).
pub const CHANNEL_DEPTH: usize = 64;
const CHUNK: usize = 256 * 1024;

/// A `Write` that sends full chunks into a channel; fails once the receiver is gone.
pub struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    pub fn new(tx: mpsc::Sender<io::Result<Bytes>>) -> Self {
        ChannelWriter { tx, buf: Vec::with_capacity(CHUNK) }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "download cancelled by the client"))
    }

    /// Reports a failure to the client mid-stream (the connection is cut).
    pub fn fail(&self, err: io::Error) {
        let _ = self.tx.blocking_send(Err(err));
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = CHUNK - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// Writes the tar of `files` (paths relative to the backup's folder, as `tar x` restores them).
pub fn write_tar(store: &Store, files: &[BackupFile], mtime: u64, out: ChannelWriter) -> io::Result<()> {
    let mut builder = tar::Builder::new(out);
    for f in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(f.size as u64);
        header.set_mode(if f.mode & 0o777 == 0 { 0o644 } else { f.mode & 0o7777 });
        header.set_mtime(mtime);
        header.set_entry_type(tar::EntryType::Regular);
        let blob = std::fs::File::open(store.blob_path(&f.blob))?;
        builder.append_data(&mut header, &f.path, blob)?;
    }
    let mut out = builder.into_inner()?;
    out.flush()
}

/// Writes a zip of `files` (deflated; zip64 where a file needs it) into a stream: no seeking,
/// so sizes and checksums follow each entry, which every unzip reads.
pub fn write_zip(store: &Store, files: &[BackupFile], mtime: u64, out: ChannelWriter) -> io::Result<()> {
    use zip::write::SimpleFileOptions;
    let to_io = |e: zip::result::ZipError| io::Error::other(e.to_string());
    use chrono::{Datelike, Timelike};
    let when = chrono::DateTime::from_timestamp(mtime as i64, 0)
        .and_then(|d| {
            let (date, time) = (d.date_naive(), d.time());
            zip::DateTime::from_date_and_time(
                u16::try_from(date.year()).ok()?,
                date.month() as u8,
                date.day() as u8,
                time.hour() as u8,
                time.minute() as u8,
                time.second() as u8,
            )
            .ok()
        })
        .unwrap_or_default();
    let mut zip = zip::ZipWriter::new_stream(out);
    for f in files {
        let options = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(if f.mode & 0o777 == 0 { 0o644 } else { f.mode & 0o7777 })
            .last_modified_time(when)
            .large_file(f.size >= u32::MAX as i64);
        zip.start_file(f.path.as_str(), options).map_err(to_io)?;
        let mut blob = std::fs::File::open(store.blob_path(&f.blob))?;
        io::copy(&mut blob, &mut zip)?;
    }
    let mut out = zip.finish().map_err(to_io)?.into_inner();
    out.flush()
}
