//! Concurrency: 64 clients send mixed requests at once (uploads, archive and sequential uploads,
//! edits that move folders, recycles, restores, deletes, garbage collection) for a bounded time.
//! No request may get a 5xx, and afterwards the database and the disk must agree (the same
//! invariant checker as the crash test).

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::TestServer;
use common::chaos::{Outcome, Rng, check, run_op, setup};

const CLIENTS: u64 = 64;
const DURATION: Duration = Duration::from_secs(20);

#[test]
fn sixty_four_parallel_clients_get_no_5xx_and_leave_everything_consistent() {
    let s = TestServer::start_with_config("gc_grace_secs = 0\n");
    let (env, mut w) = setup(&s);
    let deadline = Instant::now() + DURATION;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let env = env.clone();
            std::thread::spawn(move || {
                let mut rng = Rng(0x00c0_ffee + i * 7919);
                let mut outcomes = Vec::new();
                while Instant::now() < deadline {
                    outcomes.push(run_op(&env, &mut rng));
                }
                outcomes
            })
        })
        .collect();
    let outcomes: Vec<Outcome> = clients.into_iter().flat_map(|c| c.join().expect("client thread")).collect();
    let mut ops: HashMap<&str, usize> = HashMap::new();
    let mut server_errors = Vec::new();
    for mut o in outcomes {
        *ops.entry(o.name).or_default() += 1;
        server_errors.append(&mut o.error_replies);
        w.absorb(&mut o);
        if let Some((job, hash)) = o.ack {
            w.acked.insert(job, hash);
        }
    }
    eprintln!(
        "concurrency: {} operations, {} acknowledged uploads, ops {ops:?}",
        ops.values().sum::<usize>(),
        w.acked.len()
    );
    assert!(
        server_errors.is_empty(),
        "{} requests got a 5xx, e.g.:\n{}",
        server_errors.len(),
        server_errors[..server_errors.len().min(10)].join("\n")
    );
    let (_, jobs) = s.get("/api/jobs");
    let failed: Vec<&serde_json::Value> =
        jobs["delayed"].as_array().unwrap().iter().filter(|j| j["status"] == "ERROR").collect();
    assert!(failed.is_empty(), "upload jobs failed under load: {failed:?}");
    assert!(w.acked.len() >= 10, "too few uploads went through to test anything");
    check(&s, &mut w, 0, true);
}
