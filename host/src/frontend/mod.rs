//! The command-line front end controllers run: `iptables`, `iptables-save`, `iptables-restore`
//! and `ipset`, with those tools' options, output formats, messages and exit codes.
//!
//! The `rtrouter` binary is a multi-call binary: run through a link named `iptables` (or as
//! `rtrouter iptables ...`) it sends the command line to the running router's control socket
//! and prints the answer. The router runs each command here, against its live ruleset and
//! ipsets, as one transaction ([`Live`]): all of it applies, or nothing. Help and version need
//! no router and are answered by the client itself ([`local`]).
//!
//! Behaviour follows iptables 1.8.11 (`iptables/xshared.c` `do_parse`, `iptables.c`,
//! `iptables-restore.c`, `iptables-save.c`) and ipset 7 (`ipset(8)`); where 1.8.9 and 1.8.11
//! differ, 1.8.11 (its shell test suite is the conformance reference).

pub mod help;
pub mod ipset;
pub mod iptables;
pub mod list;
pub mod memory;
pub mod restore;

use crate::ruleset::{Family, Ruleset};

/// The version string controllers parse (`iptables --version`: kube-proxy wants `v1.8.x`,
/// ufw the second word). rtrouter implements the command line of this iptables release.
pub const IPTABLES_VERSION: &str = "1.8.9";

/// The tools of the front end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    Iptables,
    Save,
    Restore,
    Ipset,
    /// `ip6tables`, `ip6tables-save`, `ip6tables-restore`: the same commands on the
    /// ip6tables ruleset.
    Ip6tables,
    Save6,
    Restore6,
}

impl Tool {
    /// The tool a program name stands for: `iptables`, `/usr/sbin/iptables-nft-restore`,
    /// `iptables-legacy-save`, `ipset`...
    pub fn from_name(argv0: &str) -> Option<Tool> {
        let base = argv0.rsplit('/').next().unwrap_or(argv0);
        let base = base.replace("-nft", "").replace("-legacy", "");
        match base.as_str() {
            "iptables" => Some(Tool::Iptables),
            "iptables-save" => Some(Tool::Save),
            "iptables-restore" => Some(Tool::Restore),
            "ipset" => Some(Tool::Ipset),
            "ip6tables" => Some(Tool::Ip6tables),
            "ip6tables-save" => Some(Tool::Save6),
            "ip6tables-restore" => Some(Tool::Restore6),
            _ => None,
        }
    }

    /// The ruleset the tool programs.
    pub fn family(self) -> Family {
        match self {
            Tool::Ip6tables | Tool::Save6 | Tool::Restore6 => Family::V6,
            _ => Family::V4,
        }
    }

    /// The IPv4 tool whose commands this one runs.
    fn v4(self) -> Tool {
        match self {
            Tool::Ip6tables => Tool::Iptables,
            Tool::Save6 => Tool::Save,
            Tool::Restore6 => Tool::Restore,
            t => t,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Tool::Iptables => "iptables",
            Tool::Save => "iptables-save",
            Tool::Restore => "iptables-restore",
            Tool::Ipset => "ipset",
            Tool::Ip6tables => "ip6tables",
            Tool::Save6 => "ip6tables-save",
            Tool::Restore6 => "ip6tables-restore",
        }
    }

    /// The names `rtrouter install-links` creates.
    pub const LINKS: [&'static str; 7] = [
        "iptables",
        "iptables-save",
        "iptables-restore",
        "ipset",
        "ip6tables",
        "ip6tables-save",
        "ip6tables-restore",
    ];
}

/// What a tool printed and its exit status.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn ok(stdout: String) -> Output {
        Output {
            code: 0,
            stdout,
            stderr: String::new(),
        }
    }

    /// A failure with `msg` on stderr (a newline added).
    pub fn fail(code: i32, msg: impl AsRef<str>) -> Output {
        let mut stderr = msg.as_ref().to_string();
        if !stderr.ends_with('\n') {
            stderr.push('\n');
        }
        Output {
            code,
            stdout: String::new(),
            stderr,
        }
    }
}

/// iptables' exit statuses (`enum xtables_exittype`).
pub mod exit {
    /// A failed operation: a missing rule or chain, a chain in use.
    pub const OTHER: i32 = 1;
    /// A bad command line.
    pub const PARAMETER: i32 = 2;
    /// A table that does not exist (`VERSION_PROBLEM`: the kernel may lack it).
    pub const VERSION: i32 = 3;
    /// The router cannot be reached or refused the caller.
    pub const RESOURCE: i32 = 4;
}

/// The router's live state, as one transaction sees it. The control plane holds its
/// transaction lock while a command runs, so what `ruleset` returns is what `commit` replaces.
pub trait Live {
    /// Which ruleset the transaction reads and replaces: iptables' or ip6tables'.
    fn family(&self) -> Family {
        Family::V4
    }
    /// The current ruleset (rules share their counters with the running generation).
    fn ruleset(&self) -> Ruleset;
    /// The current ruleset of either family (`ipset` sees the rules of both: a set either
    /// names cannot be destroyed, and a rename renames it in both). Empty when the state
    /// holds no such ruleset.
    fn ruleset_of(&self, family: Family) -> Ruleset {
        if family == self.family() {
            self.ruleset()
        } else {
            Ruleset::new(family)
        }
    }
    /// Validates `rs` and makes it the running ruleset, or says why not (nothing changes).
    fn commit(&self, rs: Ruleset) -> Result<(), String>;
    /// Validates `rs` without applying it (`iptables-restore --test`).
    fn check(&self, rs: &Ruleset) -> Result<(), String>;
    /// Takes a copy of a replaced ruleset the command no longer needs (the router frees it
    /// off the transaction: it may be the last holder of a large chain).
    fn retire(&self, old: Ruleset) {
        drop(old);
    }
    /// The live ipsets (changed in place: a change is seen by the next packet).
    fn ipsets(&self) -> &crate::ipset::IpSets;
    /// The router's clock (monotonic nanoseconds), for ipset timeouts.
    fn now(&self) -> u64;
}

/// Runs one tool invocation against the live state (the router side).
/// `live` must be of the tool's family ([`Tool::family`]).
pub fn run(tool: Tool, args: &[String], input: &str, input_name: &str, live: &dyn Live) -> Output {
    // Each message names its program from the family (`xtables_globals.program_name`).
    match tool.v4() {
        Tool::Iptables => iptables::run(args, live),
        Tool::Save => restore::save(args, live),
        Tool::Restore => restore::restore(args, input, input_name, live),
        _ => ipset::run(args, input, live),
    }
}

/// What the client answers without the router: help and version texts. `None`: the command
/// needs the router.
pub fn local(tool: Tool, args: &[String]) -> Option<Output> {
    let mut o = local_text(tool, args)?;
    if tool.family() == Family::V6 {
        o.stdout = o.stdout.replace("iptables", "ip6tables");
    }
    Some(o)
}

fn local_text(tool: Tool, args: &[String]) -> Option<Output> {
    let has = |s: &[&str]| args.iter().any(|a| s.contains(&a.as_str()));
    match tool {
        Tool::Iptables | Tool::Ip6tables => {
            if has(&["-V", "--version"]) {
                return Some(Output::ok(format!("iptables v{IPTABLES_VERSION} (nf_tables)\n")));
            }
            if has(&["-h", "--help"]) {
                return Some(Output::ok(help::iptables(args)));
            }
            None
        }
        Tool::Save | Tool::Restore | Tool::Save6 | Tool::Restore6 => {
            if has(&["-V", "--version"]) {
                return Some(Output::ok(format!(
                    "{} v{IPTABLES_VERSION} (nf_tables)\n",
                    tool.v4().name()
                )));
            }
            if has(&["-h", "--help"]) {
                return Some(Output::ok(help::save_restore(tool.v4())));
            }
            None
        }
        Tool::Ipset => {
            if has(&["-v", "version", "-version", "--version"]) && args.len() == 1 {
                return Some(Output::ok("ipset v7.17, protocol version: 7 (rtrouter)\n".into()));
            }
            if has(&["-h", "help", "-help", "--help"]) {
                return Some(Output::ok(help::ipset()));
            }
            None
        }
    }
}

/// Takes the input file out of a restore command line (`iptables-restore [opts] FILE`,
/// `ipset restore -f FILE`): the client reads it.
pub fn input_file(tool: Tool, args: &mut Vec<String>) -> Option<String> {
    match tool {
        Tool::Restore | Tool::Restore6 => {
            let mut i = 0;
            while i < args.len() {
                let a = args[i].as_str();
                match a {
                    "-W" | "--wait-interval" | "-T" | "--table" | "-M" | "--modprobe" => i += 2,
                    "-w" | "--wait" if args.get(i + 1).is_some_and(|n| n.parse::<u32>().is_ok()) => i += 2,
                    _ if a.starts_with('-') && a.len() > 1 => i += 1,
                    _ => return Some(args.remove(i)),
                }
            }
            None
        }
        Tool::Ipset => {
            let at = args.iter().position(|a| a == "-f" || a == "-file")?;
            if at + 1 >= args.len() {
                return None;
            }
            let f = args.remove(at + 1);
            args.remove(at);
            Some(f)
        }
        _ => None,
    }
}

/// Whether the command reads its input from stdin (a restore without a file).
pub fn reads_stdin(tool: Tool, args: &[String]) -> bool {
    match tool {
        Tool::Restore | Tool::Restore6 => true,
        Tool::Ipset => args.iter().any(|a| a == "restore" || a == "-"),
        _ => false,
    }
}

/// Takes `-f FILE`/`--file=FILE` out of an `iptables-save` command line: the client writes it.
pub fn output_file(args: &mut Vec<String>) -> Option<String> {
    if let Some(at) = args.iter().position(|a| a == "-f" || a == "--file") {
        if at + 1 < args.len() {
            let f = args.remove(at + 1);
            args.remove(at);
            return Some(f);
        }
    }
    let at = args.iter().position(|a| a.starts_with("--file="))?;
    Some(args.remove(at)["--file=".len()..].to_string())
}
