//! Stage 5's flags and subcommands: which hosts may be reached, which
//! clients may use the proxy, and editing a rules file from the shell.

use std::net::IpAddr;
use std::path::PathBuf;

use crate::access::AccessConfig;
use crate::acl::ClientAcl;
use crate::filter::{LiveRules, edit};

#[derive(clap::Args, Clone, Debug)]
pub struct FilterArgs {
    /// refuse hosts listed in FILE; may be repeated
    #[arg(long = "block", value_name = "FILE")]
    pub block_files: Vec<PathBuf>,
    /// allow only hosts listed in FILE; may be repeated
    #[arg(long = "allow", value_name = "FILE")]
    pub allow_files: Vec<PathBuf>,
    /// client networks allowed to use the proxy (default: loopback)
    #[arg(long, value_name = "CIDR,...", value_parser = ClientAcl::parse)]
    pub allow_clients: Option<ClientAcl>,
}

impl FilterArgs {
    // ANCHOR: access_config
    /// The access rules. Refuses to build an open proxy: listening on `bind`
    /// beyond loopback needs an explicit `--allow-clients`.
    pub fn access_config(&self, bind: IpAddr) -> Result<AccessConfig, String> {
        let clients = match &self.allow_clients {
            Some(clients) => clients.clone(),
            None if bind.is_loopback() => ClientAcl::loopback(),
            None => {
                return Err(format!(
                    "refusing to listen on {bind} without --allow-clients: anyone who can reach \
                     this address could use the proxy (an open proxy). Name the networks \
                     that may use it, e.g. --allow-clients 192.168.1.0/24"
                ));
            }
        };
        let rules =
            LiveRules::load(&self.block_files, &self.allow_files).map_err(|e| e.to_string())?;
        log::info!("clients allowed: {clients}");
        log::info!("{}", rules_in_force(&rules));
        Ok(AccessConfig { rules, clients })
    }
    // ANCHOR_END: access_config
}

/// One line for the start-up log: each rules file with its rule count.
fn rules_in_force(live: &LiveRules) -> String {
    let rules = live.current();
    let mut files = live.files().peekable();
    if files.peek().is_none() {
        return "rules: none; every host may be reached".to_string();
    }
    let mut line = String::from("rules:");
    for (i, (kind, file)) in files.enumerate() {
        let n = rules.rules().filter(|(_, r)| &*r.file == file).count();
        let plural = if n == 1 { "" } else { "s" };
        let sep = if i == 0 { " " } else { ", " };
        line.push_str(&format!(
            "{sep}{kind} {} ({n} rule{plural})",
            file.display()
        ));
    }
    if rules.allow_list_mode() {
        line.push_str("; only hosts on the allow list may be reached");
    }
    line
}

/// Editing a rules file without an editor, safely while a proxy reads it.
#[derive(clap::Subcommand, Clone, Debug)]
pub enum EditCommand {
    /// add a rule to a rules file (a running proxy picks up the change)
    Block(RuleInFile),
    /// remove a rule from a rules file (a running proxy picks up the change)
    Unblock(RuleInFile),
}

#[derive(clap::Args, Clone, Debug)]
pub struct RuleInFile {
    /// a domain, optionally with a path: ads.example, example.com/private/
    #[arg(value_name = "DOMAIN")]
    pub rule: String,
    /// the rules file to change
    #[arg(long, value_name = "FILE")]
    pub file: PathBuf,
}

impl EditCommand {
    /// Edits the file. `Ok` says what changed, for the user; a rule that
    /// does not parse or a file that cannot be written is an `Err`, and the
    /// file is left as it was.
    pub fn apply(&self) -> Result<String, String> {
        let (RuleInFile { rule, file }, changed) = match self {
            EditCommand::Block(e) => (e, edit::block(&e.file, &e.rule)),
            EditCommand::Unblock(e) => (e, edit::unblock(&e.file, &e.rule)),
        };
        let shown = file.display();
        match changed.map_err(|e| format!("{shown}: {e}"))? {
            false => Ok(format!("{shown} unchanged")),
            true if matches!(self, EditCommand::Block(_)) => Ok(format!("added {rule} to {shown}")),
            true => Ok(format!("removed {rule} from {shown}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;
    use crate::cli::cache::CacheArgs;
    use crate::cli::listen::ListenArgs;
    use crate::cli::pool::PoolArgs;
    use crate::cli::tunnel::TunnelArgs;
    use crate::test_util::TempDir;

    /// Stage 5's command line, as `stages/stage5.rs` declares it.
    #[derive(clap::Parser, Debug)]
    #[command(args_conflicts_with_subcommands = true)]
    struct Cli {
        #[command(flatten)]
        listen: ListenArgs,
        #[command(flatten)]
        pool: PoolArgs,
        #[command(flatten)]
        cache: CacheArgs,
        #[command(flatten)]
        tunnel: TunnelArgs,
        #[command(flatten)]
        filter: FilterArgs,
        #[command(subcommand)]
        edit: Option<EditCommand>,
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("t").chain(args.iter().copied()))
    }

    #[test]
    fn the_groups_fit_together() {
        // Catches two groups claiming the same flag, which clap only
        // notices at run time.
        Cli::command().debug_assert();
    }

    #[test]
    fn no_open_proxy_by_accident() {
        let access = |args: &[&str]| {
            let cli = parse(args).unwrap();
            cli.filter.access_config(cli.listen.bind).map(|a| a.clients)
        };
        assert_eq!(access(&[]), Ok(ClientAcl::loopback()));
        let refused = access(&["--bind", "0.0.0.0"]).unwrap_err();
        assert!(refused.contains("--allow-clients") && refused.contains("open proxy"));
        let fenced = access(&["--bind", "0.0.0.0", "--allow-clients", "10.0.0.0/8"]).unwrap();
        assert_eq!(fenced.to_string(), "10.0.0.0/8");
    }

    #[test]
    fn the_client_list_is_parsed_when_the_flags_are_read() {
        let error = parse(&["--allow-clients", "10.1.2.3/8"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("--allow-clients"), "{error}");
        assert!(
            error.contains(&ClientAcl::parse("10.1.2.3/8").unwrap_err().to_string()),
            "{error}"
        );
    }

    #[test]
    fn rule_files_may_be_repeated() {
        let cli = parse(&["--block", "a", "--allow", "b", "--block", "c"]).unwrap();
        let blocks = cli.filter.block_files;
        assert_eq!(blocks, [PathBuf::from("a"), PathBuf::from("c")]);
        assert_eq!(cli.filter.allow_files, [PathBuf::from("b")]);
    }

    #[test]
    fn edit_subcommands() {
        let cli = parse(&["block", "--file", "b.txt", "ads.test"]).unwrap();
        let Some(EditCommand::Block(edit)) = cli.edit else {
            panic!("{:?}", cli.edit)
        };
        assert_eq!(
            (edit.rule.as_str(), edit.file),
            ("ads.test", PathBuf::from("b.txt"))
        );
        assert!(
            parse(&["unblock", "ads.test"]).is_err(),
            "--file is required"
        );
        // Proxy flags with an edit would be silently ignored: refuse them.
        assert!(parse(&["--port", "0", "block", "ads.test", "--file", "b"]).is_err());
    }

    #[test]
    fn the_start_up_log_counts_the_rules_of_each_file() {
        let dir = TempDir::new("cli-rules-in-force");
        let block = dir.0.join("block.txt");
        let allow = dir.0.join("allow.txt");
        std::fs::write(&block, "ads.test\n# a comment\ntracker.test/x\n").unwrap();
        std::fs::write(&allow, "example.test\n").unwrap();
        let (b, a) = (block.to_str().unwrap(), allow.to_str().unwrap());
        let cli = parse(&["--block", b, "--allow", a]).unwrap();
        let live = LiveRules::load(&cli.filter.block_files, &cli.filter.allow_files).unwrap();
        assert_eq!(
            rules_in_force(&live),
            format!(
                "rules: block {b} (2 rules), allow {a} (1 rule); only hosts on the allow \
                 list may be reached"
            )
        );
        let none = LiveRules::load(&[], &[]).unwrap();
        assert_eq!(
            rules_in_force(&none),
            "rules: none; every host may be reached"
        );
    }

    #[test]
    fn edits_say_what_changed() {
        let dir = TempDir::new("cli-edit");
        let file = dir.0.join("block.txt");
        let path = file.to_str().unwrap();
        let run = |args: &[&str]| parse(args).unwrap().edit.unwrap().apply();
        let added = run(&["block", "ads.test", "--file", path]);
        assert_eq!(added, Ok(format!("added ads.test to {path}")));
        let again = run(&["block", "ads.test", "--file", path]);
        assert_eq!(again, Ok(format!("{path} unchanged")));
        let removed = run(&["unblock", "ads.test", "--file", path]);
        assert_eq!(removed, Ok(format!("removed ads.test from {path}")));
        let bad = run(&["block", "bad..rule", "--file", path]).unwrap_err();
        assert!(
            bad.starts_with(path) && bad.contains("empty label"),
            "{bad}"
        );
    }
}
