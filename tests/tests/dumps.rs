//! Real `iptables-save` dumps (firewalld, a home router, a policy-drop firewall) and the
//! kube-proxy rulesets, read from `../shared/conformance/`: each loads, and saving it gives
//! back the same tables, chains and rules (comments and counters aside).

use rtrouter::ruleset::{restore::restore, validate, Env, Ruleset};
use rtrouter_tests::conformance_dir;
use std::collections::BTreeMap;
use std::path::Path;

/// table -> (chain declarations without counters, rules per chain in order).
type Shape = BTreeMap<String, (Vec<String>, BTreeMap<String, Vec<String>>)>;

fn shape(text: &str) -> Shape {
    let mut out = Shape::new();
    let mut table = String::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line == "COMMIT" {
            continue;
        }
        if let Some(t) = line.strip_prefix('*') {
            table = t.to_string();
            out.entry(table.clone()).or_default();
            continue;
        }
        let entry = out.get_mut(&table).expect("a table line comes first");
        if let Some(decl) = line.strip_prefix(':') {
            let mut w = decl.split_whitespace();
            entry
                .0
                .push(format!("{} {}", w.next().unwrap_or(""), w.next().unwrap_or("")));
            continue;
        }
        let rule = if line.starts_with('[') {
            line.split_once(' ').map_or(line, |x| x.1)
        } else {
            line
        };
        let chain = rule.split_whitespace().nth(1).unwrap_or("").to_string();
        entry.1.entry(chain).or_default().push(rule.to_string());
    }
    for (decls, _) in out.values_mut() {
        decls.sort();
    }
    out
}

fn load(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let rs = restore(&Ruleset::default(), &text, &path.display().to_string(), false).map_err(|e| e.to_string())?;
    let v = validate(&rs, &Env::default()).map_err(|e| e.to_string())?;
    Ok(v.source().save(false))
}

#[test]
fn iptables_dumps_round_trip() {
    let Some(dir) = conformance_dir("iptables-dumps") else {
        return;
    };
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("readable") {
        let path = entry.expect("entry").path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(&path).expect("readable");
        let result = load(&path);
        let saved = result.unwrap_or_else(|e| panic!("{name} does not load:\n{e}"));
        assert_eq!(shape(&saved), shape(&text), "{name}: save differs from the dump");
        // And the saved text loads again to the same thing.
        let again = restore(&Ruleset::default(), &saved, "saved", false).expect("saved output loads");
        assert_eq!(again.save(false), saved, "{name}: save is not a fixed point");
        println!("{name}: round trip ok");
        n += 1;
    }
    assert!(n >= 5, "expected the five loadable dumps, saw {n}");
}

#[test]
fn kube_proxy_rulesets_load() {
    let Some(dir) = conformance_dir("kube-proxy") else {
        return;
    };
    let mut n = 0;
    for sub in ["rules_full", "rules"] {
        for entry in std::fs::read_dir(dir.join(sub)).expect("readable") {
            let path = entry.expect("entry").path();
            let name = format!("{sub}/{}", path.file_name().unwrap().to_string_lossy());
            let result = load(&path);
            if name == "rules/A_TestTracePacket.rules" || name == "rules/B_TestTracePackets.rules" {
                // Unquoted multi-word comments: real iptables-restore refuses these too.
                let e = result.expect_err("unquoted comment words are refused");
                assert!(e.contains("bad argument"), "{name}: {e}");
                continue;
            }
            let saved = result.unwrap_or_else(|e| panic!("{name} does not load:\n{e}"));
            let again = restore(&Ruleset::default(), &saved, "saved", false).expect("saved output loads");
            assert_eq!(again.save(false), saved, "{name}: save is not a fixed point");
            n += 1;
        }
    }
    println!("{n} kube-proxy rulesets load and round-trip");
}
