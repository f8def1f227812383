//! The audit trail's vocabulary: what was done ([`Action`]), by whom and with what outcome
//! ([`Entry`]). Who records what is in `api::audit`, `web::audit` and `service::audit`.

use serde::Serialize;

/// What a recorded request or operation did (or tried to do).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    TargetCreated,
    TargetEdited,
    TargetDeleted,
    /// Every backup of a target deleted (`/target/{id}/all`).
    TargetBackupsDeleted,
    /// The recycled backups of a target deleted (`/target/{id}/recycled`).
    TargetRecycledDeleted,
    BackupUploaded,
    BackupEdited,
    BackupRecycled,
    BackupRestored,
    BackupPinned,
    BackupUnpinned,
    BackupDeleted,
    BackupDeletedWithFiles,
    /// Several backups changed at once from a target's page.
    BackupsBulk,
    RecycleBinCleared,
    /// A held (deleted) backup brought back.
    HeldRestored,
    /// Holds ended early by `bakch held purge` on the server.
    HeldPurged,
    /// A test notification sent to every destination.
    NotifyTested,
    KeyAdded,
    KeyRevoked,
    Login,
    LoginFailed,
    Logout,
    PasswordChanged,
    JobForced,
    JobRetried,
    SeqBegun,
    SeqPart,
    SeqFinished,
    SeqTerminated,
    /// `bakch push`: a push opened, a page of its file list, a pack of blobs, finished, aborted.
    PushBegun,
    PushFiles,
    PushBlobs,
    PushFinished,
    PushAborted,
    AuditPurged,
    /// A read that was refused (reads that succeed are not recorded).
    Read,
}

impl Action {
    pub const ALL: [Action; 37] = [
        Action::TargetCreated,
        Action::TargetEdited,
        Action::TargetDeleted,
        Action::TargetBackupsDeleted,
        Action::TargetRecycledDeleted,
        Action::BackupUploaded,
        Action::BackupEdited,
        Action::BackupRecycled,
        Action::BackupRestored,
        Action::BackupPinned,
        Action::BackupUnpinned,
        Action::BackupDeleted,
        Action::BackupDeletedWithFiles,
        Action::BackupsBulk,
        Action::RecycleBinCleared,
        Action::HeldRestored,
        Action::HeldPurged,
        Action::NotifyTested,
        Action::KeyAdded,
        Action::KeyRevoked,
        Action::Login,
        Action::LoginFailed,
        Action::Logout,
        Action::PasswordChanged,
        Action::JobForced,
        Action::JobRetried,
        Action::SeqBegun,
        Action::SeqPart,
        Action::SeqFinished,
        Action::SeqTerminated,
        Action::PushBegun,
        Action::PushFiles,
        Action::PushBlobs,
        Action::PushFinished,
        Action::PushAborted,
        Action::AuditPurged,
        Action::Read,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::TargetCreated => "target_created",
            Action::TargetEdited => "target_edited",
            Action::TargetDeleted => "target_deleted",
            Action::TargetBackupsDeleted => "target_backups_deleted",
            Action::TargetRecycledDeleted => "target_recycled_deleted",
            Action::BackupUploaded => "backup_uploaded",
            Action::BackupEdited => "backup_edited",
            Action::BackupRecycled => "backup_recycled",
            Action::BackupRestored => "backup_restored",
            Action::BackupPinned => "backup_pinned",
            Action::BackupUnpinned => "backup_unpinned",
            Action::BackupDeleted => "backup_deleted",
            Action::BackupDeletedWithFiles => "backup_deleted_with_files",
            Action::BackupsBulk => "backups_bulk",
            Action::RecycleBinCleared => "recycle_bin_cleared",
            Action::HeldRestored => "held_restored",
            Action::HeldPurged => "held_purged",
            Action::NotifyTested => "notify_tested",
            Action::KeyAdded => "key_added",
            Action::KeyRevoked => "key_revoked",
            Action::Login => "login",
            Action::LoginFailed => "login_failed",
            Action::Logout => "logout",
            Action::PasswordChanged => "password_changed",
            Action::JobForced => "job_forced",
            Action::JobRetried => "job_retried",
            Action::SeqBegun => "seq_begun",
            Action::SeqPart => "seq_part",
            Action::SeqFinished => "seq_finished",
            Action::SeqTerminated => "seq_terminated",
            Action::PushBegun => "push_begun",
            Action::PushFiles => "push_files",
            Action::PushBlobs => "push_blobs",
            Action::PushFinished => "push_finished",
            Action::PushAborted => "push_aborted",
            Action::AuditPurged => "audit_purged",
            Action::Read => "read",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// Who did it, from where: a key's name, `web` (with a session tag), `cli` or `bakch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Who {
    pub name: String,
    pub session: Option<String>,
    /// The client's address, or `local`.
    pub origin: String,
}

impl Who {
    /// A local command (`bakch key`, `bakch passwd`).
    pub fn cli() -> Who {
        Who { name: "cli".into(), session: None, origin: "local".into() }
    }

    /// bakch itself (scheduled jobs).
    pub fn bakch() -> Who {
        Who { name: "bakch".into(), session: None, origin: "local".into() }
    }
}

/// One entry to record. `status` is the HTTP status (200 for a local operation that worked).
#[derive(Debug, Clone)]
pub struct Entry {
    pub who: Who,
    pub action: Action,
    /// `METHOD /pattern` of an HTTP request.
    pub route: Option<String>,
    pub target: Option<String>,
    pub backup: Option<String>,
    pub job: Option<String>,
    pub status: u16,
    pub message: Option<String>,
}

impl Entry {
    pub fn new(who: Who, action: Action) -> Entry {
        Entry { who, action, route: None, target: None, backup: None, job: None, status: 200, message: None }
    }
}

/// A stored entry, as `GET /api/audit` and the audit page show it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Recorded {
    pub id: i64,
    /// RFC 3339, UTC.
    pub at: String,
    /// A key's name, `web`, `cli` or `bakch`.
    pub who: String,
    /// A short tag of the web session (web only).
    pub session: Option<String>,
    /// The client's address, or `local`.
    #[serde(rename = "from")]
    pub origin: String,
    pub action: String,
    /// `METHOD /pattern` of the request, if it was one.
    pub route: Option<String>,
    pub target: Option<String>,
    pub backup: Option<String>,
    pub job: Option<String>,
    /// `ok`, or `refused`.
    pub outcome: String,
    pub status: u16,
    /// Why it was refused.
    pub message: Option<String>,
}

/// What a handler learned that its route does not say (the created target, the queued job, a
/// more precise action), put in the request's extensions for the recording middleware.
#[derive(Debug, Clone, Default)]
pub struct Note {
    pub action: Option<Action>,
    pub target: Option<String>,
    pub backup: Option<String>,
    pub job: Option<String>,
    pub message: Option<String>,
    /// The request changed nothing after all (a confirmation page): no entry.
    pub unchanged: bool,
}

/// Which entries to list: newest first, `before` an id, filtered.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub limit: usize,
    pub before: Option<i64>,
    pub target: Option<String>,
    pub who: Option<String>,
    pub action: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_round_trip_and_are_unique() {
        let mut names: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
        for a in Action::ALL {
            assert_eq!(Action::parse(a.as_str()), Some(a));
            assert_eq!(
                serde_json::to_value(a).ok().and_then(|v| v.as_str().map(String::from)).as_deref(),
                Some(a.as_str())
            );
        }
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Action::ALL.len());
    }
}
