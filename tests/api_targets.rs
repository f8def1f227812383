//! Targets over HTTP: create, list, view, edit, search, delete; validation and errors.

mod common;

use common::{TestServer, target_body};
use serde_json::json;

#[test]
fn create_view_and_list_by_page() {
    let s = TestServer::start();
    let id = s.create_target(json!({"name": "Photos", "alias": "photos", "tags": ["cool", "beans"]}));
    let (t, backups) = s.target(&id);
    for key in [
        "id",
        "name",
        "target_type",
        "recycle_criteria",
        "recycle_value",
        "recycle_action",
        "location",
        "name_template",
        "deduplicate",
        "alias",
        "min_backups",
        "tags",
    ] {
        assert!(t.get(key).is_some(), "target JSON lacks {key}: {t}");
    }
    assert_eq!(t["target_type"], "multi");
    assert_eq!(t["tags"], json!(["cool", "beans"]));
    assert!(backups.is_empty());
    // The alias works wherever the id does.
    let (by_alias, _) = s.target("photos");
    assert_eq!(by_alias["id"], id);
    // The location folder was created.
    assert!(std::path::Path::new(t["location"].as_str().unwrap()).is_dir());

    for _ in 0..11 {
        s.create_target(json!({}));
    }
    let (_, page1) = s.get("/api/target");
    let (_, page2) = s.get("/api/target?page=2");
    assert_eq!(page1["targets"].as_array().unwrap().len(), 10);
    assert_eq!(page2["targets"].as_array().unwrap().len(), 2);
    let (status, body) = s.get("/api/target?page=abc");
    assert_eq!((status, body["success"].clone()), (400, json!(false)), "{body}");
    assert_eq!((&body["field"], &body["code"]), (&json!("page"), &json!("wrong_type")), "{body}");
    let (status, body) = s.get("/api/target/no-such-target");
    assert_eq!(status, 404);
    assert_eq!((body.get("field"), &body["code"]), (None, &json!("not_found")), "{body}");
}

#[test]
fn create_reports_each_missing_field() {
    let s = TestServer::start();
    for key in ["name", "backup_type", "recycle_criteria", "location", "name_template"] {
        let mut body = target_body(&s, json!({}));
        body.as_object_mut().unwrap().remove(key);
        let (status, reply) = s.post("/api/target", body);
        assert_eq!(status, 400, "{key}: {reply}");
        assert_eq!(reply["message"], format!("Parameter '{key}' required"));
        assert_eq!((&reply["field"], &reply["code"]), (&json!(key), &json!("required")), "{reply}");
    }
    // recycle_value and recycle_action are needed once retention is on.
    for key in ["recycle_value", "recycle_action"] {
        let mut body = target_body(&s, json!({"recycle_criteria": "count"}));
        body.as_object_mut().unwrap().remove(key);
        let (status, reply) = s.post("/api/target", body);
        assert_eq!((status, reply["message"].clone()), (400, json!(format!("Parameter '{key}' required"))));
    }
    let (_, list) = s.get("/api/target");
    assert!(list["targets"].as_array().unwrap().is_empty(), "a refused target was stored");
}

#[test]
fn create_refuses_bad_values() {
    let s = TestServer::start();
    let data = s.data_path().to_string_lossy().into_owned();
    let cases = [
        json!({"name": "   "}),
        json!({"backup_type": "folder"}),
        json!({"recycle_criteria": "sometimes"}),
        json!({"recycle_criteria": "count", "recycle_value": -1}),
        json!({"recycle_value": "many"}),
        json!({"location": "relative/path"}),
        json!({"location": "/"}),
        json!({"location": format!("{data}/inside")}),
        json!({"location": "/tmp/../etc"}),
        json!({"name_template": "no-placeholder"}),
        json!({"name_template": "a/$I"}),
        json!({"name_template": "..$I"}),
        json!({"alias": ""}),
        json!({"alias": "has space"}),
        json!({"deduplicate": "maybe"}),
        json!({"tags": "not-a-list"}),
    ];
    for fields in cases {
        let (status, reply) = s.post("/api/target", target_body(&s, fields.clone()));
        assert_eq!(status, 400, "{fields} gave {reply}");
        assert!(reply["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    for bad in [&b"{not json"[..], b"[1,2]", b"\"text\""] {
        let (status, reply) = s.raw("POST", "/api/target", "application/json", bad);
        assert_eq!(status, 400, "{reply}");
    }
    let (_, list) = s.get("/api/target");
    assert!(list["targets"].as_array().unwrap().is_empty());
}

#[test]
fn templates_and_aliases_are_unique_and_tags_are_cleaned() {
    let s = TestServer::start();
    let a = s.create_target(json!({"name_template": "same-$I", "alias": "a", "tags": [","]}));
    let (t, _) = s.target(&a);
    assert_eq!(t["tags"], json!([]), "the CLI's [\",\"] tag list must be cleaned");
    let (status, _) = s.post("/api/target", target_body(&s, json!({"name_template": "same-$I"})));
    assert_eq!(status, 409);
    let (status, reply) = s.post("/api/target", target_body(&s, json!({"alias": "a"})));
    assert_eq!(status, 409);
    assert_eq!((&reply["field"], &reply["code"]), (&json!("alias"), &json!("taken")), "{reply}");
    // An edit that re-sends the target's own template and alias is fine (the CLI does this).
    let (status, reply) = s.patch(&format!("/api/target/{a}"), json!({"name_template": "same-$I", "alias": "a"}));
    assert_eq!(status, 200, "{reply}");
}

#[test]
fn unknown_ids_are_404() {
    let s = TestServer::start();
    for (method, path) in [
        ("GET", "/api/target/nope"),
        ("PATCH", "/api/target/nope"),
        ("DELETE", "/api/target/nope"),
        ("DELETE", "/api/target/nope/all"),
        ("DELETE", "/api/target/nope/recycled"),
        ("DELETE", "/api/backup/nope"),
        ("PATCH", "/api/backup/nope"),
        ("GET", "/api/backup/nope/download"),
        ("GET", "/api/seq/nope"),
        ("GET", "/api/jobs/force_run/nope"),
        ("GET", "/api/no/such/route"),
    ] {
        let body = br#"{"delete_files": false, "is_recycled": true, "name": "x"}"#;
        let (status, reply) = s.raw(method, path, "application/json", body);
        assert_eq!(status, 404, "{method} {path}: {reply}");
        assert_eq!(reply["success"], false);
    }
    let (status, reply) = s.raw("PUT", "/api/target", "application/json", b"{}");
    assert_eq!((status, reply["success"].clone()), (405, json!(false)));
}

#[test]
fn edit_keeps_unsent_fields_and_refuses_a_type_change() {
    let s = TestServer::start();
    let id =
        s.create_target(json!({"name": "before", "recycle_criteria": "count", "recycle_value": 4, "min_backups": 1}));
    let (status, reply) = s.patch(&format!("/api/target/{id}"), json!({"name": "after", "num_backups": 3}));
    assert_eq!(status, 200, "{reply}");
    let (t, _) = s.target(&id);
    assert_eq!(
        (t["name"].clone(), t["min_backups"].clone(), t["recycle_value"].clone()),
        (json!("after"), json!(3), json!(4))
    );
    let (status, _) = s.patch(&format!("/api/target/{id}"), json!({"backup_type": "single"}));
    assert_eq!(status, 400);
    let (status, _) = s.patch(&format!("/api/target/{id}"), json!({"recycle_value": -3}));
    assert_eq!(status, 400);
    let (t2, _) = s.target(&id);
    assert_eq!(t2, t, "a refused edit changed the target");
    // alias: null clears it.
    s.patch(&format!("/api/target/{id}"), json!({"alias": "x"}));
    assert_eq!(s.target(&id).0["alias"], "x");
    s.patch(&format!("/api/target/{id}"), json!({"alias": null}));
    assert_eq!(s.target(&id).0["alias"], json!(null));
}

#[test]
fn search_by_every_filter() {
    let s = TestServer::start();
    let a = s.create_target(json!({"name": "Home photos", "backup_type": "multi", "deduplicate": true,
        "recycle_criteria": "count", "recycle_value": 3, "recycle_action": "delete", "alias": "hp", "tags": ["pics", "home"]}));
    let b = s.create_target(json!({"name": "Database", "backup_type": "single", "tags": ["db", "home"]}));
    let ids = |query: &str| -> Vec<String> {
        let (status, body) = s.get(&format!("/api/target/search?{query}"));
        assert_eq!(status, 200, "{query}: {body}");
        let mut v: Vec<String> =
            body["targets"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_string()).collect();
        v.sort();
        v
    };
    let mut both = vec![a.clone(), b.clone()];
    both.sort();
    assert_eq!(ids("name=photo"), vec![a.clone()]);
    assert_eq!(ids("name=photo&alias="), vec![a.clone()], "empty filters are ignored");
    assert_eq!(ids("type=single"), vec![b.clone()]);
    assert_eq!(ids("type=BackupType.MULTI"), vec![a.clone()]);
    assert_eq!(ids("recycle_criteria=count"), vec![a.clone()]);
    assert_eq!(ids("recycle_action=delete"), vec![a.clone()]);
    assert_eq!(ids("deduplicate=on"), vec![a.clone()]);
    assert_eq!(ids("deduplicate=off"), vec![b.clone()]);
    assert_eq!(ids("alias=hp"), vec![a.clone()]);
    assert_eq!(ids("tags=home"), both);
    assert_eq!(ids("tags=home%20db"), vec![b.clone()]);
    assert_eq!(ids("location=loc"), both);
    assert_eq!(ids("name_template=%24I"), both);
    assert!(ids("name=nothing-like-this").is_empty());
    let (status, _) = s.get("/api/target/search");
    assert_eq!(status, 400);
    let (status, _) = s.get("/api/target/search?alias=");
    assert_eq!(status, 400);
}

/// Listings, a target's view and the stats are kept in memory between commits: a read right
/// after a change must never show the state before it.
#[test]
fn reads_right_after_a_change_show_it() {
    let s = TestServer::start();
    let id = s.create_target(json!({"name": "n0", "backup_type": "single"}));
    for round in 1..=12 {
        // Read everything first, so that each answer is held in memory.
        let (_, page) = s.get("/api/target?page=1");
        let (_, view) = s.get(&format!("/api/target/{id}"));
        let (_, stats) = s.get("/api/stats");
        assert_eq!(page["targets"][0]["name"], format!("n{}", round - 1));
        assert_eq!(view["backups"].as_array().unwrap().len(), round - 1);
        assert_eq!(stats["total_backups"], round - 1);

        let name = format!("n{round}");
        let (status, reply) = s.patch(&format!("/api/target/{id}"), json!({"name": name}));
        assert_eq!(status, 200, "{reply}");
        s.upload_ok(&id, &[("f.txt", format!("content {round:03}").as_bytes())]);

        let (_, page) = s.get("/api/target?page=1");
        assert_eq!(page["targets"][0]["name"], name, "a page shows a name from before the edit");
        let (_, view) = s.get(&format!("/api/target/{id}"));
        assert_eq!(view["target"]["name"], name, "the view shows a name from before the edit");
        assert_eq!(view["backups"].as_array().unwrap().len(), round, "the view misses a new backup");
        assert_eq!(view["target"]["logical_size"], view["backups"][0]["filesize"].as_i64().unwrap() * round as i64);
        let (_, stats) = s.get("/api/stats");
        assert_eq!(stats["total_backups"], round, "the stats miss a new backup");
    }
}
