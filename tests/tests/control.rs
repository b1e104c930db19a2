//! The control socket under abuse: oversized requests, idle and excess clients, a process
//! out of file descriptors, a socket path that is not a socket, a second router on the same
//! path. The router must refuse cleanly, change nothing, and keep forwarding and answering.

use rtrouter::dataplane::control::request;
use rtrouter_tests::netns::{binary, Net, Spec};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::{Duration, Instant};

fn save(net: &Net) -> String {
    net.control("save").expect("save answers")
}

/// Retries `f` for at most `secs` seconds until it returns `Some`.
fn within<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_oversized_request_is_refused_whole() {
    let Some(net) = Net::start(Spec {
        rules: "*filter\n-A INPUT -j ACCEPT\nCOMMIT\n",
        control: "max_request_mib = 1",
        ..Spec::default()
    }) else {
        return;
    };
    let before = save(&net);
    // 2 MiB of valid rules: over the limit, so none of it may apply.
    let mut text = String::from("*filter\n");
    while text.len() < 2 << 20 {
        text.push_str("-A FORWARD -s 10.0.0.1 -j DROP\n");
    }
    text.push_str("COMMIT\n");
    let out = request(&net.socket, "iptables-restore", &[], text.as_bytes(), "big").expect("answered");
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("exceeds the limit of 1 MiB"), "{}", out.stderr);
    assert_eq!(save(&net), before, "nothing applied");
}

#[test]
fn idle_and_excess_clients_never_stop_the_router() {
    let Some(mut net) = Net::start(Spec {
        control: "max_clients = 4\nread_timeout_secs = 2",
        ..Spec::default()
    }) else {
        return;
    };
    // The readiness probe's own connection may still hold its slot for a moment after it
    // was answered: let it go first.
    std::thread::sleep(Duration::from_millis(200));
    // Clients that connect and say nothing hold every slot...
    let idle: Vec<UnixStream> = (0..4)
        .map(|_| UnixStream::connect(&net.socket).expect("connect"))
        .collect();
    // (connect returns before the router has accepted them: give it a moment.)
    std::thread::sleep(Duration::from_millis(300));
    let busy = within(3, || {
        let o = request(&net.socket, "stats", &[], b"", "").ok()?;
        (o.code != 0).then_some(o)
    })
    .expect("a fifth client is told the router is busy");
    assert!(busy.stderr.contains("too many clients"), "{}", busy.stderr);
    // ...until the read timeout drops them.
    let ok = within(5, || {
        request(&net.socket, "stats", &[], b"", "").ok().filter(|o| o.code == 0)
    });
    assert!(ok.is_some(), "answered again once the idle clients timed out");
    drop(idle);
    // Out of file descriptors: accept fails (EMFILE) and is retried; the router survives.
    let pid = net.pid().to_string();
    let st = Command::new("prlimit").args(["--pid", &pid, "--nofile=48:48"]).status();
    if st.is_ok_and(|s| s.success()) {
        let flood: Vec<UnixStream> = (0..120).filter_map(|_| UnixStream::connect(&net.socket).ok()).collect();
        std::thread::sleep(Duration::from_millis(500));
        assert!(net.alive(), "EMFILE must not stop the router:\n{}", net.log_text());
        assert!(
            net.log_text().contains("accept failed"),
            "the flood did run the router out of descriptors"
        );
        drop(flood);
        let ok = within(10, || {
            request(&net.socket, "stats", &[], b"", "").ok().filter(|o| o.code == 0)
        });
        assert!(
            ok.is_some(),
            "answers again once descriptors are free:\n{}",
            net.log_text()
        );
    } else {
        println!("SKIP: prlimit is unavailable; the EMFILE part did not run");
    }
    assert!(net.alive());
}

/// Runs a router with no interfaces and the control socket at `socket`; its exit status and
/// stderr (it must refuse to start, so it exits by itself; killed after 10 s otherwise).
fn run_router_at(dir: &std::path::Path, socket: &std::path::Path) -> (Option<i32>, String) {
    let cfg = dir.join("second.toml");
    std::fs::write(
        &cfg,
        format!(
            "[router]\nforwarding = true\n[control]\nsocket = \"{}\"\n",
            socket.display()
        ),
    )
    .expect("config");
    let mut child = Command::new(binary())
        .arg("--config")
        .arg(&cfg)
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if child.try_wait().ok().flatten().is_none() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().expect("wait");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).to_string())
}

#[test]
fn a_socket_path_is_never_taken_from_a_file_or_a_running_router() {
    let Some(net) = Net::start(Spec::default()) else {
        return;
    };
    // A second router on the same socket refuses to start; the first keeps its socket.
    let (code, err) = run_router_at(&net.dir, &net.socket);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("in use by a running router"), "{err}");
    assert!(net.control("stats").is_ok(), "the first router still answers");
    // A path that is a regular file is refused, and the file kept.
    let file = net.dir.join("not-a-socket");
    std::fs::write(&file, "precious").expect("file");
    let (code, err) = run_router_at(&net.dir, &file);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("is not a socket"), "{err}");
    assert_eq!(std::fs::read_to_string(&file).expect("kept"), "precious");
}

#[test]
fn monitor_trace_streams_traced_packets() {
    let Some(net) = Net::start(Spec {
        rules: "*raw\n-A PREROUTING -p icmp -j TRACE\nCOMMIT\n*filter\n-A INPUT -p icmp -j ACCEPT\nCOMMIT\n",
        ..Spec::default()
    }) else {
        return;
    };
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let socket = net.socket.clone();
    std::thread::spawn(move || {
        let _ = rtrouter::dataplane::control::stream(&socket, "monitor", &["trace".to_string()], |e| {
            tx.send(e.to_string()).is_ok()
        });
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    while Instant::now() < deadline && !seen.iter().any(|l: &String| l.contains("filter:INPUT:rule:1")) {
        // The subscriber may not be registered yet when the first ping passes: ping again.
        let _ = rtrouter_tests::netns::icmp_probe(
            &net,
            rtrouter_tests::netns::Side::Lan,
            "10.0.1.1".parse().unwrap(),
            64,
            0,
            Duration::from_millis(300),
        );
        while let Ok(l) = rx.try_recv() {
            seen.push(l);
        }
    }
    assert!(
        seen.iter()
            .any(|l| l.starts_with("TRACE: filter:INPUT:rule:1 IN=") && l.contains("-A INPUT -p icmp -j ACCEPT")),
        "{seen:#?}"
    );
}
