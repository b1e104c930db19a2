//! The command line as a user runs it: `trace --packets`, `bench`, `generate`, and output
//! into a pipe that closes early.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rtrouter() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rtrouter"))
}

/// Runs `cmd` with `input` on its standard input; its output.
fn with_stdin(mut cmd: Command, input: &str) -> std::process::Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("written");
    child.wait_with_output().expect("finishes")
}

#[test]
fn trace_packets_prints_one_json_line_per_packet_and_names_bad_lines() {
    let lines = [
        r#"{"from":"lan0","src":"10.0.1.2","dst":"192.0.2.9:443"}"#,
        r#"{"from":"wan0","src":"192.0.2.9","dst":"10.0.2.1:8080"}"#,
        r#"{"from":"lan0","src":"10.0.1.2","dst":"not-an-address"}"#,
        "",
        r#"{"from":"lan0","src":"10.0.1.2","dst":"192.0.2.9","proto":"udp","dport":53}"#,
    ];
    let mut cmd = rtrouter();
    cmd.args(["trace", "--config"])
        .arg(root().join("configs/router.toml"))
        .args(["--packets", "-"]);
    let o = with_stdin(cmd, &lines.join("\n"));
    assert_eq!(o.status.code(), Some(1), "a bad line makes the exit status 1");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("-:3: `not-an-address'"), "{err}");
    let out: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(out.len(), 3, "every good line runs");
    // Each line is exactly what `trace --json` prints for the same packet.
    let single = rtrouter()
        .args(["trace", "--config"])
        .arg(root().join("configs/router.toml"))
        .args([
            "--from",
            "wan0",
            "--src",
            "192.0.2.9",
            "--dst",
            "10.0.2.1:8080",
            "--json",
        ])
        .output()
        .expect("runs");
    let single: serde_json::Value = serde_json::from_slice(&single.stdout).expect("json");
    assert_eq!(out[1], single);
    assert_eq!(out[1]["outcomes"][0]["dnat"], "10.0.1.2:80");
    assert_eq!(out[2]["outcomes"][0]["out"], "wan0");
}

#[test]
fn ipv6_trace_batches_and_benches() {
    let dir = std::env::temp_dir().join(format!("rtrouter-cli-v6-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rules = dir.join("v6.rules");
    std::fs::write(
        &rules,
        "*nat\n-A PREROUTING -d 2001:db8:ff::1/128 -p tcp --dport 80 -j DNAT --to-destination [2001:db8:2::5]:8080\nCOMMIT\n*filter\n-A FORWARD -p udp --dport 53 -j REJECT\nCOMMIT\n",
    )
    .unwrap();
    let lines = [
        r#"{"from":"lan0","src":"[2001:db8:1::7]:40000","dst":"[2001:db8:ff::1]:80"}"#,
        r#"{"from":"lan0","src":"2001:db8:1::7","dst":"2001:db8:2::9","proto":"udp","dport":53}"#,
        r#"{"from":"lan0","src":"10.0.1.2","dst":"10.0.2.9"}"#,
    ];
    let mut cmd = rtrouter();
    cmd.args(["trace", "-6", "--rules"])
        .arg(&rules)
        .args(["--packets", "-"]);
    let o = with_stdin(cmd, &lines.join("\n"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("-:3:") && err.contains("drop -6"),
        "an IPv4 line is refused: {err}"
    );
    let out: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(out.len(), 2);
    assert_eq!(out[0]["outcomes"][0]["dnat"], "[2001:db8:2::5]:8080");
    assert_eq!(out[1]["outcomes"][0]["verdict"], "reject");
    // generate -6 writes the workload in IPv6; bench -6 measures it, established flows too.
    let packets = dir.join("acl6.jsonl");
    let g = rtrouter()
        .args(["generate", "-6", "acl", "200", "--packets"])
        .arg(&packets)
        .output()
        .expect("runs");
    assert!(g.status.success(), "{}", String::from_utf8_lossy(&g.stderr));
    let acl = dir.join("acl6.rules");
    std::fs::write(&acl, &g.stdout).unwrap();
    let o = rtrouter()
        .args(["bench", "-6", "--rules"])
        .arg(&acl)
        .arg("--packets")
        .arg(&packets)
        .args(["--seconds", "0.2"])
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one json object");
    assert_eq!(v["rules"], 200, "{v}");
    assert!(v["established_ns"].as_f64().is_some_and(|n| n > 0.0), "{v}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bench_reports_costs_as_json() {
    let dir = std::env::temp_dir().join(format!("rtrouter-cli-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rules = dir.join("svc.rules");
    let packets = dir.join("svc.jsonl");
    let g = rtrouter()
        .args(["generate", "kube-proxy", "50", "--packets"])
        .arg(&packets)
        .output()
        .expect("runs");
    assert!(g.status.success(), "{}", String::from_utf8_lossy(&g.stderr));
    std::fs::write(&rules, &g.stdout).unwrap();
    let mut program = Vec::new();
    for engine in ["compiled", "linear"] {
        let o = rtrouter()
            .args(["bench", "--rules"])
            .arg(&rules)
            .arg("--packets")
            .arg(&packets)
            .args(["--seconds", "0.2", "--engine", engine])
            .output()
            .expect("runs");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one json object");
        assert_eq!(v["rules"], 50 * 14 + 12, "{v}");
        assert_eq!(v["engine"], engine);
        assert_eq!(v["packets"], 1024);
        assert!(v["new_flow_ns"].as_f64().is_some_and(|n| n > 0.0), "{v}");
        assert!(v["established_ns"].as_f64().is_some_and(|n| n > 0.0), "{v}");
        for k in ["load_ms", "compile_ms", "program_bytes", "rss_bytes"] {
            assert!(v[k].is_number(), "{k}: {v}");
        }
        program.push(v["program_bytes"].as_u64().unwrap());
    }
    // Both compile the matches; the compiled engine adds its classifiers.
    assert!(program[0] > program[1] && program[1] > 0, "{program:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    // `rtrouter save | head -1`: the reader goes away after one line.
    let dir = std::env::temp_dir().join(format!("rtrouter-cli-pipe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rules = dir.join("big.rules");
    let g = rtrouter().args(["generate", "acl", "20000"]).output().expect("runs");
    std::fs::write(&rules, &g.stdout).unwrap();
    let mut child = rtrouter()
        .args(["save", "--rules"])
        .arg(&rules)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    let mut first = [0u8; 16];
    child
        .stdout
        .as_mut()
        .expect("stdout")
        .read_exact(&mut first)
        .expect("some output");
    drop(child.stdout.take());
    let o = child.wait_with_output().expect("finishes");
    let _ = std::fs::remove_dir_all(&dir);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.is_empty(), "quietly: {err}");
    assert_eq!(o.status.code(), Some(141), "the status a shell gives a SIGPIPE death");
}

#[test]
fn logs_have_no_colour_codes_off_a_terminal_and_can_be_json() {
    let dir = std::env::temp_dir().join(format!("rtrouter-cli-log-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rules = dir.join("log.rules");
    std::fs::write(&rules, "*filter\n-A INPUT -j LOG --log-prefix \"seen: \"\nCOMMIT\n").unwrap();
    let run = |extra: &[&str]| {
        rtrouter()
            .args(extra)
            .args(["trace", "--rules"])
            .arg(&rules)
            .args([
                "--from",
                "eth0",
                "--src",
                "10.0.0.1",
                "--dst",
                "10.0.0.2:22",
                "--local-ip",
                "10.0.0.2",
            ])
            .output()
            .expect("runs")
    };
    let text = run(&[]);
    assert!(text.status.success());
    let err = String::from_utf8_lossy(&text.stderr);
    assert!(err.contains("seen: IN=eth0"), "{err}");
    assert!(!err.contains('\x1b'), "no ANSI codes into a pipe: {err:?}");
    let json = run(&["--log-format", "json"]);
    let _ = std::fs::remove_dir_all(&dir);
    let err = String::from_utf8_lossy(&json.stderr);
    let lines: Vec<serde_json::Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("seen: IN=eth0"))),
        "{err}"
    );
}

#[test]
fn check_warns_about_extensions_a_tun_router_cannot_see() {
    let dir = std::env::temp_dir().join(format!("rtrouter-cli-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rules = dir.join("warn.rules");
    std::fs::write(
        &rules,
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
         -A FORWARD -p tcp --dport 22 -j ACCEPT\n\
         -A FORWARD -m mac --mac-source 00:11:22:33:44:55 -j DROP\n\
         -A FORWARD -m physdev --physdev-in eth0 -j NFQUEUE --queue-num 3\n\
         COMMIT\n",
    )
    .unwrap();
    let o = rtrouter()
        .arg("check")
        .arg("--rules")
        .arg(&rules)
        .output()
        .expect("runs");
    std::fs::remove_dir_all(&dir).ok();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains(": warning: ")).collect();
    let file = rules.display().to_string();
    assert_eq!(warnings.len(), 3, "{err}");
    assert!(warnings[0].starts_with(&format!("{file}:6:")), "{err}");
    assert!(warnings[0].contains("mac"), "{err}");
    assert!(warnings[1].starts_with(&format!("{file}:7:")), "{err}");
    assert!(warnings[2].starts_with(&format!("{file}:7:")), "{err}");
    assert!(
        !err.contains(&format!("{file}:5:")),
        "a plain rule gets no warning: {err}"
    );
}

#[test]
fn trace_carries_a_payload_for_rules_that_look_inside() {
    let dir = std::env::temp_dir().join(format!("rtrouter-cli-payload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rules = dir.join("p.rules");
    std::fs::write(
        &rules,
        "*filter\n:FORWARD DROP [0:0]\n-A FORWARD -p tcp -m string --string \"GET /\" --algo bm -j ACCEPT\nCOMMIT\n",
    )
    .unwrap();
    let body = dir.join("body");
    std::fs::write(&body, b"GET / HTTP/1.1\r\n").unwrap();
    let run = |extra: &[&str]| {
        let o = rtrouter()
            .arg("trace")
            .arg("--rules")
            .arg(&rules)
            .args([
                "--from",
                "lan0",
                "--src",
                "10.0.1.2",
                "--dst",
                "192.0.2.9:80",
                "--route",
                "0.0.0.0/0=wan0",
                "--json",
            ])
            .args(extra)
            .output()
            .expect("runs");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
        v["outcomes"][0]["verdict"].as_str().unwrap_or_default().to_string()
    };
    assert_eq!(run(&[]), "drop", "no payload: the string is not there");
    assert_eq!(run(&["--payload-hex", "47 45 54 20 2f"]), "accept");
    assert_eq!(run(&["--payload-file", body.to_str().unwrap()]), "accept");
    let o = rtrouter()
        .arg("trace")
        .arg("--rules")
        .arg(&rules)
        .args([
            "--from",
            "lan0",
            "--src",
            "10.0.1.2",
            "--dst",
            "192.0.2.9:80",
            "--payload-hex",
            "4",
        ])
        .output()
        .expect("runs");
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("odd number of hex digits"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn plugin_new_writes_a_crate_that_builds_outside_the_repository() {
    let dir = std::env::temp_dir().join(format!("rtrouter-plugin-new-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let o = rtrouter()
        .args(["plugin", "new", "my-match", "--dir"])
        .arg(&dir)
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let krate = dir.join("my-match");
    for f in [
        "Cargo.toml",
        "src/lib.rs",
        "rtrouter-sdk/Cargo.toml",
        "rtrouter-sdk/src/lib.rs",
        "rtrouter-sdk/rtrouter.h",
    ] {
        assert!(krate.join(f).exists(), "{f}");
    }
    // Refuses to overwrite, and a bad name.
    let again = rtrouter()
        .args(["plugin", "new", "my-match", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!again.status.success());
    let bad = rtrouter()
        .args(["plugin", "new", "9lives", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    // It builds and its test passes with nothing but the crate itself (offline).
    let cargo = |args: &[&str]| {
        std::process::Command::new(env!("CARGO"))
            .args(args)
            .arg("--offline")
            .current_dir(&krate)
            .env("CARGO_TARGET_DIR", dir.join("target"))
            .output()
            .expect("cargo runs")
    };
    let t = cargo(&["test", "--quiet"]);
    assert!(t.status.success(), "cargo test: {}", String::from_utf8_lossy(&t.stderr));
    let wasm_target = std::process::Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("wasm32-unknown-unknown"))
        .unwrap_or(false);
    if wasm_target {
        let b = cargo(&["build", "--release", "--target", "wasm32-unknown-unknown", "--quiet"]);
        assert!(
            b.status.success(),
            "cargo build: {}",
            String::from_utf8_lossy(&b.stderr)
        );
        let wasm = dir.join("target/wasm32-unknown-unknown/release/my_match.wasm");
        let m = rtrouter::plugin::module_from_file(&wasm).expect("the module compiles");
        rtrouter::plugin::Plugins::from_modules(
            vec![("my-match".into(), m, rtrouter::plugin::Limits::default())],
            &Default::default(),
        )
        .expect("and loads as a plugin");
    } else {
        println!("SKIP: no wasm32-unknown-unknown target to build the new plugin for");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_shipped_systemd_unit_verifies() {
    let Ok(v) = Command::new("systemd-analyze").arg("--version").output() else {
        println!("SKIP: no systemd-analyze to verify contrib/rtrouter.service with");
        return;
    };
    assert!(v.status.success());
    let unit = std::fs::read_to_string(root().join("contrib/rtrouter.service")).expect("the unit");
    assert!(unit.contains("Type=notify") && unit.contains("WatchdogSec="), "{unit}");
    // The binary under test stands in for /usr/local/bin/rtrouter.
    let dir = std::env::temp_dir().join(format!("rtrouter-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("rtrouter.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/rtrouter", env!("CARGO_BIN_EXE_rtrouter")),
    )
    .unwrap();
    let o = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("runs");
    std::fs::remove_dir_all(&dir).ok();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && !err.contains(".service:"), "{err}");
}
