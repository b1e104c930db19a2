//! The live state held in memory: the front end without a running router, for tests and
//! fuzzing. Changes are validated exactly as the router validates them.

use super::Live;
use crate::ipset::IpSets;
use crate::ruleset::{validate, Env, Ruleset};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

#[derive(Debug)]
pub struct Memory {
    /// The running generation, validated as the router validates it.
    rules: Mutex<crate::ruleset::ValidRuleset>,
    sets: IpSets,
    /// The clock ipset timeouts read (nanoseconds); tests move it.
    pub clock: AtomicU64,
}

impl Default for Memory {
    fn default() -> Self {
        Memory {
            rules: Mutex::new(crate::ruleset::ValidRuleset::empty()),
            sets: IpSets::default(),
            clock: AtomicU64::new(0),
        }
    }
}

impl Memory {
    /// The running generation.
    pub fn valid(&self) -> crate::ruleset::ValidRuleset {
        crate::eval::state::lock(&self.rules).clone()
    }

    fn env(&self) -> Env {
        Env {
            ipsets: self.sets.names().into_iter().collect(),
            plugins: None,
        }
    }
}

impl Live for Memory {
    fn ruleset(&self) -> Ruleset {
        crate::eval::state::lock(&self.rules).source()
    }

    fn commit(&self, rs: Ruleset) -> Result<(), String> {
        let mut cur = crate::eval::state::lock(&self.rules);
        let next = crate::ruleset::validate::validate_change(&cur, &rs, &self.env()).map_err(|e| e.to_string())?;
        *cur = next;
        Ok(())
    }

    fn check(&self, rs: &Ruleset) -> Result<(), String> {
        validate(rs, &self.env()).map(|_| ()).map_err(|e| e.to_string())
    }

    fn ipsets(&self) -> &IpSets {
        &self.sets
    }

    fn now(&self) -> u64 {
        self.clock.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frontend::{run, Tool};

    fn go(m: &Memory, tool: Tool, line: &str, input: &str) -> (i32, String) {
        let args: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        let o = run(tool, &args, input, "stdin", m);
        (o.code, if o.code == 0 { o.stdout } else { o.stderr })
    }

    #[test]
    fn noflush_restore_keeps_what_it_does_not_name() {
        let m = Memory::default();
        let base = "*nat\n:KUBE-SVC-A - [0:0]\n-A PREROUTING -j KUBE-SVC-A\n-A POSTROUTING -j MASQUERADE\n-A KUBE-SVC-A -j DNAT --to-destination 10.0.0.1\nCOMMIT\n";
        assert_eq!(go(&m, Tool::Restore, "", base).0, 0);
        // kube-proxy's partial sync: a chain declared (so flushed) and one rule.
        let part = "*nat\n:KUBE-SERVICES - [0:0]\n-A KUBE-SERVICES -j RETURN\nCOMMIT\n";
        assert_eq!(go(&m, Tool::Restore, "--noflush --counters", part).0, 0);
        let s = go(&m, Tool::Save, "-t nat", "").1;
        for want in [
            "-A POSTROUTING -j MASQUERADE",
            "-A KUBE-SVC-A -j DNAT",
            "-A KUBE-SERVICES -j RETURN",
        ] {
            assert!(s.contains(want), "{want} missing:\n{s}");
        }
        // Without --noflush the table is replaced.
        assert_eq!(go(&m, Tool::Restore, "", part).0, 0);
        assert!(!go(&m, Tool::Save, "", "").1.contains("MASQUERADE"));
    }

    #[test]
    fn counters_follow_rules_and_restore_counters_need_the_flag() {
        let m = Memory::default();
        let text = "*filter\n:INPUT ACCEPT [5:500]\n[7:700] -A INPUT -j ACCEPT\nCOMMIT\n";
        assert_eq!(go(&m, Tool::Restore, "", text).0, 0);
        assert!(go(&m, Tool::Save, "-c", "").1.contains("[0:0] -A INPUT -j ACCEPT"));
        assert_eq!(go(&m, Tool::Restore, "-c", text).0, 0);
        let s = go(&m, Tool::Save, "-c", "").1;
        assert!(
            s.contains(":INPUT ACCEPT [5:500]") && s.contains("[7:700] -A INPUT -j ACCEPT"),
            "{s}"
        );
        // A rule that stays keeps its counts across other changes; -Z zeroes in place.
        assert_eq!(go(&m, Tool::Iptables, "-A INPUT -p tcp -j DROP", "").0, 0);
        assert!(go(&m, Tool::Save, "-c", "").1.contains("[7:700] -A INPUT -j ACCEPT"));
        assert_eq!(go(&m, Tool::Iptables, "-Z INPUT 1", "").0, 0);
        assert!(go(&m, Tool::Save, "-c", "").1.contains("[0:0] -A INPUT -j ACCEPT"));
    }

    /// Rules found by their content (`-C`, `-D`) are found by fingerprint first: a rule
    /// changed in place (its jump renamed with `-E`, its set with `ipset rename`) is found by
    /// its new text and no longer by its old one, and a rule among equal ones goes first.
    #[test]
    fn rules_changed_in_place_are_found_by_their_new_text() {
        let m = Memory::default();
        for line in [
            "-N a",
            "-A INPUT -s 10.0.0.1 -j a",
            "-A INPUT -p tcp --dport 22 -j ACCEPT",
            "-A INPUT -p tcp --dport 22 -j ACCEPT",
            "-E a b",
        ] {
            assert_eq!(go(&m, Tool::Iptables, line, "").0, 0, "{line}");
        }
        assert_eq!(go(&m, Tool::Iptables, "-C INPUT -s 10.0.0.1 -j a", "").0, 2);
        assert_eq!(go(&m, Tool::Iptables, "-C INPUT -s 10.0.0.1/32 -j b", "").0, 0);
        assert_eq!(go(&m, Tool::Iptables, "-D INPUT -s 10.0.0.1 -j b", "").0, 0);
        assert_eq!(
            go(&m, Tool::Iptables, "-D INPUT -p 6 -m tcp --dport 22 -j ACCEPT", "").0,
            0
        );
        assert_eq!(
            go(&m, Tool::Iptables, "-S INPUT", "").1,
            "-P INPUT ACCEPT\n-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n"
        );
        assert_eq!(go(&m, Tool::Ipset, "create s hash:ip", "").0, 0);
        assert_eq!(
            go(&m, Tool::Iptables, "-A INPUT -m set --match-set s src -j DROP", "").0,
            0
        );
        assert_eq!(go(&m, Tool::Ipset, "rename s t", "").0, 0);
        assert_eq!(
            go(&m, Tool::Iptables, "-C INPUT -m set --match-set s src -j DROP", "").0,
            1
        );
        assert_eq!(
            go(&m, Tool::Iptables, "-D INPUT -m set --match-set t src -j DROP", "").0,
            0
        );
    }

    #[test]
    fn errors_and_exit_statuses() {
        let m = Memory::default();
        let (c, e) = go(&m, Tool::Iptables, "-D INPUT -j ACCEPT", "");
        assert_eq!(
            (c, e.as_str()),
            (1, "iptables: Bad rule (does a matching rule exist in that chain?).\n")
        );
        assert_eq!(go(&m, Tool::Iptables, "-N a", "").0, 0);
        assert_eq!(
            go(&m, Tool::Iptables, "-N a", "").1,
            "iptables: Chain already exists.\n"
        );
        assert_eq!(go(&m, Tool::Iptables, "-X nope", "").0, 1);
        // A chain something jumps to stays; so does one with rules.
        assert_eq!(go(&m, Tool::Iptables, "-A INPUT -j a", "").0, 0);
        let (c, e) = go(&m, Tool::Iptables, "-X a", "");
        assert_eq!(c, 1, "{e}");
        assert!(e.contains("`a' does not exist"), "{e}");
        assert_eq!(go(&m, Tool::Iptables, "-D INPUT -j a", "").0, 0);
        assert_eq!(go(&m, Tool::Iptables, "-A a -j ACCEPT", "").0, 0);
        assert_eq!(go(&m, Tool::Iptables, "-X a", "").1, "iptables: Directory not empty.\n");
        assert_eq!(go(&m, Tool::Iptables, "-F a", "").0, 0);
        assert_eq!(go(&m, Tool::Iptables, "-L nope", "").0, 1);
        assert_eq!(go(&m, Tool::Iptables, "-A INPUT -p nope", "").0, 2);
        let (c, e) = go(&m, Tool::Restore, "", "*filter\n-A INPUT -j nowhere\nCOMMIT\n");
        assert_eq!(c, 1);
        assert!(e.contains("stdin:2:") && e.contains("nowhere"), "{e}");
        assert!(go(&m, Tool::Save, "", "").1.contains("-N a") || go(&m, Tool::Save, "", "").1.contains(":a -"));
    }

    #[test]
    fn ipset_timeouts_follow_the_clock() {
        let m = Memory::default();
        assert_eq!(go(&m, Tool::Ipset, "create t hash:ip timeout 10", "").0, 0);
        assert_eq!(go(&m, Tool::Ipset, "add t 192.0.2.1", "").0, 0);
        assert_eq!(go(&m, Tool::Ipset, "test t 192.0.2.1", "").0, 0);
        m.clock.store(11_000_000_000, Ordering::Relaxed);
        assert_eq!(go(&m, Tool::Ipset, "test t 192.0.2.1", "").0, 1);
        assert_eq!(
            go(&m, Tool::Ipset, "add t 192.0.2.1", "").0,
            0,
            "an expired entry can be added again"
        );
        let s = go(&m, Tool::Ipset, "save", "").1;
        assert_eq!(
            s,
            "create t hash:ip family inet hashsize 1024 maxelem 65536 timeout 10\nadd t 192.0.2.1 timeout 10\n"
        );
    }
}
