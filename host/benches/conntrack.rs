//! Conntrack at scale: looking up an existing connection and inserting a new one in a table
//! of 1M connections, on one thread and on two; and the memory one connection costs.
//! Run: `cargo bench -p rtrouter --bench conntrack`; figures are in the README.
#![allow(unsafe_code)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rtrouter::conntrack::{Key, Table, Timeouts, Verdict};
use rtrouter::packet::build::{self, Ip4};
use rtrouter::packet::{parse, Headers};
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Counts live heap bytes, to report memory per connection.
struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        // SAFETY: `p` came from `System.alloc(l)`.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        LIVE.fetch_add(n as isize - l.size() as isize, Ordering::Relaxed);
        // SAFETY: `p` came from `System.alloc(l)`.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const N: u32 = 1_000_000;

/// The headers of the i-th UDP flow (distinct source address and port).
fn flow(i: u32) -> Headers {
    let mut b = Vec::new();
    let src = std::net::Ipv4Addr::from(0x0a00_0000 + (i >> 4));
    build::udp(
        &mut b,
        Ip4::new(src, "192.0.2.1".parse().unwrap(), 17),
        1024 + (i & 15) as u16,
        53,
        b"",
    );
    parse(&b).unwrap()
}

fn filled() -> (Arc<Table>, Vec<Headers>) {
    let t = Arc::new(Table::new(4 * N as usize, Timeouts::default()));
    let flows: Vec<Headers> = (0..N).map(flow).collect();
    let before = LIVE.load(Ordering::Relaxed);
    for h in &flows {
        if let Verdict::Tentative(st) = t.inspect(h, &[], 0, 1, false) {
            t.confirm(st, 0).expect("room");
        }
    }
    let bytes = LIVE.load(Ordering::Relaxed) - before;
    println!(
        "conntrack: {} connections use {} MiB: {} bytes per connection",
        t.len(),
        bytes >> 20,
        bytes / i64::from(N) as isize
    );
    (t, flows)
}

fn bench(c: &mut Criterion) {
    let (table, flows) = filled();
    let mut g = c.benchmark_group("conntrack-1M");
    g.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    g.bench_function("lookup-existing", |b| {
        b.iter(|| {
            i = (i + 7919) % flows.len();
            black_box(matches!(
                table.inspect(&flows[i], &[], 0, 2, false),
                Verdict::Known { .. }
            ))
        })
    });
    let mut next = N;
    g.bench_function("insert-new", |b| {
        b.iter(|| {
            // Insert a new connection and forget it again, so the table stays at 1M.
            let h = flow(next);
            next += 1;
            if let Verdict::Tentative(st) = table.inspect(&h, &[], 0, 2, false) {
                table.confirm(st, 0).expect("room");
            }
            table.forget(&Key::of(&h, 0).expect("udp"));
        })
    });
    g.bench_function("lookup-existing-2-threads", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            std::thread::scope(|s| {
                for t in 0..2u64 {
                    let (table, flows) = (&table, &flows);
                    s.spawn(move || {
                        let mut k = t as usize * 500_000;
                        for _ in 0..iters / 2 {
                            k = (k + 7919) % flows.len();
                            black_box(table.inspect(&flows[k], &[], 0, 2, false));
                        }
                    });
                }
            });
            start.elapsed()
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1)).sample_size(30);
    targets = bench
}
criterion_main!(benches);
