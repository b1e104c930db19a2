//! rtrouter against the kernel's own iptables, side by side: each case is loaded with the real
//! `iptables-restore` into a network namespace of its own (`unshare -n`, gone when the
//! command ends) and printed back with the real `iptables-save`; rtrouter must print exactly
//! the same rule, and refuse what the kernel refuses. The cases are the extensions and parser
//! rules the iptables project's `.t` files do not cover (abbreviations, the rarer matches and
//! targets, and the extensions rtrouter refuses, to show the kernel refuses them too). Needs
//! root and iptables 1.8.9 (the test command installs it with ufw); skipped with one line
//! otherwise. A case rtrouter loads but whose module this kernel lacks ("missing kernel
//! module?") is reported and skipped.

use rtrouter::ruleset::{restore::restore, validate, Env, Family, Ruleset};
use rtrouter_tests::{udp, Lab};
use std::io::Write;
use std::process::{Command, Stdio};

/// (table, chain, rule after `-A CHAIN`).
const CASES: &[(&str, &str, &str)] = &[
    // Option abbreviations, resolved as getopt_long resolves them.
    ("filter", "INPUT", "--proto tcp --dp 22 -j ACCEPT"),
    ("filter", "INPUT", "-p tcp -m multiport --dport 80,443 -j ACCEPT"),
    ("filter", "INPUT", "-p tcp -m tcp --sport 7 -m multiport --dports 1,2"),
    ("filter", "INPUT", "-m conntrack --ctstate NEW --ctd REPLY"),
    ("filter", "INPUT", "-m conntrack --ctst NEW"),
    ("filter", "INPUT", "--in- eth0 --fragment"),
    ("filter", "INPUT", "--in eth0"),
    ("filter", "INPUT", "-p tcp --s 10.0.0.1"),
    ("filter", "INPUT", "-m limit --limit-b 3"),
    ("filter", "INPUT", "-m comment --comm=x"),
    ("filter", "INPUT", "-m policy --dir in --pol ipsec --proto esp"),
    ("nat", "POSTROUTING", "-j SNAT --to 1.2.3.4"),
    ("nat", "POSTROUTING", "-j SNAT --rand"),
    // Matches.
    ("mangle", "PREROUTING", "-p ipcomp -m ipcomp --ipcompspi 18 --compres"),
    ("mangle", "PREROUTING", "-p 108 -m ipcomp ! --ipcompspi 1:0x10"),
    ("mangle", "PREROUTING", "-m ipcomp --ipcompspi 1"),
    ("mangle", "PREROUTING", "-m cpu ! --cpu 0"),
    ("mangle", "PREROUTING", "-m cpu --cpu 4294967296"),
    ("mangle", "FORWARD", "-m realm --realm 0x1/0x2a"),
    ("mangle", "FORWARD", "-m realm ! --realm 42/0xff"),
    ("mangle", "FORWARD", "-m realm --realm 42"),
    ("mangle", "PREROUTING", "-m realm --realm 42"),
    ("mangle", "FORWARD", "-m devgroup --src-group 5/0xf ! --dst-group 0x7/7"),
    ("mangle", "FORWARD", "-m devgroup --src-group 0"),
    ("mangle", "OUTPUT", "-m devgroup --src-group 1"),
    ("mangle", "PREROUTING", "-p tcp -m osf --genre linux --ttl 0 --log 0"),
    ("mangle", "PREROUTING", "-p tcp -m osf ! --genre Windows"),
    ("mangle", "PREROUTING", "-m osf --genre linux"),
    (
        "mangle",
        "PREROUTING",
        "-m cluster --cluster-total-nodes 2 --cluster-local-node 2 --cluster-hash-seed 0xfeedcafe",
    ),
    (
        "mangle",
        "PREROUTING",
        "-m cluster --cluster-total-nodes 2 ! --cluster-local-nodemask 3 --cluster-hash-seed 1",
    ),
    (
        "mangle",
        "PREROUTING",
        "-m cluster --cluster-total-nodes 2 --cluster-local-node 3 --cluster-hash-seed 1",
    ),
    (
        "mangle",
        "PREROUTING",
        "-m u32 --u32 \" 0 >> 22 & 0x3C @ 12 >> 26 & 0x3C @ 0 = 4:0x1000 , 010 \"",
    ),
    (
        "mangle",
        "PREROUTING",
        "-m u32 ! --u32 \"6&0xFF=6&&0>>22&0x3C@0>>16=1:1024\"",
    ),
    ("mangle", "PREROUTING", "-m u32 --u32 \"0x0=\""),
    ("mangle", "PREROUTING", "-m statistic --mode nth --every 3 --packet 0"),
    ("mangle", "PREROUTING", "-m statistic --mode nth ! --every 3"),
    ("mangle", "PREROUTING", "-m time --kerneltz --weekdays Sun"),
    ("filter", "INPUT", "-p dccp -m dccp ! --dccp-option 4"),
    ("filter", "INPUT", "-p dccp -m dccp --dccp-types ack,REQUEST,INVALID"),
    (
        "filter",
        "INPUT",
        "-p dccp -m dccp ! --dccp-types SYNC --dccp-option 255",
    ),
    ("filter", "INPUT", "-p dccp -m dccp --sport 5:3 ! --dport ssh"),
    ("filter", "INPUT", "-p dccp --dport 7"),
    ("filter", "INPUT", "-p dccp -m dccp --source-port 1:65535"),
    ("filter", "INPUT", "-p dccp -m dccp --dccp-option 0"),
    ("filter", "INPUT", "-m dccp --dport 1"),
    ("filter", "INPUT", "-p dccp -m dccp --dccp-types BOGUS"),
    ("filter", "INPUT", "-m bpf --bytecode \"4,48 0 0 9,21 0 1 6,6 0 0 1,6 0 0 0\""),
    ("filter", "INPUT", "-m bpf --bytecode \"5,177 0 0 0,72 0 0 2,21 0 1 80,6 0 0 65535,6 0 0 0\""),
    ("filter", "INPUT", "-m bpf --bytecode \"6,0 0 0 5,2 0 0 3,97 0 0 3,135 0 0 0,4 0 0 2,22 0 0 0\""),
    ("filter", "INPUT", "-m bpf --bytecode \"1,48 0 0 9\""),
    ("filter", "INPUT", "-m bpf --bytecode \"2,21 0 5 6,6 0 0 0\""),
    ("filter", "INPUT", "-m bpf --bytecode \"2,52 0 0 0,6 0 0 0\""),
    ("filter", "INPUT", "-m bpf --bytecode \"2,96 0 0 2,6 0 0 0\""),
    ("filter", "INPUT", "-m bpf --bytecode \"2,100 0 0 32,6 0 0 0\""),
    ("filter", "INPUT", "-m bpf --bytecode \"2,255 0 0 0,6 0 0 0\""),
    ("filter", "INPUT", "-m bpf --bytecode \"0,\""),
    ("filter", "INPUT", "-m connlabel --label 1"),
    ("filter", "INPUT", "-m connlabel ! --label 3 --set"),
    ("filter", "INPUT", "-m connlabel --label 0x7f"),
    ("filter", "INPUT", "-m connlabel --label 128"),
    ("filter", "INPUT", "-m connlabel --label nope"),
    // Targets.
    ("mangle", "PREROUTING", "-j AUDIT --type DROP"),
    ("mangle", "PREROUTING", "-j AUDIT --type maybe"),
    (
        "mangle",
        "PREROUTING",
        "-j LED --led-trigger-id foo --led-delay 42 --led-always-blink",
    ),
    ("mangle", "PREROUTING", "-p tcp -j TCPOPTSTRIP"),
    (
        "mangle",
        "PREROUTING",
        "-p tcp -j TCPOPTSTRIP --strip-options timestamp,mss",
    ),
    ("mangle", "PREROUTING", "-j TCPOPTSTRIP"),
    ("filter", "INPUT", "-j TCPOPTSTRIP"),
    ("filter", "INPUT", "-j IDLETIMER --timeout 10 --label foo --alarm"),
    ("filter", "INPUT", "-j IDLETIMER --label x --timeout 0x10"),
    ("filter", "INPUT", "-j IDLETIMER --timeout 0 --label foo"),
    (
        "filter",
        "INPUT",
        "-j IDLETIMER --timeout 10 --label 0123456789012345678901234567",
    ),
    ("filter", "INPUT", "-j IDLETIMER --timeout 10"),
    (
        "mangle",
        "PREROUTING",
        "-j HMARK --hmark-tuple src,dst,sport,dport,proto --hmark-mod 10 --hmark-rnd 0x1 --hmark-offset 5",
    ),
    ("mangle", "PREROUTING", "-j HMARK --hmark-tuple ct --hmark-rnd 2 --hmark-mod 3"),
    (
        "mangle",
        "PREROUTING",
        "-j HMARK --hmark-tuple spi,src --hmark-spi 0x10 --hmark-rnd 0 --hmark-mod 3",
    ),
    (
        "mangle",
        "PREROUTING",
        "-j HMARK --hmark-src-prefix 0 --hmark-sport-mask 0x1 --hmark-sport 2 --hmark-dport 3 --hmark-rnd 0 --hmark-mod 3",
    ),
    ("mangle", "PREROUTING", "-j HMARK --hmark-tuple src --hmark-rnd 1 --hmark-mod 0"),
    ("mangle", "PREROUTING", "-j HMARK --hmark-tuple bogus --hmark-rnd 1 --hmark-mod 1"),
    ("mangle", "PREROUTING", "-j TEE --gateway 10.0.0.1"),
    ("mangle", "POSTROUTING", "-j TEE --gateway 10.0.0.1 --oif eth0"),
    ("filter", "INPUT", "-j TEE --gateway 10.0.0.1"),
    ("mangle", "PREROUTING", "-j TEE --oif eth0"),
    ("mangle", "PREROUTING", "-j CONNSECMARK --save"),
    ("filter", "INPUT", "-j CONNSECMARK --save"),
    ("mangle", "PREROUTING", "-j NFQUEUE --queue-balance 2:3 --queue-bypass"),
    ("mangle", "PREROUTING", "-p tcp -j TPROXY --on-port 3129"),
    ("mangle", "PREROUTING", "-p udp -j TPROXY --on-port 53 --on-ip 10.0.0.1 --tproxy-mark 0x1"),
    ("mangle", "PREROUTING", "-p tcp -j TPROXY --on-port 1 --tproxy-mark 0x23/0xff --on-ip 0.0.0.0"),
    ("mangle", "PREROUTING", "-j TPROXY --on-port 3129"),
    ("mangle", "PREROUTING", "-p tcp -j TPROXY --on-ip 10.0.0.1"),
    ("mangle", "INPUT", "-p tcp -j TPROXY --on-port 3129"),
    ("filter", "INPUT", "-p tcp -j TPROXY --on-port 3129"),
    ("filter", "OUTPUT", "-m cgroup --cgroup 1"),
    ("filter", "OUTPUT", "-m cgroup ! --cgroup 0x10"),
    ("filter", "INPUT", "-m cgroup --cgroup 4294967295"),
    ("mangle", "POSTROUTING", "-m cgroup --cgroup 010"),
    ("filter", "OUTPUT", "-m cgroup --path /"),
    ("filter", "OUTPUT", "-m cgroup ! --path //"),
    ("filter", "OUTPUT", "-m cgroup --path \"\""),
    ("filter", "OUTPUT", "-m cgroup --path /no-such-group-here"),
    ("filter", "OUTPUT", "-m cgroup --path / --cgroup 1"),
    ("filter", "OUTPUT", "-m cgroup"),
    ("filter", "OUTPUT", "-m cgroup --cgroup 4294967296"),
    ("filter", "OUTPUT", "-m cgroup --cgroup -1"),
    ("filter", "FORWARD", "-m cgroup --cgroup 1"),
    ("mangle", "PREROUTING", "-m cgroup --cgroup 1"),
    ("mangle", "PREROUTING", "-m socket"),
    ("mangle", "PREROUTING", "-p tcp -m socket --transparent"),
    ("mangle", "PREROUTING", "-m socket --nowildcard"),
    ("mangle", "PREROUTING", "-m socket --restore-skmark"),
    ("mangle", "PREROUTING", "-m socket --restore-skmark --nowildcard --transparent"),
    ("filter", "INPUT", "-m socket"),
    ("nat", "PREROUTING", "-m socket"),
    ("raw", "PREROUTING", "-m socket"),
    ("filter", "FORWARD", "-m socket"),
    ("mangle", "OUTPUT", "-m socket"),
    ("filter", "INPUT", "-m socket ! --transparent"),
    ("filter", "INPUT", "-m socket --transparent --transparent"),
    ("filter", "INPUT", "-m bpf --bytecode \"2,32 0 0 4294963220,6 0 0 1\""),
    ("filter", "INPUT", "-m bpf --bytecode \"3,48 0 0 4294963200,21 0 1 2048,6 0 0 1\""),
    ("filter", "INPUT", "-m bpf --bytecode \"2,40 0 0 4294963252,22 0 0 0\""),
    ("filter", "INPUT", "-m bpf --bytecode \"2,32 0 0 4294963201,6 0 0 1\""),
    ("filter", "INPUT", "-m bpf --bytecode \"2,32 0 0 4294963264,6 0 0 1\""),
    ("filter", "INPUT", "-m bpf --bytecode \"2,64 0 0 4294963200,6 0 0 1\""),
    ("filter", "INPUT", "-m bpf --bytecode \"2,32 0 0 4293918720,6 0 0 1\""),
    ("filter", "INPUT", "-m bpf --bytecode \"2,32 0 0 4292870144,6 0 0 1\""),
    ("filter", "INPUT", "-p tcp -j SYNPROXY --mss 1460 --wscale 7 --timestamp --sack-perm --ecn"),
    ("filter", "FORWARD", "-p tcp -j SYNPROXY"),
    ("filter", "FORWARD", "-p tcp -j SYNPROXY --wscale 300"),
    ("filter", "FORWARD", "-p tcp -j SYNPROXY --mss 70000 --wscale 0x10"),
    ("mangle", "FORWARD", "-p tcp -j SYNPROXY --time"),
    ("nat", "INPUT", "-p tcp -j SYNPROXY --ecn"),
    ("security", "FORWARD", "-p tcp -j SYNPROXY --sack-perm"),
    ("filter", "FORWARD", "-j SYNPROXY"),
    ("filter", "FORWARD", "! -p tcp -j SYNPROXY"),
    ("filter", "OUTPUT", "-p tcp -j SYNPROXY"),
    ("mangle", "PREROUTING", "-p tcp -j SYNPROXY"),
    ("filter", "FORWARD", "-p tcp -j SYNPROXY --mss 1 --mss 2"),
    ("filter", "FORWARD", "-p tcp -j SYNPROXY --wscale 5000000000"),
    ("filter", "FORWARD", "-p tcp -j SYNPROXY --wscale -1"),
    ("filter", "FORWARD", "-p tcp -j SYNPROXY --ecn ! --sack-perm"),
    // Gone from iptables or from this kernel: refused by both.
    ("mangle", "PREROUTING", "-j MIRROR"),
    ("nat", "PREROUTING", "-j SAME --to 1.2.3.4"),
    ("mangle", "PREROUTING", "-j HL --hl-set 5"),
    ("mangle", "PREROUTING", "-j ULOG"),
    (
        "mangle",
        "PREROUTING",
        "-j CLUSTERIP --new --hashmode sourceip --clustermac 01:00:5e:00:00:01 --total-nodes 2 --local-node 1",
    ),
];

/// What the kernel's iptables made of a case: the saved rule, or its error.
enum Kernel {
    Saved(String),
    Refused(String),
    /// The extension needs a module this kernel does not have.
    Missing,
}

/// What the kernel's tools of `family` (`iptables-restore`/`-save` or the ip6tables ones)
/// made of a case.
fn kernel_of(family: Family, table: &str, chain: &str, rule: &str) -> Kernel {
    let script = format!("*{table}\n-A {chain} {rule}\nCOMMIT\n");
    match kernel_restore_save(family.tool(), &script, &format!("-t {table}")) {
        Ok(rules) => Kernel::Saved(rules),
        Err(e) if e.contains("missing kernel module") => Kernel::Missing,
        Err(e) => Kernel::Refused(e),
    }
}

/// Restores `script` with the kernel's `{tool}-restore` in a network namespace of its own
/// (`unshare -n`, gone when the command ends) and saves it back with `{tool}-save {save}`:
/// the `-A` lines, or the error.
fn kernel_restore_save(tool: &str, script: &str, save: &str) -> Result<String, String> {
    let mut child = Command::new("unshare")
        .args(["-n", "sh", "-c", &format!("{tool}-restore && {tool}-save {save}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("unshare runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(script.as_bytes())
        .expect("written");
    let o = child.wait_with_output().expect("finishes");
    if !o.status.success() {
        return Err(String::from_utf8_lossy(&o.stderr).to_string());
    }
    let out = String::from_utf8_lossy(&o.stdout);
    Ok(out
        .lines()
        .filter(|l| l.starts_with("-A "))
        .collect::<Vec<_>>()
        .join("\n"))
}

fn ours(table: &str, chain: &str, rule: &str) -> Result<String, String> {
    ours_of(Family::V4, table, chain, rule)
}

fn ours_of(family: Family, table: &str, chain: &str, rule: &str) -> Result<String, String> {
    let script = format!("*{table}\n-A {chain} {rule}\nCOMMIT\n");
    let rs = restore(&Ruleset::new(family), &script, "case", false).map_err(|e| e.to_string())?;
    let v = validate(&rs, &Env::default()).map_err(|e| e.to_string())?;
    let saved = v.source().save(false);
    Ok(saved
        .lines()
        .filter(|l| l.starts_with("-A "))
        .collect::<Vec<_>>()
        .join("\n"))
}

/// Whether the machine has the kernel's iptables 1.8.9 and lets this test make namespaces.
fn real_iptables() -> bool {
    if !nix::unistd::geteuid().is_root() {
        println!("SKIP: comparing with the kernel's iptables needs root (for unshare -n)");
        return false;
    }
    let v = Command::new("iptables-restore").arg("--version").output();
    match v {
        Ok(o) if String::from_utf8_lossy(&o.stdout).contains("v1.8.9") => true,
        Ok(o) => {
            println!(
                "SKIP: the cases are checked against iptables 1.8.9; this machine has {}",
                String::from_utf8_lossy(&o.stdout).trim()
            );
            false
        }
        Err(_) => {
            println!("SKIP: no iptables-restore on this machine (the test command installs it with ufw)");
            false
        }
    }
}

#[test]
fn rules_print_back_as_the_kernels_iptables_prints_them() {
    if !real_iptables() {
        return;
    }
    compare(Family::V4, CASES);
}

/// ip6tables' side: what this round added for IPv6 beyond ip6tables' own `.t` files.
const CASES6: &[(&str, &str, &str)] = &[
    (
        "mangle",
        "PREROUTING",
        "-p tcp -m socket --transparent --restore-skmark",
    ),
    ("filter", "INPUT", "-m socket --nowildcard"),
    ("filter", "FORWARD", "-m socket"),
    ("filter", "OUTPUT", "-m cgroup ! --cgroup 3"),
    ("filter", "OUTPUT", "-m cgroup --path /"),
    ("filter", "FORWARD", "-m cgroup --path /"),
    ("filter", "INPUT", "-p icmpv6 --icmpv6-type echo-request -j ACCEPT"),
    (
        "filter",
        "INPUT",
        "-p ipv6-icmp -m icmp6 --icmpv6-type neighbour-solicitation -m hl --hl-eq 255 -j ACCEPT",
    ),
    ("filter", "INPUT", "-m rt --rt-type 0 -j DROP"),
    (
        "filter",
        "INPUT",
        "-m hashlimit --hashlimit-upto 5/sec --hashlimit-mode srcip --hashlimit-name h6 --hashlimit-srcmask 64",
    ),
    (
        "filter",
        "INPUT",
        "-m hashlimit --hashlimit-upto 5/sec --hashlimit-mode srcip --hashlimit-name h6 --hashlimit-srcmask 128",
    ),
    (
        "filter",
        "INPUT",
        "-m connlimit --connlimit-above 2 --connlimit-mask 64",
    ),
    ("filter", "INPUT", "-m connlimit --connlimit-above 2"),
    (
        "mangle",
        "PREROUTING",
        "-j HMARK --hmark-tuple src,dst --hmark-rnd 0x1 --hmark-mod 3",
    ),
    (
        "mangle",
        "PREROUTING",
        "-j HMARK --hmark-src-prefix 64 --hmark-tuple dst --hmark-rnd 0x1 --hmark-mod 3",
    ),
    (
        "mangle",
        "PREROUTING",
        "-j HMARK --hmark-src-prefix 129 --hmark-rnd 0x1 --hmark-mod 3",
    ),
    ("mangle", "PREROUTING", "-p tcp -j TPROXY --on-port 3129"),
    (
        "mangle",
        "PREROUTING",
        "-p udp -j TPROXY --on-port 53 --on-ip 2001:db8::1 --tproxy-mark 0x1",
    ),
    (
        "mangle",
        "POSTROUTING",
        "-j SNPT --src-pfx fd00:1::/48 --dst-pfx 2001:db8:1::/48",
    ),
    (
        "mangle",
        "PREROUTING",
        "-j DNPT --src-pfx 2001:db8:1::/64 --dst-pfx fd00:1::/64",
    ),
    (
        "mangle",
        "PREROUTING",
        "-j DNPT --src-pfx 2001:db8:1::/80 --dst-pfx fd00:1::/64",
    ),
    (
        "mangle",
        "FORWARD",
        "-p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu",
    ),
    ("mangle", "FORWARD", "-j DSCP --set-dscp 0x2e"),
    ("filter", "INPUT", "-m rpfilter --invert -j DROP"),
    ("raw", "PREROUTING", "-m rpfilter --loose"),
    (
        "mangle",
        "PREROUTING",
        "-m cluster --cluster-total-nodes 2 --cluster-local-node 1 --cluster-hash-seed 0x1",
    ),
    ("filter", "INPUT", "-m ttl --ttl-eq 1"),
    ("filter", "INPUT", "-p icmp -m icmp --icmp-type 8"),
    (
        "filter",
        "INPUT",
        "-p tcp -j SYNPROXY --mss 1440 --wscale 5 --timestamp",
    ),
    ("filter", "FORWARD", "-p tcp -j SYNPROXY --sack-perm --ecn"),
    ("filter", "OUTPUT", "-p tcp -j SYNPROXY"),
];

#[test]
fn rules_print_back_as_the_kernels_ip6tables_prints_them() {
    if !real_iptables() {
        return;
    }
    compare(Family::V6, CASES6);
}

/// Loads each case with the kernel's tool of `family` and with rtrouter; they must print the
/// same rule or both refuse it.
fn compare(family: Family, cases: &[(&str, &str, &str)]) {
    let mut wrong = Vec::new();
    let (mut same, mut refused) = (0, 0);
    for &(table, chain, rule) in cases {
        let mine = ours_of(family, table, chain, rule);
        match (kernel_of(family, table, chain, rule), mine) {
            // Refused here for want of a module: agreement when rtrouter refuses it too (the
            // extension left the kernel), otherwise a kernel-dependent case.
            (Kernel::Missing, Err(_)) => refused += 1,
            (Kernel::Missing, Ok(_)) => println!("{table} {chain} {rule}: this kernel lacks the module; skipped"),
            (Kernel::Saved(k), Ok(m)) if k == m => same += 1,
            (Kernel::Refused(_), Err(_)) => refused += 1,
            (Kernel::Saved(k), m) => wrong.push(format!("{rule}\n  kernel: {k}\n  ours:   {m:?}")),
            (Kernel::Refused(e), Ok(m)) => wrong.push(format!("{rule}\n  kernel refuses: {}\n  ours: {m}", e.trim())),
        }
    }
    println!(
        "{}: {same} cases print the same, {refused} refused by both",
        family.tool()
    );
    assert!(
        wrong.is_empty(),
        "differences from the kernel's {}:\n{}",
        family.tool(),
        wrong.join("\n")
    );
    assert!(same >= cases.len() / 2, "too few cases compared");
}

fn our_script(script: &str) -> Result<String, String> {
    let rs = restore(&Ruleset::new(Family::V4), script, "case", false).map_err(|e| e.to_string())?;
    let v = validate(&rs, &Env::default()).map_err(|e| e.to_string())?;
    let saved = v.source().save(false);
    Ok(saved
        .lines()
        .filter(|l| l.starts_with("-A "))
        .collect::<Vec<_>>()
        .join("\n"))
}

#[test]
fn pinned_bpf_programs_print_back_and_are_refused_as_by_the_kernels_iptables() {
    use rtrouter_tests::bpf::{self as ebpf, BpfFs, SCHED_CLS, SOCKET_FILTER};
    if !real_iptables() {
        return;
    }
    let Some(fs) = BpfFs::or_skip("kernel") else { return };
    let udp = fs.pin("udp", SOCKET_FILTER, &ebpf::protocol_is(17)).expect("loads");
    let cls = fs.pin("cls", SCHED_CLS, &ebpf::mark()).expect("loads");
    let (udp, cls, none) = (
        udp.display().to_string(),
        cls.display().to_string(),
        fs.path("none").display().to_string(),
    );
    let cases: Vec<String> = vec![
        format!("-m bpf --object-pinned {udp}"),
        format!("-p udp -m bpf --object-pinned {udp} -j DROP"),
        format!("-m bpf --object-pinned={udp}"),
        format!("-m bpf --object-pin {udp}"),
        format!("-p tcp -m tcp --dport 80 -m bpf --object-pinned {udp} -j ACCEPT"),
        format!("-m bpf --object-pinned {udp} -m comment --comment pinned"),
        format!("-m bpf --object-pinned {none}"),
        format!("-m bpf --object-pinned {cls}"),
        format!("-m bpf ! --object-pinned {udp}"),
        format!("-m bpf --object-pinned {udp} --object-pinned {udp}"),
        format!("-m bpf --bytecode \"1,6 0 0 0\" --object-pinned {udp}"),
        "-m bpf".to_string(),
    ];
    let cases: Vec<(&str, &str, &str)> = cases.iter().map(|c| ("filter", "INPUT", c.as_str())).collect();
    compare(Family::V4, &cases);
}

#[test]
fn rate_estimators_print_back_as_the_kernels_iptables_prints_them() {
    if !real_iptables() {
        return;
    }
    const EST: &str = "-A INPUT -j RATEEST --rateest-name A --rateest-interval 250ms --rateest-ewmalog 500ms\n\
        -A INPUT -j RATEEST --rateest-name B --rateest-interval 250ms --rateest-ewmalog 500ms\n";
    let matches = [
        "--rateest A --rateest-bps 1kbit --rateest-pps 5 --rateest-gt",
        "--rateest-delta --rateest1 A --rateest-bps1 1kbit --rateest-pps1 3 --rateest-bps2 2kbit --rateest-pps2 4 --rateest-lt --rateest2 B",
        "--rateest1 A --rateest-bps --rateest-pps ! --rateest-eq --rateest2 B",
        "--rateest-delta --rateest A --rateest-bps1 1kbit --rateest-pps1 3 --rateest-bps2 2kbit --rateest-pps2 4 --rateest-lt",
        "--rateest A --rateest-lt --rateest-gt --rateest-pps 2",
        "--rateest A --rateest-gt --rateest-pps",
        "--rateest A --rateest-gt --rateest-bps 1.5Mbit",
        "--rateest A --rateest-gt --rateest-bps 10gbit",
        "--rateest A --rateest-gt --rateest-bps 100KiBps",
        "--rateest A --rateest-eq --rateest-bps 1500",
        "--rateest A --rateest-eq --rateest-bps 1kbps",
        "--rateest1 A --rateest-bps1 5 --rateest-gt --rateest2 B",
        "--rateest-delta --rateest1 A --rateest-bps1 10kbit --rateest-gt --rateest2 B --rateest-bps2 1mbit",
        // Refused by both.
        "--rateest A --rateest-bps 10kbit",
        "--rateest1 A --rateest-gt --rateest2 B",
        "--rateest nosuch --rateest-gt --rateest-pps 1",
        "--rateest A --rateest-gt --rateest-pps x",
        "--rateest A --rateest-gt --rateest-bps 5xyz",
        "--rateest A --rateest A --rateest-gt --rateest-pps 1",
        "! --rateest A --rateest-gt --rateest-pps 1",
        "--rateest A ! --rateest-bps 1 --rateest-gt",
        "--rateest A --rateest-gt --rateest-pps 1 --rateest-pps2 3",
        "--rateest A --rateest-delta --rateest-delta --rateest-gt --rateest-pps 1",
    ];
    let mut scripts: Vec<String> = matches
        .iter()
        .map(|m| format!("*filter\n{EST}-A INPUT -m rateest {m}\nCOMMIT\n"))
        .collect();
    for t in [
        "--rateest-name e1 --rateest-interval 250ms --rateest-ewmalog 500ms",
        "--rateest-name e2 --rateest-interval 1s --rateest-ewmalog 8s",
        "--rateest-name e7 --rateest-interval 100us --rateest-ewmalog 1ms",
        "--rateest-name abcdefghijklmnop --rateest-interval 1s --rateest-ewmalog 8s",
        "--rateest-name y --rateest-interval 2.5S --rateest-ewmalog 20000msec",
        "--rateest-name z --rateest-interval 250000 --rateest-ewmalog 1000000",
        "--rateest-name w --rateest-interval 8s --rateest-ewmalog 100000s",
        "--rateest-name e3 --rateest-interval 0.3 --rateest-ewmalog 1",
        "--rateest-name e5 --rateest-interval 9s --rateest-ewmalog 30s",
        "--rateest-name e6 --rateest-interval 1s",
        "--rateest-name x --rateest-interval 1x --rateest-ewmalog 8s",
        "--rateest-interval 1s --rateest-ewmalog 8s",
    ] {
        scripts.push(format!("*mangle\n-A PREROUTING -j RATEEST {t}\nCOMMIT\n"));
    }
    // The kernel loads in order: a reader before its estimator, or two estimators of one name
    // with different parameters, are refused; across tables in file order.
    scripts.push(format!(
        "*filter\n-A INPUT -m rateest --rateest A --rateest-gt --rateest-pps 1\n{EST}COMMIT\n"
    ));
    scripts.push("*filter\n-A INPUT -j RATEEST --rateest-name Z --rateest-interval 250ms --rateest-ewmalog 500ms\n-A INPUT -j RATEEST --rateest-name Z --rateest-interval 1s --rateest-ewmalog 8s\nCOMMIT\n".into());
    scripts.push("*filter\n-A INPUT -j RATEEST --rateest-name Z --rateest-interval 250ms --rateest-ewmalog 500ms\n-A INPUT -j RATEEST --rateest-name Z --rateest-interval 250ms --rateest-ewmalog 500ms\nCOMMIT\n".into());
    scripts.push(format!(
        "*mangle\n{}COMMIT\n*filter\n-A INPUT -m rateest --rateest A --rateest-gt --rateest-pps 1\nCOMMIT\n",
        EST.replace("INPUT", "PREROUTING")
    ));
    scripts.push(format!(
        "*filter\n-A INPUT -m rateest --rateest A --rateest-gt --rateest-pps 1\nCOMMIT\n*mangle\n{}COMMIT\n",
        EST.replace("INPUT", "PREROUTING")
    ));
    let mut wrong = Vec::new();
    let (mut same, mut refused) = (0, 0);
    for s in &scripts {
        match (kernel_restore_save("iptables", s, ""), our_script(s)) {
            (Ok(k), Ok(m)) if k == m => same += 1,
            (Err(_), Err(_)) => refused += 1,
            (k, m) => wrong.push(format!("{s}\n  kernel: {k:?}\n  ours:   {m:?}")),
        }
    }
    println!("rateest/RATEEST: {same} scripts print the same, {refused} refused by both");
    assert!(
        wrong.is_empty(),
        "differences from the kernel's iptables:\n{}",
        wrong.join("\n")
    );
    assert!(same >= 15, "too few compared");
}

/// The mark the kernel's HMARK gives a UDP datagram 10.9.0.1 → 10.9.0.2:5000 sent in a
/// namespace of its own (through a TUN device nobody reads), found by which of 32 mark
/// rules counted it; `None` when the kernel refuses the options.
fn kernel_hmark(options: &str) -> Option<u32> {
    kernel_hmark_of(Family::V4, options)
}

/// [`kernel_hmark`] in either family: IPv6 sends 2001:db8::1 → 2001:db8::2:5000.
fn kernel_hmark_of(family: Family, options: &str) -> Option<u32> {
    let script = r#"
ip link set lo up
ip tuntap add mode tun name d0 && ip addr add "$2/$4" dev d0 && ip link set d0 up || exit 4
rules="*mangle
-A OUTPUT -d $3 -j HMARK $1
"
for k in $(seq 0 31); do rules="$rules-A OUTPUT -d $3 -m mark --mark $((100+k))
"; done
printf '%sCOMMIT\n' "$rules" | "$5-restore" 2>/dev/null || exit 3
echo x > "/dev/udp/$3/5000"
"$5-save" -c -t mangle | grep -- '--mark' | grep -v '^\[0:0\]'
"#;
    let (src, dst, len) = match family {
        Family::V4 => ("10.9.0.1", "10.9.0.2", "24"),
        Family::V6 => ("2001:db8::1", "2001:db8::2", "64"),
    };
    let o = Command::new("unshare")
        .args(["-n", "bash", "-c", script, "hmark"])
        .args([options, src, dst, len, family.tool()])
        .output()
        .expect("unshare runs");
    let out = String::from_utf8_lossy(&o.stdout);
    if o.status.code() == Some(3) {
        return None;
    }
    assert!(o.status.success(), "{out}{}", String::from_utf8_lossy(&o.stderr));
    let hex = out.trim().rsplit("--mark 0x").next().expect("one counted rule");
    Some(u32::from_str_radix(hex.trim(), 16).expect("a mark"))
}

#[test]
fn hmark_marks_as_the_kernels_hmark_does() {
    if !real_iptables() {
        return;
    }
    if !std::path::Path::new("/dev/net/tun").exists() {
        println!("SKIP: the HMARK comparison sends through a TUN device: no /dev/net/tun");
        return;
    }
    for options in [
        "--hmark-tuple src,dst,proto --hmark-rnd 0x12345678 --hmark-mod 16 --hmark-offset 100",
        "--hmark-dst-prefix 24 --hmark-tuple dst,dport --hmark-rnd 0x1 --hmark-mod 32 --hmark-offset 100",
        "--hmark-tuple dst,dport --hmark-rnd 0x1 --hmark-mod 32 --hmark-offset 100 --hmark-dport 7",
        "--hmark-src-prefix 16 --hmark-tuple d,pr --hmark-rnd 0xfeedcafe --hmark-mod 30 --hmark-offset 101",
        "--hmark-src-prefix 8 --hmark-tuple s,dp --hmark-rnd 0 --hmark-mod 30 --hmark-offset 101",
        "--hmark-tuple src --hmark-rnd 1 --hmark-mod 5 --hmark-offset 100 --hmark-proto-mask 0x3",
    ] {
        let Some(want) = kernel_hmark(options) else {
            panic!("the kernel refuses HMARK {options}");
        };
        let mut l = Lab::new(&format!(
            "*mangle\n-A FORWARD -j HMARK {options}\nCOMMIT\n*filter\n:FORWARD DROP [0:0]\n-A FORWARD -m mark --mark {want} -j ACCEPT\nCOMMIT\n"
        ));
        let s = l.send("lan0", &udp("10.9.0.1", 40000, "10.9.0.2", 5000));
        assert!(
            s.forwarded(),
            "HMARK {options}: the kernel marks {want:#x}, rtrouter does not"
        );
    }
    // IPv6: the same datagram between 2001:db8::1 and 2001:db8::2, whole addresses and
    // prefixes, marked as the kernel marks it (`hmark_addr6_mask`, its words xored). Not the
    // source port: the kernel's datagram comes from an ephemeral one.
    for options in [
        "--hmark-tuple src,dst,proto --hmark-rnd 0x12345678 --hmark-mod 16 --hmark-offset 100",
        "--hmark-src-prefix 64 --hmark-tuple dst,dport --hmark-rnd 0x1 --hmark-mod 32 --hmark-offset 100",
        "--hmark-dst-prefix 120 --hmark-tuple s,dp,pr --hmark-rnd 0xfeedcafe --hmark-mod 30 --hmark-offset 101",
    ] {
        let want = kernel_hmark_of(Family::V6, options).unwrap_or_else(|| panic!("the kernel refuses HMARK {options}"));
        let rules6 = format!(
            "*mangle\n-A PREROUTING -j HMARK {options}\n-A PREROUTING -m mark ! --mark {want} -j DROP\nCOMMIT\n"
        );
        let v = validate(
            &restore(&Ruleset::new(Family::V6), &rules6, "t", false).unwrap(),
            &Env::default(),
        )
        .unwrap();
        let l = Lab::new("*filter\nCOMMIT\n");
        l.router.swap_rules(v);
        let mut b = Vec::new();
        let ip = rtrouter::packet::build::Ip6::new("2001:db8::1".parse().unwrap(), "2001:db8::2".parse().unwrap());
        rtrouter::packet::build::udp(&mut b, ip, 40000, 5000, b"x\n");
        let mut reply = rtrouter::router::Reply::default();
        let o = l.router.process(
            rtrouter::router::Meta {
                now: 1,
                ingress: rtrouter::router::Ingress::Iface(l.router.topo.iface_id("lan0").unwrap()),
                mark: 0,
                seg: 0,
                ct: None,
            },
            &mut b,
            &mut reply,
            &mut rtrouter::eval::SplitMix(1),
            &mut (),
        );
        assert!(
            !matches!(o.disposition, rtrouter::router::Disposition::Drop(_)),
            "HMARK {options} over IPv6: the kernel marks {want:#x}, rtrouter does not ({:?})",
            o.disposition
        );
    }
    // What the kernel refuses, rtrouter refuses.
    for options in [
        "--hmark-tuple dst --hmark-dst-prefix 24 --hmark-rnd 1 --hmark-mod 2",
        "--hmark-tuple s,d,pr --hmark-src-prefix 16 --hmark-rnd 1 --hmark-mod 2",
        "--hmark-tuple src --hmark-mod 2",
        "--hmark-tuple src --hmark-rnd 1",
        "--hmark-rnd 1 --hmark-mod 2",
        "--hmark-tuple sport,spi --hmark-rnd 1 --hmark-mod 2",
    ] {
        assert_eq!(kernel_hmark(options), None, "the kernel takes HMARK {options}");
        assert!(
            ours("mangle", "OUTPUT", &format!("-j HMARK {options}")).is_err(),
            "rtrouter takes HMARK {options}"
        );
    }
}

/// The node (1-based) the kernel's `-m cluster` gives a UDP datagram from `src` to `dst`
/// sent in a namespace of its own, found by which of the nodes' rules counted it.
fn kernel_cluster_node(family: Family, nodes: u32, seed: &str) -> u32 {
    let script = r#"
ip link set lo up
ip tuntap add mode tun name d0 && ip addr add "$1/$3" dev d0 && ip link set d0 up || exit 4
rules="*mangle
"
for k in $(seq 1 $4); do rules="$rules-A OUTPUT -d $2 -m cluster --cluster-total-nodes $4 --cluster-local-node $k --cluster-hash-seed $5
"; done
printf '%sCOMMIT\n' "$rules" | "$6-restore" || exit 3
echo x > "/dev/udp/$2/5000"
"$6-save" -c -t mangle | grep -- '--cluster-local-nodemask' | grep -v '^\[0:0\]'
"#;
    let (src, dst, len) = match family {
        Family::V4 => ("10.9.0.1", "10.9.0.2", "24"),
        Family::V6 => ("2001:db8::1", "2001:db8::2", "64"),
    };
    let o = Command::new("unshare")
        .args(["-n", "bash", "-c", script, "cluster", src, dst, len])
        .args([&nodes.to_string(), seed, family.tool()])
        .output()
        .expect("unshare runs");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}{}", String::from_utf8_lossy(&o.stderr));
    // iptables-save prints each rule's node as a mask.
    let mask = out
        .trim()
        .split("--cluster-local-nodemask 0x")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .expect("one counted rule");
    u32::from_str_radix(mask, 16).expect("a node mask").trailing_zeros() + 1
}

#[test]
fn cluster_picks_the_node_the_kernel_picks() {
    if !real_iptables() {
        return;
    }
    if !std::path::Path::new("/dev/net/tun").exists() {
        println!("SKIP: the cluster comparison sends through a TUN device: no /dev/net/tun");
        return;
    }
    for family in [Family::V4, Family::V6] {
        for (nodes, seed) in [(7u32, "0xdeadbeef"), (5, "0x1"), (32, "0x12345678")] {
            let want = kernel_cluster_node(family, nodes, seed);
            // rtrouter: the node's rule drops the datagram, every other node lets it pass.
            for k in 1..=nodes {
                let rules = format!(
                    "*mangle\n-A PREROUTING -m cluster --cluster-total-nodes {nodes} --cluster-local-node {k} --cluster-hash-seed {seed} -j DROP\nCOMMIT\n"
                );
                let v = validate(
                    &restore(&Ruleset::new(family), &rules, "t", false).unwrap(),
                    &Env::default(),
                )
                .unwrap();
                let l = Lab::new("*filter\nCOMMIT\n");
                l.router.swap_rules(v);
                let mut b = Vec::new();
                match family {
                    Family::V4 => b = udp("10.9.0.1", 40000, "10.9.0.2", 5000),
                    Family::V6 => {
                        let ip = rtrouter::packet::build::Ip6::new(
                            "2001:db8::1".parse().unwrap(),
                            "2001:db8::2".parse().unwrap(),
                        );
                        rtrouter::packet::build::udp(&mut b, ip, 40000, 5000, b"x\n");
                    }
                }
                let mut reply = rtrouter::router::Reply::default();
                let o = l.router.process(
                    rtrouter::router::Meta {
                        now: 1,
                        ingress: rtrouter::router::Ingress::Iface(l.router.topo.iface_id("lan0").unwrap()),
                        mark: 0,
                        seg: 0,
                        ct: None,
                    },
                    &mut b,
                    &mut reply,
                    &mut rtrouter::eval::SplitMix(1),
                    &mut (),
                );
                let dropped = matches!(o.disposition, rtrouter::router::Disposition::Drop(_));
                assert_eq!(
                    dropped,
                    k == want,
                    "{} cluster of {nodes} (seed {seed}): the kernel picks node {want}, node {k} {} here",
                    family.tool(),
                    if dropped { "takes it" } else { "does not" }
                );
            }
        }
    }
}

/// What the kernel's iptables prints for `list` (a shell command) after restoring `rules`,
/// in a network namespace of its own (without a network, so DNS names nothing).
fn kernel_listing(rules: &str, list: &str) -> String {
    let mut child = Command::new("unshare")
        .args(["-n", "sh", "-c", &format!("iptables-restore && {list}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("unshare runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(rules.as_bytes())
        .expect("written");
    let o = child.wait_with_output().expect("finishes");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// `iptables -L` without `-n` names addresses and ports from the system's files, as the
/// kernel's iptables does (in a namespace without a network, so DNS names nothing).
#[test]
fn listing_without_n_names_what_the_files_name() {
    if !real_iptables() {
        return;
    }
    let rules = "*filter\n\
        -A INPUT -s 127.0.0.1/32 -p tcp -m tcp --dport 22 -j ACCEPT\n\
        -A INPUT -s 127.0.0.0/8 -p udp -m udp --sport 53 --dport 1000:2000 -j DROP\n\
        -A INPUT -d 169.254.0.0/16 -p tcp -m tcp --sport 80:443 -j ACCEPT\n\
        -A INPUT -p tcp -m tcp ! --dport 65000 -j ACCEPT\n\
        COMMIT\n";
    let kernel = kernel_listing(rules, "iptables -L INPUT");
    use rtrouter::frontend::{memory::Memory, run, Tool};
    let m = Memory::default();
    assert_eq!(run(Tool::Restore, &[], rules, "stdin", &m).code, 0);
    let args = |a: &str| a.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    // (With -n, 1.8.9 prints protocol numbers where the newer iptables the shell suite
    // checks prints names; rtrouter follows the suite there.)
    let ours = run(Tool::Iptables, &args("-L INPUT"), "", "", &m).stdout;
    assert_eq!(ours, kernel);
    assert!(run(Tool::Iptables, &args("-L INPUT -n"), "", "", &m)
        .stdout
        .contains("tcp dpt:22"));
}

/// `iptables -L` prints each target's options in the target's own words (`print` of its
/// libxt module), as the kernel's iptables does.
#[test]
fn targets_list_as_the_kernels_iptables_lists_them() {
    if !real_iptables() {
        return;
    }
    let rules = "*filter\n\
        -A INPUT -j REJECT\n\
        -A INPUT -p tcp -j REJECT --reject-with tcp-reset\n\
        -A INPUT -j REJECT --reject-with icmp-host-prohibited\n\
        -A INPUT -j LOG\n\
        -A INPUT -j LOG --log-prefix \"fw: \" --log-level 6 --log-tcp-sequence --log-tcp-options --log-ip-options --log-uid --log-macdecode\n\
        -A INPUT -j NFLOG --nflog-group 5 --nflog-prefix \"x\" --nflog-size 100 --nflog-threshold 3\n\
        -A INPUT -j NFLOG\n\
        -A INPUT -j MARK --set-mark 0x1\n\
        -A INPUT -j MARK --set-xmark 0x1/0xff\n\
        -A INPUT -j MARK --and-mark 0xf0\n\
        -A INPUT -j MARK --or-mark 0x4\n\
        -A INPUT -j MARK --xor-mark 0x4\n\
        -A INPUT -j CONNMARK --set-mark 0x1\n\
        -A INPUT -j CONNMARK --save-mark\n\
        -A INPUT -j CONNMARK --restore-mark --nfmask 0xff --ctmask 0xff\n\
        -A INPUT -j CONNMARK --set-xmark 0x2/0x3\n\
        -A INPUT -p tcp -j SYNPROXY --sack-perm --timestamp --wscale 7 --mss 1460 --ecn\n\
        -A INPUT -j NFQUEUE --queue-num 3 --queue-bypass\n\
        -A INPUT -j NFQUEUE --queue-balance 2:3 --queue-cpu-fanout\n\
        -A INPUT -j NFQUEUE\n\
        -A INPUT -j TEE --gateway 10.0.0.1\n\
        -A FORWARD -p tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu\n\
        -A FORWARD -p tcp --tcp-flags SYN,RST SYN -j TCPMSS --set-mss 1400\n\
        -A FORWARD -j LOG --log-level 0\n\
        -A FORWARD -j LOG --log-level 3 --log-uid\n\
        -A FORWARD -j LOG --log-level 7\n\
        COMMIT\n\
        *mangle\n\
        -A PREROUTING -j TTL --ttl-set 5\n\
        -A PREROUTING -j TTL --ttl-dec 1\n\
        -A PREROUTING -j TTL --ttl-inc 2\n\
        -A PREROUTING -j TOS --set-tos 0x10\n\
        -A PREROUTING -j TOS --set-tos 0x10/0x3f\n\
        -A PREROUTING -j TOS --and-tos 0x1\n\
        -A PREROUTING -j TOS --or-tos 0x1\n\
        -A PREROUTING -j TOS --xor-tos 0x1\n\
        -A PREROUTING -j DSCP --set-dscp 10\n\
        -A PREROUTING -j DSCP --set-dscp-class EF\n\
        -A PREROUTING -j CHECKSUM --checksum-fill\n\
        -A POSTROUTING -j CLASSIFY --set-class 1:10\n\
        -A PREROUTING -j HMARK --hmark-tuple src,dst --hmark-mod 10 --hmark-offset 1 --hmark-rnd 0x1\n\
        -A PREROUTING -p tcp -j TCPOPTSTRIP --strip-options 2,3\n\
        -A PREROUTING -p tcp -j TPROXY --on-port 3129 --on-ip 10.0.0.1 --tproxy-mark 0x1/0x1\n\
        -A PREROUTING -j RATEEST --rateest-name e --rateest-interval 250ms --rateest-ewmalog 1s\n\
        -A PREROUTING -j TOS --set-tos 0x00/0x3f\n\
        -A PREROUTING -j TOS --set-tos 0x11/0x3f\n\
        -A PREROUTING -j TOS --and-tos 0x0\n\
        -A PREROUTING -j MARK --set-mark 0\n\
        -A PREROUTING -j HMARK --hmark-tuple ct --hmark-mod 7 --hmark-rnd 0x5\n\
        -A PREROUTING -j HMARK --hmark-tuple src,sport --hmark-mod 2 --hmark-rnd 0x0 --hmark-offset 3\n\
        -A PREROUTING -j HMARK --hmark-src-prefix 16 --hmark-sport-mask 0xff --hmark-spi 0x1 --hmark-proto-mask 0x3 --hmark-mod 5 --hmark-rnd 0x9\n\
        -A PREROUTING -p tcp -j TCPOPTSTRIP --strip-options 4,5,8,19,30\n\
        -A PREROUTING -p tcp -j TPROXY --on-port 3129\n\
        COMMIT\n\
        *nat\n\
        -A PREROUTING -p tcp -j DNAT --to-destination 10.0.0.1:80\n\
        -A PREROUTING -j DNAT --to-destination 10.0.0.1-10.0.0.5\n\
        -A PREROUTING -p tcp -j DNAT --to-destination 10.0.0.1:80-90 --random --persistent\n\
        -A PREROUTING -p tcp -j REDIRECT --to-ports 8080\n\
        -A PREROUTING -j REDIRECT\n\
        -A PREROUTING -p tcp -j REDIRECT --to-ports 8080-8090 --random\n\
        -A PREROUTING -j NETMAP --to 10.1.0.0/24\n\
        -A POSTROUTING -j MASQUERADE\n\
        -A POSTROUTING -p tcp -j MASQUERADE --to-ports 1024-2048 --random-fully\n\
        -A POSTROUTING -j SNAT --to-source 1.2.3.4\n\
        -A POSTROUTING -p udp -j SNAT --to-source 1.2.3.4:1000-2000 --random-fully\n\
        COMMIT\n\
        *raw\n\
        -A PREROUTING -j CT --notrack\n\
        -A PREROUTING -j CT --zone 5\n\
        -A PREROUTING -j CT --ctevents new,related --expevents new\n\
        -A PREROUTING -j NOTRACK\n\
        -A PREROUTING -j TRACE\n\
        COMMIT\n";
    let list = "for t in filter mangle nat raw; do iptables -t $t -L; iptables -t $t -L -n; done";
    let kernel = kernel_listing(rules, list);
    use rtrouter::frontend::{memory::Memory, run, Tool};
    let m = Memory::default();
    let r = run(Tool::Restore, &[], rules, "stdin", &m);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut ours = String::new();
    for t in ["filter", "mangle", "nat", "raw"] {
        for n in [&["-L"][..], &["-L", "-n"]] {
            let args: Vec<String> = ["-t", t].iter().chain(n).map(|s| s.to_string()).collect();
            ours.push_str(&run(Tool::Iptables, &args, "", "", &m).stdout);
        }
    }
    // With -n, 1.8.9 prints protocol numbers where the newer iptables the shell suite checks
    // prints names, and rtrouter follows the suite: compare the rest.
    let kernel = kernel
        .replace("  6    --", "  tcp  --")
        .replace("  17   --", "  udp  --")
        .replace("  0    --", "  all  --");
    let wrong: Vec<String> = kernel
        .lines()
        .zip(ours.lines())
        .filter(|(k, o)| k != o)
        .map(|(k, o)| format!("kernel: {k:?}\nours:   {o:?}"))
        .collect();
    assert!(wrong.is_empty(), "{} lines differ:\n{}", wrong.len(), wrong.join("\n"));
    assert_eq!(kernel.lines().count(), ours.lines().count());
}
