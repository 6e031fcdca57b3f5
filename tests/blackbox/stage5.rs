//! Stage 5: blocking. The proxy is started with `--block FILE`, a rules
//! file with one host name per line; here it holds `localhost`. A request
//! for a blocked host gets 403 and never reaches the origin, by GET or by
//! CONNECT; other hosts are served as before.

use crate::common::tunnel::connect_request;
use crate::common::*;
use crate::subject::{Setup, run};

fn blocking_localhost(dir: &TempDir, connect_ports: Vec<u16>) -> Setup {
    Setup {
        connect_ports,
        block_file: Some(dir.write("blocked.txt", "localhost\n")),
    }
}

#[test]
fn a_blocked_host_gets_403_and_the_origin_is_not_asked() {
    run(5, |target| {
        let dir = TempDir::new("blackbox-block");
        let origin = Origin::fixed(Reply::ok("allowed"));
        let proxy = target.start(&blocking_localhost(&dir, Vec::new()));
        let blocked = format!("http://localhost:{}/page", origin.addr().port());
        let response = proxy.get(&blocked);
        response.expect_status(403);
        response.expect(
            origin.hits() == 0,
            "the request for a blocked host reached the origin",
        );
        // The same origin by another name is not blocked.
        proxy
            .get(&origin.url("/page"))
            .expect_status(200)
            .expect_body(b"allowed");
    });
}

#[test]
fn a_blocked_host_cannot_be_reached_by_connect() {
    run(5, |target| {
        let dir = TempDir::new("blackbox-block");
        let echo = EchoServer::start();
        let proxy = target.start(&blocking_localhost(&dir, vec![echo.port()]));
        let response = proxy.request(&connect_request(&format!("localhost:{}", echo.port())));
        response.expect_status(403);
        response.expect(
            echo.connections() == 0,
            "the proxy connected to a blocked host",
        );
    });
}
