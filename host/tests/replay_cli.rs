//! `rtrouter replay` as a user runs it, on the shipped demo capture and config.

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn replay_demo_capture() {
    let out = std::env::temp_dir().join(format!("rtrouter-replay-{}.pcapng", std::process::id()));
    let o = Command::new(env!("CARGO_BIN_EXE_rtrouter"))
        .args(["replay", "--config"])
        .arg(root().join("configs/router.toml"))
        .arg("--pcap")
        .arg(root().join("configs/replay-demo.pcapng"))
        .arg("--out")
        .arg(&out)
        .arg("--json")
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    let verdicts: Vec<&str> = lines.iter().map(|l| l["verdict"].as_str().unwrap()).collect();
    assert_eq!(
        verdicts,
        [
            "forward", "forward", "forward", "forward", "forward", "reject", "reject", "forward", "forward", "drop",
            "local"
        ]
    );
    assert!(String::from_utf8_lossy(&o.stdout)
        .starts_with("{\"n\":1,\"in\":\"lan0\",\"verdict\":\"forward\",\"out\":\"wan0\",\"ct\":\"NEW\""));
    assert_eq!(lines[7]["dnat"], "10.0.1.2:80");
    assert_eq!(lines[8]["snat"], "10.0.2.1:8080");
    let cap = rtrouter::pcap::read(&std::fs::read(&out).expect("output written")).expect("output parses");
    let _ = std::fs::remove_file(&out);
    // 7 forwarded, 1 delivered locally, and 2 replies (a TCP reset, an ICMP error).
    assert_eq!(cap.packets.len(), 10);
    for p in &cap.packets {
        assert_eq!(rtrouter::packet::checksums_ok(&p.data), Some(true));
    }
}

#[test]
fn bad_capture_is_a_clear_error() {
    let bad = std::env::temp_dir().join(format!("rtrouter-bad-{}.pcapng", std::process::id()));
    let good = std::fs::read(root().join("configs/replay-demo.pcapng")).unwrap();
    std::fs::write(&bad, &good[..good.len() - 7]).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_rtrouter"))
        .args(["replay", "--config"])
        .arg(root().join("configs/router.toml"))
        .arg("--pcap")
        .arg(&bad)
        .args(["--out", "/dev/null"])
        .output()
        .expect("runs");
    let _ = std::fs::remove_file(&bad);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    // Blocks: section header, 2 interface descriptions, 11 packets: the last is 14.
    assert!(err.contains("block 14: truncated block"), "{err}");
}
