//! The API's JSON as types. Handlers build these, and `/api/openapi.json` is derived from the
//! same types, so the document cannot drift from what is sent. Request bodies are read leniently
//! by `model::fields` (for the Python clients' quirks); their types here only describe them.

use std::borrow::Cow;

use serde::{Serialize, Serializer};
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{RefOr, schema};
use utoipa::{PartialSchema, ToSchema};

use crate::error::Code;
use crate::jobs::scheduler::Info;
use crate::model::audit::Recorded;
use crate::model::backup::Backup;
use crate::model::job::JobStatus;
use crate::model::target::Target;
use crate::service::jobs::JobRow;
use crate::service::stats::Stats;
use crate::time::{http_date, parse_iso};

macro_rules! constant_bool {
    ($name:ident, $value:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $name;

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bool($value)
            }
        }

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new()
                    .schema_type(SchemaType::Type(Type::Boolean))
                    .enum_values(Some([$value]))
                    .description(Some($doc))
                    .into()
            }
        }

        impl ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }
        }
    };
}

constant_bool!(True, true, "Always `true`: the request succeeded.");
constant_bool!(False, false, "Always `false`: the request failed.");

/// The body of every error, whatever its status (400, 401, 403, 404, 405, 408, 409, 413, 500,
/// 507).
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    success: False,
    /// What went wrong, for a person to read (e.g. `Parameter 'name' required`).
    message: String,
    /// What went wrong, for a program: stable across versions and wordings.
    code: Code,
    /// The request field at fault (a JSON key, a query or form parameter), when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    field: Option<String>,
}

impl ErrorBody {
    pub fn new(message: &str, code: Code, field: Option<&str>) -> ErrorBody {
        ErrorBody { success: False, message: message.to_string(), code, field: field.map(str::to_string) }
    }
}

/// `{"success": true}` and nothing else.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Done {
    success: True,
}

/// A new target's id.
#[derive(Debug, Serialize, ToSchema)]
pub struct Created {
    success: True,
    /// The new target's id (a UUID).
    pub id: String,
}

/// How many backups a bulk delete removed.
#[derive(Debug, Serialize, ToSchema)]
pub struct Deleted {
    success: True,
    pub deleted: usize,
}

/// Held (deleted) backups.
#[derive(Debug, Serialize, ToSchema)]
pub struct HeldList {
    success: True,
    pub held: Vec<crate::model::held::Held>,
    /// Counts and bytes (`unreferenced_bytes` is 0 here: walking the store is for the web page).
    pub usage: crate::model::held::Reclaimable,
}

/// The configured replicas.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReplicaList {
    success: True,
    pub replicas: Vec<crate::model::replica::ReplicaState>,
}

/// A held backup brought back.
#[derive(Debug, Serialize, ToSchema)]
pub struct HeldRestoredReply {
    success: True,
    #[serde(flatten)]
    pub restored: crate::service::held::Restored,
}

/// The queued job that turns an upload into a backup (follow it with `GET /api/jobs/{id}`).
#[derive(Debug, Serialize, ToSchema)]
pub struct JobQueued {
    success: True,
    pub job_id: i64,
}

macro_rules! new_with_success {
    ($($ty:ident { $($field:ident: $fty:ty),* })*) => {$(
        impl $ty {
            pub fn new($($field: $fty),*) -> $ty {
                $ty { success: True, $($field),* }
            }
        }
    )*};
}

new_with_success! {
    ReplicaList { replicas: Vec<crate::model::replica::ReplicaState> }
    HeldList { held: Vec<crate::model::held::Held>, usage: crate::model::held::Reclaimable }
    HeldRestoredReply { restored: crate::service::held::Restored }
    Created { id: String }
    Deleted { deleted: usize }
    JobQueued { job_id: i64 }
    TargetList { targets: Vec<TargetView>, page: u64 }
    TargetMatches { targets: Vec<TargetView> }
    TargetDetail { target: TargetView, backups: Vec<Backup> }
    BackupList { backups: Vec<Backup> }
    SeqStatus { manual: bool, created_at: String, updated_at: String, file_list: Vec<SeqFileState> }
    JobList { delayed: Vec<JobView>, scheduled: Vec<ScheduledView> }
    JobReply { job: JobView }
    Outcome { outcome: String }
    StatsReply { stats: Stats }
    LogReply { log: String }
    AuditList { entries: Vec<Recorded>, before: Option<i64> }
    RetentionReply { preview: crate::service::retention::Preview }
    FilesReply { found: crate::service::files::FoundPage }
    HistoryReply { path: String, versions: Vec<crate::service::files::Version> }
    CompareReply { comparison: crate::service::files::Comparison }
}

/// A page of the paths a file search matched.
#[derive(Debug, Serialize, ToSchema)]
pub struct FilesReply {
    success: True,
    #[serde(flatten)]
    pub found: crate::service::files::FoundPage,
}

/// The versions of one path across a target's backups, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryReply {
    success: True,
    pub path: String,
    pub versions: Vec<crate::service::files::Version>,
}

/// What changed between two backups of a target.
#[derive(Debug, Serialize, ToSchema)]
pub struct CompareReply {
    success: True,
    #[serde(flatten)]
    pub comparison: crate::service::files::Comparison,
}

/// What retention would do to a target's active backups.
#[derive(Debug, Serialize, ToSchema)]
pub struct RetentionReply {
    success: True,
    #[serde(flatten)]
    pub preview: crate::service::retention::Preview,
}

/// Whether a target's folder shares the store's filesystem (`hardlink`: identical content is
/// stored once) or not (`copy`).
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Storage {
    Hardlink,
    Copy,
}

impl Storage {
    pub fn of(name: &str) -> Storage {
        if name == "hardlink" { Storage::Hardlink } else { Storage::Copy }
    }
}

/// A target with how its files reach the store and its sizes.
#[derive(Debug, Serialize, ToSchema)]
pub struct TargetView {
    #[serde(flatten)]
    pub target: Target,
    pub storage: Storage,
    /// Bytes of its backups' files.
    pub logical_size: i64,
    /// Bytes those files really take on disk.
    pub disk_used: i64,
    /// `logical_size - disk_used`.
    pub dedup_saved: i64,
    /// Whether its backups arrive as expected (see `expected_interval`).
    pub health: crate::model::health::Health,
}

/// One page of targets.
#[derive(Debug, Serialize, ToSchema)]
pub struct TargetList {
    success: True,
    pub targets: Vec<TargetView>,
    pub page: u64,
}

/// The targets a search matched.
#[derive(Debug, Serialize, ToSchema)]
pub struct TargetMatches {
    success: True,
    pub targets: Vec<TargetView>,
}

/// A target and its backups, active and recycled.
#[derive(Debug, Serialize, ToSchema)]
pub struct TargetDetail {
    success: True,
    pub target: TargetView,
    pub backups: Vec<Backup>,
}

/// Backups (the recycle bin).
#[derive(Debug, Serialize, ToSchema)]
pub struct BackupList {
    success: True,
    pub backups: Vec<Backup>,
}

/// An open sequential upload.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeqStatus {
    success: True,
    pub manual: bool,
    /// ISO 8601.
    pub created_at: String,
    /// ISO 8601; an upload idle longer than `seq_upload_timeout_secs` is purged.
    pub updated_at: String,
    pub file_list: Vec<SeqFileState>,
}

/// One file announced by `begin`, and whether it has arrived.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeqFileState {
    pub path: String,
    pub name: String,
    pub uploaded: bool,
}

/// A page of the audit trail, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditList {
    success: True,
    pub entries: Vec<Recorded>,
    /// Pass as `before` for the next (older) page; `null` on the last page.
    pub before: Option<i64>,
}

/// Queued and scheduled jobs.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobList {
    success: True,
    /// Queued jobs, newest first (at most 200).
    pub delayed: Vec<JobView>,
    pub scheduled: Vec<ScheduledView>,
}

/// One queued job.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobReply {
    success: True,
    pub job: JobView,
}

/// A queued job. The official client parses `start_time`/`end_time` as HTTP dates and cannot
/// take null, so a job not yet started or ended shows its last known time there; the ISO fields
/// beside them are null until it happens.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobView {
    pub id: i64,
    /// The job's kind.
    pub name: &'static str,
    pub display_name: &'static str,
    pub status: JobStatus,
    /// HTTP date (`Tue, 15 Nov 1994 08:12:31 GMT`).
    pub start_time: String,
    /// HTTP date.
    pub end_time: String,
    /// ISO 8601.
    pub created_at: String,
    /// ISO 8601, null until the job starts.
    #[schema(required = true)]
    pub started_at: Option<String>,
    /// ISO 8601, null until the job ends.
    #[schema(required = true)]
    pub finished_at: Option<String>,
    pub attempts: i64,
    /// Why the job failed, when it did.
    #[schema(required = true)]
    pub error: Option<String>,
    #[schema(required = true)]
    pub target_id: Option<String>,
    /// The backup the job builds.
    #[schema(required = true)]
    pub backup_id: Option<String>,
}

impl JobView {
    pub fn of(j: &JobRow) -> JobView {
        let created = parse_iso(&j.created_at).unwrap_or_default();
        let started = j.started_at.as_deref().and_then(parse_iso);
        let finished = j.finished_at.as_deref().and_then(parse_iso);
        let job = j.job().ok();
        JobView {
            id: j.id,
            name: j.kind.as_str(),
            display_name: j.kind.display_name(),
            status: j.status,
            start_time: http_date(started.unwrap_or(created)),
            end_time: http_date(finished.or(started).unwrap_or(created)),
            created_at: j.created_at.clone(),
            started_at: j.started_at.clone(),
            finished_at: j.finished_at.clone(),
            attempts: j.attempts,
            error: j.error.clone(),
            target_id: job.as_ref().and_then(|q| q.target_id().map(str::to_string)),
            backup_id: job.as_ref().and_then(|q| q.backup_id()).map(str::to_string),
        }
    }
}

/// A scheduled job.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduledView {
    #[schema(value_type = ScheduledJob)]
    pub name: &'static str,
    pub display_name: &'static str,
    /// Seconds between its next two runs.
    pub interval: i64,
    /// Unix time of its next run.
    pub next_run: i64,
    /// ISO 8601, null before its first run.
    #[schema(required = true)]
    pub last_run: Option<String>,
    /// What the last run did, or `error: ...`.
    #[schema(required = true)]
    pub last_outcome: Option<String>,
    #[schema(required = true)]
    pub last_duration_ms: Option<i64>,
}

impl ScheduledView {
    pub fn of(s: &Info) -> ScheduledView {
        ScheduledView {
            name: s.name,
            display_name: s.display_name,
            interval: s.interval,
            next_run: s.next_run,
            last_run: s.last_run.0.clone(),
            last_outcome: s.last_run.1.clone(),
            last_duration_ms: s.last_run.2,
        }
    }
}

/// Bytes of a download (a schema only).
pub struct Binary;

impl PartialSchema for Binary {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::String))
            .format(Some(schema::SchemaFormat::KnownFormat(schema::KnownFormat::Binary)))
            .into()
    }
}

impl ToSchema for Binary {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Binary")
    }
}

/// The name of a scheduled job.
pub struct ScheduledJob;

impl PartialSchema for ScheduledJob {
    fn schema() -> RefOr<Schema> {
        let names = crate::model::job::Scheduled::ALL.iter().map(|s| s.name());
        ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::String))
            .enum_values(Some(names))
            .description(Some("The name of a scheduled job."))
            .into()
    }
}

impl ToSchema for ScheduledJob {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("ScheduledJob")
    }
}

/// What a forced run of a scheduled job did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Outcome {
    success: True,
    /// A short summary (`recycled 2 backups`), or `error: ...`.
    pub outcome: String,
}

/// Totals over all targets.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatsReply {
    success: True,
    #[serde(flatten)]
    pub stats: Stats,
}

/// `GET /api/health`: 200 with `success: true` when every monitored target is `ok` and the disk
/// is not low; otherwise 503 with `success: false`, a `message`, and the same figures.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthReply {
    pub success: bool,
    /// Only on a 503: what is wrong, in one line.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub message: Option<String>,
    #[serde(flatten)]
    pub summary: crate::service::health::Summary,
}

/// The end of the log.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogReply {
    success: True,
    /// Log lines, oldest first.
    pub log: String,
}

// ---- Request bodies: described here, read by `model::fields`, which also takes `0`/`1` and the
// strings `true`/`false`/`yes`/`no`/`on`/`off` for booleans and digit strings for counts.

/// A new target. `recycle_value` and `recycle_action` are required unless `recycle_criteria`
/// is `none`. A null field counts as left out.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // Only its schema is used.
pub struct NewTarget {
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    /// `target_type` is accepted as another name for it.
    #[schema(value_type = crate::model::target::TargetType)]
    backup_type: String,
    #[schema(value_type = crate::model::target::RecycleCriteria)]
    recycle_criteria: String,
    /// Backups to keep (`count`) or days to keep them (`age`).
    #[schema(minimum = 0)]
    recycle_value: Option<i64>,
    #[schema(value_type = Option<crate::model::target::RecycleAction>)]
    recycle_action: Option<String>,
    /// An absolute folder outside bakch's data folder; created if missing.
    #[schema(pattern = "^/", example = "/srv/backups/photos")]
    location: String,
    /// Names each backup: `$I` (backup id) or `$D` (date) is required, `$M` is `manual`/`auto`.
    /// One path component: no `/`, `\`, `..`, and no leading `.`.
    #[schema(pattern = r"\$[ID]", max_length = 200, example = "photos-$D")]
    name_template: String,
    deduplicate: Option<bool>,
    /// Letters, digits, `-`, `_` and `.` (at most 64); usable wherever the id is.
    alias: Option<String>,
    /// Retention never leaves fewer backups than this.
    #[schema(minimum = 0)]
    min_backups: Option<i64>,
    tags: Option<Vec<String>>,
    /// Seconds within which a new backup is expected; 0 (the default) = not monitored.
    #[schema(minimum = 0, maximum = 3153600000.0)]
    expected_interval: Option<i64>,
    /// A GFS policy with restic's semantics; when set, it decides retention instead of
    /// `recycle_criteria`. Null removes it; leaving it out keeps it.
    keep: Option<crate::model::retention::KeepPolicy>,
    /// The most disk the target's backups may use, in bytes of distinct content; 0 = none.
    #[schema(minimum = 0)]
    quota_bytes: Option<i64>,
    /// Percent of the quota at which the target is reported nearly full (default 90; 0 = never).
    #[schema(minimum = 0, maximum = 100)]
    quota_warning_percent: Option<i64>,
}

/// Changes to a target; fields left out keep their value. The type cannot change; a null
/// `alias` clears it.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // Only its schema is used.
pub struct TargetEdit {
    #[schema(min_length = 1, max_length = 200)]
    name: Option<String>,
    /// Must equal the target's type when given.
    #[schema(value_type = Option<crate::model::target::TargetType>)]
    backup_type: Option<String>,
    #[schema(value_type = Option<crate::model::target::RecycleCriteria>)]
    recycle_criteria: Option<String>,
    #[schema(minimum = 0)]
    recycle_value: Option<i64>,
    #[schema(value_type = Option<crate::model::target::RecycleAction>)]
    recycle_action: Option<String>,
    /// A new location; the target's backups move there.
    #[schema(pattern = "^/")]
    location: Option<String>,
    #[schema(pattern = r"\$[ID]", max_length = 200)]
    name_template: Option<String>,
    deduplicate: Option<bool>,
    alias: Option<String>,
    /// `num_backups` is accepted as another name for it.
    #[schema(minimum = 0)]
    min_backups: Option<i64>,
    tags: Option<Vec<String>>,
    /// Seconds within which a new backup is expected; 0 (the default) = not monitored.
    #[schema(minimum = 0, maximum = 3153600000.0)]
    expected_interval: Option<i64>,
    /// A GFS policy with restic's semantics; when set, it decides retention instead of
    /// `recycle_criteria`. Null removes it; leaving it out keeps it.
    keep: Option<crate::model::retention::KeepPolicy>,
    /// The most disk the target's backups may use, in bytes of distinct content; 0 = none.
    #[schema(minimum = 0)]
    quota_bytes: Option<i64>,
    /// Percent of the quota at which the target is reported nearly full (default 90; 0 = never).
    #[schema(minimum = 0, maximum = 100)]
    quota_warning_percent: Option<i64>,
}

/// Whether a delete also removes the backups' files from disk.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // Only its schema is used.
pub struct DeleteFiles {
    delete_files: bool,
}

/// Recycle (`true`) or restore (`false`) a backup; pin or unpin it. At least one is required
/// (`is_recycled` when `pinned` is left out, as Backup-chan's clients send it).
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // Only its schema is used.
pub struct SetRecycled {
    is_recycled: Option<bool>,
    /// A pinned backup is never taken by retention and cannot be deleted until unpinned.
    pinned: Option<bool>,
}

/// Opens a sequential upload: the files that will follow, one request each.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // Only its schema is used.
pub struct SeqBegin {
    manual: bool,
    file_list: Vec<SeqEntry>,
}

/// One announced file: its folder inside the backup and its name.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // Only its schema is used.
pub struct SeqEntry {
    path: String,
    name: String,
}

/// `multipart/form-data` of `POST /api/target/{id}/upload`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // Only its schema is used.
pub struct UploadForm {
    /// One file for a `single` target; for a `multi` target several files, or one archive (tar,
    /// tar.gz/bz2/xz/lzma/zst, zip) that is unpacked. The part's filename names the file.
    #[schema(value_type = Vec<String>, format = Binary, content_media_type = "application/octet-stream")]
    backup_file: Vec<Vec<u8>>,
    /// `0`, `1`, `true` or `false`.
    #[schema(value_type = String, pattern = r"^([01]|[Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee])$")]
    manual: String,
}

/// `multipart/form-data` of `POST /api/seq/{id}/upload`: one announced file.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // Only its schema is used.
pub struct SeqUploadForm {
    /// As announced in `begin`.
    path: String,
    /// As announced in `begin`.
    name: String,
    #[schema(value_type = String, format = Binary, content_media_type = "application/octet-stream")]
    file: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use utoipa::openapi::schema::Schema;
    use utoipa::openapi::{RefOr, schema};

    use super::*;
    use crate::model::target::TargetInput;

    fn properties(s: RefOr<Schema>) -> Vec<String> {
        match s {
            RefOr::T(Schema::Object(schema::Object { properties, .. })) => properties.keys().cloned().collect(),
            _ => panic!("not an object schema"),
        }
    }

    #[test]
    fn the_target_bodies_describe_the_fields_the_input_reads() {
        assert_eq!(properties(NewTarget::schema()), TargetInput::FIELDS);
        assert_eq!(properties(TargetEdit::schema()), TargetInput::FIELDS);
    }
}
