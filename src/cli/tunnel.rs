//! Stage 4's flags: which ports CONNECT may reach, and how many tunnels may
//! be open for how long.

use std::time::Duration;

use super::{count, seconds};
use crate::connect::TunnelConfig;
use crate::parent::Parents;
use crate::tunnel::{PortPolicy, Tunnels};

#[derive(clap::Args, Clone, Debug)]
pub struct TunnelArgs {
    /// ports CONNECT may reach, e.g. 443,8443,9000-9100
    // Parsed here, not when the server starts: a typo in the policy must
    // stop the proxy with the reason, never quietly widen or narrow it.
    #[arg(long, value_name = "LIST", default_value_t = PortPolicy::default(),
          value_parser = PortPolicy::parse)]
    pub connect_ports: PortPolicy,
    /// close tunnels where nothing moved for this long
    #[arg(long, value_name = "SECS", default_value = "300", value_parser = seconds)]
    pub tunnel_idle_timeout: Duration,
    /// open CONNECT tunnels at most
    #[arg(long, value_name = "N", default_value = "256", value_parser = count)]
    pub max_tunnels: usize,
}

impl TunnelArgs {
    /// The tunnels' configuration, and a log line that says what is in
    /// force; they go through `parents`, if any (from `--parent`,
    /// [`crate::cli::parent`]).
    pub fn tunnel_config(&self, parents: Parents) -> TunnelConfig {
        log::info!(
            "tunnels: CONNECT to ports {} only, at most {} open, closed after {:?} idle",
            self.connect_ports,
            self.max_tunnels,
            self.tunnel_idle_timeout
        );
        TunnelConfig {
            tunnels: Tunnels::new(self.max_tunnels, self.tunnel_idle_timeout),
            ports: self.connect_ports.clone(),
            parents,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(clap::Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        tunnel: TunnelArgs,
    }

    fn parse(args: &[&str]) -> Result<TunnelArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("t").chain(args.iter().copied())).map(|c| c.tunnel)
    }

    #[test]
    fn only_https_by_default() {
        let config = parse(&[]).unwrap().tunnel_config(Parents::default());
        assert_eq!(config.ports, PortPolicy::default());
        assert_eq!(config.tunnels.max(), 256);
        assert_eq!(config.tunnels.idle_timeout(), Duration::from_secs(300));
    }

    #[test]
    fn the_port_list_is_parsed_when_the_flags_are_read() {
        let args = parse(&["--connect-ports", "443,9000-9100", "--max-tunnels", "2"]);
        let config = args.unwrap().tunnel_config(Parents::default());
        assert!(config.ports.allows(9050) && !config.ports.allows(80));
        assert_eq!(config.tunnels.max(), 2);
        let error = parse(&["--connect-ports", "443,9100-9000"]).unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains("--connect-ports") && text.contains("backwards"),
            "{text}"
        );
        assert_eq!(error.kind(), clap::error::ErrorKind::ValueValidation);
    }
}
