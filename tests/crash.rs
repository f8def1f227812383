//! Crash tests: the real binary is killed with SIGKILL at random moments during uploads,
//! archive uploads, sequential uploads, recycle, restore, delete, folder moves after an edit,
//! and garbage collection; after every restart an invariant checker proves nothing
//! acknowledged was lost and nothing half-done is visible.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::TestServer;
use common::chaos::{Rng, check, run_op, setup};

/// At least this many kills per run, as long as the time budget allows.
const KILLS: usize = 110;
/// The whole test stops starting new rounds after this long.
const BUDGET: Duration = Duration::from_secs(240);

#[test]
fn kill_at_random_moments_loses_nothing_acknowledged() {
    let seed = std::env::var("BAKCH_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_cafe_u64);
    let mut rng = Rng(seed);
    let mut s = TestServer::start_with_config("gc_grace_secs = 0\nworkers = 2\n");
    let (env, mut w) = setup(&s);
    let started = Instant::now();
    let mut kills = 0;
    let mut ops: HashMap<&str, usize> = HashMap::new();
    // The kill window, in microseconds; widened when a loaded machine is so slow that no upload
    // was acknowledged yet, so the test still kills after some replies too.
    let mut window = 40_000;
    while kills < KILLS && started.elapsed() < BUDGET {
        if kills > 0 && kills % 20 == 0 && w.acked.is_empty() && window < 1_000_000 {
            window *= 2;
        }
        let (env, mut op_rng) = (env.clone(), Rng(rng.next()));
        let op = std::thread::spawn(move || run_op(&env, &mut op_rng));
        // The kill moment is the point of the test: anywhere from before the request lands to
        // well after its reply, so a fixed random delay is right here, not a poll.
        std::thread::sleep(Duration::from_micros(rng.below(window)));
        s.kill();
        kills += 1;
        let mut outcome = op.join().expect("operation thread");
        *ops.entry(outcome.name).or_default() += 1;
        w.absorb(&mut outcome);
        if let Some((job_id, hash)) = outcome.ack {
            w.acked.insert(job_id, hash);
        }
        s.restart();
        check(&s, &mut w, kills, kills % 10 == 0);
    }
    check(&s, &mut w, kills, true);
    eprintln!(
        "crash test: seed {seed:#x}, {kills} kills in {:?} (window {} ms), {} acknowledged uploads, ops {ops:?}",
        started.elapsed(),
        window / 1000,
        w.acked.len()
    );
    assert!(kills >= KILLS, "only {kills} kills fit in the time budget");
    assert!(!w.acked.is_empty(), "no upload was ever acknowledged: the kills came too early to test anything");
}
