//! Seeded lossy simulation of whole sessions: the real client and server state machines on a
//! virtual clock. Each seed draws a scenario (1–8 clients, 0–30 % loss, bursts, duplication,
//! reordering, corruption, late joins, a master that leaves, a client that vanishes, a slow
//! consumer) and must end with every remaining client holding the exact bytes.
//!
//! A failing seed is printed; replay it with `WDSMC_SIM_SEED=<seed> cargo test --test simulation replay`.
//! The many-seeds test also prints how many repairs the server sent per datagram lost (median,
//! p99, worst seeds) and bounds the worst.

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

/// Repair counts of one seed.
#[derive(Debug, Clone, Copy)]
struct RepairCount {
    seed: u64,
    /// RDATA sent per datagram lost on the downlinks (0 when nothing was lost).
    ratio: f64,
    /// RDATA sent per datagram the clients did not get intact: lost, or arrived only corrupted
    /// (the client's checksum or HMAC check drops it, so it needs the same repair as a loss).
    /// [`Self::ratio`] leaves corrupted datagrams out and so overstates the ratio of seeds
    /// whose few losses are mostly corruption.
    ratio_intact: f64,
    rdata_sent: u64,
    downlink_lost: u64,
    downlink_only_corrupted: u64,
    /// The scenario's drawn loss probability (the downlinks' good-state loss).
    loss: f64,
    clients: usize,
    /// Virtual time at which the last client finished.
    completion: Duration,
}

/// Checks one seed: every client that neither cancelled nor vanished completes byte-exact.
fn check(seed: u64) -> RepairCount {
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
    RepairCount {
        seed,
        ratio: if report.downlink_lost == 0 {
            0.0
        } else {
            report.rdata_sent as f64 / report.downlink_lost as f64
        },
        ratio_intact: match report.downlink_lost + report.downlink_only_corrupted {
            0 => 0.0,
            missed => report.rdata_sent as f64 / missed as f64,
        },
        rdata_sent: report.rdata_sent,
        downlink_lost: report.downlink_lost,
        downlink_only_corrupted: report.downlink_only_corrupted,
        loss: scenario.clients[0].downlink.loss,
        clients: scenario.clients.len(),
        completion: report
            .clients
            .iter()
            .filter_map(|c| c.finished_at)
            .max()
            .unwrap_or_default(),
    }
}

/// The value at quantile `q` of `sorted` (nearest rank).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Worst seeds listed by [`thousand_seeds_complete_byte_exact`].
const WORST_SEEDS_SHOWN: usize = 5;
/// Bound on any seed's repair ratio (RDATA sent per datagram lost or only corrupted).
const MAX_REPAIR_RATIO: f64 = 3.0;

/// Prints the distribution of `ratio` over the seeds where `lossy` holds (a seed that lost
/// nothing says nothing about repair) and its worst seeds; returns the worst ratio.
fn print_ratio_distribution(
    name: &str,
    counts: &[RepairCount],
    lossy: impl Fn(&RepairCount) -> bool,
    ratio: impl Fn(&RepairCount) -> f64,
) -> f64 {
    let mut worst: Vec<&RepairCount> = counts.iter().filter(|c| lossy(c)).collect();
    worst.sort_by(|a, b| ratio(b).total_cmp(&ratio(a)).then(a.seed.cmp(&b.seed)));
    let mut ratios: Vec<f64> = worst.iter().map(|c| ratio(c)).collect();
    ratios.sort_by(f64::total_cmp);
    let max = ratios.last().copied().unwrap_or(0.0);
    eprintln!(
        "repair ratio, {name}, over the {} seeds with loss: median {:.2}, p99 {:.2}, max {max:.2}",
        ratios.len(),
        quantile(&ratios, 0.5),
        quantile(&ratios, 0.99),
    );
    for c in worst.iter().take(WORST_SEEDS_SHOWN) {
        eprintln!(
            "  seed {}: {:.2} ({} RDATA, {} datagrams lost, {} only corrupted), loss {:.1} %, {} clients",
            c.seed,
            ratio(c),
            c.rdata_sent,
            c.downlink_lost,
            c.downlink_only_corrupted,
            c.loss * 100.0,
            c.clients
        );
    }
    max
}

#[test]
fn thousand_seeds_complete_byte_exact() {
    let seeds: u64 = std::env::var("WDSMC_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let mut counts = Vec::with_capacity(seeds as usize);
    for seed in 0..seeds {
        let count = std::panic::catch_unwind(|| check(seed)).unwrap_or_else(|e| {
            eprintln!("failing seed: {seed} (replay with WDSMC_SIM_SEED={seed})");
            std::panic::resume_unwind(e)
        });
        counts.push(count);
    }
    let completion: Duration = counts.iter().map(|c| c.completion).sum();
    eprintln!(
        "simulation: {seeds} seeds passed; mean virtual completion {:.3?}",
        completion / seeds.max(1) as u32
    );
    print_ratio_distribution(
        "RDATA sent / datagrams lost",
        &counts,
        |c| c.downlink_lost > 0,
        |c| c.ratio,
    );
    let worst = print_ratio_distribution(
        "RDATA sent / datagrams lost or only corrupted",
        &counts,
        |c| c.downlink_lost + c.downlink_only_corrupted > 0,
        |c| c.ratio_intact,
    );
    // A deterministic count, not a timing: more than this means repairs are repeated (40000
    // seeds: 1.37 at most; 4.44 before late joiners stopped NACKing the backlog).
    assert!(
        worst < MAX_REPAIR_RATIO,
        "worst repair ratio {worst:.2} (RDATA sent per datagram lost or only corrupted)"
    );
}

#[test]
fn replay() {
    if let Some(seed) = std::env::var("WDSMC_SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        let count = check(seed);
        eprintln!("seed {seed} passed: {count:?}");
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

/// A fixed session for [`virtual_completion_times`]: `clients` clients, the last one starting
/// at `last_starts_at`, on 1 ms links with independent loss `loss` (half of it upstream),
/// 1 MiB in 1400-byte blocks.
fn fixed_session(seed: u64, clients: usize, loss: f64, last_starts_at: Duration) -> Scenario {
    let link = |loss: f64| LinkModel {
        loss,
        jitter: Duration::from_micros(500),
        ..LinkModel::perfect(Duration::from_millis(1))
    };
    Scenario {
        seed,
        security: SimSecurity::Checksum,
        content_size: 1 << 20,
        block_size: 1400,
        clients: (0..clients)
            .map(|i| ClientPlan {
                start_at: if i + 1 == clients {
                    last_starts_at
                } else {
                    Duration::ZERO
                },
                cancel_at: None,
                vanish_at: None,
                cache_size: 32 << 20,
                consumer_rate: None,
                downlink: link(loss),
                uplink: link(loss / 2.0),
            })
            .collect(),
        deadline: Duration::from_secs(120),
    }
}

/// Virtual time until the last client of fixed lossless and 5 %-loss sessions holds the
/// content, printed so that a repair change can be checked for not slowing them down; the
/// bound only catches a stall.
#[test]
fn virtual_completion_times() {
    let late = Duration::from_millis(150);
    for (name, loss, clients, last_starts_at) in [
        ("lossless", 0.0, 1, Duration::ZERO),
        ("lossless", 0.0, 4, Duration::ZERO),
        ("5 % loss", 0.05, 1, Duration::ZERO),
        ("5 % loss", 0.05, 4, Duration::ZERO),
        ("5 % loss, last joins at 150 ms", 0.05, 4, late),
    ] {
        let mut times = Vec::new();
        let mut rdata = 0;
        for seed in 0..10 {
            let report = sim::run(&fixed_session(seed, clients, loss, last_starts_at));
            for client in &report.clients {
                assert_eq!(client.outcome, Some(ClientOutcome::Complete), "{report:?}");
                assert!(client.byte_exact);
            }
            rdata += report.rdata_sent;
            let last = report.clients.iter().filter_map(|c| c.finished_at).max();
            times.push(last.unwrap_or_default());
        }
        let mean = times.iter().sum::<Duration>() / times.len() as u32;
        let max = times.iter().max().copied().unwrap_or_default();
        eprintln!(
            "virtual completion, {name}, {clients} client(s), 1 MiB: mean {mean:.1?}, max {max:.1?} over {} seeds ({rdata} RDATA)",
            times.len()
        );
        assert!(max < Duration::from_secs(10), "{name}: took {max:?}");
    }
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
