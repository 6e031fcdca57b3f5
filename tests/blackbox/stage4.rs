//! Stage 4: CONNECT tunnels (RFC 9110 §9.3.6). After a 2xx, bytes go both
//! ways unchanged; a tunnel that cannot be opened gets an error status.
//!
//! The far end is an echo server on a loopback port. Our binaries are told
//! to allow that port (`--connect-ports`); a proxy written from scratch
//! must allow CONNECT to it (any port above 1023 will do), or the check is
//! skipped with a note when the proxy answers 403.

use crate::common::tunnel::connect_request;
use crate::common::*;
use crate::subject::{Setup, note, run};

#[test]
fn connect_tunnels_bytes_both_ways() {
    run(4, |target| {
        let echo = EchoServer::start();
        let setup = Setup {
            connect_ports: vec![echo.port()],
            ..Setup::default()
        };
        let proxy = target.start(&setup);
        let mut client = proxy.connect();
        let response = client.request(&connect_request(&echo.authority()));
        if response.status == 403 && !target.is_ours() {
            note(&format!(
                "stage4::connect_tunnels_bytes_both_ways skipped: the proxy refused CONNECT to \
                 port {} with 403; allow CONNECT to ports above 1023 to run it",
                echo.port()
            ));
            return;
        }
        response.expect(
            (200..300).contains(&response.status),
            format_args!("CONNECT got {}, expected 200", response.status_line()),
        );
        assert_echoes(&mut client, b"hello through the tunnel\r\n");
        assert_echoes(&mut client, &binary(256 * KIB, 6));
    });
}

#[test]
fn connect_to_a_port_nobody_listens_on_is_an_error() {
    run(4, |target| {
        let nowhere = closed_port();
        let setup = Setup {
            connect_ports: vec![nowhere.port()],
            ..Setup::default()
        };
        let proxy = target.start(&setup);
        let response = proxy.request(&connect_request(&nowhere.to_string()));
        response.expect(
            response.status >= 400,
            format_args!(
                "CONNECT to a port nobody listens on got {}, expected an error (502)",
                response.status_line()
            ),
        );
    });
}
