//! The domain: targets, backups, jobs, manifests, and their rules. No I/O here: what needs the
//! filesystem (resolving links, checking folders) is the service's.

pub mod audit;
pub mod backup;
pub mod canary;
pub mod fields;
pub mod health;
pub mod held;
pub mod job;
pub mod manifest;
pub mod notify;
pub mod replica;
pub mod retention;
pub mod target;
