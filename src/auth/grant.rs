//! What a key may do: its [`Role`], and the [`Need`] every API route declares. The one rule
//! that joins them is [`Caller::decide`]; `api/` asks it for every request and never decides
//! itself.

/// A key's role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Everything, as the single key of `apikey.json` always could.
    Admin,
    /// Every read, downloads included; nothing that changes data.
    Read,
    /// Upload into these targets (ids), read them and their jobs; nothing else.
    Upload(Vec<String>),
}

/// Who is asking: a named key, or anyone when the API is open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub role: Role,
}

/// What a route needs, declared next to the route (see `api::resource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// No key at all (the API's own description).
    Public,
    /// Changes something, or runs something: the admin role.
    Admin,
    /// Reads data about every target at once: read or admin.
    ReadAll,
    /// Lists or searches targets: read and admin see all, an upload key only its own (the
    /// handler narrows the list with [`Caller::sees`]).
    ListTargets,
    /// Reads the target in the path (`{id}`: id or alias).
    ReadTarget,
    /// Uploads into the target in the path (`{id}`: id or alias).
    UploadTarget,
    /// Reads (downloads) the backup in the path.
    ReadBackup,
    /// Reads the job in the path.
    ReadJob,
}

impl Need {
    /// Which object in the path decides, for a key scoped to targets.
    pub fn scoped_by(self) -> Option<Scope> {
        match self {
            Need::ReadTarget | Need::UploadTarget => Some(Scope::Target),
            Need::ReadBackup => Some(Scope::Backup),
            Need::ReadJob => Some(Scope::Job),
            _ => None,
        }
    }

    fn is_read(self) -> bool {
        matches!(self, Need::ReadAll | Need::ListTargets | Need::ReadTarget | Need::ReadBackup | Need::ReadJob)
    }
}

/// The kind of object whose target decides a scoped request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Target,
    Backup,
    Job,
}

/// The answer for one request.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Allowed if the object in the path belongs to one of these targets.
    IfTargetIn(Vec<String>),
    Deny,
}

impl Caller {
    /// The caller of an open API (no key file): everything, as Backup-chan's rule says.
    pub fn open() -> Caller {
        Caller { name: "open API".into(), role: Role::Admin }
    }

    pub fn decide(&self, need: Need) -> Decision {
        match (&self.role, need) {
            (_, Need::Public) | (Role::Admin, _) => Decision::Allow,
            (Role::Read, n) if n.is_read() => Decision::Allow,
            (Role::Read, _) => Decision::Deny,
            (Role::Upload(_), Need::ListTargets) => Decision::Allow,
            (Role::Upload(targets), n) if n.scoped_by().is_some() => Decision::IfTargetIn(targets.clone()),
            (Role::Upload(_), _) => Decision::Deny,
        }
    }

    /// Whether a listing shows this target to the caller.
    pub fn sees(&self, target_id: &str) -> bool {
        match &self.role {
            Role::Admin | Role::Read => true,
            Role::Upload(targets) => targets.iter().any(|t| t == target_id),
        }
    }

    /// The 403 message: what the role allows and what this request needs. `names` are the
    /// names of an upload key's targets.
    pub fn refusal(&self, need: Need, names: &[String]) -> String {
        let needs = match need {
            Need::UploadTarget | Need::ReadTarget | Need::ReadBackup | Need::ReadJob
                if matches!(self.role, Role::Upload(_)) =>
            {
                "this request reaches another target".to_string()
            }
            n if n.is_read() => "this request needs the read or admin role".to_string(),
            _ => "this request needs the admin role".to_string(),
        };
        match &self.role {
            Role::Admin => format!("key '{}' is an admin key", self.name),
            Role::Read => format!("key '{}' may only read (GET, downloads included); {needs}", self.name),
            Role::Upload(_) => {
                format!("key '{}' may only upload to and read targets {}; {needs}", self.name, names.join(", "))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_against_needs() {
        let admin = Caller { name: "a".into(), role: Role::Admin };
        let read = Caller { name: "r".into(), role: Role::Read };
        let up = Caller { name: "u".into(), role: Role::Upload(vec!["t".into()]) };
        for need in [Need::Admin, Need::ReadAll, Need::UploadTarget, Need::ReadJob] {
            assert_eq!(admin.decide(need), Decision::Allow);
        }
        assert_eq!(read.decide(Need::ReadBackup), Decision::Allow);
        assert_eq!(read.decide(Need::UploadTarget), Decision::Deny);
        assert_eq!(read.decide(Need::Admin), Decision::Deny);
        assert_eq!(up.decide(Need::UploadTarget), Decision::IfTargetIn(vec!["t".into()]));
        assert_eq!(up.decide(Need::ReadAll), Decision::Deny);
        assert_eq!(up.decide(Need::Admin), Decision::Deny);
        assert_eq!(up.decide(Need::ListTargets), Decision::Allow);
        assert!(up.sees("t") && !up.sees("other"));
        let msg = up.refusal(Need::Admin, &["Photos".into()]);
        assert_eq!(msg, "key 'u' may only upload to and read targets Photos; this request needs the admin role");
    }
}
