//! Decisions per second of the forwarding core (`Switch::decide`).
//!
//! Cases:
//! - `known_unicast/N`: frames between MACs that are all learned, with N
//!   entries in the FDB (N = 2, one pair of hosts; 1 000; 100 000). Each
//!   frame's source is refreshed and its destination looked up: the hot
//!   path. One thread.
//! - `known_unicast_2_threads/N`: the same, two threads each deciding its
//!   own half of the stream on one shared `Switch`; aggregate throughput.
//! - `known_unicast_vlan/1000`: VLAN filtering on, tagged frames on trunks.
//! - `flood_broadcast/1000`: broadcasts from 1 000 learned sources to 3
//!   other ports.
//! - `mcast_registered/100`: IPv4 multicast data to 100 groups registered
//!   by IGMP reports on ports 1-3, an external querier known on port 0:
//!   each frame goes to its group's member port (the MDB path).
//!
//! Run: `cargo bench --bench decide` (about two minutes).
//!
//! `DECIDE_FIXED_WORKLOAD=<frames>` skips criterion and decides exactly that
//! many frames of each case (`DECIDE_CASE=<name>` picks one), printing the
//! CPU time per decision as well as the wall-clock time (on a shared
//! machine the two differ). It can run under `valgrind --tool=callgrind
//! --toggle-collect='*Switch::decide*'` to count instructions per decision.
//! See docs/performance.md.
//!
//! `DECIDE_PASSES=<frames>` runs worker-like passes instead (a view per
//! pass, `ViewCache::refresh` after it, as `src/dataplane` does) over the
//! cases of [`pass_cases`], for counting instructions per frame with
//! `valgrind --tool=callgrind --toggle-collect='*worker_pass*'`
//! (`DECIDE_CASE=<name>` picks one). See docs/dev/fdb-cache.md.

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use vswitch::switch::{Decision, PortConfig, PortId, Switch, SwitchConfig, ViewCache};
use vswitch::wire::Mac;

/// Frames decided per criterion iteration.
const BATCH: usize = 1024;
/// Ports of every bench switch.
const PORTS: u16 = 4;
/// Nothing ages during a run.
const AGEING_MS: u64 = 1 << 40;
/// The fake clock advances 1 ms every this many frames (about what a
/// 30 M frames/s core sees), so sources are refreshed at a realistic rate.
const FRAMES_PER_MS: u64 = 32 * 1024;

/// Host number `i`: a locally administered unicast MAC, on port `i % PORTS`.
fn host(i: u32) -> Mac {
    let b = i.to_be_bytes();
    Mac([0x02, 0x00, b[0], b[1], b[2], b[3]])
}

fn port_of(i: u32) -> PortId {
    (i % PORTS as u32) as PortId
}

/// A 64-byte IPv4 frame, tagged with `vid` when given.
fn frame(dst: Mac, src: Mac, vid: Option<u16>) -> [u8; 64] {
    let mut f = [0u8; 64];
    f[0..6].copy_from_slice(&dst.0);
    f[6..12].copy_from_slice(&src.0);
    let mut at = 12;
    if let Some(vid) = vid {
        f[12..14].copy_from_slice(&0x8100u16.to_be_bytes());
        f[14..16].copy_from_slice(&vid.to_be_bytes());
        at = 16;
    }
    f[at..at + 2].copy_from_slice(&0x0800u16.to_be_bytes());
    f
}

/// A switch, the frames to feed it (with their ingress ports) and a clock.
struct Workload {
    sw: Switch,
    frames: Vec<(PortId, [u8; 64])>,
}

fn switch(capacity: usize, vlan_filtering: bool) -> Switch {
    let sw = Switch::new(&SwitchConfig {
        ageing_ms: AGEING_MS,
        fdb_capacity: capacity,
        vlan_filtering,
        ..SwitchConfig::default()
    });
    for p in 0..PORTS {
        let cfg = PortConfig::new(format!("p{p}"));
        let cfg = if vlan_filtering {
            cfg.trunk("10,20", Some(1))
        } else {
            cfg
        };
        let id = sw.add_port(cfg).expect("bench port");
        sw.set_port_up(id, true);
    }
    sw
}

/// `macs` hosts (even), all learned; frame k goes from host k to host k^1,
/// which sits on the next port.
fn known_unicast(macs: u32, vid: Option<u16>) -> Workload {
    assert!(macs >= 2 && macs.is_multiple_of(2));
    let sw = switch(macs as usize * 2, vid.is_some());
    let learn_vid = vid.unwrap_or(1);
    for i in 0..macs {
        sw.fdb().learn(host(i), learn_vid, port_of(i), 1, None);
    }
    assert_eq!(sw.fdb().len(), macs as usize);
    let frames = (0..macs)
        .map(|k| (port_of(k), frame(host(k ^ 1), host(k), vid)))
        .collect();
    Workload { sw, frames }
}

/// Broadcasts from `macs` learned hosts.
fn flood_broadcast(macs: u32) -> Workload {
    let sw = switch(macs as usize * 2, false);
    for i in 0..macs {
        sw.fdb().learn(host(i), 1, port_of(i), 1, None);
    }
    let frames = (0..macs)
        .map(|k| (port_of(k), frame(Mac::BROADCAST, host(k), None)))
        .collect();
    Workload { sw, frames }
}

/// IPv4 multicast data from port 0 to `groups` groups, each joined (an
/// IGMPv2 report) on port 1 + g % 3, with an external querier on port 0
/// (a general IGMPv3 query, so the delay before it is trusted is 1 ms).
fn mcast_registered(groups: u32) -> Workload {
    use std::net::{IpAddr, Ipv4Addr};
    use vswitch::wire::igmp::{data_frame, igmp_frame};
    let sw = switch(1_024, false);
    let querier = Ipv4Addr::new(198, 18, 0, 1);
    let q = [0x11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let f = igmp_frame(host(0).0, querier, Ipv4Addr::new(224, 0, 0, 1), &q);
    assert!(sw.decide(0, &f, 1).egress().is_some());
    let group = |g: u32| Ipv4Addr::new(239, 2, (g >> 8) as u8, g as u8);
    for g in 0..groups {
        let p = 1 + (g % 3) as PortId;
        let mut m = vec![0x16, 0, 0, 0];
        m.extend_from_slice(&group(g).octets());
        let src = Ipv4Addr::new(198, 18, 0, 2 + p as u8);
        let r = igmp_frame(host(p as u32).0, src, group(g), &m);
        assert!(sw.decide(p, &r, 1).egress().is_some());
    }
    let frames = (0..groups)
        .map(|g| {
            let d = data_frame(host(0).0, IpAddr::V4(querier), IpAddr::V4(group(g)), 30);
            let mut f = [0u8; 64];
            f.copy_from_slice(&d);
            (0, f)
        })
        .collect();
    Workload { sw, frames }
}

/// Checks once that every frame of the multicast case reaches just its
/// group's member port.
fn check_mcast(w: &Workload) {
    for (g, (ingress, f)) in w.frames.iter().enumerate() {
        let d = w.sw.decide(*ingress, f, 3);
        let e = d.egress().expect("registered group is forwarded");
        assert_eq!(
            e.ports.iter().collect::<Vec<_>>(),
            vec![1 + (g % 3) as PortId]
        );
    }
}

/// Decides `BATCH` frames of `frames` starting at `*pos` under one
/// [`Switch::view`], advancing `*pos`
/// (the clock is derived from the running frame count).
#[inline]
fn run_batch(sw: &Switch, table: &mut ViewCache, frames: &[(PortId, [u8; 64])], pos: &mut u64) {
    let n = frames.len() as u64;
    // One view per batch, as a dataplane worker takes one per pass (with
    // the port table and FDB cache kept across them, as a worker keeps
    // them).
    table.refresh();
    let view = sw.view(table);
    for _ in 0..BATCH {
        let (ingress, ref f) = frames[(*pos % n) as usize];
        let now = 2 + *pos / FRAMES_PER_MS;
        let d: Decision = view.decide(ingress, f, now);
        black_box(d);
        *pos += 1;
    }
}

/// Checks once that a workload does what its name says.
fn check(w: &Workload, flooded: bool) {
    for (ingress, f) in w.frames.iter().take(64) {
        let d = w.sw.decide(*ingress, f, 2);
        let e = d.egress().expect("bench frames are forwarded");
        assert_eq!(e.flooded, flooded);
        assert_eq!(e.ports.len(), if flooded { PORTS as usize - 1 } else { 1 });
    }
}

fn single_thread(c: &mut Criterion) {
    let mut g = c.benchmark_group("decide");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(30)
        .throughput(Throughput::Elements(BATCH as u64));

    for macs in [2u32, 1_000, 100_000] {
        let w = known_unicast(macs, None);
        check(&w, false);
        g.bench_with_input(BenchmarkId::new("known_unicast", macs), &w, |b, w| {
            let (mut pos, mut table) = (0, w.sw.view_cache());
            b.iter(|| run_batch(&w.sw, &mut table, &w.frames, &mut pos));
        });
    }

    let w = known_unicast(1_000, Some(10));
    check(&w, false);
    g.bench_with_input(BenchmarkId::new("known_unicast_vlan", 1_000), &w, |b, w| {
        let (mut pos, mut table) = (0, w.sw.view_cache());
        b.iter(|| run_batch(&w.sw, &mut table, &w.frames, &mut pos));
    });

    let w = flood_broadcast(1_000);
    check(&w, true);
    g.bench_with_input(BenchmarkId::new("flood_broadcast", 1_000), &w, |b, w| {
        let (mut pos, mut table) = (0, w.sw.view_cache());
        b.iter(|| run_batch(&w.sw, &mut table, &w.frames, &mut pos));
    });

    let w = mcast_registered(100);
    check_mcast(&w);
    g.bench_with_input(BenchmarkId::new("mcast_registered", 100), &w, |b, w| {
        let (mut pos, mut table) = (0, w.sw.view_cache());
        b.iter(|| run_batch(&w.sw, &mut table, &w.frames, &mut pos));
    });
    g.finish();
}

/// Threads deciding at once on one shared switch.
const THREADS: usize = 2;

/// Splits a workload's stream between the threads: thread t takes the host
/// pairs whose index is t modulo `THREADS` (with one pair, both take it).
fn split(w: &Workload) -> Vec<Vec<(PortId, [u8; 64])>> {
    let one_pair = w.frames.len() == 2;
    (0..THREADS)
        .map(|t| {
            w.frames
                .iter()
                .enumerate()
                .filter(|(k, _)| one_pair || (k / 2) % THREADS == t)
                .map(|(_, f)| *f)
                .collect()
        })
        .collect()
}

/// Each thread decides `batches` batches of its own stream on `sw`, after a
/// barrier. Returns the time from the first thread's start to the last
/// one's end, and the CPU time each thread used.
fn run_threads(
    sw: &Switch,
    streams: &[Vec<(PortId, [u8; 64])>],
    batches: u64,
) -> (Duration, Vec<u64>) {
    let start = Barrier::new(streams.len());
    let spans: Vec<(Instant, Instant, u64)> = std::thread::scope(|s| {
        let handles: Vec<_> = streams
            .iter()
            .map(|frames| {
                let start = &start;
                s.spawn(move || {
                    let (mut pos, mut table) = (0, sw.view_cache());
                    start.wait();
                    let (t0, cpu0) = (Instant::now(), thread_cpu_ns());
                    for _ in 0..batches {
                        run_batch(sw, &mut table, frames, &mut pos);
                    }
                    (t0, Instant::now(), thread_cpu_ns() - cpu0)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let first = spans.iter().map(|s| s.0).min().unwrap();
    let last = spans.iter().map(|s| s.1).max().unwrap();
    (last - first, spans.iter().map(|s| s.2).collect())
}

/// Two threads on one shared switch, each with its own half of the stream;
/// aggregate decisions per second of wall-clock time.
fn two_threads(c: &mut Criterion) {
    let mut g = c.benchmark_group("decide");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(30)
        .throughput(Throughput::Elements((THREADS * BATCH) as u64));

    for macs in [2u32, 1_000, 100_000] {
        let w = known_unicast(macs, None);
        check(&w, false);
        let streams = split(&w);
        g.bench_with_input(
            BenchmarkId::new("known_unicast_2_threads", macs),
            &w,
            |b, w| b.iter_custom(|iters| run_threads(&w.sw, &streams, iters).0),
        );
    }
    g.finish();
}

/// Decides exactly `frames` frames (rounded up to whole batches) of each
/// single-thread case, for instruction counting under callgrind.
fn fixed_workload(frames: u64) {
    let batches = frames.div_ceil(BATCH as u64);
    type Case = (&'static str, fn() -> Workload);
    let cases: [Case; 6] = [
        ("known_unicast/2", || known_unicast(2, None)),
        ("known_unicast/1000", || known_unicast(1_000, None)),
        ("known_unicast/100000", || known_unicast(100_000, None)),
        ("known_unicast_vlan/1000", || known_unicast(1_000, Some(10))),
        ("flood_broadcast/1000", || flood_broadcast(1_000)),
        ("mcast_registered/100", || mcast_registered(100)),
    ];
    let only = std::env::var("DECIDE_CASE").ok();
    for (name, make) in cases {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let w = make();
        let (mut pos, mut table) = (0, w.sw.view_cache());
        let (t0, cpu0) = (Instant::now(), thread_cpu_ns());
        for _ in 0..batches {
            run_batch(&w.sw, &mut table, &w.frames, &mut pos);
        }
        let (wall, cpu) = (t0.elapsed().as_nanos(), thread_cpu_ns() - cpu0);
        println!(
            "{name}: {pos} decisions, {:.1} ns each on the wall clock, {:.1} ns of CPU \
             ({:.1} M/s per busy core)",
            wall as f64 / pos as f64,
            cpu as f64 / pos as f64,
            pos as f64 / cpu as f64 * 1e3
        );
    }
    for macs in [1_000u32, 100_000] {
        let name = format!("known_unicast_2_threads/{macs}");
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let w = known_unicast(macs, None);
        let (wall, cpu) = run_threads(&w.sw, &split(&w), batches);
        let per_thread = batches as f64 * BATCH as f64;
        let total = per_thread * THREADS as f64;
        println!(
            "{name}: {total} decisions, {:.1} M/s aggregate on the wall clock, \
             {:.1} ns of CPU each per thread ({:?})",
            total / wall.as_nanos() as f64 * 1e3,
            cpu.iter().sum::<u64>() as f64 / total,
            cpu.iter()
                .map(|c| format!("{:.1}", *c as f64 / per_thread))
                .collect::<Vec<_>>()
        );
    }
}

/// CPU time this thread has run, in ns (from /proc/thread-self/schedstat),
/// so a busy shared machine does not count its other tenants' time.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Frames of a pass when a worker is busy (a burst from each ready port).
const PASS: usize = 32;

/// A worker-like case: the switch, its passes (each a list of frames) and
/// how many milliseconds the clock moves per pass.
struct Passes {
    sw: Switch,
    passes: Vec<Vec<(PortId, [u8; 64])>>,
    ms_per_pass: f64,
    /// Evict the CPU caches between passes (a worker waking from sleep).
    cold: bool,
}

/// A small deterministic generator (xorshift64).
fn next_random(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// A named worker-like case and how to make it.
type PassCase = (&'static str, fn() -> Passes);

/// The worker-like cases (all their hosts learned beforehand):
/// - `one_flow`: one pair of hosts, each pass a burst each way (half the
///   pass from A's port, half from B's);
/// - `many_flows`: 1 000 hosts, every frame another pair;
/// - `mixed`: 64 hosts, each pass four bursts of 8 frames of a random pair;
/// - `mac_limit`: port 0 at its MAC limit (4) is fed a random new source
///   per frame, to a known host (every learn refused);
/// - `cold`: one frame per pass (alternating directions of one pair), the
///   CPU caches evicted between passes, the clock 10 ms further each pass.
fn pass_cases() -> Vec<PassCase> {
    vec![
        ("one_flow", || {
            let w = known_unicast(2, None);
            let mut pass = vec![w.frames[0]; PASS / 2];
            pass.extend([w.frames[1]; PASS / 2]);
            Passes {
                passes: vec![pass],
                sw: w.sw,
                ms_per_pass: PASS as f64 / 1024.0,
                cold: false,
            }
        }),
        ("many_flows", || {
            let w = known_unicast(1_000, None);
            Passes {
                passes: w.frames.chunks(PASS).map(<[_]>::to_vec).collect(),
                sw: w.sw,
                ms_per_pass: PASS as f64 / 1024.0,
                cold: false,
            }
        }),
        ("mixed", || {
            let w = known_unicast(64, None);
            let mut x = 0x1234_5678_9abc_def1;
            let passes = (0..256)
                .map(|_| {
                    (0..4)
                        .flat_map(|_| [w.frames[(next_random(&mut x) % 64) as usize]; 8])
                        .collect()
                })
                .collect();
            Passes {
                passes,
                sw: w.sw,
                ms_per_pass: PASS as f64 / 1024.0,
                cold: false,
            }
        }),
        ("mac_limit", || {
            let w = Workload {
                sw: switch(1024, false),
                frames: Vec::new(),
            };
            w.sw.fdb().learn(host(1), 1, 1, 1, None);
            let mut cfg = w.sw.port(0).expect("port 0");
            cfg.flags.mac_limit = Some(vswitch::switch::MacLimit::new(4).expect("non-zero"));
            w.sw.set_port(0, cfg).expect("limit");
            for i in 0..4 {
                let m = host(1000 + 4 * i);
                w.sw.fdb().learn(m, 1, 0, 1, Some(4));
            }
            assert_eq!(w.sw.fdb().learned_on(0), 4);
            let mut x = 0x9e37_79b9_7f4a_7c15;
            let passes = (0..256)
                .map(|_| {
                    (0..PASS)
                        .map(|_| {
                            let src = host(1 << 20 | (next_random(&mut x) as u32 & 0xf_ffff));
                            (0, frame(host(1), src, None))
                        })
                        .collect()
                })
                .collect();
            Passes {
                passes,
                sw: w.sw,
                ms_per_pass: PASS as f64 / 1024.0,
                cold: false,
            }
        }),
        ("cold", || {
            let w = known_unicast(2, None);
            Passes {
                passes: vec![vec![w.frames[0]], vec![w.frames[1]]],
                sw: w.sw,
                ms_per_pass: 10.0,
                cold: true,
            }
        }),
    ]
}

/// One pass of a worker: a view, the frames, then the cache refreshed.
#[inline(never)]
fn worker_pass(sw: &Switch, cache: &mut ViewCache, frames: &[(PortId, [u8; 64])], now: u64) {
    let view = sw.view(cache);
    for (ingress, f) in frames {
        black_box(view.decide(*ingress, f, now));
    }
    drop(view);
    cache.refresh();
}

/// Writes over more memory than the last-level cache holds.
#[inline(never)]
fn evict_caches(buf: &mut [u8]) {
    for b in buf.iter_mut().step_by(64) {
        *b = b.wrapping_add(1);
    }
    black_box(buf);
}

/// Runs at least `frames` frames of each worker-like case.
fn worker_passes(frames: u64) {
    let only = std::env::var("DECIDE_CASE").ok();
    let mut evict = vec![0u8; 16 << 20];
    for (name, make) in pass_cases() {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let p = make();
        let mut cache = p.sw.view_cache();
        let (mut done, mut n) = (0u64, 0usize);
        while done < frames {
            let pass = &p.passes[n % p.passes.len()];
            let now = 2 + (n as f64 * p.ms_per_pass) as u64;
            if p.cold {
                evict_caches(&mut evict);
            }
            worker_pass(&p.sw, &mut cache, pass, now);
            done += pass.len() as u64;
            n += 1;
        }
        let s = p.sw.fdb().stats();
        println!(
            "{name}: {done} frames in {n} passes (learned {}, refused {})",
            s.learned.load(std::sync::atomic::Ordering::Relaxed),
            s.refused.load(std::sync::atomic::Ordering::Relaxed)
        );
    }
}

fn main() {
    if let Ok(n) = std::env::var("DECIDE_PASSES") {
        worker_passes(n.parse().expect("DECIDE_PASSES: a frame count"));
        return;
    }
    if let Ok(n) = std::env::var("DECIDE_FIXED_WORKLOAD") {
        fixed_workload(n.parse().expect("DECIDE_FIXED_WORKLOAD: a frame count"));
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    single_thread(&mut c);
    two_threads(&mut c);
    c.final_summary();
}
