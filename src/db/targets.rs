//! Target rows: lookups by id or alias, paging, search.

use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::error::{Error, Result};
use crate::model::target::{RecycleAction, RecycleCriteria, Target, TargetType};

const COLUMNS: &str = "id, name, target_type, recycle_criteria, recycle_value, recycle_action, \
                       location, name_template, deduplicate, alias, min_backups, tags, expected_interval, \
                       keep_policy, quota_bytes, quota_warning_percent";

fn from_row(r: &Row) -> rusqlite::Result<Target> {
    let bad =
        |i: usize, e: Error| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e));
    let tags: String = r.get(11)?;
    Ok(Target {
        id: r.get(0)?,
        name: r.get(1)?,
        target_type: TargetType::parse(&r.get::<_, String>(2)?).map_err(|e| bad(2, e))?,
        recycle_criteria: RecycleCriteria::parse(&r.get::<_, String>(3)?).map_err(|e| bad(3, e))?,
        recycle_value: r.get(4)?,
        recycle_action: RecycleAction::parse(&r.get::<_, String>(5)?).map_err(|e| bad(5, e))?,
        location: r.get(6)?,
        name_template: r.get(7)?,
        deduplicate: r.get(8)?,
        alias: r.get(9)?,
        min_backups: r.get(10)?,
        tags: serde_json::from_str(&tags).unwrap_or_default(),
        expected_interval: r.get(12)?,
        // A policy this version cannot read is shown as none rather than hiding the target.
        keep: r.get::<_, Option<String>>(13)?.and_then(|j| serde_json::from_str(&j).ok()),
        quota_bytes: r.get(14)?,
        quota_warning_percent: r.get(15)?,
    })
}

fn keep_json(t: &Target) -> Option<String> {
    t.keep.and_then(|k| serde_json::to_string(&k).ok())
}

fn tags_json(t: &Target) -> String {
    serde_json::Value::from(t.tags.clone()).to_string()
}

pub fn insert(c: &Connection, t: &Target, created_at: &str) -> Result<()> {
    c.execute(
        &format!("INSERT INTO targets ({COLUMNS}, created_at) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17)"),
        params![
            t.id,
            t.name,
            t.target_type.as_str(),
            t.recycle_criteria.as_str(),
            t.recycle_value,
            t.recycle_action.as_str(),
            t.location,
            t.name_template,
            t.deduplicate,
            t.alias,
            t.min_backups,
            tags_json(t),
            t.expected_interval,
            keep_json(t),
            t.quota_bytes,
            t.quota_warning_percent,
            created_at
        ],
    )?;
    Ok(())
}

pub fn update(c: &Connection, t: &Target) -> Result<()> {
    c.execute(
        "UPDATE targets SET name=?2, recycle_criteria=?3, recycle_value=?4, recycle_action=?5, location=?6,
         name_template=?7, deduplicate=?8, alias=?9, min_backups=?10, tags=?11, expected_interval=?12,
         keep_policy=?13, quota_bytes=?14, quota_warning_percent=?15 WHERE id=?1",
        params![
            t.id,
            t.name,
            t.recycle_criteria.as_str(),
            t.recycle_value,
            t.recycle_action.as_str(),
            t.location,
            t.name_template,
            t.deduplicate,
            t.alias,
            t.min_backups,
            tags_json(t),
            t.expected_interval,
            keep_json(t),
            t.quota_bytes,
            t.quota_warning_percent
        ],
    )?;
    Ok(())
}

/// When a target was created (ISO 8601).
pub fn created_at(c: &Connection, id: &str) -> Result<Option<String>> {
    Ok(c.query_row("SELECT created_at FROM targets WHERE id = ?1", [id], |r| r.get(0)).optional()?)
}

pub fn delete(c: &Connection, id: &str) -> Result<()> {
    c.execute("DELETE FROM targets WHERE id = ?1", [id])?;
    Ok(())
}

/// Finds a target by id, or else by alias.
pub fn find(c: &Connection, id_or_alias: &str) -> Result<Option<Target>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM targets WHERE id = ?1 UNION ALL SELECT {COLUMNS} FROM targets WHERE alias = ?1 LIMIT 1"
    );
    // Cached: every request that names a target runs this first.
    Ok(c.prepare_cached(&sql)?.query_row([id_or_alias], from_row).optional()?)
}

/// One page of targets, by name then id so that pages are stable.
pub fn page(c: &Connection, offset: usize, limit: usize) -> Result<Vec<Target>> {
    // `+ 0`: SQLite specialises a plan to the value of a bare `LIMIT ?`/`OFFSET ?` and prepares
    // it again whenever another value is bound, which was half the cost of a page.
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM targets ORDER BY name COLLATE NOCASE, id LIMIT ?1 + 0 OFFSET ?2 + 0"
    ))?;
    let rows = stmt.query_map(params![limit as i64, offset as i64], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn all(c: &Connection) -> Result<Vec<Target>> {
    page(c, 0, i64::MAX as usize)
}

pub fn count(c: &Connection) -> Result<i64> {
    Ok(c.query_row("SELECT COUNT(*) FROM targets", [], |r| r.get(0))?)
}

/// Whether another target (not `except_id`) already uses `column = value`.
pub fn taken(c: &Connection, column: &str, value: &str, except_id: &str) -> Result<bool> {
    debug_assert!(matches!(column, "name_template" | "alias"));
    let sql = format!("SELECT EXISTS(SELECT 1 FROM targets WHERE {column} = ?1 AND id <> ?2)");
    Ok(c.query_row(&sql, params![value, except_id], |r| r.get(0))?)
}

pub use crate::model::target::Search;

pub fn search(c: &Connection, s: &Search) -> Result<Vec<Target>> {
    let mut clauses: Vec<String> = Vec::new();
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    let mut like = |column: &str, value: &Option<String>, clauses: &mut Vec<String>| {
        if let Some(v) = value {
            let escaped = v.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
            clauses.push(format!("{column} LIKE ? ESCAPE '\\'"));
            args.push(format!("%{escaped}%").into());
        }
    };
    like("name", &s.name, &mut clauses);
    like("location", &s.location, &mut clauses);
    like("name_template", &s.name_template, &mut clauses);
    like("alias", &s.alias, &mut clauses);
    for (column, value) in [
        ("target_type", &s.target_type),
        ("recycle_criteria", &s.recycle_criteria),
        ("recycle_action", &s.recycle_action),
    ] {
        if let Some(v) = value {
            clauses.push(format!("{column} = ?"));
            args.push(v.clone().into());
        }
    }
    if let Some(d) = s.deduplicate {
        clauses.push("deduplicate = ?".into());
        args.push((d as i64).into());
    }
    for tag in &s.tags {
        clauses.push("EXISTS (SELECT 1 FROM json_each(targets.tags) WHERE json_each.value = ?)".into());
        args.push(tag.clone().into());
    }
    let filter = if clauses.is_empty() { "1".to_string() } else { clauses.join(" AND ") };
    let sql = format!("SELECT {COLUMNS} FROM targets WHERE {filter} ORDER BY name COLLATE NOCASE, id");
    let mut stmt = c.prepare(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(args), from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
