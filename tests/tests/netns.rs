//! The real rtrouter binary between two network namespaces, with real kernels and sockets at
//! both ends. Needs root and /dev/net/tun (CI has both); skips with one line otherwise.

use rtrouter_tests::netns::{ask, binary, icmp_echo_sized, icmp_probe, link_exists, tcp_echo, Net, Side, Spec};
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("socket address")
}

fn connect(net: &Net, side: Side, to: &str, timeout: Duration) -> std::io::Result<TcpStream> {
    let to = addr(to);
    net.run(side, move || {
        let s = TcpStream::connect_timeout(&to, timeout)?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        Ok(s)
    })
}

const ACCEPT_ALL: &str = "*filter\nCOMMIT\n";

/// A stateful gateway between the namespaces: MASQUERADE out of the WAN interface, FORWARD
/// dropping all but replies and what `accept` (options after `-A FORWARD -i LAN`) lets in.
/// Started with ACCEPT_ALL, then restored over the control socket.
fn gateway(accept: &str) -> Option<(Net, String)> {
    let net = Net::start(Spec {
        rules: ACCEPT_ALL,
        ..Spec::default()
    })?;
    let rules = format!(
        "*nat\n-A POSTROUTING -o {wan} -j MASQUERADE\nCOMMIT\n*filter\n:FORWARD DROP [0:0]\n\
         -A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n{accept}COMMIT\n",
        wan = net.wan_if,
        accept = accept.replace("LAN", &net.lan_if)
    );
    net.control(&format!("restore\n{rules}"))
        .expect("restore gateway rules");
    Some((net, rules))
}

#[test]
fn ping_the_router_and_across_it() {
    let Some(net) = Net::start(Spec {
        rules: ACCEPT_ALL,
        ..Spec::default()
    }) else {
        return;
    };
    let t = Duration::from_secs(3);
    let from = icmp_probe(&net, Side::Lan, Ipv4Addr::new(10, 0, 1, 1), 64, 0, t).expect("probe");
    assert_eq!(
        from,
        Some(Ipv4Addr::new(10, 0, 1, 1)),
        "the router answers its own address\n{}",
        net.log_text()
    );
    let from = icmp_probe(&net, Side::Lan, Ipv4Addr::new(10, 0, 2, 1), 64, 0, t).expect("probe");
    assert_eq!(from, Some(Ipv4Addr::new(10, 0, 2, 1)), "and its other address");
    let from = icmp_probe(&net, Side::Lan, Ipv4Addr::new(10, 0, 2, 2), 64, 0, t).expect("probe");
    assert_eq!(
        from,
        Some(Ipv4Addr::new(10, 0, 2, 2)),
        "a ping across is answered by the far side"
    );
}

#[test]
fn tcp_and_udp_forwarded_drop_and_reject() {
    let rules = "*filter\n-A FORWARD -p tcp --dport 7001 -j DROP\n-A FORWARD -p tcp --dport 7002 -j REJECT --reject-with tcp-reset\n-A FORWARD -p udp --dport 7003 -j REJECT\nCOMMIT\n";
    let Some(net) = Net::start(Spec {
        rules,
        ..Spec::default()
    }) else {
        return;
    };
    tcp_echo(&net, Side::Wan, addr("10.0.2.2:7000"), 4);
    let mut s = connect(&net, Side::Lan, "10.0.2.2:7000", Duration::from_secs(3)).expect("TCP forwarded");
    assert_eq!(
        ask(&mut s, "hi").unwrap(),
        "10.0.2.2 10.0.1.2 hi",
        "no NAT: the server sees the client"
    );
    // UDP echo.
    let server = net.run(Side::Wan, || UdpSocket::bind("10.0.2.2:7000")).unwrap();
    server.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let client = net
        .run(Side::Lan, || {
            let c = UdpSocket::bind("10.0.1.2:0")?;
            c.connect("10.0.2.2:7000")?;
            c.set_read_timeout(Some(Duration::from_secs(3)))?;
            Ok(c)
        })
        .unwrap();
    client.send(b"ping").unwrap();
    let mut b = [0u8; 16];
    let (n, from) = server.recv_from(&mut b).expect("UDP forwarded");
    server.send_to(&b[..n], from).unwrap();
    assert_eq!(client.recv(&mut b).expect("UDP reply forwarded back"), 4);
    // DROP: the connection attempt times out.
    let t0 = Instant::now();
    let e = connect(&net, Side::Lan, "10.0.2.2:7001", Duration::from_millis(1500)).expect_err("dropped");
    assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
    assert!(t0.elapsed() >= Duration::from_millis(1400));
    // REJECT with tcp-reset: refused at once.
    let t0 = Instant::now();
    let e = connect(&net, Side::Lan, "10.0.2.2:7002", Duration::from_secs(3)).expect_err("rejected");
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}");
    assert!(t0.elapsed() < Duration::from_secs(1));
    // REJECT for UDP: ICMP port unreachable, which a connected socket reports as refused.
    let c = net
        .run(Side::Lan, || {
            let c = UdpSocket::bind("10.0.1.2:0")?;
            c.connect("10.0.2.2:7003")?;
            c.set_read_timeout(Some(Duration::from_secs(3)))?;
            Ok(c)
        })
        .unwrap();
    c.send(b"x").unwrap();
    let e = c.recv(&mut b).expect_err("unreachable");
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}");
}

#[test]
fn lan_gateway_with_masquerade() {
    let rules = "*nat\n-A POSTROUTING -o {wan} -j MASQUERADE\nCOMMIT\n*filter\n:FORWARD DROP [0:0]\n-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n-A FORWARD -i {lan} -j ACCEPT\nCOMMIT\n";
    // Interface names are per topology: fill them in once the names are known.
    let Some(probe) = Net::start(Spec {
        rules: ACCEPT_ALL,
        ..Spec::default()
    }) else {
        return;
    };
    let rules = rules.replace("{wan}", &probe.wan_if).replace("{lan}", &probe.lan_if);
    probe
        .control(&format!("restore\n{rules}"))
        .expect("restore gateway rules");
    tcp_echo(&probe, Side::Wan, addr("10.0.2.2:7100"), 2);
    let mut s = connect(&probe, Side::Lan, "10.0.2.2:7100", Duration::from_secs(3)).expect("connect out");
    assert_eq!(
        ask(&mut s, "who").unwrap(),
        "10.0.2.2 10.0.2.1 who",
        "the server sees the router's WAN address"
    );
    assert_eq!(
        ask(&mut s, "again").unwrap(),
        "10.0.2.2 10.0.2.1 again",
        "replies keep coming back"
    );
    // The WAN side cannot connect in.
    tcp_echo(&probe, Side::Lan, addr("10.0.1.2:7101"), 1);
    let e = connect(&probe, Side::Wan, "10.0.1.2:7101", Duration::from_millis(800)).expect_err("filtered");
    assert_eq!(e.kind(), ErrorKind::TimedOut);
}

#[test]
fn kube_proxy_style_service_over_three_backends() {
    let rules = "*nat\n:SVC - [0:0]\n-A PREROUTING -d 10.96.0.10/32 -p tcp --dport 80 -j SVC\n\
        -A SVC -p tcp -m statistic --mode random --probability 0.33333333349 -j DNAT --to-destination 10.0.2.10:8080\n\
        -A SVC -p tcp -m statistic --mode random --probability 0.50000000000 -j DNAT --to-destination 10.0.2.11:8080\n\
        -A SVC -p tcp -j DNAT --to-destination 10.0.2.12:8080\nCOMMIT\n";
    let Some(net) = Net::start(Spec {
        rules,
        wan_extra: &["10.0.2.10/24", "10.0.2.11/24", "10.0.2.12/24"],
        ..Spec::default()
    }) else {
        return;
    };
    for b in ["10.0.2.10:8080", "10.0.2.11:8080", "10.0.2.12:8080"] {
        tcp_echo(&net, Side::Wan, addr(b), 40);
    }
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..30 {
        let mut s = connect(&net, Side::Lan, "10.96.0.10:80", Duration::from_secs(3)).expect("service reachable");
        let first = ask(&mut s, &format!("c{i}")).unwrap();
        let backend = first.split(' ').next().unwrap().to_string();
        for k in 0..3 {
            let again = ask(&mut s, &format!("c{i}-{k}")).unwrap();
            assert!(
                again.starts_with(&format!("{backend} ")),
                "connection {i} moved from {backend}: {again}"
            );
        }
        seen.insert(backend);
    }
    assert_eq!(seen.len(), 3, "all three backends serve: {seen:?}");
}

#[test]
fn ttl_expiry_is_answered_with_time_exceeded() {
    let Some(net) = Net::start(Spec {
        rules: ACCEPT_ALL,
        ..Spec::default()
    }) else {
        return;
    };
    let from = icmp_probe(
        &net,
        Side::Lan,
        Ipv4Addr::new(10, 0, 2, 2),
        1,
        11,
        Duration::from_secs(3),
    )
    .expect("probe");
    assert_eq!(
        from,
        Some(Ipv4Addr::new(10, 0, 1, 1)),
        "time exceeded from the router's LAN address"
    );
}

#[test]
fn restore_while_a_stream_runs() {
    let Some(net) = Net::start(Spec {
        rules: ACCEPT_ALL,
        ..Spec::default()
    }) else {
        return;
    };
    tcp_echo(&net, Side::Wan, addr("10.0.2.2:7200"), 4);
    let mut s = connect(&net, Side::Lan, "10.0.2.2:7200", Duration::from_secs(3)).expect("connect");
    for i in 0..5 {
        ask(&mut s, &format!("before {i}")).expect("stream before");
    }
    // New connections to the port are refused from now on; established ones keep flowing.
    let rules = "*filter\n-A FORWARD -p tcp --dport 7200 -m conntrack --ctstate NEW -j REJECT --reject-with tcp-reset\n-A FORWARD -m conntrack --ctstate ESTABLISHED -j ACCEPT\nCOMMIT\n";
    net.control(&format!("restore\n{rules}")).expect("restore");
    for i in 0..5 {
        let a = ask(&mut s, &format!("after {i}")).expect("the stream was not interrupted");
        assert!(a.ends_with(&format!("after {i}")));
    }
    let e = connect(&net, Side::Lan, "10.0.2.2:7200", Duration::from_secs(3)).expect_err("new connections refused");
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
    let saved = net.control("save -c\n").expect("save -c");
    let count = |needle: &str| -> u64 {
        let line = saved
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no rule {needle} in\n{saved}"));
        line.trim_start_matches('[').split(':').next().unwrap().parse().unwrap()
    };
    assert!(count("--ctstate NEW -j REJECT") >= 1, "{saved}");
    assert!(count("--ctstate ESTABLISHED -j ACCEPT") >= 10, "{saved}");
    // And a bad restore changes nothing.
    let e = net
        .control("restore\n*filter\n-A FORWARD -p tcp --dport 99999 -j DROP\nCOMMIT\n")
        .expect_err("refused");
    assert!(e.contains(":2:") && e.contains("99999"), "{e}");
    // Errors found by the router (validation) name the file the client read.
    let e = net
        .control("restore /etc/rtrouter/site.rules\n*filter\n\n-A FORWARD -j NO_SUCH_CHAIN\nCOMMIT\n")
        .expect_err("refused");
    assert!(e.contains("/etc/rtrouter/site.rules:3:"), "{e}");
    assert!(net.control("save\n").unwrap().contains("--ctstate NEW -j REJECT"));
}

#[test]
fn a_config_with_an_error_exits_nonzero_and_leaves_nothing() {
    if !rtrouter_tests::netns::available() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("rtrouter-badcfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let id = std::process::id() % 0xfffff;
    let (ns, dev) = (format!("rtb{id:x}"), format!("tb{id:x}"));
    std::fs::write(
        dir.join("bad.rules"),
        "*filter\n-A FORWARD -p tcp --dport 70000 -j DROP\nCOMMIT\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("router.toml"),
        format!("[[interface]]\nname = \"{dev}\"\naddresses = [\"10.0.9.1/24\"]\nnetns = \"{ns}\"\ncreate_netns = true\n[rules]\nfiles = [\"bad.rules\"]\n"),
    )
    .unwrap();
    let o = std::process::Command::new(rtrouter_tests::netns::binary())
        .arg("--config")
        .arg(dir.join("router.toml"))
        .output()
        .expect("runs");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bad.rules:2:27") && err.contains("70000"), "{err}");
    assert!(
        !link_exists(&dev) && !rtrouter::dataplane::netns::exists(&ns),
        "nothing was created"
    );
}

#[test]
fn sigterm_removes_devices_and_namespaces() {
    let Some(mut net) = Net::start(Spec {
        rules: ACCEPT_ALL,
        router_creates_netns: true,
        ..Spec::default()
    }) else {
        return;
    };
    assert!(rtrouter::dataplane::netns::exists(&net.lan_ns) && rtrouter::dataplane::netns::exists(&net.wan_ns));
    let lan_if = net.lan_if.clone();
    assert!(
        net.run(Side::Lan, move || Ok(link_exists(&lan_if))).unwrap(),
        "the TUN device is in its namespace"
    );
    let status = net.stop().expect("was running");
    assert!(status.success(), "{status}\n{}", net.log_text());
    assert!(
        !rtrouter::dataplane::netns::exists(&net.lan_ns) && !rtrouter::dataplane::netns::exists(&net.wan_ns),
        "namespaces removed"
    );
    assert!(
        !link_exists(&net.lan_if) && !link_exists(&net.wan_if),
        "no device left behind"
    );
    assert!(!net.socket.exists(), "control socket removed");
}

#[test]
fn metrics_endpoint_on_a_router_address() {
    let Some(net) = Net::start(Spec {
        rules: ACCEPT_ALL,
        metrics: true,
        ..Spec::default()
    }) else {
        return;
    };
    // One change that applies and one that is refused, before the scrape.
    net.control(
        r#"restore
*filter
:A\B - [0:0]
-A FORWARD -j A\B
-A A\B -m comment --comment "say \"hi\"" -j ACCEPT
COMMIT
"#,
    )
    .expect("restore");
    net.control("restore\n*filter\n-A FORWARD -j NOPE\nCOMMIT\n")
        .expect_err("refused");
    let mut s = connect(&net, Side::Lan, "10.0.1.1:9100", Duration::from_secs(3)).expect("metrics port open");
    use std::io::{Read, Write};
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 10.0.1.1\r\n\r\n").unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).expect("read the scrape");
    assert!(body.starts_with("HTTP/1.0 200 OK"), "{body}");
    let want = format!("rtrouter_interface_rx_packets_total{{interface=\"{}\"}} ", net.lan_if);
    let line = body
        .lines()
        .find(|l| l.starts_with(&want))
        .unwrap_or_else(|| panic!("no {want} in\n{body}"));
    let n: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(n >= 2, "the scrape's own packets were counted: {line}");
    assert!(body.contains("rtrouter_conntrack_entries "), "{body}");
    assert!(body.contains("rtrouter_drops_total{reason=\"filtered\"}"), "{body}");
    assert!(body.contains("rtrouter_build_info{version=\""), "{body}");
    // Label values escaped as the text format wants (a chain may be called `A\B`), rules
    // identified by a stable id and by their comment.
    let rule = body
        .lines()
        .find(|l| l.starts_with(r#"rtrouter_rule_packets_total{table="filter",chain="A\\B",rule="1",id=""#))
        .unwrap_or_else(|| panic!("no escaped rule series in\n{body}"));
    assert!(rule.contains(r#",comment="say \"hi\""}"#), "{rule}");
    assert!(
        body.contains("rtrouter_ruleset_changes_total{result=\"ok\"} 1\n"),
        "{body}"
    );
    assert!(
        body.contains("rtrouter_ruleset_changes_total{result=\"failed\"} 1\n"),
        "{body}"
    );
    let last = body
        .lines()
        .find_map(|l| l.strip_prefix("rtrouter_ruleset_last_change_timestamp_seconds "))
        .and_then(|v| v.parse::<u64>().ok())
        .expect("the last change's time");
    assert!(last > 1_700_000_000, "{last}");
    assert!(
        body.contains(&format!(
            "rtrouter_tun_kernel_dropped_total{{interface=\"{}\",direction=\"to_router\"}}",
            net.lan_if
        )),
        "{body}"
    );
}

#[test]
fn plugin_rules_reload_over_the_control_socket() {
    let wasm = rtrouter_tests::repo_root().join("plugins/target/c_port_range.wasm");
    if !wasm.exists() {
        assert!(
            std::env::var_os("RTROUTER_REQUIRE_PLUGINS").is_none(),
            "{} missing: scripts/build-plugins.sh",
            wasm.display()
        );
        println!("SKIP: {} is not built", wasm.display());
        return;
    }
    let rules = |range: &str| {
        format!("*filter\n:FORWARD DROP [0:0]\n-A FORWARD -m conntrack --ctstate ESTABLISHED -j ACCEPT\n-A FORWARD -p tcp -m wasm --plugin ports --args {range} -j ACCEPT\nCOMMIT\n")
    };
    let extra = format!("[[plugin]]\nname = \"ports\"\npath = \"{}\"\n", wasm.display());
    let first = rules("7000-7100");
    let Some(net) = Net::start(Spec {
        rules: &first,
        extra: &extra,
        ..Spec::default()
    }) else {
        return;
    };
    tcp_echo(&net, Side::Wan, addr("10.0.2.2:7050"), 2);
    tcp_echo(&net, Side::Wan, addr("10.0.2.2:7200"), 2);
    let mut kept = connect(&net, Side::Lan, "10.0.2.2:7050", Duration::from_secs(3)).expect("7050 is in range");
    let e = connect(&net, Side::Lan, "10.0.2.2:7200", Duration::from_millis(800)).expect_err("7200 is not");
    assert_eq!(e.kind(), ErrorKind::TimedOut);
    // New plugin arguments in the rules file, then reload.
    std::fs::write(net.dir.join("rules"), rules("7100-7300")).unwrap();
    let answer = net.control("reload\n").expect("reload");
    assert!(answer.contains("1 plugins and the ruleset reloaded"), "{answer}");
    let mut s = connect(&net, Side::Lan, "10.0.2.2:7200", Duration::from_secs(3)).expect("7200 is in the new range");
    assert!(ask(&mut s, "new").unwrap().ends_with("new"));
    assert!(
        ask(&mut kept, "still").unwrap().ends_with("still"),
        "the established connection survived the reload"
    );
    let stats = net.control("stats\n").unwrap();
    assert!(stats.contains("plugin ports: calls"), "{stats}");
}

#[test]
fn sighup_reloads_and_reports_what_needs_a_restart_and_sigusr1_does_not_kill() {
    use nix::sys::signal::Signal;
    let Some(mut net) = Net::start(Spec {
        rules: ACCEPT_ALL,
        ..Spec::default()
    }) else {
        return;
    };
    // New rules in the file, then SIGHUP: the running router takes them.
    std::fs::write(
        net.dir.join("rules"),
        "*filter\n-A FORWARD -p udp --dport 9999 -j DROP\nCOMMIT\n",
    )
    .unwrap();
    net.signal(Signal::SIGHUP);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !net.control("save\n").unwrap().contains("--dport 9999 -j DROP") {
        assert!(
            std::time::Instant::now() < deadline,
            "not reloaded:\n{}",
            net.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(net.alive(), "SIGHUP does not stop the router");
    // A change that needs a restart is reported, not silently ignored.
    let cfg = net.dir.join("router.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text.replacen(
            "addresses = [\"10.0.1.1/24\"]",
            "addresses = [\"10.0.1.1/24\"]\nmtu = 1400",
            1,
        ),
    )
    .unwrap();
    net.signal(Signal::SIGHUP);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !net.log_text().contains("kept until a restart: interface") {
        assert!(
            std::time::Instant::now() < deadline,
            "not reported:\n{}",
            net.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // SIGUSR1 logs the statistics and the router keeps running.
    net.signal(Signal::SIGUSR1);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !net.log_text().contains("SIGUSR1") {
        assert!(
            std::time::Instant::now() < deadline,
            "no statistics:\n{}",
            net.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(net.alive(), "SIGUSR1 does not stop the router");
    assert!(net.control("stats\n").is_ok());
}

#[test]
fn udp_datagrams_and_pings_larger_than_the_mtu_cross_masqueraded_as_fragments() {
    // A stateful gateway: the reply only comes back when conntrack saw the datagram as one
    // packet of one connection (fragments are reassembled before the rules).
    let Some((net, _)) = gateway(
        "-A FORWARD -i LAN -p udp -m length --length 8028 -j ACCEPT\n\
         -A FORWARD -i LAN -p icmp --icmp-type echo-request -m length --length 3028 -j ACCEPT\n",
    ) else {
        return;
    };
    let server = net.run(Side::Wan, || UdpSocket::bind("10.0.2.2:7200")).unwrap();
    server.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let client = net
        .run(Side::Lan, || {
            let c = UdpSocket::bind("10.0.1.2:0")?;
            c.connect("10.0.2.2:7200")?;
            c.set_read_timeout(Some(Duration::from_secs(3)))?;
            Ok(c)
        })
        .unwrap();
    // 8000 bytes of data: the sending kernel fragments it for its 1500-byte link.
    let data: Vec<u8> = (0..8000u32).map(|i| (i % 251) as u8).collect();
    client.send(&data).unwrap();
    let mut b = vec![0u8; 8192];
    let (n, from) = server.recv_from(&mut b).expect("the datagram crossed");
    assert_eq!(&b[..n], &data[..], "whole and unchanged");
    assert_eq!(
        from.ip(),
        "10.0.2.1".parse::<std::net::IpAddr>().unwrap(),
        "masqueraded"
    );
    server.send_to(&b[..n], from).unwrap();
    let n = client.recv(&mut b).expect("the large reply came back");
    assert_eq!(&b[..n], &data[..]);
    // A ping of 3000 bytes crosses in fragments both ways, masqueraded, judged whole.
    let (from, echo) = icmp_echo_sized(
        &net,
        Side::Lan,
        Ipv4Addr::new(10, 0, 2, 2),
        3000,
        Duration::from_secs(3),
    )
    .expect("probe")
    .expect("the fragmented ping is answered");
    assert_eq!(from, Ipv4Addr::new(10, 0, 2, 2));
    assert_eq!(echo, (0..3000).map(|i| (i % 253) as u8).collect::<Vec<u8>>());
    let stats = net.control("stats").expect("stats");
    assert!(
        stats.contains("reassembly: ") && !stats.contains(" 0 datagrams reassembled"),
        "{stats}"
    );
    assert!(stats.contains("fragments)"), "{stats}");
}

#[test]
fn stats_show_the_kernel_side_of_each_tun_device() {
    let Some(net) = Net::start(Spec {
        rules: ACCEPT_ALL,
        ..Spec::default()
    }) else {
        return;
    };
    // Unconnected: the far side's ICMP port-unreachable must not fail later sends.
    let client = net.run(Side::Lan, || UdpSocket::bind("10.0.1.2:0")).unwrap();
    for _ in 0..20 {
        client.send_to(b"x", "10.0.2.2:9").unwrap();
    }
    std::thread::sleep(Duration::from_millis(200));
    let stats = net.control("stats").expect("stats");
    let line = stats
        .lines()
        .find(|l| l.starts_with(&format!("interface {} (kernel side): to rtrouter ", net.lan_if)))
        .unwrap_or_else(|| panic!("no kernel-side line for {}:\n{stats}", net.lan_if));
    let handed: u64 = line
        .split("to rtrouter ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("a count");
    assert!(
        handed >= 20,
        "the kernel handed rtrouter at least the 20 datagrams: {line}"
    );
    assert!(line.contains("dropped before rtrouter read them"), "{line}");
    assert!(
        stats.contains(&format!("interface {} (kernel side): to rtrouter ", net.wan_if)),
        "{stats}"
    );
}

#[test]
fn conntrack_command_speaks_as_conntrack_tools() {
    let Some(net) = Net::start(Spec {
        rules: ACCEPT_ALL,
        ..Spec::default()
    }) else {
        return;
    };
    // `-E` streams events: the datagram below opens a connection.
    let mut events = std::process::Command::new(binary())
        .arg("conntrack")
        .arg("--socket")
        .arg(&net.socket)
        .arg("-E")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("conntrack -E runs");
    let out = events.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    let client = net
        .run(Side::Lan, || {
            let c = UdpSocket::bind("10.0.1.2:4321")?;
            c.connect("10.0.2.2:9")?;
            Ok(c)
        })
        .unwrap();
    client.send(b"x").unwrap();
    let first = rx.recv_timeout(Duration::from_secs(5)).expect("an event within 5 s");
    let _ = events.kill();
    let _ = events.wait();
    assert!(
        first.starts_with("    [NEW] udp      17 ")
            && first.contains("src=10.0.1.2 dst=10.0.2.2 sport=4321 dport=9 [UNREPLIED]"),
        "{first}"
    );
    std::thread::sleep(Duration::from_millis(200));
    let ct = |args: &[&str]| {
        let o = std::process::Command::new(binary())
            .arg("conntrack")
            .arg("--socket")
            .arg(&net.socket)
            .args(args)
            .output()
            .expect("runs");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        (
            String::from_utf8_lossy(&o.stdout).to_string(),
            String::from_utf8_lossy(&o.stderr).to_string(),
        )
    };
    let (out, err) = ct(&["-L", "-p", "udp"]);
    assert!(
        out.starts_with("udp      17 ") && out.contains("src=10.0.1.2 dst=10.0.2.2 sport=4321 dport=9 [UNREPLIED]"),
        "{out}"
    );
    assert!(out.trim_end().ends_with("mark=0 use=1"), "{out}");
    assert_eq!(
        err,
        "conntrack v1.4.7 (conntrack-tools): 1 flow entries have been shown.\n"
    );
    let (out, _) = ct(&["-L", "-o", "extended", "-p", "udp"]);
    assert!(out.starts_with("ipv4     2 udp      17 "), "{out}");
    let (out, _) = ct(&["-C"]);
    assert!(out.trim().parse::<u64>().expect("a count") >= 1, "{out}");
    let (out, _) = ct(&["-S"]);
    assert!(out.starts_with("cpu=0   \tfound="), "{out}");
    let insert: u64 = out
        .split(" insert=")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("insert=N");
    assert!(insert >= 1, "{out}");
    let (_, err) = ct(&["-D", "-p", "udp"]);
    assert_eq!(
        err,
        "conntrack v1.4.7 (conntrack-tools): 1 flow entries have been deleted.\n"
    );
    let (out, err) = ct(&["-L", "-p", "udp"]);
    assert_eq!(
        (out.as_str(), err.as_str()),
        (
            "",
            "conntrack v1.4.7 (conntrack-tools): 0 flow entries have been shown.\n"
        )
    );
    // Exit codes as conntrack-tools': deleting nothing fails, a bad option is a usage error.
    let code = |args: &[&str]| {
        std::process::Command::new(binary())
            .arg("conntrack")
            .arg("--socket")
            .arg(&net.socket)
            .args(args)
            .output()
            .expect("runs")
            .status
            .code()
    };
    assert_eq!(code(&["-D", "-p", "udp"]), Some(1));
    assert_eq!(code(&["-L", "--nosuch", "1"]), Some(2));
}

#[test]
fn stats_and_metrics_show_what_plugins_count_and_store() {
    // A match plugin that counts its calls in counter 3 and stores "last" = "seen".
    let wat = r#"(module
  (import "rtrouter" "kv_set" (func $set (param i32 i32 i32 i32) (result i32)))
  (import "rtrouter" "counter_add" (func $add (param i32 i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "lastseen")
  (func (export "rtrouter_abi_version") (result i32) i32.const 1)
  (func (export "rtrouter_buffer") (result i32) i32.const 1024)
  (func (export "rtrouter_buffer_len") (result i32) i32.const 4096)
  (func (export "rtrouter_init") (param i32 i32) (result i32) i32.const 0)
  (func (export "rtrouter_match") (param i32 i32) (result i32)
    (call $add (i32.const 3) (i64.const 1))
    (drop (call $set (i32.const 0) (i32.const 4) (i32.const 4) (i32.const 4)))
    i32.const 1))"#;
    let dir = std::env::temp_dir().join(format!("rtrouter-kvplugin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("count.wat");
    std::fs::write(&path, wat).unwrap();
    let extra = format!("[[plugin]]\nname = \"count\"\npath = \"{}\"\n", path.display());
    let Some(net) = Net::start(Spec {
        rules: "*filter\n-A FORWARD -p udp -m wasm --plugin count -j ACCEPT\nCOMMIT\n",
        extra: &extra,
        metrics: true,
        ..Spec::default()
    }) else {
        std::fs::remove_dir_all(&dir).ok();
        return;
    };
    let client = net.run(Side::Lan, || UdpSocket::bind("10.0.1.2:0")).unwrap();
    for _ in 0..3 {
        client.send_to(b"x", "10.0.2.2:9").unwrap();
    }
    std::thread::sleep(Duration::from_millis(200));
    let stats = net.control("stats").expect("stats");
    std::fs::remove_dir_all(&dir).ok();
    assert!(stats.contains("plugin count counter 3: 3\n"), "{stats}");
    assert!(stats.contains("plugin count store: 1 keys\n"), "{stats}");
    assert!(stats.contains("plugin count store last = seen\n"), "{stats}");
    let mut s = connect(&net, Side::Lan, "10.0.1.1:9100", Duration::from_secs(3)).expect("metrics port open");
    use std::io::{Read, Write};
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 10.0.1.1\r\n\r\n").unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).expect("read the scrape");
    assert!(
        body.contains("rtrouter_plugin_calls_total{plugin=\"count\"} 3\n"),
        "{body}"
    );
    assert!(
        body.contains("rtrouter_plugin_counter{plugin=\"count\",index=\"3\"} 3\n"),
        "{body}"
    );
    assert!(
        body.contains("rtrouter_plugin_disabled{plugin=\"count\"} 0\n"),
        "{body}"
    );
}

#[test]
fn systemd_hears_ready_reloading_watchdog_and_stopping() {
    let dir = std::env::temp_dir().join(format!("rtrouter-notify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&path).expect("notify socket");
    sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let path_s = path.display().to_string();
    let env = [("NOTIFY_SOCKET", path_s.as_str()), ("WATCHDOG_USEC", "400000")];
    let Some(mut net) = Net::start(Spec {
        rules: ACCEPT_ALL,
        env: &env,
        ..Spec::default()
    }) else {
        std::fs::remove_dir_all(&dir).ok();
        return;
    };
    let mut heard = Vec::new();
    let until = |want: &str, heard: &mut Vec<String>| {
        let mut b = [0u8; 4096];
        loop {
            let n = sock
                .recv(&mut b)
                .unwrap_or_else(|e| panic!("no {want} (heard {heard:?}): {e}"));
            let m = String::from_utf8_lossy(&b[..n]).to_string();
            heard.push(m.clone());
            if m.starts_with(want) {
                return m;
            }
        }
    };
    let ready = until("READY=1", &mut heard);
    assert!(
        ready.contains(&format!("STATUS=forwarding on {}", net.lan_if)),
        "{ready}"
    );
    until("WATCHDOG=1", &mut heard);
    net.control("reload").expect("reload");
    let r = until("RELOADING=1", &mut heard);
    assert!(r.contains("MONOTONIC_USEC="), "{r}");
    until("READY=1", &mut heard);
    net.signal(nix::sys::signal::Signal::SIGTERM);
    until("STOPPING=1", &mut heard);
    let _ = net.stop();
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn metrics_serve_many_scrapers_and_survive_silent_clients() {
    let Some(net) = Net::start(Spec {
        rules: ACCEPT_ALL,
        metrics: true,
        ..Spec::default()
    }) else {
        return;
    };
    use std::io::{Read, Write};
    let scrape = |net: &Net| -> std::io::Result<String> {
        let mut s = connect(net, Side::Lan, "10.0.1.1:9100", Duration::from_secs(3))?;
        s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n")?;
        let mut body = String::new();
        s.read_to_string(&mut body)?;
        Ok(body)
    };
    // A client that connects and leaves without a request, and one that says nothing.
    drop(connect(&net, Side::Lan, "10.0.1.1:9100", Duration::from_secs(3)).expect("connects"));
    let _silent = connect(&net, Side::Lan, "10.0.1.1:9100", Duration::from_secs(3)).expect("connects");
    std::thread::sleep(Duration::from_millis(200));
    assert!(scrape(&net)
        .expect("a scrape after them")
        .starts_with("HTTP/1.0 200 OK"));
    // Ten at once: every one answered.
    let answers: Vec<std::io::Result<String>> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..10).map(|_| sc.spawn(|| scrape(&net))).collect();
        hs.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    let ok = answers
        .iter()
        .filter(|a| a.as_ref().is_ok_and(|b| b.starts_with("HTTP/1.0 200 OK")))
        .count();
    assert_eq!(ok, 10, "{answers:?}");
}

#[test]
fn metrics_on_the_host_side_too() {
    // A port of our own on the host's loopback.
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let addr = probe.local_addr().unwrap().to_string();
    drop(probe);
    let Some(_net) = Net::start(Spec {
        rules: ACCEPT_ALL,
        host_metrics: &addr,
        ..Spec::default()
    }) else {
        return;
    };
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(&addr).expect("the host-side listener");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    assert!(body.starts_with("HTTP/1.0 200 OK"), "{body}");
    assert!(body.contains("rtrouter_build_info{version="), "{body}");
    for m in [
        "process_cpu_seconds_total ",
        "process_resident_memory_bytes ",
        "process_open_fds ",
        "process_max_fds ",
        "process_start_time_seconds ",
    ] {
        let v: f64 = body
            .lines()
            .find_map(|l| l.strip_prefix(m))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {m}in\n{body}"));
        // A router just started may not have used a full clock tick of CPU yet.
        if m.starts_with("process_cpu") {
            assert!(v >= 0.0, "{m}{v}");
        } else {
            assert!(v > 0.0, "{m}{v}");
        }
    }
    // A silent client does not stop the next one.
    let _silent = TcpStream::connect(&addr).unwrap();
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    assert!(body.starts_with("HTTP/1.0 200 OK"), "{body}");
    assert!(body.contains("Content-Type: text/plain; version=0.0.4"), "{body}");
    // A scraper that asks for OpenMetrics gets it: counters' families without `_total`, their
    // samples with it, `# EOF` at the end.
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: application/openmetrics-text;version=1.0.0,text/plain;q=0.5\r\n\r\n")
        .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    assert!(
        body.contains("Content-Type: application/openmetrics-text; version=1.0.0"),
        "{body}"
    );
    assert!(body.contains("# TYPE rtrouter_drops counter\n"), "{body}");
    assert!(body.contains("rtrouter_drops_total{reason=\"filtered\"} "), "{body}");
    assert!(body.ends_with("# EOF\n"), "{body}");
}

#[test]
fn dual_stack_forwarding_reject_masquerade_and_a_service() {
    use rtrouter_tests::netns::icmp6_probe;
    use std::net::Ipv6Addr;
    // iptables and ip6tables each: a REJECTed UDP port, a service VIP DNATed to a backend on
    // the WAN side; ip6tables also masquerades IPv6 leaving through the WAN.
    let rules =
        "*nat\n-A PREROUTING -d 10.96.0.10/32 -p tcp --dport 80 -j DNAT --to-destination 10.0.2.10:8080\nCOMMIT\n\
        *filter\n-A FORWARD -p udp --dport 7203 -j REJECT\nCOMMIT\n";
    let rules6 = "*nat\n\
        -A PREROUTING -d fd00:96::10/128 -p tcp --dport 80 -j DNAT --to-destination [2001:db8:2::10]:8080\n\
        -A POSTROUTING -s 2001:db8:1::/64 -o {wan} -j MASQUERADE\n\
        COMMIT\n\
        *filter\n\
        -A FORWARD -p udp --dport 7203 -j REJECT\n\
        -A FORWARD -p tcp --dport 7204 -j REJECT --reject-with tcp-reset\n\
        COMMIT\n";
    let Some(probe) = Net::start(Spec {
        rules: ACCEPT_ALL,
        rules6: "*filter\nCOMMIT\n",
        wan_extra: &["10.0.2.10/24"],
        wan_extra6: &["2001:db8:2::10/64"],
        ..Spec::default()
    }) else {
        return;
    };
    let net = probe;
    net.control(&format!("restore\n{rules}")).expect("iptables rules");
    let rules6 = rules6.replace("{wan}", &net.wan_if);
    net.control(&format!("restore -6\n{rules6}")).expect("ip6tables rules");
    let t = Duration::from_secs(3);
    // ping6: the router's own address answers, and the far side across it.
    let from = icmp6_probe(&net, Side::Lan, "2001:db8:1::1".parse().unwrap(), 64, 129, t).expect("probe");
    assert_eq!(
        from,
        Some("2001:db8:1::1".parse::<Ipv6Addr>().unwrap()),
        "{}",
        net.log_text()
    );
    let from = icmp6_probe(&net, Side::Lan, "2001:db8:2::2".parse().unwrap(), 64, 129, t).expect("probe");
    assert_eq!(from, Some("2001:db8:2::2".parse::<Ipv6Addr>().unwrap()), "ping6 across");
    // Hop limit 1: the router answers time exceeded from its LAN address.
    let from = icmp6_probe(&net, Side::Lan, "2001:db8:2::2".parse().unwrap(), 1, 3, t).expect("probe");
    assert_eq!(
        from,
        Some("2001:db8:1::1".parse::<Ipv6Addr>().unwrap()),
        "hop limit exceeded"
    );
    // TCP over IPv6, masqueraded: the server sees the router's WAN address.
    tcp_echo(&net, Side::Wan, addr("[2001:db8:2::2]:7200"), 2);
    let mut s = connect(&net, Side::Lan, "[2001:db8:2::2]:7200", t).expect("TCP over IPv6 forwarded");
    assert_eq!(ask(&mut s, "hi").unwrap(), "2001:db8:2::2 2001:db8:2::1 hi");
    // UDP over IPv6 across, and REJECT answered with ICMPv6 port unreachable.
    let echo = net
        .run(Side::Wan, || UdpSocket::bind(addr("[2001:db8:2::2]:7202")))
        .expect("bind UDP");
    std::thread::spawn(move || {
        let mut b = vec![0u8; 9000];
        for _ in 0..4 {
            let Ok((n, from)) = echo.recv_from(&mut b) else { return };
            let _ = echo.send_to(&b[..n], from);
        }
    });
    let udp_sized = |port: u16, payload: Vec<u8>| {
        net.run(Side::Lan, move || {
            let c = UdpSocket::bind(addr("[2001:db8:1::2]:0"))?;
            c.set_read_timeout(Some(Duration::from_secs(3)))?;
            c.connect(SocketAddr::from(("2001:db8:2::2".parse::<Ipv6Addr>().unwrap(), port)))?;
            c.send(&payload)?;
            let mut b = vec![0u8; 9000];
            c.recv(&mut b).map(|n| b[..n].to_vec())
        })
    };
    let udp = |port: u16| udp_sized(port, b"u6".to_vec());
    assert_eq!(udp(7202).expect("UDP over IPv6 echoed"), b"u6");
    // Larger than the links' MTU: the sender fragments it, the router reassembles it for the
    // rules and forwards it in fragments again, and the answer comes back the same way.
    let big: Vec<u8> = (0..4000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(
        udp_sized(7202, big.clone()).expect("a fragmented datagram over IPv6"),
        big
    );
    let e = udp(7203).expect_err("rejected");
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "ICMPv6 port unreachable: {e}");
    // tcp-reset over IPv6.
    let e = connect(&net, Side::Lan, "[2001:db8:2::2]:7204", t).expect_err("reset");
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}");
    // The same service in both families.
    tcp_echo(&net, Side::Wan, addr("10.0.2.10:8080"), 1);
    tcp_echo(&net, Side::Wan, addr("[2001:db8:2::10]:8080"), 1);
    let mut s4 = connect(&net, Side::Lan, "10.96.0.10:80", t).expect("IPv4 service");
    assert!(ask(&mut s4, "v4").unwrap().starts_with("10.0.2.10 10.0.1.2 "));
    let mut s6 = connect(&net, Side::Lan, "[fd00:96::10]:80", t).expect("IPv6 service");
    assert!(ask(&mut s6, "v6").unwrap().starts_with("2001:db8:2::10 2001:db8:2::1 "));
    // IPv4 is still judged by iptables: its REJECTed port, and no masquerade.
    tcp_echo(&net, Side::Wan, addr("10.0.2.2:7201"), 1);
    let mut s = connect(&net, Side::Lan, "10.0.2.2:7201", t).expect("TCP over IPv4");
    assert_eq!(ask(&mut s, "hi").unwrap(), "10.0.2.2 10.0.1.2 hi");
}

#[test]
fn a_killed_runs_leftovers_go_with_the_next_start_and_a_sigterm_while_starting_leaves_nothing() {
    use nix::sys::signal::Signal;
    use rtrouter::dataplane::netns::exists;
    use std::process::{Command, Stdio};
    let Some(mut net) = Net::start(Spec {
        rules: ACCEPT_ALL,
        router_creates_netns: true,
        ..Spec::default()
    }) else {
        return;
    };
    let config = net.dir.join("router.toml");
    let record = rtrouter::dataplane::state::path_for(&config);
    assert!(record.exists(), "the run records what it created");
    net.signal(Signal::SIGKILL);
    let deadline = Instant::now() + Duration::from_secs(5);
    while net.alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        exists(&net.lan_ns) && net.socket.exists(),
        "a killed run leaves its namespaces and socket"
    );
    // The next start removes them, then makes its own (and removes those at its stop).
    let start = |log: &str| {
        Command::new(binary())
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(net.dir.join(log)).expect("log"))
            .spawn()
            .expect("start rtrouter")
    };
    let mut again = start("again.log");
    let deadline = Instant::now() + Duration::from_secs(10);
    while rtrouter::dataplane::control::request_line(&net.socket, "stats").is_err() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = std::fs::read_to_string(net.dir.join("again.log")).unwrap_or_default();
    assert!(log.contains("died without cleaning up"), "{log}");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(again.id() as i32), Signal::SIGTERM).unwrap();
    let wait = |c: &mut std::process::Child| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(s) = c.try_wait().expect("wait") {
                return s;
            }
            assert!(Instant::now() < deadline, "rtrouter did not stop in 10 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    assert!(wait(&mut again).success());
    assert!(!exists(&net.lan_ns) && !exists(&net.wan_ns) && !net.socket.exists() && !record.exists());
    // SIGTERM at several moments of start-up: whatever was made is removed.
    for delay in [5, 20, 50, 150] {
        let mut c = start("early.log");
        std::thread::sleep(Duration::from_millis(delay));
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.id() as i32), Signal::SIGTERM).unwrap();
        wait(&mut c);
        assert!(
            !exists(&net.lan_ns) && !exists(&net.wan_ns) && !net.socket.exists(),
            "SIGTERM {delay} ms after start left something:\n{}",
            std::fs::read_to_string(net.dir.join("early.log")).unwrap_or_default()
        );
    }
}

/// Sends `len` bytes through an echo server across the router and checks they come back
/// whole and in order.
fn bulk_echo(net: &Net, to: &str, len: usize) {
    use std::io::{Read, Write};
    let mut s = connect(net, Side::Lan, to, Duration::from_secs(3)).expect("TCP forwarded");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8 ^ (i >> 12) as u8).collect();
    let mut w = s.try_clone().unwrap();
    let sent = data.clone();
    let writer = std::thread::spawn(move || {
        w.write_all(&sent).unwrap();
        w.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let mut back = Vec::with_capacity(len);
    s.read_to_end(&mut back).expect("the echo comes back");
    writer.join().unwrap();
    assert_eq!(back.len(), len, "every byte came back\n{}", net.log_text());
    assert!(back == data, "unchanged and in order");
}

/// The `stats` line of `iface`'s offloads: (super-packets in, out, cut in software).
fn super_packets(net: &Net, iface: &str) -> (u64, u64, u64) {
    let stats = net.control("stats").expect("stats");
    let line = stats
        .lines()
        .find(|l| l.starts_with(&format!("interface {iface} offloads: on, ")))
        .unwrap_or_else(|| panic!("offloads are on for {iface}:\n{stats}"));
    let num = |after: &str| -> u64 {
        line.split(after)
            .nth(1)
            .and_then(|r| r.split([' ', ',']).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("`{after}` in {line}"))
    };
    (num("in "), num("out "), num("cut in software "))
}

#[test]
fn tcp_crosses_in_super_packets_through_conntrack_and_masquerade() {
    let Some((net, rules)) = gateway("-A FORWARD -i LAN -p tcp --dport 7300 -m conntrack --ctstate NEW -j ACCEPT\n")
    else {
        return;
    };
    let l = net
        .run(Side::Wan, || std::net::TcpListener::bind("10.0.2.2:7300"))
        .expect("bind");
    std::thread::spawn(move || {
        for s in l.incoming().take(2) {
            let Ok(mut s) = s else { return };
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                let mut r = s.try_clone().unwrap();
                let _ = std::io::copy(&mut r, &mut s);
                let _ = s.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    bulk_echo(&net, "10.0.2.2:7300", 4 << 20);
    let (lan_in, _, lan_cut) = super_packets(&net, &net.lan_if);
    let (_, wan_out, _) = super_packets(&net, &net.wan_if);
    assert!(lan_in > 0, "the kernel handed over super-packets");
    assert!(wan_out > 0, "and took them back whole");
    assert_eq!(lan_cut, 0, "nothing needed them cut");

    // A LOG rule (one that never matches TCP) makes the rules see segments: the super-packets
    // are cut in software, and the stream still arrives whole.
    let logging = rules.replace(
        "COMMIT\n*filter\n",
        "COMMIT\n*filter\n-A FORWARD -p udp --dport 9 -j LOG\n",
    );
    net.control(&format!("restore\n{logging}")).expect("restore");
    bulk_echo(&net, "10.0.2.2:7300", 2 << 20);
    let (_, _, cut) = super_packets(&net, &net.lan_if);
    assert!(cut > 0, "super-packets cut for the LOG rule");
}

/// Whether the running kernel is at least `major.minor`.
fn kernel_at_least(major: u32, minor: u32) -> bool {
    let r = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut v = r.split(['.', '-']).filter_map(|p| p.parse::<u32>().ok());
    (v.next().unwrap_or(0), v.next().unwrap_or(0)) >= (major, minor)
}

#[test]
fn udp_segmentation_offload_crosses_masqueraded_as_separate_datagrams() {
    let Some((net, rules)) = gateway("-A FORWARD -i LAN -p udp --dport 7400 -j ACCEPT\n") else {
        return;
    };
    let server = net.run(Side::Wan, || UdpSocket::bind("10.0.2.2:7400")).unwrap();
    server.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let client = net
        .run(Side::Lan, || {
            let c = UdpSocket::bind("10.0.1.2:0")?;
            c.connect("10.0.2.2:7400")?;
            Ok(c)
        })
        .unwrap();
    // UDP_SEGMENT: one send of 8000 bytes leaves as datagrams of 1000 (one super-packet where
    // the device takes USO).
    nix::sys::socket::setsockopt(&client, nix::sys::socket::sockopt::UdpGsoSegment, &1000).expect("UDP_SEGMENT");
    let (in_before, _, _) = super_packets(&net, &net.lan_if);
    let send_and_receive = |what: &str| {
        let data: Vec<u8> = (0..8000u32).map(|i| (i / 1000) as u8 ^ (i % 251) as u8).collect();
        client.send(&data).unwrap();
        let mut b = [0u8; 2048];
        for i in 0..8 {
            let (n, from) = server
                .recv_from(&mut b)
                .unwrap_or_else(|e| panic!("{what}: datagram {i}: {e}"));
            assert_eq!(
                &b[..n],
                &data[i * 1000..(i + 1) * 1000],
                "{what}: datagram {i} whole and in order"
            );
            assert_eq!(
                from.ip(),
                "10.0.2.1".parse::<std::net::IpAddr>().unwrap(),
                "{what}: masqueraded"
            );
        }
    };
    send_and_receive("offloaded");
    if kernel_at_least(6, 2) {
        let (in_after, _, _) = super_packets(&net, &net.lan_if);
        assert!(in_after > in_before, "the kernel handed over a UDP super-packet");
    } else {
        println!("note: this kernel has no USO on TUN; the datagrams came one by one");
    }
    // With a LOG rule the rules see each datagram: cut in software.
    let logging = rules.replace(
        "COMMIT\n*filter\n",
        "COMMIT\n*filter\n-A FORWARD -p tcp --dport 9 -j LOG\n",
    );
    net.control(&format!("restore\n{logging}")).expect("restore");
    send_and_receive("cut for LOG");
}

/// SYNPROXY in front of the WAN side's servers, set up as `iptables-extensions(8)` shows it:
/// SYNs untracked in raw, the handshake answered by the router, the stream spliced onto the
/// server's connection with shifted sequence numbers and timestamps; a closed port resets
/// the client once the server refused the router's SYN.
#[test]
fn synproxy_answers_handshakes_and_splices_streams_onto_the_server() {
    // FORWARD for the WAN side's servers, INPUT for the router's own metrics server.
    let ports = "-m multiport --dports 7400:7402,9100";
    let rules = format!(
        "*raw\n-A PREROUTING -s 10.0.1.0/24 -p tcp {ports} --tcp-flags FIN,SYN,RST,ACK SYN -j CT --notrack\nCOMMIT\n\
         *filter\n:IN - [0:0]\n-A FORWARD -s 10.0.1.0/24 -p tcp {ports} -m state --state INVALID,UNTRACKED -j IN\n\
         -A INPUT -s 10.0.1.0/24 -p tcp --dport 9100 -m state --state INVALID,UNTRACKED -j IN\n\
         -A IN -p tcp -j SYNPROXY --sack-perm --timestamp --wscale 7 --mss 1460\n\
         -A FORWARD -p tcp -m state --state INVALID -j DROP\nCOMMIT\n"
    );
    let Some(net) = Net::start(Spec {
        rules: &rules,
        extra: "[conntrack]\ntcp_loose = false\n",
        metrics: true,
        ..Spec::default()
    }) else {
        return;
    };
    let l = net
        .run(Side::Wan, || std::net::TcpListener::bind("10.0.2.2:7400"))
        .expect("bind");
    std::thread::spawn(move || {
        if let Some(Ok(mut s)) = l.incoming().next() {
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            let mut r = s.try_clone().unwrap();
            let _ = std::io::copy(&mut r, &mut s);
            let _ = s.shutdown(std::net::Shutdown::Write);
        }
    });
    bulk_echo(&net, "10.0.2.2:7400", 4 << 20);
    tcp_echo(&net, Side::Wan, addr("10.0.2.2:7402"), 1);
    let mut s = connect(&net, Side::Lan, "10.0.2.2:7402", Duration::from_secs(3)).expect("handshake");
    assert_eq!(
        ask(&mut s, "hi").unwrap(),
        "10.0.2.2 10.0.1.2 hi",
        "the server sees the client itself"
    );
    // Nobody listens on 7401: the router completed the client's handshake, the server
    // refuses the router's SYN, and its reset reaches the client in the client's sequence
    // space.
    // (The reset may come before `connect` has looked at its socket again.)
    let e = match connect(&net, Side::Lan, "10.0.2.2:7401", Duration::from_secs(3)) {
        Ok(mut s) => ask(&mut s, "anyone?").expect_err("reset"),
        Err(e) => e,
    };
    assert!(
        matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe),
        "{e}\n{}",
        net.log_text()
    );
    // The router's own server behind its own SYNPROXY.
    let mut s = connect(&net, Side::Lan, "10.0.1.1:9100", Duration::from_secs(3)).expect("metrics port");
    use std::io::{Read, Write};
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 10.0.1.1\r\n\r\n").unwrap();
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    assert!(
        body.starts_with("HTTP/1.0 200") || body.starts_with("HTTP/1.1 200"),
        "{body:.200}"
    );
    assert!(body.contains("rtrouter_"), "a whole scrape: {} bytes", body.len());
    let stats = net.control("stats").expect("stats");
    let line = stats
        .lines()
        .find(|l| l.starts_with("synproxy:"))
        .expect("synproxy line");
    let n = |k: &str| -> u64 {
        let w: Vec<&str> = line.split_whitespace().collect();
        w.iter()
            .position(|x| *x == k)
            .and_then(|i| w[i + 1].parse().ok())
            .unwrap()
    };
    assert!(n("syn_received") >= 4, "{line}");
    assert!(n("cookie_valid") >= 4, "{line}");
    assert!(stats.contains("drop synproxy: "), "{stats}");
}
