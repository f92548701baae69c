//! Seeded lossy simulation of whole sessions: the real client and server state machines on a
//! virtual clock. Each seed draws a scenario (1–8 clients, 0–30 % loss, bursts, duplication,
//! reordering, corruption, late joins, a master that leaves, a client that vanishes, a slow
//! consumer) and must end with every remaining client holding the exact bytes.
//!
//! A failing seed is printed; replay it with `WDSMC_SIM_SEED=<seed> cargo test --test simulation replay`.

mod sim;

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use sim::link::LinkModel;
use sim::{ClientPlan, Scenario, SimSecurity};
use wdsmc::proto::client::ClientOutcome;

fn lossy_link(rng: &mut SmallRng, loss: f64) -> LinkModel {
    LinkModel {
        loss,
        burst: rng
            .random_bool(0.3)
            .then(|| (0.02, 0.3, rng.random_range(0.3..0.9))),
        duplicate: if rng.random_bool(0.3) { 0.02 } else { 0.0 },
        reorder: if rng.random_bool(0.3) { 0.05 } else { 0.0 },
        reorder_by: Duration::from_millis(rng.random_range(1..20)),
        delay: Duration::from_micros(rng.random_range(50..5000)),
        jitter: Duration::from_micros(rng.random_range(0..2000)),
        corrupt: if rng.random_bool(0.2) { 0.01 } else { 0.0 },
    }
}

fn scenario(seed: u64) -> Scenario {
    let mut rng = SmallRng::seed_from_u64(seed ^ 0x5eed_5eed);
    let block_size = *[512u32, 1024, 1400, 4096]
        .get(rng.random_range(0..4))
        .unwrap();
    let blocks = rng.random_range(1..200u64);
    let content_size =
        ((blocks - 1) * block_size as u64 + rng.random_range(1..=block_size as u64)) as usize;
    let loss = rng.random_range(0.0..0.30);
    let count = rng.random_range(1..=8);
    let mut clients: Vec<ClientPlan> = (0..count)
        .map(|_| ClientPlan {
            start_at: if rng.random_bool(0.3) {
                Duration::from_millis(rng.random_range(0..8000))
            } else {
                Duration::ZERO
            },
            cancel_at: None,
            vanish_at: None,
            cache_size: 32 * 1024 * 1024,
            consumer_rate: None,
            downlink: lossy_link(&mut rng, loss),
            uplink: lossy_link(&mut rng, loss / 2.0),
        })
        .collect();
    if count > 1 && rng.random_bool(0.25) {
        // A client (often the master: the slowest) cancels part-way.
        clients[0].cancel_at = Some(Duration::from_millis(rng.random_range(100..3000)));
    }
    if count > 2 && rng.random_bool(0.2) {
        clients[1].vanish_at = Some(Duration::from_millis(rng.random_range(100..3000)));
    }
    if rng.random_bool(0.2) {
        let last = clients.len() - 1;
        clients[last].cache_size = 4 * block_size as u64;
        clients[last].consumer_rate = Some(rng.random_range(200_000..2_000_000));
    }
    Scenario {
        seed,
        // From the seed alone, so the other draws (and every seed's scenario) stay as they were.
        security: match seed % 40 {
            7 => SimSecurity::Sign,
            s if s % 4 == 3 => SimSecurity::Hash,
            _ => SimSecurity::Checksum,
        },
        content_size,
        block_size,
        clients,
        deadline: Duration::from_secs(600),
    }
}

/// Checks one seed; returns the ratio of repairs sent to packets lost.
fn check(seed: u64) -> f64 {
    let scenario = scenario(seed);
    let report = sim::run(&scenario);
    for (i, (plan, client)) in scenario.clients.iter().zip(&report.clients).enumerate() {
        if plan.vanish_at.is_some() {
            continue;
        }
        match (&client.outcome, plan.cancel_at.is_some()) {
            (Some(ClientOutcome::Complete), _) => assert!(
                client.byte_exact,
                "seed {seed}: client {i} completed with wrong bytes; scenario {scenario:?}"
            ),
            (Some(ClientOutcome::Cancelled), true) => {}
            (other, _) => panic!(
                "seed {seed}: client {i} ended with {other:?} at {:?}; stats {:?}; scenario {scenario:?}; last server events {:?}",
                report.end,
                client.stats,
                report
                    .server_events
                    .iter()
                    .rev()
                    .take(10)
                    .collect::<Vec<_>>()
            ),
        }
    }
    if report.downlink_lost == 0 {
        0.0
    } else {
        report.rdata_sent as f64 / report.downlink_lost as f64
    }
}

#[test]
fn thousand_seeds_complete_byte_exact() {
    let seeds: u64 = std::env::var("WDSMC_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let mut worst = (0.0f64, 0u64);
    for seed in 0..seeds {
        let ratio = std::panic::catch_unwind(|| check(seed)).unwrap_or_else(|e| {
            eprintln!("failing seed: {seed} (replay with WDSMC_SIM_SEED={seed})");
            std::panic::resume_unwind(e)
        });
        if ratio > worst.0 {
            worst = (ratio, seed);
        }
    }
    eprintln!(
        "simulation: {seeds} seeds passed; worst repair ratio (RDATA sent / datagrams lost) {:.2} at seed {}",
        worst.0, worst.1
    );
}

#[test]
fn replay() {
    if let Some(seed) = std::env::var("WDSMC_SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        let ratio = check(seed);
        eprintln!("seed {seed} passed, repair ratio {ratio:.2}");
    }
}

/// A lossless run with one client finishes quickly in virtual time: a protocol that stalls
/// (for example one that waits for a timer it never arms) fails here first.
#[test]
fn lossless_single_client_finishes_without_stalls() {
    let scenario = Scenario {
        seed: 7,
        security: SimSecurity::Checksum,
        content_size: 1_000_000,
        block_size: 4096,
        clients: vec![ClientPlan {
            start_at: Duration::ZERO,
            cancel_at: None,
            vanish_at: None,
            cache_size: 32 << 20,
            consumer_rate: None,
            downlink: LinkModel::perfect(Duration::from_micros(100)),
            uplink: LinkModel::perfect(Duration::from_micros(100)),
        }],
        deadline: Duration::from_secs(60),
    };
    let report = sim::run(&scenario);
    let client = &report.clients[0];
    assert_eq!(client.outcome, Some(ClientOutcome::Complete), "{report:?}");
    assert!(client.byte_exact);
    let took = client.finished_at.unwrap();
    assert!(
        took < Duration::from_secs(5),
        "took {took:?} of virtual time"
    );
    assert_eq!(report.rdata_sent, 0);
}

/// Seeds that once failed, kept as regressions:
/// * 52: a client whose QCR after JOINACK was lost four times was forgotten by the server
///   while it believed itself active, and never got data (server now keeps the pending
///   record until ClientDeadTimeout and activates it on any QCR or POLLACK);
/// * 11470: a lone client whose QCRs kept getting lost waited 20 s between voluntary QCRs
///   (client now repeats them every second until it hears the session);
/// * 2: the harness itself stalled on a cancel planned before a late client started.
#[test]
fn regression_seeds() {
    for seed in [2, 52, 11470] {
        check(seed);
    }
}
