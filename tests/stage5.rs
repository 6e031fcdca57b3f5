//! Stage 5 on the wire: domain rules, the client ACL and loop protection,
//! and rules that change while the proxy runs.
//!
//! Every test writes its rule files into its own temp directory, starts its
//! own origin and its own stage 5 proxy (with a rule watcher polling every
//! 50 ms), and checks what a user would see: the status, the exact 403 body,
//! and whether the origin was contacted at all. A refused request must cost
//! the proxy nothing upstream, so most tests end with the origin's hit (or
//! connection) count.
//!
//! No test depends on DNS. Requests that are forwarded go to the in-process
//! origin on 127.0.0.1; names such as `ads.test` appear only as targets the
//! proxy refuses before it would look anything up (`.test` is reserved for
//! testing, RFC 6761 §6.2). A bug that let one through would show as a 502
//! or a slow test, never as a pass.

mod common;

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use webproxy::access::AccessConfig;
use webproxy::acl::ClientAcl;
use webproxy::cache::{Cache, CacheConfig, SystemClock};
use webproxy::connect::TunnelConfig;
use webproxy::filter::edit::write_atomically;
use webproxy::filter::{LiveRules, Watcher};
use webproxy::tunnel::{PortPolicy, Tunnels};

/// How long a test waits for a rule change to show on the wire. The watcher
/// polls every 50 ms; the rest is slack for a loaded machine.
const RELOAD_WAIT: Duration = Duration::from_secs(5);

/// A running stage 5 proxy and the files its rules come from.
struct Filtered {
    proxy: SocketAddr,
    /// The same rules the proxy reads (a clone shares them).
    rules: LiveRules,
    block: PathBuf,
    allow: Option<PathBuf>,
    // Dropped before the directory, so the watcher never polls files that
    // are being deleted.
    _watcher: Watcher,
    _dir: TempDir,
}

/// What a test can choose about the proxy.
struct Setup<'a> {
    block: &'a str,
    allow: Option<&'a str>,
    clients: ClientAcl,
    connect_ports: String,
    /// Where the proxy listens.
    bind: &'a str,
}

impl<'a> Setup<'a> {
    fn block(text: &'a str) -> Setup<'a> {
        Setup {
            block: text,
            allow: None,
            clients: ClientAcl::loopback(),
            connect_ports: "443".into(),
            bind: "127.0.0.1:0",
        }
    }

    /// Listens on `bind` instead of 127.0.0.1.
    fn bind(mut self, bind: &'a str) -> Setup<'a> {
        self.bind = bind;
        self
    }

    fn allow(mut self, text: &'a str) -> Setup<'a> {
        self.allow = Some(text);
        self
    }

    fn clients(mut self, clients: ClientAcl) -> Setup<'a> {
        self.clients = clients;
        self
    }

    fn connect_ports(mut self, ports: &str) -> Setup<'a> {
        self.connect_ports = ports.to_string();
        self
    }

    /// Writes the rule files and starts the proxy, as `stages/stage5.rs`
    /// does, with a memory cache and a fast watcher.
    fn start(self) -> Filtered {
        let dir = TempDir::new("stage5");
        let block = dir.write("block.txt", self.block);
        let allow = self.allow.map(|text| dir.write("allow.txt", text));
        let rules = LiveRules::load(std::slice::from_ref(&block), allow.as_slice())
            .unwrap_or_else(|e| panic!("the rule files do not load: {e}"));
        let watcher = rules
            .watch(Duration::from_millis(50))
            .expect("start the rule watcher");
        let cache = Cache::new(CacheConfig::default(), Arc::new(SystemClock)).expect("cache");
        let ports = PortPolicy::parse(&self.connect_ports).expect("port list");
        let tunnels = TunnelConfig {
            tunnels: Tunnels::new(8, Duration::from_secs(5)),
            ports,
            parents: Default::default(),
        };
        let access = AccessConfig {
            rules: rules.clone(),
            clients: self.clients,
        };
        let proxy = start_stage5_on(self.bind, test_config(), cache, tunnels, access);
        Filtered {
            proxy,
            rules,
            block,
            allow,
            _watcher: watcher,
            _dir: dir,
        }
    }
}

/// The body of a 403 for a block rule, as the proxy words it: the file by
/// its name, never the server's path to it.
fn blocked_body(host: &str, rule: &str, file: &Path, line: usize) -> String {
    format!(
        "Forbidden by the proxy: {host} is blocked by the rule \"{rule}\" ({}:{line}).\n",
        file_name(file)
    )
}

/// How a 403 names a rules file.
fn file_name(file: &Path) -> String {
    let name = file.file_name().expect("a rules file has a name");
    name.to_string_lossy().into_owned()
}

/// Checks that `response` is the proxy's own 403 with `body`, and that the
/// proxy closes the connection after it.
fn assert_refused(client: &mut Client, response: &Response, body: &str) {
    assert_eq!(response.status, 403, "{}", response.body_text());
    assert_eq!(response.body_text(), body);
    assert_eq!(
        response.header("Content-Type"),
        Some("text/plain; charset=utf-8")
    );
    assert!(response.says_close());
    client.assert_closed();
}

/// Sends one request on a new connection and returns the client and the
/// response.
fn send(proxy: SocketAddr, req: &Req) -> (Client, Response) {
    let mut client = Client::connect(proxy);
    let response = client.request(req);
    (client, response)
}

/// The status of a GET for `url` on a new connection.
fn status_of(proxy: SocketAddr, url: &str) -> u16 {
    get(proxy, url).status
}

/// An origin that answers every request with its target, so a test can see
/// which paths got through.
fn target_origin() -> Origin {
    Origin::start(|request| Reply::ok(format!("got {}", request.target)))
}

// ANCHOR: blocked_host
#[test]
fn a_blocked_host_gets_403_and_the_origin_is_never_contacted() {
    let origin = target_origin();
    let f = Setup::block("# the test origin\n127.0.0.1\n").start();
    let (mut client, response) = send(f.proxy, &Req::get(&origin.url("/page")));
    let body = blocked_body("127.0.0.1", "127.0.0.1", &f.block, 2);
    assert_refused(&mut client, &response, &body);
    assert_eq!(origin.connections(), 0, "the proxy connected to the origin");
}
// ANCHOR_END: blocked_host

#[test]
fn blocked_names_are_refused_before_any_lookup() {
    let origin = target_origin();
    let f = Setup::block("# ads\nads.test\n").start();
    for (url, host) in [
        ("http://ads.test/", "ads.test"),
        ("http://www.ads.test/banner.gif", "www.ads.test"),
        ("http://a.b.ads.test:8080/x?y=1", "a.b.ads.test"),
        // Host names are case-insensitive (RFC 4343); the proxy lowers them.
        ("http://WWW.Ads.TEST/x", "www.ads.test"),
    ] {
        let (mut client, response) = send(f.proxy, &Req::get(url));
        assert_refused(
            &mut client,
            &response,
            &blocked_body(host, "ads.test", &f.block, 2),
        );
    }
    // A trailing dot names the same host.
    let (_, response) = send(f.proxy, &Req::get("http://ads.test./"));
    assert_eq!(response.status, 403);
    assert!(response.body_text().contains("\"ads.test\""));
    // Everything else still works.
    let response = get(f.proxy, &origin.url("/fine"));
    assert_eq!(
        (response.status, response.body_text()),
        (200, "got /fine".into())
    );
    assert_eq!(origin.hits(), 1);
}

#[test]
fn the_403_is_an_html_page_for_browsers_and_text_otherwise() {
    let origin = target_origin();
    let f = Setup::block("127.0.0.1/private/\n").start();
    let url = origin.url("/private/diary");

    let browser =
        Req::get(&url).header("Accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8");
    let (mut client, html) = send(f.proxy, &browser);
    assert_eq!(html.status, 403);
    assert_eq!(
        html.header("Content-Type"),
        Some("text/html; charset=utf-8")
    );
    let page = html.body_text();
    assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
    assert!(page.contains("<title>403 Forbidden</title>"), "{page}");
    // The rule and where it is written, HTML-escaped, but not where the
    // server keeps its files.
    let place = format!("({}:1)", file_name(&f.block));
    assert!(page.contains("&quot;127.0.0.1/private/&quot;"), "{page}");
    assert!(page.contains(&place), "{page}");
    let dir = f
        .block
        .parent()
        .expect("in a directory")
        .display()
        .to_string();
    assert!(!page.contains(&dir), "{page}");
    client.assert_closed();

    let body = blocked_body("127.0.0.1", "127.0.0.1/private/", &f.block, 1);
    for accept in [Some("*/*"), Some("application/json"), None] {
        let mut req = Req::get(&url);
        if let Some(accept) = accept {
            req = req.header("Accept", accept);
        }
        let (mut client, text) = send(f.proxy, &req);
        assert_refused(&mut client, &text, &body);
    }
    assert_eq!(origin.hits(), 0);
}

// ANCHOR: label_alignment
/// Allow-list mode with only 127.0.0.1 allowed tells us, without DNS,
/// whether the block rule matched: a host it covers is refused *by the
/// rule*; any other host is refused as "not on the allow list".
#[test]
fn block_rules_match_whole_labels_not_substrings() {
    let origin = target_origin();
    let f = Setup::block("example.test\n").allow("127.0.0.1\n").start();
    let allow = f.allow.clone().expect("allow file");
    for host in ["example.test", "www.example.test", "a.b.example.test"] {
        let (mut client, response) = send(f.proxy, &Req::get(&format!("http://{host}/")));
        let body = blocked_body(host, "example.test", &f.block, 1);
        assert_refused(&mut client, &response, &body);
    }
    for host in ["notexample.test", "example.test.evil.test", "test"] {
        let (mut client, response) = send(f.proxy, &Req::get(&format!("http://{host}/")));
        let body = format!(
            "Forbidden by the proxy: {host} is not on the allow list ({}).\n",
            file_name(&allow)
        );
        assert_refused(&mut client, &response, &body);
    }
    assert_eq!(status_of(f.proxy, &origin.url("/")), 200);
    assert_eq!(origin.hits(), 1);
}
// ANCHOR_END: label_alignment

#[test]
fn exact_and_subdomain_rules_match_what_they_say() {
    let f = Setup::block("=exact.test\n*.sub.test\n")
        .allow("127.0.0.1\n")
        .start();
    let allow = f.allow.clone().expect("allow file");
    // `=exact.test` is that name only; `*.sub.test` the names below it only.
    for (host, rule, line) in [
        ("exact.test", "=exact.test", 1),
        ("a.sub.test", "*.sub.test", 2),
        ("b.a.sub.test", "*.sub.test", 2),
    ] {
        let (mut client, response) = send(f.proxy, &Req::get(&format!("http://{host}/")));
        assert_refused(
            &mut client,
            &response,
            &blocked_body(host, rule, &f.block, line),
        );
    }
    // What they do not block falls through to the allow list, which
    // refuses it with another page.
    for host in ["www.exact.test", "sub.test", "asub.test"] {
        let (mut client, response) = send(f.proxy, &Req::get(&format!("http://{host}/")));
        // The page names the file, not the directory it is in.
        let name = allow.file_name().expect("a file name").to_string_lossy();
        let body = format!("Forbidden by the proxy: {host} is not on the allow list ({name}).\n");
        assert_refused(&mut client, &response, &body);
    }
}

#[test]
fn other_spellings_of_a_blocked_address_are_blocked() {
    let origin = target_origin();
    let f = Setup::block("127.0.0.1\n").start();
    let port = origin.addr().port();
    // The resolver reads all of these as 127.0.0.1.
    for host in [
        "2130706433",
        "0x7f.0.0.1",
        "0177.0.0.1",
        "127.1",
        "[::ffff:127.0.0.1]",
    ] {
        let (_, response) = send(f.proxy, &Req::get(&format!("http://{host}:{port}/")));
        assert_eq!(response.status, 403, "{host}: {}", response.body_text());
        assert!(
            response.body_text().contains("by the rule \"127.0.0.1\""),
            "{host}: {}",
            response.body_text()
        );
    }
    assert_eq!(origin.connections(), 0, "a spelling got through");
}

#[test]
fn a_path_rule_blocks_only_its_prefix() {
    let origin = target_origin();
    let f = Setup::block("127.0.0.1/ads/\n").start();
    let body = blocked_body("127.0.0.1", "127.0.0.1/ads/", &f.block, 1);
    // Percent-encoding an unreserved letter or a detour through `..` is the
    // same path (RFC 3986 §6.2.2).
    for path in [
        "/ads/",
        "/ads/banner.gif",
        "/ads/x?q=1",
        "/%61ds/x",
        "/news/../ads/x",
    ] {
        let (mut client, response) = send(f.proxy, &Req::get(&origin.url(path)));
        assert_refused(&mut client, &response, &body);
    }
    assert_eq!(origin.hits(), 0);
    // Paths are case-sensitive, and a prefix is not a word search.
    for path in ["/news", "/ads", "/adsx/", "/ADS/x", "/news/ads/"] {
        let response = get(f.proxy, &origin.url(path));
        assert_eq!(response.status, 200, "{path}");
        assert_eq!(response.body_text(), format!("got {path}"));
    }
    assert_eq!(origin.hits(), 5);
}

#[test]
fn a_block_rule_beats_an_allow_rule() {
    let origin = target_origin();
    let f = Setup::block("127.0.0.1/private/\n")
        .allow("127.0.0.1\n")
        .start();
    assert_eq!(status_of(f.proxy, &origin.url("/public/a")), 200);
    let (mut client, response) = send(f.proxy, &Req::get(&origin.url("/private/b")));
    let body = blocked_body("127.0.0.1", "127.0.0.1/private/", &f.block, 1);
    assert_refused(&mut client, &response, &body);
    assert_eq!(origin.hits(), 1);
}

#[test]
fn in_allow_list_mode_only_listed_hosts_pass() {
    let origin = target_origin();
    let f = Setup::block("")
        .allow("# only the test origin\n127.0.0.1\n")
        .start();
    let allow = f.allow.clone().expect("allow file");
    assert_eq!(status_of(f.proxy, &origin.url("/in")), 200);
    let (mut client, response) = send(f.proxy, &Req::get("http://other.test/"));
    let body = format!(
        "Forbidden by the proxy: other.test is not on the allow list ({}).\n",
        file_name(&allow)
    );
    assert_refused(&mut client, &response, &body);
    // Tunnels too: the allow list is checked before the port policy.
    let (mut client, response) = send(
        f.proxy,
        &Req::new("CONNECT", "other.test:443").host("other.test:443"),
    );
    assert_refused(&mut client, &response, &body);
    assert_eq!(origin.hits(), 1);
}

#[test]
fn an_empty_allow_list_allows_nothing() {
    let origin = target_origin();
    let f = Setup::block("").allow("# nothing yet\n").start();
    let (_, response) = send(f.proxy, &Req::get(&origin.url("/")));
    assert_eq!(response.status, 403);
    assert!(response.body_text().contains("is not on the allow list"));
    assert_eq!(origin.connections(), 0);
}

/// `CONNECT host:port` through the proxy; returns the client and the answer.
fn connect(proxy: SocketAddr, authority: &str) -> (Client, Response) {
    let mut client = Client::connect(proxy);
    client.send(Req::new("CONNECT", authority).host(authority).to_bytes());
    let response = client.read_response_to("CONNECT");
    (client, response)
}

#[test]
fn connect_to_a_blocked_host_is_refused_before_connecting() {
    let origin = target_origin();
    let port = origin.addr().port();
    let f = Setup::block("127.0.0.1\nads.test\n")
        .connect_ports(&port.to_string())
        .start();
    let (mut client, response) = connect(f.proxy, &origin.authority());
    assert_refused(
        &mut client,
        &response,
        &blocked_body("127.0.0.1", "127.0.0.1", &f.block, 1),
    );
    // The rules are checked before the port policy (443 is not allowed
    // here), so the refusal names the rule.
    let (mut client, response) = connect(f.proxy, "www.ads.test:443");
    assert_refused(
        &mut client,
        &response,
        &blocked_body("www.ads.test", "ads.test", &f.block, 2),
    );
    assert_eq!(origin.connections(), 0, "the tunnel was opened");
}

#[test]
fn path_rules_cannot_see_inside_a_tunnel() {
    // A CONNECT names only host:port; the path travels inside the tunnel
    // (encrypted, for HTTPS). So a path rule never refuses a tunnel, and
    // what goes through it is out of the proxy's sight.
    let origin = target_origin();
    let port = origin.addr().port();
    let f = Setup::block("127.0.0.1/ads/\n")
        .connect_ports(&port.to_string())
        .start();
    let (mut client, response) = connect(f.proxy, &origin.authority());
    assert_eq!(response.status, 200);
    let inside = Req::get("/ads/banner.gif").host(&origin.authority());
    let response = client.request(&inside);
    assert_eq!(response.status, 200);
    assert_eq!(response.body_text(), "got /ads/banner.gif");
    // The same path as a plain request is refused.
    assert_eq!(status_of(f.proxy, &origin.url("/ads/banner.gif")), 403);
    assert_eq!(origin.hits(), 1);
}

// ANCHOR: client_acl
#[test]
fn clients_outside_the_acl_get_403_and_nothing_is_forwarded() {
    let origin = target_origin();
    let fenced = Setup::block("")
        .clients(ClientAcl::parse("10.0.0.0/8,192.168.0.0/16").expect("acl"))
        .start();
    let mut client = Client::connect(fenced.proxy);
    // The proxy answers without reading the request; sending it anyway is
    // what a real client does.
    let _ = client.try_send(Req::get(&origin.url("/secret")).to_bytes());
    let response = client.read_response();
    assert_refused(
        &mut client,
        &response,
        "your address may not use this proxy\n",
    );
    assert_eq!(origin.connections(), 0);

    // The default admits this machine only, which is where the test runs.
    let open = Setup::block("").start();
    let response = get(open.proxy, &origin.url("/secret"));
    assert_eq!(response.status, 200);
    assert_eq!(origin.hits(), 1);
}
// ANCHOR_END: client_acl

#[test]
fn the_acl_judges_ipv6_clients_by_their_prefix() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("skipped: this machine has no IPv6 loopback");
        return;
    }
    let origin = target_origin();
    let url = origin.url("/v6");
    // The client is ::1: inside ::/127 and ::1/128, outside ::2/127, ::/128
    // and an IPv4 network.
    for (acl, status) in [
        ("::1/128", 200),
        ("::/127", 200),
        ("10.0.0.0/8,::2/127", 403),
        ("::/128", 403),
        ("127.0.0.0/8", 403),
    ] {
        let f = Setup::block("")
            .clients(ClientAcl::parse(acl).expect("acl"))
            .bind("[::1]:0")
            .start();
        let mut client = Client::connect(f.proxy);
        let _ = client.try_send(Req::get(&url).to_bytes());
        let response = client.read_response();
        assert_eq!(
            response.status,
            status,
            "clients {acl}: {}",
            response.body_text()
        );
    }
    assert_eq!(origin.hits(), 2);
}

/// Polls the proxy until a GET for `url` has `status`.
fn wait_for_status(proxy: SocketAddr, url: &str, status: u16) -> bool {
    eventually(RELOAD_WAIT, || status_of(proxy, url) == status)
}

// ANCHOR: live_edit
#[test]
fn an_edited_rules_file_takes_effect_without_a_restart() {
    let origin = target_origin();
    let f = Setup::block("# nothing blocked yet\n").start();
    let url = origin.url("/news");
    assert_eq!(status_of(f.proxy, &url), 200);

    // Replace the file in one step, as an editor or `stage5 block` would.
    write_atomically(&f.block, b"# now blocked\n127.0.0.1/news\n").expect("edit");
    assert!(
        wait_for_status(f.proxy, &url, 403),
        "the new rule never took effect"
    );
    let hits = origin.hits();
    let (mut client, response) = send(f.proxy, &Req::get(&url));
    let body = blocked_body("127.0.0.1", "127.0.0.1/news", &f.block, 2);
    assert_refused(&mut client, &response, &body);
    assert_eq!(origin.hits(), hits, "a refused request reached the origin");
    // Other paths were never affected.
    assert_eq!(status_of(f.proxy, &origin.url("/weather")), 200);

    write_atomically(&f.block, b"# unblocked again\n").expect("edit");
    assert!(
        wait_for_status(f.proxy, &url, 200),
        "the removed rule stayed in force"
    );
}
// ANCHOR_END: live_edit

#[test]
fn a_reload_does_not_touch_requests_already_admitted() {
    // A slow response is being relayed when its host gets blocked: the
    // request was judged by the rules of its moment, and finishes.
    let origin = Origin::routes([
        (
            "/slow",
            Reply::ok("a slow answer")
                .split(4)
                .pace(Duration::from_millis(100)),
        ),
        ("/fast", Reply::ok("fast")),
    ]);
    let f = Setup::block("").start();
    let mut slow = Client::connect(f.proxy);
    slow.send(Req::get(&origin.url("/slow")).to_bytes());
    assert!(origin.wait_for_hits(1, Duration::from_secs(5)));
    write_atomically(&f.block, b"127.0.0.1\n").expect("edit");
    f.rules.reload_now().expect("reload");
    let response = slow.read_response();
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"a slow answer");
    // The next request on that same connection is judged by the new rules.
    let next = slow.request(&Req::get(&origin.url("/fast")));
    assert_eq!(next.status, 403);
    assert_eq!(origin.hits(), 1);
}

/// Runs the real `stage5` binary with `args` and waits for it to exit.
fn stage5(args: &[&str]) -> Finished {
    run_to_exit(env!("CARGO_BIN_EXE_stage5"), args, Duration::from_secs(10))
}

fn path_arg(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

#[test]
fn block_and_unblock_subcommands_change_a_running_proxy() {
    let origin = target_origin();
    let f = Setup::block("# managed by hand\nads.test\n").start();
    let file = path_arg(&f.block);
    let url = origin.url("/secret/plans");
    assert_eq!(status_of(f.proxy, &url), 200);

    let added = stage5(&["block", "127.0.0.1/secret/", "--file", file]);
    assert!(added.success(), "{added:?}");
    assert_eq!(added.stdout, format!("added 127.0.0.1/secret/ to {file}\n"));
    assert!(
        wait_for_status(f.proxy, &url, 403),
        "block did not take effect"
    );
    let (mut client, response) = send(f.proxy, &Req::get(&url));
    let body = blocked_body("127.0.0.1", "127.0.0.1/secret/", &f.block, 3);
    assert_refused(&mut client, &response, &body);
    assert_eq!(
        fs::read_to_string(&f.block).expect("read"),
        "# managed by hand\nads.test\n127.0.0.1/secret/\n"
    );

    // Adding it again changes nothing; a bad rule is refused, file untouched.
    let again = stage5(&["block", "127.0.0.1/secret/", "--file", file]);
    assert!(again.success());
    assert_eq!(again.stdout, format!("{file} unchanged\n"));
    let bad = stage5(&["block", "bad..rule", "--file", file]);
    assert!(!bad.success(), "{bad:?}");
    assert!(bad.stderr.contains("empty label"), "{}", bad.stderr);

    let removed = stage5(&["unblock", "127.0.0.1/secret/", "--file", file]);
    assert!(removed.success(), "{removed:?}");
    assert_eq!(
        removed.stdout,
        format!("removed 127.0.0.1/secret/ from {file}\n")
    );
    assert!(
        wait_for_status(f.proxy, &url, 200),
        "unblock did not take effect"
    );
    assert_eq!(
        fs::read_to_string(&f.block).expect("read"),
        "# managed by hand\nads.test\n"
    );
}

#[test]
fn a_broken_rules_file_keeps_the_old_rules() {
    let origin = target_origin();
    let f = Setup::block("127.0.0.1/old/\n").start();
    assert_eq!(status_of(f.proxy, &origin.url("/old/x")), 403);

    write_atomically(&f.block, b"127.0.0.1/new/\nbad..rule\n").expect("edit");
    // Reload now rather than wait for the watcher: we need to know the
    // broken file has been read before checking that nothing changed.
    let err = f.rules.reload_now().expect_err("a broken file was loaded");
    assert!(
        err.to_string()
            .starts_with(&format!("{}:2: bad rule \"bad..rule\"", f.block.display())),
        "{err}"
    );
    assert_eq!(status_of(f.proxy, &origin.url("/old/x")), 403);
    assert_eq!(status_of(f.proxy, &origin.url("/new/x")), 200);

    // Fixing the file brings in the new rules, through the watcher.
    write_atomically(&f.block, b"127.0.0.1/new/\n").expect("edit");
    assert!(
        wait_for_status(f.proxy, &origin.url("/new/x"), 403),
        "the fixed file was not loaded"
    );
    assert_eq!(status_of(f.proxy, &origin.url("/old/x")), 200);
}

// ANCHOR: loops
#[test]
fn a_request_for_the_proxy_itself_is_refused() {
    let origin = target_origin();
    let f = Setup::block("").start();
    let port = f.proxy.port();
    for (url, target) in [
        (
            format!("http://127.0.0.1:{port}/loop"),
            format!("127.0.0.1:{port}"),
        ),
        (
            format!("http://localhost:{port}/x"),
            format!("localhost:{port}"),
        ),
    ] {
        let (mut client, response) = send(f.proxy, &Req::get(&url));
        let body = format!("request loop: {target} is this proxy's own address\n");
        assert_refused(&mut client, &response, &body);
    }
    // The proxy still serves.
    assert_eq!(status_of(f.proxy, &origin.url("/")), 200);
}

#[test]
fn a_request_that_already_passed_through_us_is_refused() {
    let origin = target_origin();
    let f = Setup::block("").start();
    for via in ["1.1 webproxy", "1.0 cache.test, 1.1 WebProxy (looped)"] {
        let req = Req::get(&origin.url("/")).header("Via", via);
        let (mut client, response) = send(f.proxy, &req);
        let body = "request loop: it already passed through this proxy (Via)\n";
        assert_refused(&mut client, &response, body);
    }
    assert_eq!(origin.hits(), 0);
    // Another proxy's Via is fine, and ours is added after it.
    let req = Req::get(&origin.url("/")).header("Via", "1.1 cache.test");
    let (_, response) = send(f.proxy, &req);
    assert_eq!(response.status, 200);
    assert_eq!(
        origin.last_request().header_all("Via").join(", "),
        "1.1 cache.test, 1.1 webproxy"
    );
}
// ANCHOR_END: loops

/// Expects `response` to be the loop refusal, and the connection closed.
fn assert_loop_refused(client: &mut Client, response: &Response, what: &str) {
    assert_eq!(response.status, 403, "{what}: {}", response.body_text());
    assert!(
        response.body_text().starts_with("request loop: "),
        "{what}: {}",
        response.body_text()
    );
    client.assert_closed();
}

#[test]
fn every_spelling_of_the_proxys_own_address_is_a_loop_for_get_and_connect() {
    // Every port may be tunnelled to, so only loop protection stands
    // between a CONNECT to our own port and a tunnel into ourselves.
    let origin = target_origin();
    let f = Setup::block("").connect_ports("1-65535").start();
    let port = f.proxy.port();
    for host in [
        "127.0.0.1",
        "0.0.0.0",
        "[::]",
        "[::ffff:127.0.0.1]",
        "2130706433",
        "127.1",
        "0x7f.0.0.1",
        "0177.0.0.1",
        "LOCALHOST.",
        "app.localhost",
    ] {
        let authority = format!("{host}:{port}");
        let url = format!("http://{authority}/loop");
        let (mut client, response) = send(f.proxy, &Req::get(&url));
        assert_loop_refused(&mut client, &response, &url);
        let (mut client, response) = connect(f.proxy, &authority);
        assert_loop_refused(&mut client, &response, &format!("CONNECT {authority}"));
    }
    assert_eq!(status_of(f.proxy, &origin.url("/")), 200);
}

#[test]
fn listening_everywhere_any_address_of_the_machine_is_a_loop() {
    // On 0.0.0.0 the proxy answers on every address of the machine: the
    // whole of 127.0.0.0/8 reaches it, not only the address a client used.
    // (The client ACL still admits loopback only.)
    let f = Setup::block("")
        .connect_ports("1-65535")
        .bind("0.0.0.0:0")
        .start();
    let port = f.proxy.port();
    let proxy = SocketAddr::from(([127, 0, 0, 1], port));
    for host in [
        "127.0.0.2",
        "127.1.2.3",
        "[::ffff:127.0.0.2]",
        "0.0.0.0",
        "localhost",
    ] {
        let authority = format!("{host}:{port}");
        let url = format!("http://{authority}/loop");
        let (mut client, response) = send(proxy, &Req::get(&url));
        assert_loop_refused(&mut client, &response, &url);
        let (mut client, response) = connect(proxy, &authority);
        assert_loop_refused(&mut client, &response, &format!("CONNECT {authority}"));
    }
}

#[test]
fn the_binary_refuses_to_be_an_open_proxy() {
    let run = stage5(&["--bind", "0.0.0.0", "--port", "0"]);
    assert!(run.status.is_some(), "the proxy started and kept running");
    assert!(!run.success());
    assert!(!run.stdout.contains("listening on"), "{}", run.stdout);
    assert!(run.stderr.contains("--allow-clients"), "{}", run.stderr);
    assert!(run.stderr.contains("open proxy"), "{}", run.stderr);
}

#[test]
fn a_url_pasted_as_a_rule_means_its_host_and_path() {
    let origin = target_origin();
    let f = Setup::block("http://127.0.0.1/private/\n").start();
    assert_eq!(status_of(f.proxy, &origin.url("/public")), 200);
    let (mut client, response) = send(f.proxy, &Req::get(&origin.url("/private/x")));
    let body = blocked_body("127.0.0.1", "http://127.0.0.1/private/", &f.block, 1);
    assert_refused(&mut client, &response, &body);
    assert_eq!(origin.hits(), 1);
}

#[test]
fn an_https_url_with_a_path_is_refused_with_the_rule_to_write() {
    let dir = TempDir::new("stage5-https-rule");
    let block = dir.write("block.txt", "https://ads.test/banner.js\n");
    let run = stage5(&["--port", "0", "--block", path_arg(&block)]);
    assert!(run.status.is_some() && !run.success(), "{run:?}");
    let place = format!("{}:1: bad rule", block.display());
    assert!(run.stderr.contains(&place), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("write ads.test to block the whole host"),
        "{}",
        run.stderr
    );
}

#[test]
fn the_binary_will_not_start_with_a_bad_rules_file() {
    let dir = TempDir::new("stage5-bad");
    let bad = dir.write("block.txt", "# fine\nads.test\nexa mple.test\n");
    let run = stage5(&["--port", "0", "--block", path_arg(&bad)]);
    assert!(run.status.is_some() && !run.success(), "{run:?}");
    assert!(!run.stdout.contains("listening on"));
    let place = format!("{}:3: bad rule", bad.display());
    assert!(run.stderr.contains(&place), "{}", run.stderr);

    let missing = dir.path().join("missing.txt");
    let run = stage5(&["--port", "0", "--block", path_arg(&missing)]);
    assert!(run.status.is_some() && !run.success(), "{run:?}");
    assert!(run.stderr.contains(path_arg(&missing)), "{}", run.stderr);
}

#[test]
fn smoke_test_of_the_stage5_binary_with_block() {
    let origin = target_origin();
    let dir = TempDir::new("stage5-smoke");
    let block = dir.write("block.txt", "127.0.0.1/blocked/\n");
    let file = path_arg(&block);
    let running = RunningBinary::start(
        env!("CARGO_BIN_EXE_stage5"),
        &["--port", "0", "--block", file],
    );
    let response = get(running.addr, &origin.url("/ok"));
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"got /ok");
    let (mut client, response) = send(running.addr, &Req::get(&origin.url("/blocked/x")));
    let body = blocked_body("127.0.0.1", "127.0.0.1/blocked/", &block, 1);
    assert_refused(&mut client, &response, &body);
    assert_eq!(origin.hits(), 1);

    // The binary watches its file (every 500 ms): block a path live.
    let added = stage5(&["block", "127.0.0.1/later/", "--file", file]);
    assert!(added.success(), "{added:?}");
    assert!(
        wait_for_status(running.addr, &origin.url("/later/x"), 403),
        "the running binary did not pick up the edit"
    );
}

#[test]
fn the_stats_page_counts_blocked_requests_and_every_layer() {
    let f = Setup::block("ads.test\n").start();
    let (client, response) = send(f.proxy, &Req::get("http://ads.test/banner"));
    assert_eq!(response.status, 403);
    // The refusal is counted before its connection closes.
    drop(client);
    let counted = eventually(Duration::from_secs(5), || {
        get(f.proxy, &format!("http://{}/stats.json", f.proxy))
            .body_text()
            .contains("\"requests_blocked\": 1")
    });
    assert!(counted, "the blocked request was not counted");
    let stats = get(f.proxy, &format!("http://{}/stats.json", f.proxy));
    assert_eq!(stats.status, 200);
    let text = stats.body_text();
    assert!(text.contains("\"requests_blocked\": 1"), "{text}");
    assert!(text.contains("\"clients_refused\": 0"), "{text}");
    assert!(text.contains("\"rules\": 1"), "{text}");
    // The layers below report too: the cache and the tunnels.
    for key in ["cache_hit_ratio", "tunnels_open", "upstream_reuse_ratio"] {
        assert!(text.contains(&format!("\"{key}\"")), "no {key}: {text}");
    }
}
