//! The running router: TUN devices, the tokio tasks that move packets between them and the
//! core, the local stack, timers, and setup and teardown of namespaces. The only module that
//! uses tokio; the core (`router`) never sees it.
//!
//! Per interface, one task reads its TUN device, runs each packet through
//! [`Router::process`] and writes the result to the egress device (both cores are used when
//! more than one interface is busy). Buffers are per task and reused; a full egress device
//! drops the packet and counts it. Packets for the router go to the local stack task.

pub mod control;
pub mod device;
pub mod local;
pub mod metrics;
pub mod netlink;
pub mod netns;
pub mod notify;
pub mod state;

use crate::config::{Cidr, Config};
use crate::eval::SplitMix;
use crate::packet::gso::{self, VnetHdr};
use crate::route::IfaceId;
use crate::router::{Disposition, Ingress, Meta, Reply, Router};
use device::{Dev, PacketDevice};
use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;

/// Packets a worker takes from one queue before it lets its other queues run.
const IO_LOOP_BOUND: usize = 64;

/// What the TUN device's offload header said of a packet.
#[derive(Debug, Clone, Copy)]
struct Offload {
    /// A super-packet, and how it is cut.
    gso: Option<gso::Gso>,
    /// The header's `gso_type` (with the ECN bit), given back on the way out.
    gso_type: u8,
    /// The transport checksum came partial (and was completed for the rules).
    partial: bool,
    /// The interface it came from (whose counters count a cut).
    from: u16,
}

impl Offload {
    const NONE: Offload = Offload {
        gso: None,
        gso_type: 0,
        partial: false,
        from: 0,
    };
}

/// One packet worker's buffers, reused for every packet.
struct Worker {
    /// The device queue it reads, and writes to on every device.
    queue: usize,
    reply: Reply,
    rng: SplitMix,
    scratch: Vec<u8>,
    segs: Vec<u8>,
}

/// Per-interface counters.
#[derive(Debug, Default)]
pub struct IfaceCounters {
    pub rx_packets: AtomicU64,
    pub rx_bytes: AtomicU64,
    pub tx_packets: AtomicU64,
    pub tx_bytes: AtomicU64,
    /// Packets that could not be written (device full or gone).
    pub tx_dropped: AtomicU64,
    /// Super-packets read (TCP or UDP segmentation offload; each counts once in `rx_packets`).
    pub rx_super: AtomicU64,
    /// Super-packets written whole, for the kernel to segment.
    pub tx_super: AtomicU64,
    /// Super-packets read here that were cut into segments in software (rules that log or hand
    /// over packets, an egress MTU their segments exceed, the local stack).
    pub cut: AtomicU64,
}

/// Everything set up for one run; dropping it removes what was created.
#[derive(Debug)]
pub struct Dataplane {
    pub router: Arc<Router>,
    pub devices: Vec<Arc<Dev>>,
    pub counters: Arc<Vec<IfaceCounters>>,
    /// The config file, for `reload`.
    pub config_path: std::path::PathBuf,
    /// The config the router started with: `reload` reports changes to what it cannot
    /// change while running.
    pub config: crate::config::Config,
    /// The plugins in use, for `reload` to carry their key–value stores over.
    pub plugins: std::sync::Mutex<Option<Arc<crate::plugin::Plugins>>>,
    /// The control plane's transaction lock.
    pub control: control::ControlPlane,
    /// Namespaces this run created, deleted by `teardown` (and on drop).
    created_netns: std::sync::Mutex<Vec<String>>,
    started: Instant,
}

impl Drop for Dataplane {
    fn drop(&mut self) {
        // Closing the TUN file descriptors removes the devices (and their addresses and routes).
        self.devices.clear();
        self.teardown();
    }
}

impl Dataplane {
    /// The kernel's counters of each interface's TUN device, read in its namespace: what the
    /// kernel handed rtrouter and what it dropped because rtrouter did not read its queue in
    /// time (`tx_dropped`), and what rtrouter handed back. `None` where they cannot be read.
    pub fn kernel_counters(&self) -> Vec<(String, Option<netlink::LinkStats>)> {
        self.config
            .interface
            .iter()
            .map(|i| {
                let name = i.name.get_ref().clone();
                let dev = name.clone();
                let read = move || netlink::Netlink::open()?.link_stats(&dev);
                let st = match &i.netns {
                    Some(ns) => netns::run_in(ns, read),
                    None => read(),
                };
                (name, st.ok())
            })
            .collect()
    }
}

fn ctx(what: String) -> impl FnOnce(io::Error) -> io::Error {
    move |e| io::Error::new(e.kind(), format!("{what}: {e}"))
}

impl Dataplane {
    /// Creates and configures every interface of `cfg`. On error, whatever was created is
    /// removed again before returning.
    pub fn setup(cfg: &Config, router: Router) -> io::Result<Dataplane> {
        // The router's wall clock at monotonic 0 is now: `now()` counts from here.
        let started = Instant::now();
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        // A run that died without cleaning up: remove what its record says it made.
        match state::clean_up_dead_run(&state::path_for(&cfg.path)) {
            state::Earlier::Cleaned { pid, netns, socket } if !netns.is_empty() || socket => {
                tracing::warn!(
                    "an earlier run (pid {pid}) died without cleaning up: removed network namespaces {netns:?}{}",
                    if socket { " and its control socket" } else { "" }
                );
            }
            state::Earlier::Running(pid) => {
                // Its devices, namespaces and socket are its own: leave them (and its record).
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("another rtrouter (pid {pid}) runs with this config"),
                ));
            }
            _ => {}
        }
        let mut dp = Dataplane {
            router: Arc::new(
                router
                    .freeing_on_swap()
                    .with_wall_base(wall)
                    .with_kernel_tz(local_utc_offset())
                    .with_cpu(|| nix::sched::sched_getcpu().map_or(0, |c| c as u32)),
            ),
            devices: Vec::new(),
            counters: Arc::new(cfg.interface.iter().map(|_| IfaceCounters::default()).collect()),
            created_netns: std::sync::Mutex::new(Vec::new()),
            started,
            config_path: cfg.path.clone(),
            config: cfg.clone(),
            plugins: std::sync::Mutex::new(None),
            control: control::ControlPlane::default(),
        };
        dp.record_state();
        for i in &cfg.interface {
            let name = i.name.get_ref().clone();
            if let Some(ns) = &i.netns {
                if !netns::exists(ns) {
                    if !i.create_netns {
                        return Err(io::Error::new(io::ErrorKind::NotFound, format!("interface {name}: network namespace `{ns}' does not exist (set create_netns = true to create it)")));
                    }
                    netns::create(ns).map_err(ctx(format!("creating network namespace {ns}")))?;
                    crate::eval::state::lock(&dp.created_netns).push(ns.clone());
                    dp.record_state();
                }
            }
            let opts = device::TunOptions {
                queues: queues_for(cfg),
                offload: cfg.router.offload,
            };
            let tun = Dev::open(&name, opts).map_err(ctx(format!("opening TUN device {name}")))?;
            dp.devices.push(Arc::new(tun));
            let router_v4 = i.addresses.iter().map(|a| a.get_ref().addr).find(IpAddr::is_ipv4);
            let router_v6 = i.addresses.iter().map(|a| a.get_ref().addr).find(IpAddr::is_ipv6);
            let peer_addrs: Vec<Cidr> = i
                .peer
                .iter()
                .flat_map(|p| p.addresses.iter().map(|a| *a.get_ref()))
                .collect();
            let peer_routes: Vec<Cidr> = i
                .peer
                .iter()
                .flat_map(|p| p.routes.iter().map(|r| *r.get_ref()))
                .collect();
            let mtu = i.mtu;
            let configure = move |nl: &mut netlink::Netlink, dev: &str| -> io::Result<()> {
                let idx = nl.link_index(dev)?;
                nl.up(idx, mtu)?;
                for a in &peer_addrs {
                    nl.add_address(idx, *a)?;
                }
                // Each route through the router's address of its family (none: on the link).
                for r in &peer_routes {
                    let via = if r.addr.is_ipv4() { router_v4 } else { router_v6 };
                    nl.add_route(*r, via, idx)?;
                }
                Ok(())
            };
            match &i.netns {
                Some(ns) => {
                    let mut nl = netlink::Netlink::open()?;
                    let idx = nl.link_index(&name)?;
                    let f = netns::open(ns)?;
                    nl.move_to_netns(idx, std::os::fd::AsRawFd::as_raw_fd(&f))
                        .map_err(ctx(format!("moving {name} into {ns}")))?;
                    let dev = name.clone();
                    netns::run_in(ns, move || {
                        let mut nl = netlink::Netlink::open()?;
                        configure(&mut nl, &dev)
                    })
                    .map_err(ctx(format!("configuring {name} in {ns}")))?;
                }
                None => {
                    let mut nl = netlink::Netlink::open()?;
                    configure(&mut nl, &name).map_err(ctx(format!("configuring {name}")))?;
                }
            }
            tracing::info!(
                "interface {name} up{}",
                i.netns.as_deref().map(|n| format!(" in netns {n}")).unwrap_or_default()
            );
        }
        Ok(dp)
    }

    /// Deletes the namespaces this run created (their devices go with them), and the run's
    /// record. Idempotent.
    pub fn teardown(&self) {
        for ns in crate::eval::state::lock(&self.created_netns).drain(..) {
            match netns::delete(&ns) {
                Ok(()) => tracing::info!("removed network namespace {ns}"),
                Err(e) => tracing::warn!("removing network namespace {ns}: {e}"),
            }
        }
        let _ = std::fs::remove_file(state::path_for(&self.config_path));
    }

    /// Records what this run has created so far ([`state`]), for the next start to clean up
    /// should this run die without doing it.
    fn record_state(&self) {
        let r = state::Record {
            pid: std::process::id(),
            config: self.config_path.display().to_string(),
            netns: crate::eval::state::lock(&self.created_netns).clone(),
            socket: self
                .config
                .control
                .socket
                .as_ref()
                .map(|s| self.config.base_dir().join(s)),
        };
        if let Err(e) = r.save(&state::path_for(&self.config_path)) {
            tracing::warn!("recording the run's state: {e}");
        }
    }

    pub(crate) fn now(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }

    /// Runs until `shutdown` completes, serving the control socket at `control` and the
    /// metrics endpoint at `listen` when given.
    pub async fn run(
        self: Arc<Self>,
        seed: u64,
        control: Option<std::path::PathBuf>,
        listen: Option<std::net::SocketAddr>,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> io::Result<()> {
        let (local_tx, local_rx) = mpsc::channel::<Vec<u8>>(1024);
        let mut tasks = tokio::task::JoinSet::new();
        if let Some(path) = control.clone() {
            let listener = control::bind(&path).map_err(ctx(format!("control socket {}", path.display())))?;
            let dp = self.clone();
            tasks.spawn(async move {
                control::serve(dp, listener)
                    .await
                    .map_err(ctx(format!("control socket {}", path.display())))
            });
        }
        // The packet workers: one thread per queue, each pinned to its own core.
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut workers = Vec::new();
        let queues = self.devices.iter().map(|d| d.queues()).max().unwrap_or(0);
        let cpus = allowed_cpus();
        for q in 0..queues {
            let dp = self.clone();
            let local = local_tx.clone();
            let mut stopped = stopped.clone();
            let cpu = (!cpus.is_empty()).then(|| cpus[q % cpus.len()]);
            let (done, result) = tokio::sync::oneshot::channel();
            let t = std::thread::Builder::new()
                .name(format!("rtrouter-worker-{q}"))
                .spawn(move || {
                    let _ = done.send(dp.worker(q, cpu, local, seed, &mut stopped));
                })
                .map_err(ctx(format!("starting packet worker {q}")))?;
            workers.push(t);
            tasks.spawn(async move { result.await.unwrap_or(Ok(())) });
        }
        // However `run` ends, the workers stop and are joined first: they hold the devices.
        let _workers = Joined(stop, workers);
        let dp = self.clone();
        tasks.spawn(async move { dp.local_stack(local_rx, seed, listen).await });
        if let Some(addr) = self
            .config
            .metrics
            .host_listen
            .as_ref()
            .and_then(|l| l.get_ref().parse::<std::net::SocketAddr>().ok())
        {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(ctx(format!("metrics.host_listen {addr}")))?;
            tracing::info!("metrics on http://{addr}/metrics (host side)");
            let dp = self.clone();
            tasks.spawn(async move { metrics::serve_host(dp, listener).await });
        }
        let dp = self.clone();
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            let mut freed = 0usize;
            loop {
                tick.tick().await;
                dp.router.tick(dp.now());
                let expired = dp.router.conntrack.gc(dp.now());
                freed += expired;
                // After many connections went, give the freed memory back to the system
                // (glibc keeps freed heap pages otherwise).
                if freed >= TRIM_AFTER {
                    freed = 0;
                    give_back_memory();
                }
                dp.router.defrag.gc(dp.now());
                dp.router.engine().ipsets().expire(dp.now());
            }
        });
        if let Some(every) = notify::watchdog_interval() {
            tasks.spawn(async move {
                let mut tick = tokio::time::interval(every);
                loop {
                    tick.tick().await;
                    notify::notify("WATCHDOG=1");
                }
            });
        }
        // Devices, the control socket and the workers are up.
        notify::notify(&format!(
            "READY=1\nSTATUS=forwarding on {}",
            self.devices.iter().map(|d| d.name()).collect::<Vec<_>>().join(", ")
        ));
        tokio::select! {
            _ = shutdown => {
                notify::notify("STOPPING=1");
            }
            Some(r) = tasks.join_next() => {
                if let Ok(Err(e)) = r {
                    tasks.abort_all();
                    return Err(e);
                }
            }
        }
        tasks.abort_all();
        if let Some(p) = control {
            let _ = std::fs::remove_file(p);
        }
        Ok(())
    }

    /// Sends `pkt` where the router decided: a super-packet (`gso`) whole with its offload
    /// header where the egress device takes one and its segments fit the MTU, else cut into
    /// segments first; a plain packet in fragments when it exceeds the egress MTU (built in
    /// `scratch`). `partial`: the kernel left the packet's transport checksum to the device, so
    /// it goes out partial again where it can (the receiver does not verify it a second time).
    #[allow(clippy::too_many_arguments)]
    fn emit(
        &self,
        d: Disposition,
        pkt: &mut [u8],
        frag_max: u16,
        off: Offload,
        queue: usize,
        local: &mpsc::Sender<Vec<u8>>,
        scratch: &mut Vec<u8>,
        segs: &mut Vec<u8>,
    ) {
        match d {
            Disposition::Forward(hop) => {
                let i = usize::from(hop.iface.0);
                let dev = &self.devices[i];
                let c = &self.counters[i];
                let send = |hdr: &VnetHdr, f: &[u8]| match dev.send(queue, hdr, f) {
                    Ok(_) => {
                        c.tx_packets.fetch_add(1, Ordering::Relaxed);
                        c.tx_bytes.fetch_add(f.len() as u64, Ordering::Relaxed);
                    }
                    Err(_) => {
                        c.tx_dropped.fetch_add(1, Ordering::Relaxed);
                    }
                };
                let mtu = self.router.topo.iface(hop.iface).mtu as usize;
                if let Some(g) = off.gso {
                    let fits = gso::segment_len(pkt, g).is_some_and(|l| l <= mtu);
                    if dev.offloads() && fits && frag_max == 0 {
                        if let (Some(hdr_len), Some((start, field))) =
                            (gso::headers_len(pkt, g), gso::make_partial(pkt))
                        {
                            let hdr = VnetHdr {
                                flags: gso::F_NEEDS_CSUM,
                                gso_type: off.gso_type,
                                hdr_len: hdr_len as u16,
                                gso_size: g.size,
                                csum_start: start,
                                csum_offset: field,
                            };
                            send(&hdr, pkt);
                            c.tx_super.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                    }
                    // Cut in software (GSO); each segment then leaves as any packet would.
                    self.counters[usize::from(off.from)].cut.fetch_add(1, Ordering::Relaxed);
                    let plain = VnetHdr::default();
                    if gso::segment(pkt, g, segs, &mut |s| {
                        self.router
                            .send_out(hop, s, frag_max, scratch, &mut |f| send(&plain, f))
                    })
                    .is_ok()
                    {
                        return;
                    }
                }
                if off.partial && dev.offloads() && pkt.len() <= mtu {
                    if let Some((start, field)) = gso::make_partial(pkt) {
                        let hdr = VnetHdr {
                            flags: gso::F_NEEDS_CSUM,
                            csum_start: start,
                            csum_offset: field,
                            ..VnetHdr::default()
                        };
                        send(&hdr, pkt);
                        return;
                    }
                }
                let plain = VnetHdr::default();
                self.router
                    .send_out(hop, pkt, frag_max, scratch, &mut |f| send(&plain, f));
            }
            Disposition::Local => {
                // The local stack is slow path; a full queue drops like a full socket buffer.
                // It takes segments, not super-packets.
                if off.gso.is_some() {
                    self.counters[usize::from(off.from)].cut.fetch_add(1, Ordering::Relaxed);
                }
                match off.gso {
                    Some(g)
                        if gso::segment(pkt, g, segs, &mut |s| {
                            let _ = local.try_send(s.to_vec());
                        })
                        .is_ok() => {}
                    _ => {
                        let _ = local.try_send(pkt.to_vec());
                    }
                }
            }
            Disposition::Drop(_) | Disposition::Held => {}
        }
    }

    /// Runs one packet (or super-packet) through the router and sends what comes out.
    fn handle(&self, iface: IfaceId, pkt: &mut Vec<u8>, off: Offload, w: &mut Worker, local: &mpsc::Sender<Vec<u8>>) {
        let seg = off
            .gso
            .and_then(|g| gso::segment_len(pkt, g))
            .map_or(0, |l| l.min(usize::from(u16::MAX)) as u16);
        // A header that names a segmentation the packet does not have: a plain packet.
        let off = Offload {
            gso: off.gso.filter(|_| seg != 0),
            ..off
        };
        let meta = Meta {
            now: self.now(),
            ingress: Ingress::Iface(iface),
            mark: 0,
            ct: None,
            seg,
        };
        let o = self.router.process(meta, pkt, &mut w.reply, &mut w.rng, &mut ());
        self.emit(
            o.disposition,
            pkt,
            o.frag_max,
            off,
            w.queue,
            local,
            &mut w.scratch,
            &mut w.segs,
        );
        if let Some(d) = w.reply.disposition {
            self.emit(
                d,
                &mut w.reply.buf,
                0,
                Offload::NONE,
                w.queue,
                local,
                &mut w.scratch,
                &mut w.segs,
            );
        }
        for (copy, hop) in &mut w.reply.copies {
            self.emit(
                Disposition::Forward(*hop),
                copy,
                0,
                off,
                w.queue,
                local,
                &mut w.scratch,
                &mut w.segs,
            );
        }
    }

    /// One packet worker: pinned to `cpu`, it reads queue `queue` of every interface on its
    /// own single-threaded runtime until `stop` turns true or a device fails.
    fn worker(
        self: Arc<Self>,
        queue: usize,
        cpu: Option<usize>,
        local: mpsc::Sender<Vec<u8>>,
        seed: u64,
        stop: &mut tokio::sync::watch::Receiver<bool>,
    ) -> io::Result<()> {
        if let Some(cpu) = cpu {
            let mut set = nix::sched::CpuSet::new();
            if let Err(e) = set
                .set(cpu)
                .and_then(|()| nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set))
            {
                tracing::warn!("packet worker {queue}: pinning to CPU {cpu}: {e}");
            }
        }
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rt.block_on(async move {
            let mut pumps = tokio::task::JoinSet::new();
            for (i, dev) in self.devices.iter().enumerate() {
                if queue >= dev.queues() {
                    continue;
                }
                let reader = dev.reader(queue)?;
                let dp = self.clone();
                let local = local.clone();
                let seed = seed ^ ((i as u64 + 1) | (queue as u64) << 32);
                pumps.spawn(async move { dp.pump(IfaceId(i as u16), queue, reader, local, seed).await });
            }
            tokio::select! {
                _ = stop.wait_for(|s| *s) => Ok(()),
                Some(r) = pumps.join_next() => r.map_err(io::Error::other)?,
            }
        })
    }

    /// Reads one queue of one interface forever.
    async fn pump(
        self: Arc<Self>,
        iface: IfaceId,
        queue: usize,
        reader: <Dev as PacketDevice>::Reader,
        local: mpsc::Sender<Vec<u8>>,
        seed: u64,
    ) -> io::Result<()> {
        let dev = self.devices[usize::from(iface.0)].clone();
        // The packet is read straight into the buffer the core works on.
        let mut pkt: Vec<u8> = Vec::with_capacity(65536);
        let mut seg_pkt: Vec<u8> = Vec::with_capacity(65536);
        let mut w = Worker {
            queue,
            reply: Reply {
                buf: Vec::with_capacity(2048),
                disposition: None,
                copies: Vec::new(),
            },
            rng: SplitMix(seed),
            scratch: Vec::with_capacity(2048),
            segs: Vec::with_capacity(65536),
        };
        let mut cut: Vec<u8> = Vec::with_capacity(65536);
        let mut hdr = VnetHdr::default();
        let c = &self.counters[usize::from(iface.0)];
        let mut batch = 0usize;
        loop {
            // A batch of packets per wake-up, then the other queues this worker reads get a
            // turn (quinn's IO_LOOP_BOUND): a flood on one interface cannot starve another.
            batch += 1;
            if batch > IO_LOOP_BOUND {
                batch = 0;
                tokio::task::yield_now().await;
            }
            dev.recv(&reader, &mut hdr, &mut pkt).await?;
            c.rx_packets.fetch_add(1, Ordering::Relaxed);
            c.rx_bytes.fetch_add(pkt.len() as u64, Ordering::Relaxed);
            let mut off = Offload {
                from: iface.0,
                ..Offload::NONE
            };
            if dev.offloads() {
                if hdr.flags & gso::F_NEEDS_CSUM != 0 {
                    // Conntrack and the rules see the checksum complete, as after a device
                    // that verified it; it leaves partial again.
                    if gso::complete_checksum(&mut pkt, hdr.csum_start, hdr.csum_offset).is_err() {
                        self.router.count_drop(crate::packet::DropReason::BadOffload);
                        continue;
                    }
                    off.partial = true;
                }
                off.gso = hdr.gso();
                off.gso_type = hdr.gso_type;
                if off.gso.is_some() {
                    c.rx_super.fetch_add(1, Ordering::Relaxed);
                }
            }
            match off.gso {
                // Rules that log or hand over packets see the segments the super-packet
                // stands for, each as it would have come without offloads.
                Some(g) if self.exact_packets(&pkt) => {
                    let plain = Offload { gso: None, ..off };
                    c.cut.fetch_add(1, Ordering::Relaxed);
                    let cut_ok = gso::segment(&pkt, g, &mut cut, &mut |s| {
                        seg_pkt.clear();
                        seg_pkt.extend_from_slice(s);
                        self.handle(iface, &mut seg_pkt, plain, &mut w, &local);
                    });
                    if cut_ok.is_err() {
                        self.handle(iface, &mut pkt, plain, &mut w, &local);
                    }
                }
                _ => self.handle(iface, &mut pkt, off, &mut w, &local),
            }
        }
    }

    /// Whether the rules of `pkt`'s family must see segments rather than super-packets.
    fn exact_packets(&self, pkt: &[u8]) -> bool {
        let fam = if pkt.first().is_some_and(|b| b >> 4 == 6) {
            crate::ruleset::Family::V6
        } else {
            crate::ruleset::Family::V4
        };
        self.router.engine_of(fam).exact_packets()
    }

    /// The router's own stack: answers what INPUT delivered (ping, the metrics endpoint); its
    /// packets take OUTPUT and POSTROUTING.
    async fn local_stack(
        self: Arc<Self>,
        mut rx: mpsc::Receiver<Vec<u8>>,
        seed: u64,
        listen: Option<std::net::SocketAddr>,
    ) -> io::Result<()> {
        let addrs: Vec<Cidr> = self
            .router
            .topo
            .ifaces
            .iter()
            .flat_map(|i| i.addrs.iter().copied())
            .collect();
        let started = self.started;
        let ms = || started.elapsed().as_millis() as i64;
        let mut stack = local::Stack::new(&addrs, 1500, ms());
        if let Some(m) = listen {
            stack.listen_http(m.ip(), m.port());
            tracing::info!("metrics on http://{m}/metrics");
        }
        let mut rng = SplitMix(seed.rotate_left(17));
        let mut reply = Reply::default();
        let (dummy_tx, _dummy_rx) = mpsc::channel::<Vec<u8>>(1);
        let mut scratch: Vec<u8> = Vec::with_capacity(2048);
        let mut segs: Vec<u8> = Vec::new();
        let dp = self.clone();
        let render = move |f: metrics::Format| metrics::render_as(&dp, f);
        loop {
            let delay = std::time::Duration::from_millis(stack.poll_delay_ms(ms()).max(1));
            tokio::select! {
                p = rx.recv() => match p {
                    Some(p) => stack.dev.rx.push_back(p),
                    None => return Ok(()),
                },
                _ = tokio::time::sleep(delay) => {}
            }
            for mut pkt in stack.poll(ms(), &render) {
                let meta = Meta {
                    now: self.now(),
                    ingress: Ingress::Local,
                    mark: 0,
                    seg: 0,
                    ct: None,
                };
                let o = self.router.process(meta, &mut pkt, &mut reply, &mut rng, &mut ());
                // What the router sends to itself is not fed back, so nothing loops.
                let none = Offload::NONE;
                self.emit(
                    o.disposition,
                    &mut pkt,
                    o.frag_max,
                    none,
                    0,
                    &dummy_tx,
                    &mut scratch,
                    &mut segs,
                );
                for (copy, hop) in &mut reply.copies {
                    self.emit(
                        Disposition::Forward(*hop),
                        copy,
                        0,
                        none,
                        0,
                        &dummy_tx,
                        &mut scratch,
                        &mut segs,
                    );
                }
                // A packet the router answered (a REJECT in OUTPUT, SYNPROXY's ACK for a
                // server of its own): out, or back to the stack, once.
                match reply.disposition.take() {
                    Some(Disposition::Local) => stack.dev.rx.push_back(std::mem::take(&mut reply.buf)),
                    Some(d @ Disposition::Forward(_)) => {
                        self.emit(d, &mut reply.buf, 0, none, 0, &dummy_tx, &mut scratch, &mut segs)
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Stops the packet workers and joins them when dropped.
struct Joined(tokio::sync::watch::Sender<bool>, Vec<std::thread::JoinHandle<()>>);

impl Drop for Joined {
    fn drop(&mut self) {
        let _ = self.0.send(true);
        for t in self.1.drain(..) {
            let _ = t.join();
        }
    }
}

/// The CPUs this process may run on (its affinity mask), in order.
fn allowed_cpus() -> Vec<usize> {
    let Ok(set) = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)) else {
        return Vec::new();
    };
    (0..nix::sched::CpuSet::count())
        .filter(|c| set.is_set(*c).unwrap_or(false))
        .collect()
}

/// Queues per TUN device: one per packet worker (`router.workers`, 0 = one per core), at
/// most 16.
pub fn queues_for(cfg: &Config) -> usize {
    let workers = match cfg.router.workers {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    };
    workers.clamp(1, 16)
}

/// Connections expired since memory was last given back that make it worth doing again.
const TRIM_AFTER: usize = 65_536;

/// Returns the heap's free pages to the system (`malloc_trim`; glibc only).
#[allow(unsafe_code)]
fn give_back_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own heap bookkeeping; it takes no pointers.
    unsafe {
        nix::libc::malloc_trim(0);
    }
}

/// The local timezone's offset from UTC now, in seconds east (`localtime_r`'s `tm_gmtoff`,
/// from `TZ` or /etc/localtime); 0 when it cannot be read.
#[allow(unsafe_code)]
fn local_utc_offset() -> i32 {
    use nix::libc;
    let now: libc::time_t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as libc::time_t);
    // SAFETY: `tm` is plain data that localtime_r fills in; both pointers are valid for the
    // call, and localtime_r is the thread-safe form.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&now, &mut tm).is_null() {
            return 0;
        }
        i32::try_from(tm.tm_gmtoff).unwrap_or(0)
    }
}
