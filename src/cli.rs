//! The command line every stage shares.
//!
//! Each stage accepts the flags of the features it has, and `--help` lists
//! exactly those, so `stage2 --cache-size 1M` is an error rather than a flag
//! silently ignored. Parsing is hand-written: a dozen flags do not need a
//! crate, and the whole grammar fits on one screen.
//!
//! The defaults are the safe ones: listen on 127.0.0.1 only, so a proxy
//! started on a laptop is not an open proxy for the whole network.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process;
use std::sync::Arc;
use std::time::Duration;

use crate::access::AccessConfig;
use crate::acl::ClientAcl;
use crate::cache::{Cache, CacheConfig, SystemClock};
use crate::connect::TunnelConfig;
use crate::filter::LiveRules;
use crate::relay::Timeouts;
use crate::server;
use crate::tunnel::{PortPolicy, Tunnels};

/// A group of flags that a stage may or may not offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feature {
    /// `--threads`, `--max-connections`, `--idle-timeout` (stage 2).
    Pool,
    /// `--cache-size`, `--max-object-size`, `--cache-dir` (stage 3).
    Cache,
    /// `--connect-ports`, `--tunnel-idle-timeout`, `--max-tunnels` (stage 4).
    Tunnel,
    /// `--block`, `--allow`, `--allow-clients` (stage 5).
    Filter,
}

/// Everything the command line can set. Fields of features a stage lacks
/// keep their defaults.
#[derive(Clone, Debug)]
pub struct Options {
    pub bind: IpAddr,
    pub port: u16,
    pub timeouts: Timeouts,
    pub threads: usize,
    pub max_connections: usize,
    pub cache_size: u64,
    pub max_object_size: u64,
    pub cache_dir: Option<PathBuf>,
    pub connect_ports: String,
    pub tunnel_idle_timeout: Duration,
    pub max_tunnels: usize,
    pub block_files: Vec<PathBuf>,
    pub allow_files: Vec<PathBuf>,
    pub allow_clients: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        let server = server::Config::default();
        Options {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 8080,
            timeouts: server.timeouts,
            threads: server.threads,
            max_connections: server.max_connections,
            cache_size: 64 << 20,
            max_object_size: 8 << 20,
            cache_dir: None,
            connect_ports: "443".to_string(),
            tunnel_idle_timeout: Duration::from_secs(300),
            max_tunnels: 256,
            block_files: Vec::new(),
            allow_files: Vec::new(),
            allow_clients: None,
        }
    }
}

impl Options {
    pub fn listen_addr(&self) -> SocketAddr {
        SocketAddr::new(self.bind, self.port)
    }

    /// Stage 3's cache, opened (and, with `--cache-dir`, loaded from disk).
    pub fn open_cache(&self) -> std::io::Result<Cache> {
        let config = CacheConfig {
            max_bytes: usize::try_from(self.cache_size).unwrap_or(usize::MAX),
            max_object_bytes: usize::try_from(self.max_object_size).unwrap_or(usize::MAX),
            dir: self.cache_dir.clone(),
        };
        Cache::new(config, Arc::new(SystemClock))
    }

    /// Stage 4's tunnel settings; fails when `--connect-ports` does not parse.
    pub fn tunnel_config(&self) -> Result<TunnelConfig, String> {
        let ports = PortPolicy::parse(&self.connect_ports)
            .map_err(|e| format!("--connect-ports {:?}: {e}", self.connect_ports))?;
        let tunnels = Tunnels::new(self.max_tunnels, self.tunnel_idle_timeout);
        Ok(TunnelConfig { tunnels, ports })
    }

    // ANCHOR: access_config
    /// Stage 5's access rules. Refuses to build an open proxy: listening
    /// beyond loopback needs an explicit `--allow-clients`.
    pub fn access_config(&self) -> Result<AccessConfig, String> {
        let clients = match &self.allow_clients {
            Some(spec) => ClientAcl::parse(spec).map_err(|e| format!("--allow-clients: {e}"))?,
            None if self.bind.is_loopback() => ClientAcl::loopback(),
            None => {
                return Err(format!(
                    "refusing to listen on {} without --allow-clients: anyone who can reach \
                     this address could use the proxy (an open proxy). Name the networks \
                     that may use it, e.g. --allow-clients 192.168.1.0/24",
                    self.bind
                ));
            }
        };
        let rules =
            LiveRules::load(&self.block_files, &self.allow_files).map_err(|e| e.to_string())?;
        Ok(AccessConfig { rules, clients })
    }
    // ANCHOR_END: access_config

    pub fn server_config(&self) -> server::Config {
        server::Config {
            threads: self.threads,
            max_connections: self.max_connections,
            timeouts: self.timeouts,
            upstream: Default::default(),
        }
    }
}

/// What the command line asked for.
#[derive(Debug)]
pub enum Command {
    Run(Box<Options>),
    Help(String),
    /// `block DOMAIN --file FILE` (stage 5): add a rule to a rules file.
    Block {
        rule: String,
        file: PathBuf,
    },
    /// `unblock DOMAIN --file FILE` (stage 5): remove a rule.
    Unblock {
        rule: String,
        file: PathBuf,
    },
}

struct Flag {
    name: &'static str,
    value: &'static str,
    help: &'static str,
    feature: Option<Feature>,
}

const FLAGS: &[Flag] = &[
    Flag {
        name: "--port",
        value: "N",
        help: "port to listen on; 0 picks a free one (default 8080)",
        feature: None,
    },
    Flag {
        name: "--bind",
        value: "ADDR",
        help: "address to listen on (default 127.0.0.1)",
        feature: None,
    },
    Flag {
        name: "--connect-timeout",
        value: "SECS",
        help: "give up connecting to an origin after this long (default 10)",
        feature: None,
    },
    Flag {
        name: "--read-timeout",
        value: "SECS",
        help: "give up on a silent origin or client after this long (default 30)",
        feature: None,
    },
    Flag {
        name: "--threads",
        value: "N",
        help: "worker threads (default 64)",
        feature: Some(Feature::Pool),
    },
    Flag {
        name: "--max-connections",
        value: "N",
        help: "open client connections at most; more get 503 (default 512)",
        feature: Some(Feature::Pool),
    },
    Flag {
        name: "--idle-timeout",
        value: "SECS",
        help: "close idle persistent client connections after this long (default 15)",
        feature: Some(Feature::Pool),
    },
    Flag {
        name: "--cache-size",
        value: "BYTES",
        help: "total cache size, e.g. 64M (default 64 MiB)",
        feature: Some(Feature::Cache),
    },
    Flag {
        name: "--max-object-size",
        value: "BYTES",
        help: "largest response the cache keeps (default 8 MiB)",
        feature: Some(Feature::Cache),
    },
    Flag {
        name: "--cache-dir",
        value: "DIR",
        help: "keep cached responses in DIR across restarts (default: memory only)",
        feature: Some(Feature::Cache),
    },
    Flag {
        name: "--connect-ports",
        value: "LIST",
        help: "ports CONNECT may reach, e.g. 443,8443,9000-9100 (default 443)",
        feature: Some(Feature::Tunnel),
    },
    Flag {
        name: "--tunnel-idle-timeout",
        value: "SECS",
        help: "close tunnels where nothing moved for this long (default 300)",
        feature: Some(Feature::Tunnel),
    },
    Flag {
        name: "--max-tunnels",
        value: "N",
        help: "open CONNECT tunnels at most (default 256)",
        feature: Some(Feature::Tunnel),
    },
    Flag {
        name: "--block",
        value: "FILE",
        help: "refuse hosts listed in FILE; may be repeated",
        feature: Some(Feature::Filter),
    },
    Flag {
        name: "--allow",
        value: "FILE",
        help: "allow only hosts listed in FILE; may be repeated",
        feature: Some(Feature::Filter),
    },
    Flag {
        name: "--allow-clients",
        value: "CIDR,...",
        help: "client networks allowed to use the proxy (default: loopback)",
        feature: Some(Feature::Filter),
    },
];

/// The `--help` text for a stage with these features.
pub fn usage(program: &str, about: &str, features: &[Feature]) -> String {
    let mut text = format!("{program}: {about}\n\nUsage: {program} [OPTIONS]\n\nOptions:\n");
    for flag in FLAGS
        .iter()
        .filter(|f| f.feature.is_none_or(|x| features.contains(&x)))
    {
        let left = format!("{} {}", flag.name, flag.value);
        text.push_str(&format!("  {left:<26} {}\n", flag.help));
    }
    text.push_str(&format!("  {:<26} {}\n", "--help", "print this help"));
    if features.contains(&Feature::Filter) {
        text.push_str(&format!(
            "\nEditing rules files (the running proxy picks up the change):\n  \
             {program} block DOMAIN --file FILE\n  {program} unblock DOMAIN --file FILE\n"
        ));
    }
    text.push_str("\nLogging: RUST_LOG=debug for more detail (default info).\n");
    text
}

// ANCHOR: parse
/// Parses the arguments after the program name.
pub fn parse(
    args: impl IntoIterator<Item = String>,
    program: &str,
    about: &str,
    features: &[Feature],
) -> Result<Command, String> {
    let mut options = Options::default();
    let mut args = args.into_iter().peekable();
    if features.contains(&Feature::Filter)
        && let Some(verb) = args.next_if(|a| a == "block" || a == "unblock")
    {
        return parse_edit(&verb, args.collect());
    }
    while let Some(arg) = args.next() {
        if arg == "--help" || arg == "-h" {
            return Ok(Command::Help(usage(program, about, features)));
        }
        // Accept both `--port 8080` and `--port=8080`.
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let Some(flag) = FLAGS.iter().find(|f| f.name == name) else {
            return Err(format!("unknown argument {arg:?}"));
        };
        if let Some(feature) = flag.feature
            && !features.contains(&feature)
        {
            return Err(format!("{name} is not available in {program}"));
        }
        let value = match inline.or_else(|| args.next()) {
            Some(v) => v,
            None => return Err(format!("{name} needs a value ({})", flag.value)),
        };
        apply(&mut options, &name, &value).map_err(|e| format!("{name} {value:?}: {e}"))?;
    }
    Ok(Command::Run(Box::new(options)))
}
// ANCHOR_END: parse

/// `block RULE --file FILE` or `unblock RULE --file FILE`.
fn parse_edit(verb: &str, args: Vec<String>) -> Result<Command, String> {
    let usage = format!("usage: {verb} DOMAIN --file FILE");
    let (rule, file) = match args.as_slice() {
        [rule, flag, file] if flag == "--file" => (rule, file),
        [flag, file, rule] if flag == "--file" => (rule, file),
        _ => return Err(usage),
    };
    let (rule, file) = (rule.clone(), PathBuf::from(file));
    Ok(if verb == "block" {
        Command::Block { rule, file }
    } else {
        Command::Unblock { rule, file }
    })
}

fn apply(o: &mut Options, name: &str, value: &str) -> Result<(), String> {
    match name {
        "--port" => o.port = value.parse().map_err(|_| "not a port number")?,
        "--bind" => o.bind = value.parse().map_err(|_| "not an IP address")?,
        "--connect-timeout" => o.timeouts.connect = seconds(value)?,
        "--read-timeout" => {
            o.timeouts.upstream_read = seconds(value)?;
            o.timeouts.client_read = o.timeouts.upstream_read;
        }
        "--threads" => o.threads = count(value)?,
        "--max-connections" => o.max_connections = count(value)?,
        "--idle-timeout" => o.timeouts.client_idle = seconds(value)?,
        "--cache-size" => o.cache_size = bytes(value)?,
        "--max-object-size" => o.max_object_size = bytes(value)?,
        "--cache-dir" => o.cache_dir = Some(PathBuf::from(value)),
        "--connect-ports" => o.connect_ports = value.to_string(),
        "--tunnel-idle-timeout" => o.tunnel_idle_timeout = seconds(value)?,
        "--max-tunnels" => o.max_tunnels = count(value)?,
        "--block" => o.block_files.push(PathBuf::from(value)),
        "--allow" => o.allow_files.push(PathBuf::from(value)),
        "--allow-clients" => o.allow_clients = Some(value.to_string()),
        _ => return Err("unknown flag".into()),
    }
    Ok(())
}

/// A positive whole number.
fn count(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("expected a whole number above 0".into()),
    }
}

/// Seconds, possibly fractional: `30`, `0.5`.
fn seconds(value: &str) -> Result<Duration, String> {
    match value.parse::<f64>() {
        Ok(s) if s > 0.0 && s.is_finite() && s < 1e9 => Ok(Duration::from_secs_f64(s)),
        _ => Err("expected a number of seconds above 0".into()),
    }
}

/// A size with an optional binary suffix: `4096`, `512K`, `64M`, `1G`,
/// `64MiB`.
pub fn bytes(value: &str) -> Result<u64, String> {
    let v = value.trim();
    let digits = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (number, suffix) = v.split_at(digits);
    let n: u64 = number.parse().map_err(|_| "expected a size such as 64M")?;
    let shift = match suffix.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err("unknown size suffix (use K, M or G)".into()),
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| "size is too large".to_string())
}

/// Parses `std::env::args()`, printing help or an error and exiting when
/// there is nothing to run.
pub fn parse_or_exit(program: &str, about: &str, features: &[Feature]) -> Options {
    match parse(std::env::args().skip(1), program, about, features) {
        Ok(Command::Run(options)) => *options,
        Ok(Command::Help(text)) => {
            print!("{text}");
            process::exit(0);
        }
        Ok(Command::Block { rule, file }) => edit_and_exit(program, &rule, &file, true),
        Ok(Command::Unblock { rule, file }) => edit_and_exit(program, &rule, &file, false),
        Err(e) => {
            eprintln!("{program}: {e}\nTry '{program} --help'.");
            process::exit(2);
        }
    }
}

/// Carries out `block` / `unblock` and exits.
fn edit_and_exit(program: &str, rule: &str, file: &std::path::Path, block: bool) -> ! {
    let result = if block {
        crate::filter::edit::block(file, rule)
    } else {
        crate::filter::edit::unblock(file, rule)
    };
    match result {
        Ok(true) if block => println!("added {rule} to {}", file.display()),
        Ok(true) => println!("removed {rule} from {}", file.display()),
        Ok(false) => println!("{} unchanged", file.display()),
        Err(e) => fail(program, format!("{}: {e}", file.display())),
    }
    process::exit(0);
}

/// Prints `message` and exits with status 1: for setup errors such as a port
/// that is already in use.
pub fn fail(program: &str, message: impl std::fmt::Display) -> ! {
    eprintln!("{program}: {message}");
    process::exit(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str], features: &[Feature]) -> Result<Options, String> {
        match parse(args.iter().map(|s| s.to_string()), "t", "test", features)? {
            Command::Run(o) => Ok(*o),
            other => Err(format!("{other:?}")),
        }
    }

    #[test]
    fn edit_subcommands_need_the_filter_feature() {
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let parsed = parse(
            args(&["block", "ads.test", "--file", "b.txt"]),
            "t",
            "",
            &[Feature::Filter],
        );
        assert!(matches!(parsed, Ok(Command::Block { ref rule, .. }) if rule == "ads.test"));
        assert!(parse(args(&["unblock", "ads.test"]), "t", "", &[Feature::Filter]).is_err());
        assert!(parse(args(&["block", "ads.test", "--file", "b"]), "t", "", &[]).is_err());
    }

    #[test]
    fn no_open_proxy_by_accident() {
        let f = &[Feature::Filter];
        assert!(run(&[], f).unwrap().access_config().is_ok());
        let open = run(&["--bind", "0.0.0.0"], f).unwrap();
        let refused = open.access_config().err().unwrap_or_default();
        assert!(refused.contains("--allow-clients"), "{refused}");
        let fenced = run(&["--bind", "0.0.0.0", "--allow-clients", "10.0.0.0/8"], f).unwrap();
        assert!(fenced.access_config().is_ok());
    }

    #[test]
    fn defaults_are_safe() {
        let o = run(&[], &[]).unwrap();
        assert_eq!(o.listen_addr().to_string(), "127.0.0.1:8080");
    }

    #[test]
    fn flags_belong_to_features() {
        assert!(run(&["--threads", "4"], &[]).is_err());
        let o = run(&["--threads", "4", "--port=0"], &[Feature::Pool]).unwrap();
        assert_eq!((o.threads, o.port), (4, 0));
        assert!(run(&["--cache-size", "1M"], &[Feature::Pool]).is_err());
    }

    #[test]
    fn bad_values_are_errors() {
        for args in [
            &["--port", "70000"][..],
            &["--port"],
            &["--bind", "localhost"],
            &["--threads", "0"],
            &["--nonsense"],
        ] {
            assert!(run(args, &[Feature::Pool]).is_err(), "{args:?}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(bytes("4096"), Ok(4096));
        assert_eq!(bytes("64M"), Ok(64 << 20));
        assert_eq!(bytes("1GiB"), Ok(1 << 30));
        assert!(bytes("12X").is_err());
        assert!(bytes("99999999999999G").is_err());
    }

    #[test]
    fn help_lists_only_the_stage_flags() {
        let text = usage("stage2", "about", &[Feature::Pool]);
        assert!(text.contains("--threads"));
        assert!(!text.contains("--cache-size"));
    }
}
