//! Any bytes as front-end command lines: `TOOL ARGS...` lines (iptables, iptables-save,
//! iptables-restore, ipset), then after a blank line the input restores read. Every command
//! must return (never panic or hang), and after each one the live ruleset must still save to
//! text that loads back to the same ruleset.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtrouter::frontend::{memory::Memory, run, Live, Tool};
use rtrouter::ruleset::{restore::restore, Ruleset};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (cmds, input) = text.split_once("\n\n").unwrap_or((text, ""));
    let m = Memory::default();
    for line in cmds.lines().take(16) {
        let mut words = line.split_whitespace();
        let Some(tool) = words.next().and_then(Tool::from_name) else { continue };
        let args: Vec<String> = words.map(str::to_string).collect();
        let _ = run(tool, &args, input, "fuzz", &m);
        let rs = m.ruleset();
        let saved = rs.save(false);
        let again = restore(&Ruleset::default(), &saved, "saved", false).expect("saved output must load");
        assert_eq!(again, rs, "load(save(x)) != x for:\n{saved}");
    }
});
