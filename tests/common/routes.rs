//! The API's routes as registered in `src/api/`, read from the source, so that a walk over
//! them covers a new route the day it is added.

/// The routes registered in `src/api/` as (path, methods), read from the source so that a new
/// route is covered the day it is added: each `resource("...")` with the `.get(Need::...)`-style
/// methods that follow it up to the next resource or the end of its `routes` function.
pub fn registered_api_routes() -> Vec<(String, Vec<String>)> {
    let mut routes: Vec<(String, Vec<String>)> = Vec::new();
    for (path, method, _) in registered_api_needs() {
        match routes.iter_mut().find(|(p, _)| *p == path) {
            Some((_, methods)) => methods.push(method),
            None => routes.push((path, vec![method])),
        }
    }
    routes.sort();
    assert!(routes.len() >= 20, "found only {routes:?}");
    routes
}

/// Every (path, method, need) registered in `src/api/`, the need as written (`Admin`,
/// `ReadTarget`...). A route registered any other way than `resource(..).method(Need::..)`
/// fails here.
pub fn registered_api_needs() -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let file = entry.unwrap().path();
        let source = std::fs::read_to_string(&file).unwrap();
        // `api::resource` itself is the one place that builds an actix resource.
        let allowed = usize::from(file.ends_with("mod.rs"));
        assert_eq!(source.matches("web::resource(").count(), allowed, "{file:?}: a route without an access need");
        let starts: Vec<usize> = source.match_indices("resource(\"").map(|(i, _)| i).collect();
        for (n, &i) in starts.iter().enumerate() {
            let rest = &source[i + "resource(\"".len()..];
            let path = &rest[..rest.find('"').unwrap()];
            let fn_end = rest.find("\n}\n").unwrap_or(rest.len());
            let next = starts.get(n + 1).map_or(fn_end, |&j| (j - i - "resource(\"".len()).min(fn_end));
            // rustfmt may break a registration over lines: compare with whitespace collapsed.
            let segment = rest[..next].split_whitespace().collect::<Vec<_>>().join(" ").replace("( ", "(");
            let before = out.len();
            // `.run` registers a GET that runs something (and so declares its audit action).
            for (m, method) in
                [("get", "GET"), ("run", "GET"), ("post", "POST"), ("patch", "PATCH"), ("delete", "DELETE")]
            {
                for (k, _) in segment.match_indices(&format!(".{m}(Need::")) {
                    let need = &segment[k + m.len() + 8..];
                    let need = &need[..need.find(|c: char| !c.is_ascii_alphanumeric()).unwrap()];
                    out.push((format!("/api{path}"), method.to_string(), need.to_string()));
                    // A changing method names its audit action right after its need.
                    if method != "GET" || m == "run" {
                        let action = &segment[k + m.len() + 8 + need.len()..];
                        assert!(action.starts_with(", Action::"), "{method} {path} declares no audit action");
                    }
                }
            }
            assert!(out.len() > before, "no method with its need found for {path}");
        }
    }
    out.sort();
    out.dedup();
    out
}
