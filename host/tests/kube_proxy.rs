//! Kubernetes kube-proxy's own packet-flow cases (`../shared/conformance/kube-proxy/`), each
//! run through the real `rtrouter trace --json`: the set of DNAT endpoints over all outcomes,
//! the DROP/REJECT verdicts and the masquerade flag must be what kube-proxy's tests expect
//! (and what real netfilter gave in the recorded kernel replay).

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

fn conformance(sub: &str) -> Option<PathBuf> {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/conformance")
        .join(sub);
    if d.is_dir() {
        Some(d)
    } else {
        println!("SKIP: {} is absent; kube-proxy conformance not run", d.display());
        None
    }
}

fn trace(dir: &std::path::Path, case: &Value) -> Result<Value, String> {
    let s = |k: &str| case[k].as_str().unwrap_or_default().to_string();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rtrouter"));
    cmd.arg("trace").arg("--rules").arg(dir.join(s("ruleset_full_file")));
    let from = if s("suggested_ingress") == "local" {
        "local".to_string()
    } else {
        "eth0".to_string()
    };
    let dst = format!("{}:{}", s("dst"), case["dport"].as_u64().unwrap_or(0));
    cmd.args([
        "--from",
        &from,
        "--proto",
        &s("protocol"),
        "--src",
        &s("src"),
        "--dst",
        &dst,
    ]);
    for ip in case["local_ips"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !ip.contains(':') {
            cmd.args(["--local-ip", ip]);
        }
    }
    // kube-proxy sets route_localnet=1, and so did the kernel replay these cases were checked by.
    cmd.args(["--route-localnet", "--json"]);
    let out = cmd.output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())
}

fn check(case: &Value, got: &Value) -> Result<(), String> {
    let outcomes = got["outcomes"].as_array().ok_or("no outcomes")?;
    let kind = case["expected_kind"].as_str().unwrap_or_default();
    let verdicts: BTreeSet<&str> = outcomes.iter().filter_map(|o| o["verdict"].as_str()).collect();
    let dnats: BTreeSet<String> = outcomes
        .iter()
        .filter_map(|o| o["dnat"].as_str().map(str::to_string))
        .collect();
    let masq = outcomes.iter().any(|o| o["masquerade"].as_bool() == Some(true));
    let want_masq = case["masq"].as_bool().unwrap_or(false);
    let fail = |what: String| Err(format!("{what}; got {got}"));
    match kind {
        "DNAT" => {
            let want: BTreeSet<String> = case["expected_endpoints"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect();
            if dnats != want {
                return fail(format!("endpoints {dnats:?}, expected {want:?}"));
            }
            if verdicts != BTreeSet::from(["accept"]) {
                return fail(format!("verdicts {verdicts:?}, expected accept"));
            }
        }
        "DROP" | "REJECT" => {
            let want = kind.to_ascii_lowercase();
            if verdicts != BTreeSet::from([want.as_str()]) {
                return fail(format!("verdicts {verdicts:?}, expected {want}"));
            }
        }
        "ACCEPT" | "NONE" => {
            if verdicts != BTreeSet::from(["accept"]) || !dnats.is_empty() {
                return fail(format!(
                    "verdicts {verdicts:?} dnat {dnats:?}, expected accept without NAT"
                ));
            }
        }
        k => return Err(format!("unknown expected_kind {k}")),
    }
    if kind != "DROP" && kind != "REJECT" && masq != want_masq {
        return fail(format!("masquerade {masq}, expected {want_masq}"));
    }
    Ok(())
}

#[test]
fn kube_proxy_packet_flows() {
    let Some(dir) = conformance("kube-proxy") else { return };
    let cases: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("cases.json")).expect("cases.json")).expect("json");
    let mut failures = vec![];
    for c in &cases {
        let id = c["id"].as_str().unwrap_or("?");
        match trace(&dir, c).and_then(|got| check(c, &got)) {
            Ok(()) => {}
            Err(e) => failures.push(format!("{id} ({}): {e}", c["name"].as_str().unwrap_or(""))),
        }
    }
    println!(
        "kube-proxy: {}/{} cases give the expected outcome",
        cases.len() - failures.len(),
        cases.len()
    );
    assert!(
        failures.is_empty(),
        "{} case(s) differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
