//! Help texts: `iptables -h` and the help of the extensions a command line names
//! (`iptables -p tcp -j DNAT --help`), `iptables-save/-restore --help`, `ipset help`. Printed
//! by the client; no router is needed (they work for unprivileged users, as iptables' do).

use super::IPTABLES_VERSION;

const MAIN: &str = "Usage: iptables -[ACD] chain rule-specification [options]
       iptables -I chain [rulenum] rule-specification [options]
       iptables -R chain rulenum rule-specification [options]
       iptables -D chain rulenum [options]
       iptables -[LS] [chain [rulenum]] [options]
       iptables -[FZ] [chain] [options]
       iptables -[NX] chain
       iptables -E old-chain-name new-chain-name
       iptables -P chain target [options]
       iptables -h (print this help information)

Commands:
Either long or short options are allowed.
  --append  -A chain\t\tAppend to chain
  --check   -C chain\t\tCheck for the existence of a rule
  --delete  -D chain\t\tDelete matching rule from chain
  --delete  -D chain rulenum
\t\t\t\tDelete rule rulenum (1 = first) from chain
  --insert  -I chain [rulenum]
\t\t\t\tInsert in chain as rulenum (default 1=first)
  --replace -R chain rulenum
\t\t\t\tReplace rule rulenum (1 = first) in chain
  --list    -L [chain [rulenum]]
\t\t\t\tList the rules in a chain or all chains
  --list-rules -S [chain [rulenum]]
\t\t\t\tPrint the rules in a chain or all chains
  --flush   -F [chain]\t\tDelete all rules in  chain or all chains
  --zero    -Z [chain [rulenum]]
\t\t\t\tZero counters in chain or all chains
  --new     -N chain\t\tCreate a new user-defined chain
  --delete-chain
            -X [chain]\t\tDelete a user-defined chain
  --policy  -P chain target
\t\t\t\tChange policy on chain to target
  --rename-chain
            -E old-chain new-chain
\t\t\t\tChange chain name, (moving any references)

Options:
    --ipv4\t-4\t\tNothing (line is ignored by ip6tables-restore)
    --ipv6\t-6\t\tError (line is ignored by iptables-restore)
[!] --protocol\t-p proto\tprotocol: by number or name, eg. `tcp'
[!] --source\t-s address[/mask][...]
\t\t\t\tsource specification
[!] --destination -d address[/mask][...]
\t\t\t\tdestination specification
[!] --in-interface -i input name[+]
\t\t\t\tnetwork interface name ([+] for wildcard)
 --jump\t-j target
\t\t\t\ttarget for rule (may load target extension)
  --goto      -g chain
\t\t\t       jump to chain with no return
  --match\t-m match
\t\t\t\textended match (may load extension)
  --numeric\t-n\t\tnumeric output of addresses and ports
[!] --out-interface -o output name[+]
\t\t\t\tnetwork interface name ([+] for wildcard)
  --table\t-t table\ttable to manipulate (default: `filter')
  --verbose\t-v\t\tverbose mode
  --wait\t-w [seconds]\tmaximum wait to acquire xtables lock before give up
                                (rtrouter serialises changes itself: accepted, never needed)
  --line-numbers\t\tprint line numbers when listing
  --exact\t-x\t\texpand numbers (display exact values)
[!] --fragment\t-f\t\tmatch second or further fragments only
  --modprobe=<command>\t\ttry to insert modules using this command
  --set-counters -c PKTS BYTES\tset the counter during insert/append
[!] --version\t-V\t\tprint package version.

The rules act on the running rtrouter found through $RTROUTER_SOCKET
(default /run/rtrouter.sock).
";

/// Help of one extension, by the name `-m`/`-p` or `-j` takes.
fn extension(name: &str, target: bool) -> Option<&'static str> {
    Some(match (name, target) {
        ("tcp", false) => {
            "tcp match options:
[!] --tcp-flags mask comp\tmatch when TCP flags & mask == comp
\t\t\t\t(Flags: SYN ACK FIN RST URG PSH ALL NONE)
[!] --syn\t\t\tmatch when only SYN flag set
\t\t\t\t(equivalent to --tcp-flags SYN,RST,ACK,FIN SYN)
[!] --source-port port[:port]
 --sport ...
\t\t\t\tmatch source port(s)
[!] --destination-port port[:port]
 --dport ...
\t\t\t\tmatch destination port(s)
[!] --tcp-option number        match if TCP option set
"
        }
        ("udp", false) => {
            "udp match options:
[!] --source-port port[:port]
 --sport ...
\t\t\t\tmatch source port(s)
[!] --destination-port port[:port]
 --dport ...
\t\t\t\tmatch destination port(s)
"
        }
        ("icmp", false) => {
            "icmp match options:
[!] --icmp-type typename\tmatch icmp type
[!] --icmp-type type[/code]\tor numeric type or type/code
Valid ICMP Types:
any
echo-reply (pong)
destination-unreachable
   network-unreachable
   host-unreachable
   protocol-unreachable
   port-unreachable
   fragmentation-needed
   source-route-failed
   network-unknown
   host-unknown
   network-prohibited
   host-prohibited
   TOS-network-unreachable
   TOS-host-unreachable
   communication-prohibited
   host-precedence-violation
   precedence-cutoff
source-quench
redirect
   network-redirect
   host-redirect
   TOS-network-redirect
   TOS-host-redirect
echo-request (ping)
router-advertisement
router-solicitation
time-exceeded (ttl-exceeded)
   ttl-zero-during-transit
   ttl-zero-during-reassembly
parameter-problem
   ip-header-bad
   required-option-missing
timestamp-request
timestamp-reply
address-mask-request
address-mask-reply
"
        }
        ("limit", false) => {
            "limit match options:
--limit avg\t\t\tmax average match rate: default 3/hour
                                [Packets per second unless followed by 
                                /sec /minute /hour /day postfixes]
--limit-burst number\t\tnumber to match in a burst, default 5
"
        }
        ("conntrack", false) => {
            "conntrack match options:
[!] --ctstate {INVALID|ESTABLISHED|NEW|RELATED|UNTRACKED|SNAT|DNAT}[,...]
                               State(s) to match
[!] --ctproto proto            Protocol to match; by number or name, e.g. \"tcp\"
[!] --ctorigsrc address[/mask]
[!] --ctorigdst address[/mask]
[!] --ctreplsrc address[/mask]
[!] --ctrepldst address[/mask]
                               Original/Reply source/destination address
[!] --ctorigsrcport port
[!] --ctorigdstport port
[!] --ctreplsrcport port
[!] --ctrepldstport port
                               TCP/UDP/SCTP orig./reply source/destination port
[!] --ctstatus {NONE|EXPECTED|SEEN_REPLY|ASSURED|CONFIRMED}[,...]
                               Status(es) to match
[!] --ctexpire time[:time]     Match remaining lifetime in seconds against
                               value or range of values (inclusive)
    --ctdir {ORIGINAL|REPLY}   Flow direction of packet
"
        }
        ("state", false) => {
            "state match options:
 [!] --state [INVALID|ESTABLISHED|NEW|RELATED|UNTRACKED][,...]
                               State(s) to match
"
        }
        ("mark", false) => "mark match options:\n[!] --mark value[/mask]    Match nfmark value with optional mask\n",
        ("comment", false) => "comment match options:\n--comment COMMENT             Attach a comment to a rule\n",
        ("multiport", false) => {
            "multiport match options:
[!] --source-ports port[,port:port,port...]
 --sports ...
\t\t\t\tmatch source port(s)
[!] --destination-ports port[,port:port,port...]
 --dports ...
\t\t\t\tmatch destination port(s)
[!] --ports port[,port:port,port]
\t\t\t\tmatch both source and destination port(s)
"
        }
        ("set", false) => {
            "set match options:
 [!] --match-set name flags [--return-nomatch]
   [! --update-counters] [! --update-subcounters]
   [[!] --packets-lt value | --packets-eq value | --packets-gt value
   [[!] --bytes-lt value | --bytes-eq value | --bytes-gt value
\t\t 'name' is the set name from to match,
\t\t 'flags' are the comma separated list of
\t\t 'src' and 'dst' specifications.
"
        }
        ("addrtype", false) => {
            "Address type match options:
 [!] --src-type type[,...]      Match source address type
 [!] --dst-type type[,...]      Match destination address type
     --limit-iface-in           Match only on the packet's incoming device
     --limit-iface-out          Match only on the packet's outgoing device

Valid types:           
                                UNSPEC
                                UNICAST
                                LOCAL
                                BROADCAST
                                ANYCAST
                                MULTICAST
                                BLACKHOLE
                                UNREACHABLE
                                PROHIBIT
                                THROW
                                NAT
                                XRESOLVE
"
        }
        ("DNAT", true) => {
            "DNAT target options:
 --to-destination [<ipaddr>[-<ipaddr>]][:port[-port[/port]]]
\t\t\t\tAddress to map destination to.
[--random] [--persistent]
"
        }
        ("SNAT", true) => {
            "SNAT target options:
 --to-source [<ipaddr>[-<ipaddr>]][:port[-port]]
\t\t\t\tAddress to map source to.
[--random] [--random-fully] [--persistent]
"
        }
        ("MASQUERADE", true) => {
            "MASQUERADE target options:
 --to-ports <port>[-<port>]
\t\t\t\tPort (range) to map to.
 --random
\t\t\t\tRandomize source port.
 --random-fully
\t\t\t\tFully randomize source port.
"
        }
        ("REJECT", true) => {
            "REJECT target options:
--reject-with type              drop input packet and send back
                                a reply packet according to type:
Valid reject types:
    icmp-net-unreachable           ICMP network unreachable
    net-unreach                    alias
    icmp-host-unreachable          ICMP host unreachable
    host-unreach                   alias
    icmp-proto-unreachable         ICMP protocol unreachable
    proto-unreach                  alias
    icmp-port-unreachable          ICMP port unreachable (default)
    port-unreach                   alias
    icmp-net-prohibited            ICMP network prohibited
    net-prohib                     alias
    icmp-host-prohibited           ICMP host prohibited
    host-prohib                    alias
    tcp-reset                      TCP RST packet
    tcp-rst                        alias
    icmp-admin-prohibited          ICMP administratively prohibited (*)
    admin-prohib                   alias
(*) See man page or read the INCOMPATIBILITES file for compatibility issues.
"
        }
        ("LOG", true) => {
            "LOG target options:
 --log-level level\t\tLevel of logging (numeric or see syslog.conf)
 --log-prefix prefix\t\tPrefix log messages with this prefix.

 --log-tcp-sequence\t\tLog TCP sequence numbers.

 --log-tcp-options\t\tLog TCP options.

 --log-ip-options\t\tLog IP options.

 --log-uid\t\t\tLog UID owning the local socket.

 --log-macdecode\t\tDecode MAC addresses and protocol.

"
        }
        ("MARK", true) => {
            "MARK target options:
  --set-xmark value[/mask]  Clear bits in mask and XOR value into nfmark
  --set-mark value[/mask]   Clear bits in mask and OR value into nfmark
  --and-mark bits           Binary AND the nfmark with bits
  --or-mark bits            Binary OR the nfmark with bits
  --xor-mark bits           Binary XOR the nfmark with bits
"
        }
        ("REDIRECT", true) => {
            "REDIRECT target options:
 --to-ports <port>[-<port>]
\t\t\t\tPort (range) to map to.
 [--random]
"
        }
        ("TEE", true) => {
            "TEE target options:
  --gateway IPADDR    Route packet via the gateway given by address
  --oif NAME          Include oif in route calculation
(rtrouter does not implement TEE: a rule using it is refused)
"
        }
        _ => return None,
    })
}

/// `iptables -h` with the extensions the command line names (`-p`, `-m`, `-j`).
pub fn iptables(args: &[String]) -> String {
    let mut out = format!("iptables v{IPTABLES_VERSION}\n\n{MAIN}");
    let mut seen: Vec<(String, bool)> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let target = match a.as_str() {
            "-p" | "--protocol" | "-m" | "--match" => false,
            "-j" | "--jump" => true,
            _ => continue,
        };
        if let Some(n) = it.next() {
            if !seen.contains(&(n.clone(), target)) {
                seen.push((n.clone(), target));
            }
        }
    }
    // iptables prints match help before target help, each after a blank line.
    seen.sort_by_key(|(_, t)| *t);
    for (n, t) in seen {
        out.push('\n');
        match extension(&n, t) {
            Some(h) => out.push_str(h),
            None => out.push_str(&format!(
                "{n}: no help available (not an extension rtrouter implements)\n"
            )),
        }
    }
    out
}

/// `iptables-save --help` / `iptables-restore --help`.
pub fn save_restore(tool: super::Tool) -> String {
    match tool {
        super::Tool::Save | super::Tool::Save6 => "Usage: iptables-save [-c] [-t table] [-f file]
[ --counters ]
[ --table=<TABLE> ]
[ --modprobe=<command> ]
[ --file=<FILE> ]
"
        .into(),
        _ => "Usage: iptables-restore [-c] [-v] [-V] [-t] [-h] [-n] [-w secs] [-W usecs] [-T table] [-M command] [file]
\t   [ --counters ]
\t   [ --verbose ]
\t   [ --version]
\t   [ --test ]
\t   [ --help ]
\t   [ --noflush ]
\t   [ --wait=<seconds>
\t   [ --wait-interval=<usecs>
\t   [ --table=<TABLE> ]
\t   [ --modprobe=<command> ]
"
        .into(),
    }
}

/// `ipset help`.
pub fn ipset() -> String {
    "ipset v7.17

Usage: ipset [options] COMMAND

Commands:
create SETNAME TYPENAME [type-specific-options]
        Create a new set
add SETNAME ENTRY
        Add entry to the named set
del SETNAME ENTRY
        Delete entry from the named set
test SETNAME ENTRY
        Test entry in the named set
destroy [SETNAME]
        Destroy a named set or all sets
list [SETNAME]
        List the entries of a named set or all sets
save [SETNAME]
        Save the named set or all sets to stdout
restore
        Restore a saved state
flush [SETNAME]
        Flush a named set or all sets
rename FROM-SETNAME TO-SETNAME
        Rename two sets
swap FROM-SETNAME TO-SETNAME
        Swap the contect of two existing sets
help [TYPENAME]
        Print help, and settype specific help
version
        Print version information

Options:
-o plain|save|xml
       Specify output mode for listing sets.
       Default value for \"list\" command is mode \"plain\"
       and for \"save\" command is mode \"save\".
-s
        Print elements sorted (if supported by the set type).
-q
        Suppress any notice or warning message.
-r
        Try to resolve IP addresses in the output (slow!)
-!
        Ignore errors when creating or adding sets or
        elements that do exist or when deleting elements
        that don't exist.
-n
        When listing, just list setnames from kernel.

-t
        When listing, list setnames and set headers
        from kernel only.
-f
        Read from the given file instead of standard
        input (restore) or write to given file (save).

Supported set types (rtrouter):
    bitmap:port, hash:ip, hash:net, hash:ip,port, hash:net,port, hash:ip,port,ip
"
    .into()
}
