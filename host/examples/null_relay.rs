//! The baseline for `scripts/bench-netns.sh`: the same two TUN devices and namespaces as
//! rtrouter sets up from a config, but packets are only copied from one device to the other,
//! with no parsing, rules or conntrack. rtrouter's throughput divided by this one's is the
//! cost of being a router.
//!
//!   cargo run --release --example null_relay -- CONFIG

use rtrouter::config::Config;
use rtrouter::dataplane::device::PacketDevice;
use std::sync::Arc;

fn main() -> std::io::Result<()> {
    let path = std::env::args().nth(1).expect("usage: null_relay CONFIG");
    let cfg = Config::load(std::path::Path::new(&path)).map_err(|e| std::io::Error::other(e.to_string()))?;
    assert_eq!(cfg.interface.len(), 2, "the null relay joins exactly two interfaces");
    let router = rtrouter::replay::router_from_config(&cfg).map_err(|e| std::io::Error::other(e.to_string()))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(rtrouter::dataplane::queues_for(&cfg))
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let dp = Arc::new(rtrouter::dataplane::Dataplane::setup(&cfg, router)?);
        eprintln!("null relay running (SIGTERM stops)");
        let mut tasks = tokio::task::JoinSet::new();
        // Every queue of each device, relayed with its offload header as it came (super-packets
        // stay whole, partial checksums stay partial), to the same queue of the other.
        for (from, to) in [(0usize, 1usize), (1, 0)] {
            for q in 0..dp.devices[from].queues() {
                let dp = dp.clone();
                tasks.spawn(async move {
                    let mut buf = Vec::with_capacity(65536);
                    let mut hdr = rtrouter::packet::gso::VnetHdr::default();
                    let reader = dp.devices[from].reader(q)?;
                    loop {
                        dp.devices[from].recv(&reader, &mut hdr, &mut buf).await?;
                        let _ = dp.devices[to].send(q, &hdr, &buf);
                    }
                    #[allow(unreachable_code)]
                    Ok::<(), std::io::Error>(())
                });
            }
        }
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
            Some(r) = tasks.join_next() => { r.map_err(std::io::Error::other)??; }
        }
        tasks.abort_all();
        dp.teardown();
        Ok(())
    })
}
