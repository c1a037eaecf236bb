//! Routing-index lookup latency: exact numbers at 10k / 100k / 1M entries, patterns at 10k.
//!
//! Run: `cargo bench --bench lookup`. Each lookup is timed on its own (Instant before/after,
//! ~20 ns of overhead included) so the report gives p50/p99/p999, not only a mean.

use callflowd::callflow::routing::RoutingIndex;
use std::hint::black_box;
use std::time::{Duration, Instant};

const ACCOUNT: &str = "0123456789abcdef0123456789abcdef";

fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration, Duration) {
    samples.sort_unstable();
    let at = |p: f64| samples[((samples.len() as f64 - 1.0) * p).round() as usize];
    (at(0.5), at(0.99), at(0.999))
}

fn report(label: &str, samples: Vec<Duration>) {
    let (p50, p99, p999) = percentiles(samples);
    println!(
        "{label:<44} p50 {:>7.0} ns   p99 {:>7.0} ns   p999 {:>7.0} ns",
        p50.as_nanos() as f64,
        p99.as_nanos() as f64,
        p999.as_nanos() as f64
    );
}

/// A cheap deterministic sequence (no rand dependency in benches).
fn mix(i: u64) -> u64 {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 31;
    x.wrapping_mul(0xBF58_476D_1CE4_E5B9)
}

fn numbers(count: usize) {
    let index = RoutingIndex::new();
    // 1,000 callflows with count/1000 numbers each, like a carrier DID block per customer.
    let per = (count / 1000).max(1);
    let build = Instant::now();
    for cf in 0..(count / per) {
        let numbers: Vec<String> = (0..per)
            .map(|n| format!("+1{:010}", cf * per + n))
            .collect();
        index.set_callflow(ACCOUNT, &format!("{cf:032x}"), numbers, vec![]);
    }
    let built = build.elapsed();
    let mut samples = Vec::with_capacity(200_000);
    for i in 0..200_000u64 {
        let n = (mix(i) % count as u64) as usize;
        let number = format!("+1{n:010}");
        let start = Instant::now();
        let found = black_box(index.lookup(ACCOUNT, black_box(&number)));
        samples.push(start.elapsed());
        assert!(found.is_some());
    }
    report(
        &format!("number lookup, {count} numbers (built in {:.2?})", built),
        samples,
    );
    let mut misses = Vec::with_capacity(50_000);
    for i in 0..50_000u64 {
        let number = format!("9{i:09}x");
        let start = Instant::now();
        black_box(index.lookup(ACCOUNT, black_box(&number)));
        misses.push(start.elapsed());
    }
    report(
        &format!("  miss (no pattern, no no_match), {count}"),
        misses,
    );
}

fn patterns(count: usize) {
    let index = RoutingIndex::new();
    let build = Instant::now();
    for i in 0..count {
        // Distinct anchored extension ranges with a capture group, like feature codes and DIDs.
        let pattern = format!("^\\*{}([0-9]{{2,4}})$", 10_000 + i);
        index.set_callflow(ACCOUNT, &format!("{i:032x}"), vec![], vec![pattern]);
    }
    let built = build.elapsed();
    let mut samples = Vec::with_capacity(20_000);
    for i in 0..20_000u64 {
        let p = mix(i) % count as u64;
        let number = format!("*{}{:03}", 10_000 + p, i % 1000);
        let start = Instant::now();
        let found = black_box(index.lookup(ACCOUNT, black_box(&number)));
        samples.push(start.elapsed());
        assert!(found.is_some(), "{number}");
    }
    report(
        &format!("pattern lookup, {count} patterns (built in {:.2?})", built),
        samples,
    );
}

fn main() {
    // `cargo bench` passes `--bench`; any other argument filters nothing here.
    for count in [10_000, 100_000, 1_000_000] {
        numbers(count);
    }
    for count in [1_000, 10_000] {
        patterns(count);
    }
}
