//! The `rtrouter` command line. Errors become one line each on stderr and exit code 1; usage
//! errors exit 2 (clap's convention).

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use rtrouter::config::Config;
use rtrouter::ruleset::restore::restore;
use rtrouter::ruleset::{validate, Env, Errors, Ruleset, ValidRuleset};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "rtrouter", version, about = "A userspace router with netfilter's semantics")]
struct Cli {
    /// The router configuration to run (`rtrouter --config router.toml`).
    #[arg(long, global = false)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

/// Where a ruleset comes from: a config (its rules and ipsets) or one iptables-restore file.
#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
struct Source {
    /// A router.toml: its rule files, inline rules and TOML chains.
    #[arg(long)]
    config: Option<PathBuf>,
    /// An iptables-restore file.
    #[arg(long)]
    rules: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate a config or ruleset; print a summary per table, or every error.
    Check(Source),
    /// Print a ruleset in canonical iptables-save form.
    Save {
        #[command(flatten)]
        source: Source,
        /// Include each rule's [packets:bytes] counters.
        #[arg(short = 'c', long = "counters")]
        counters: bool,
    },
}

/// Loads what `src` names into a validated ruleset, plus the config when there is one.
fn load(src: &Source) -> Result<(ValidRuleset, Option<Config>), Errors> {
    if let Some(path) = &src.config {
        let cfg = Config::load(path)?;
        let rs = cfg.ruleset()?;
        return Ok((rs, Some(cfg)));
    }
    let path = src.rules.as_deref().unwrap_or(Path::new("-"));
    let text = std::fs::read_to_string(path).map_err(|e| {
        Errors(vec![rtrouter::ruleset::Error {
            file: path.display().to_string().into(),
            line: 0,
            col: 0,
            token: String::new(),
            msg: format!("cannot read: {e}"),
        }])
    })?;
    let rs = restore(&Ruleset::default(), &text, &path.display().to_string(), false)?;
    Ok((validate(&rs, &Env::default())?, None))
}

fn summary(rs: &ValidRuleset) -> String {
    let mut out = String::new();
    for t in rs.tables.iter().flatten() {
        let rules: usize = t.chains.iter().map(|c| c.rules.len()).sum();
        let user = t.chains.iter().filter(|c| c.policy.is_none()).count();
        out += &format!(
            "{}: {} chains ({} user), {} rules\n",
            t.kind,
            t.chains.len(),
            user,
            rules
        );
    }
    if out.is_empty() {
        out = "no tables: every packet is accepted\n".into();
    }
    out
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Some(Command::Check(src)) => match load(&src) {
            Ok((rs, cfg)) => {
                if let Some(cfg) = cfg {
                    println!(
                        "{}: ok ({} interfaces, {} routes, {} ipsets, {} plugins)",
                        cfg.path.display(),
                        cfg.interface.len(),
                        cfg.route.len(),
                        cfg.ipset.len(),
                        cfg.plugin.len()
                    );
                }
                print!("{}", summary(&rs));
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("{e}");
                eprintln!("{} error(s)", e.0.len());
                Ok(ExitCode::from(1))
            }
        },
        Some(Command::Save { source, counters }) => match load(&source) {
            Ok((rs, _)) => {
                print!("{}", rs.source.save(None, counters));
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("{e}");
                Ok(ExitCode::from(1))
            }
        },
        None => {
            let path = cli
                .config
                .context("nothing to do: give --config router.toml, or a command (see --help)")?;
            let src = Source {
                config: Some(path),
                rules: None,
            };
            match load(&src) {
                Ok((rs, Some(cfg))) => {
                    println!("{}: configuration is valid", cfg.path.display());
                    print!("{}", summary(&rs));
                    for i in &cfg.interface {
                        let addrs: Vec<String> = i.addresses.iter().map(|a| a.get_ref().to_string()).collect();
                        let ns = i.netns.as_deref().map(|n| format!(" in netns {n}")).unwrap_or_default();
                        println!(
                            "would attach TUN {}{ns}: {} mtu {}",
                            i.name.get_ref(),
                            addrs.join(" "),
                            i.mtu
                        );
                    }
                    eprintln!("the packet dataplane is not part of this build yet: exiting after validation");
                    Ok(ExitCode::SUCCESS)
                }
                Ok((_, None)) => unreachable!("a config source yields a config"),
                Err(e) => {
                    eprintln!("{e}");
                    Ok(ExitCode::from(1))
                }
            }
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("rtrouter: {e:#}");
            ExitCode::from(1)
        }
    }
}
