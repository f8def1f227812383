//! The domain: targets, backups, jobs, and their rules. No I/O here.

pub mod backup;
pub mod fields;
pub mod job;
pub mod manifest;
pub mod retention;
pub mod target;
