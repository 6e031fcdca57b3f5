//! Stage 1's flags: where to listen, and how long to wait for a peer.
//!
//! Every stage listens and relays, so every stage flattens this group.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::time::Duration;

use super::{fail, seconds};
use crate::dial::Timeouts;
use crate::listen::{self, Shutdown};

#[derive(clap::Args, Clone, Debug)]
pub struct ListenArgs {
    /// port to listen on; 0 picks a free one
    #[arg(long, value_name = "N", default_value_t = 8080, value_parser = port)]
    pub port: u16,
    /// address to listen on
    #[arg(long, value_name = "ADDR", default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST),
          value_parser = ip)]
    pub bind: IpAddr,
    /// give up connecting to an origin after this long
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = seconds)]
    pub connect_timeout: Duration,
    /// give up on a silent origin or client after this long
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = seconds)]
    pub read_timeout: Duration,
}

impl ListenArgs {
    pub fn listen_addr(&self) -> SocketAddr {
        SocketAddr::new(self.bind, self.port)
    }

    /// The timeouts these flags set; the others keep their defaults (stage 2
    /// sets the idle timeout on top).
    pub fn timeouts(&self) -> Timeouts {
        Timeouts {
            connect: self.connect_timeout,
            // One flag for both directions: either way it is a peer that
            // went quiet in the middle of a message.
            upstream_read: self.read_timeout,
            client_read: self.read_timeout,
            ..Timeouts::default()
        }
    }
}

// ANCHOR: start
impl ListenArgs {
    /// Refuses an address beyond loopback: with no client access control
    /// (stage 5 adds it), anyone who can reach the port could use the proxy
    /// to hide where their traffic comes from.
    pub fn loopback_only(&self, program: &str) {
        if !self.bind.is_loopback() {
            fail(
                program,
                format!(
                    "refusing to listen on {}: this stage has no client access control, so \
                     anyone who can reach it could use it (an open proxy). Stage 5's \
                     --allow-clients is what makes listening beyond loopback safe.",
                    self.bind
                ),
            );
        }
    }

    /// Binds the address and prints it, and turns SIGINT and SIGTERM into a
    /// graceful stop, SIGHUP into `on_hangup` and SIGUSR1 into reopening the
    /// access log. Exits with a message that
    /// says what to do when any of that fails.
    pub fn start(
        &self,
        program: &str,
        on_hangup: impl Fn() + Send + 'static,
    ) -> (TcpListener, Shutdown) {
        // Signals first: once the address is announced, a script may send
        // one, and SIGHUP's default action would end the process.
        let shutdown = Shutdown::new();
        if let Err(e) = listen::on_signals(shutdown.clone(), on_hangup) {
            fail(program, format!("cannot set up signal handling: {e}"));
        }
        let addr = self.listen_addr();
        let listener = listen::bind_and_announce(addr).unwrap_or_else(|e| {
            let hint = match e.kind() {
                io::ErrorKind::AddrInUse => {
                    "; is another proxy running there? choose another port with --port"
                }
                io::ErrorKind::AddrNotAvailable => "; is it an address of this machine? see --bind",
                _ => "",
            };
            fail(program, format!("cannot listen on {addr}: {e}{hint}"))
        });
        if let Ok(local) = listener.local_addr() {
            log::info!(
                "{program} listening on http://{local}; origins get {:?} to connect and \
                 {:?} between reads",
                self.connect_timeout,
                self.read_timeout
            );
        }
        (listener, shutdown)
    }
}

/// What SIGHUP does in a stage with nothing to reload: say so, and go on.
pub fn nothing_to_reload() {
    log::info!("SIGHUP: nothing to reload in this stage");
}
// ANCHOR_END: start

// Our own messages instead of the standard library's ("invalid digit found
// in string"), which do not say what was expected.
fn port(value: &str) -> Result<u16, String> {
    value.parse().map_err(|_| "not a port number".into())
}

fn ip(value: &str) -> Result<IpAddr, String> {
    value.parse().map_err(|_| "not an IP address".into())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(clap::Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        listen: ListenArgs,
    }

    fn parse(args: &[&str]) -> Result<ListenArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("t").chain(args.iter().copied())).map(|c| c.listen)
    }

    #[test]
    fn defaults_are_safe_and_match_the_library() {
        let listen = parse(&[]).unwrap();
        assert_eq!(listen.listen_addr().to_string(), "127.0.0.1:8080");
        let (ours, library) = (listen.timeouts(), Timeouts::default());
        assert_eq!(ours.connect, library.connect);
        assert_eq!(ours.upstream_read, library.upstream_read);
        assert_eq!(ours.client_read, library.client_read);
    }

    #[test]
    fn flags_set_the_address_and_timeouts() {
        let listen = parse(&["--port=0", "--bind", "::1", "--read-timeout", "2.5"]).unwrap();
        assert_eq!(listen.listen_addr().to_string(), "[::1]:0");
        let timeouts = listen.timeouts();
        assert_eq!(timeouts.upstream_read, Duration::from_millis(2500));
        assert_eq!(timeouts.client_read, Duration::from_millis(2500));
    }

    #[test]
    fn bad_values_name_the_flag_and_the_reason() {
        for (args, reason) in [
            (&["--port", "70000"][..], "not a port number"),
            (&["--bind", "localhost"], "not an IP address"),
            (&["--connect-timeout", "0"], "seconds above 0"),
        ] {
            let error = parse(args).unwrap_err().to_string();
            assert!(error.contains(args[0]) && error.contains(reason), "{error}");
        }
        assert!(parse(&["--port"]).is_err());
        assert!(parse(&["--threads", "4"]).is_err());
    }
}
