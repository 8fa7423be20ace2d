//! End-to-end tests of control-plane abuse (issue 23): a live vswitchd
//! keeps answering scrapes while 1 000 idle and 1 000 slowloris clients
//! hold connections to its metrics port, refuses a control request line
//! over 1 MiB with an error and closes, and answers `vswitchctl show`
//! while 1 100 clients sit on its control socket; its threads do not grow
//! with the connections and its RSS grows by less than 50 MiB.
//!
//! Run as root (vswitchd opens a `unix:` port only; no TAP, no namespace):
//! `cargo test --release --test e2e_abuse`. Addresses: 127.0.0.1 only.
//! The test raises its own soft `RLIMIT_NOFILE` to the hard limit (it
//! holds 2 000+ sockets); vswitchd inherits it, as the unit's
//! `LimitNOFILE=65536` would give it.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use support::cmd::require_root;
use support::net::free_port;
use support::switchd::Switchd;
use support::wait::wait_for;

/// Raises this process's soft fd limit to the hard one; the 2 000+
/// sockets below need it.
fn raise_nofile(need: u64) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    assert!(hard >= need, "hard RLIMIT_NOFILE {hard} < {need}");
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
}

/// Threads and RSS (KiB) of a process, from /proc/PID/status.
fn threads_rss(pid: u32) -> (u64, u64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} in /proc/{pid}/status"))
    };
    (field("Threads:"), field("VmRSS:"))
}

/// vswitchd's threads and RSS did not grow with the connections held
/// since `before` (from [`threads_rss`]): at most 4 threads, under 50 MiB.
fn assert_bounded(pid: u32, (threads0, rss0): (u64, u64)) {
    let (threads1, rss1) = threads_rss(pid);
    eprintln!("vswitchd threads {threads0} -> {threads1}, RSS {rss0} KiB -> {rss1} KiB");
    assert!(
        threads1 <= threads0 + 4,
        "threads grew with connections: {threads0} -> {threads1}"
    );
    assert!(
        rss1 < rss0 + 50 * 1024,
        "RSS grew by more than 50 MiB: {rss0} KiB -> {rss1} KiB"
    );
}

/// One `GET /metrics`, bounded; `None` if it gets no complete answer.
fn try_scrape(addr: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(5)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.set_write_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8(raw).ok()?;
    (text.starts_with("HTTP/1.1 200") && text.contains("vswitchd_port_rx_frames_total"))
        .then_some(text)
}

/// A vswitchd with one `unix:` port (no TAP, no namespace) in a temp
/// dir that outlives it (fields drop in order).
struct Fixture {
    sw: Switchd,
    _dir: tempfile::TempDir,
}

/// Starts vswitchd with metrics on `metrics` when given.
fn start(metrics: Option<&str>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let port = format!("unix:{}", dir.path().join("p0.sock").display());
    let mut args = vec!["--ports", port.as_str()];
    if let Some(m) = metrics {
        args.extend(["--metrics-addr", m]);
    }
    Fixture {
        sw: Switchd::start(&args, &[]),
        _dir: dir,
    }
}

#[test]
fn metrics_answers_under_idle_and_slowloris_connections() {
    require_root();
    raise_nofile(4_096);
    let addr = format!("127.0.0.1:{}", free_port());
    let mut fx = start(Some(&addr));
    let sw = &mut fx.sw;
    let pid = sw.proc.pid();
    assert!(
        wait_for(Duration::from_secs(15), || try_scrape(&addr)).is_some(),
        "no first scrape: {}",
        sw.log_text()
    );
    let before = threads_rss(pid);

    // 1 000 idle connections: connected, nothing sent.
    let idle: Vec<TcpStream> = (0..1_000)
        .map(|i| {
            TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(5))
                .unwrap_or_else(|e| panic!("idle connection {i}: {e}"))
        })
        .collect();
    // The bug this guards: past 16 idle connections every scrape failed.
    assert!(
        try_scrape(&addr).is_some(),
        "no scrape with 1 000 idle connections open: {}",
        sw.log_text()
    );

    // 1 000 slowloris connections: a request head sent a byte a second,
    // never finished, by a feeder thread bounded in time.
    let head = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    let slow: Vec<TcpStream> = (0..1_000)
        .map(|i| {
            let s = TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(5))
                .unwrap_or_else(|e| panic!("slow connection {i}: {e}"));
            s.set_write_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            s.set_nonblocking(true).unwrap();
            s
        })
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let feeder = {
        let stop = stop.clone();
        let mut slow = slow;
        std::thread::spawn(move || {
            let t0 = Instant::now();
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) && t0.elapsed() < Duration::from_secs(60) {
                let b = [head[i % head.len()]];
                for s in &mut slow {
                    // Shed or timed-out connections fail: that is the point.
                    let _ = s.write(&b);
                }
                i += 1;
                std::thread::sleep(Duration::from_secs(1));
            }
            slow
        })
    };
    std::thread::sleep(Duration::from_secs(2));

    let t = Instant::now();
    let got = wait_for(Duration::from_secs(10), || try_scrape(&addr));
    assert!(
        got.is_some(),
        "no scrape within 10 s with 1 000 idle + 1 000 slowloris connections: {}",
        sw.log_text()
    );
    eprintln!("scrape under 2 000 abusive connections: {:?}", t.elapsed());
    // A few more scrapes in a row, as Prometheus would.
    for n in 0..5 {
        assert!(
            wait_for(Duration::from_secs(10), || try_scrape(&addr)).is_some(),
            "scrape {n} failed"
        );
    }

    assert_bounded(pid, before);
    stop.store(true, Ordering::Relaxed);
    drop(feeder.join().unwrap());
    drop(idle);
    assert!(sw.alive(), "vswitchd died: {}", sw.log_text());
}

#[test]
fn control_socket_refuses_a_long_line_and_serves_many_clients() {
    require_root();
    raise_nofile(4_096);
    let mut fx = start(None);
    let sw = &mut fx.sw;
    let pid = sw.proc.pid();
    sw.ctl_ok(&["show"]);
    let before = threads_rss(pid);

    // 5 MiB without a newline: an error response, then the close.
    let s = UnixStream::connect(&sw.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    let writer = {
        let mut w = s.try_clone().unwrap();
        std::thread::spawn(move || {
            let chunk = vec![b'a'; 64 * 1024];
            for _ in 0..80 {
                // The server stops reading past 1 MiB and closes: the
                // rest fails (EPIPE), or times out.
                if w.write_all(&chunk).is_err() {
                    break;
                }
            }
        })
    };
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).expect("a response to the long line");
    let v: serde_json::Value = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("response {line:?} is not JSON: {e}"));
    assert_eq!(v["version"], 1, "{v}");
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["code"], "bad_request", "{v}");
    assert!(
        v["error"].as_str().unwrap_or("").contains("over"),
        "error message: {v}"
    );
    let mut rest = Vec::new();
    // The close, rather than a timeout: EOF, or a reset (the server closes
    // with our unread bytes pending, which Linux answers with a reset).
    match r.read_to_end(&mut rest) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the connection did not close after the error: {e}"),
    }
    assert!(rest.is_empty(), "more after the error: {rest:?}");
    writer.join().unwrap();

    // 1 100 clients connected and idle (past the cap of 1 024: the
    // oldest idle ones are shed), and `show` still answers.
    let clients: Vec<UnixStream> = (0..1_100)
        .map(|i| UnixStream::connect(&sw.socket).unwrap_or_else(|e| panic!("client {i}: {e}")))
        .collect();
    // Some clients send half a request, never finished.
    for mut c in clients.iter().take(100) {
        let _ = c.write_all(b"{\"version\":1,");
    }
    let t = Instant::now();
    let out = wait_for(Duration::from_secs(10), || {
        let o = sw.ctl(&["show"]);
        o.status.success().then_some(o)
    });
    assert!(
        out.is_some(),
        "vswitchctl show failed with 1 100 clients connected: {}",
        sw.log_text()
    );
    eprintln!("show with 1 100 clients connected: {:?}", t.elapsed());
    assert_bounded(pid, before);
    drop(clients);
    assert!(sw.alive(), "vswitchd died: {}", sw.log_text());
}

/// Whether vswitchd closed `s` (read gives EOF or a reset) within 5 s.
fn closed_by_peer(s: &mut UnixStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut b = [0u8; 4096];
    loop {
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue, // flooded frames from the hosts
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(e) => {
                eprintln!("not closed: {e}");
                return false;
            }
        }
    }
}

/// A `unix:` port survives a peer that sends a length over the MTU,
/// garbage, or disconnects mid-frame: the connection is dropped (and the
/// bad length counted), the port takes the next peer, and the other ports
/// forward all along.
#[test]
fn unix_port_survives_bad_peers() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("vm.sock");
    let unix = format!("unix:{}", sock.display());
    let lan = support::switchd::Lan::with_args("ubp", 2, 136, |taps| {
        vec!["--ports".into(), format!("{},{unix}", taps.join(","))]
    });
    let sw = &lan.sw;
    assert!(lan.ping_eventually(0, 1));
    let connect = || {
        let s = wait_for(Duration::from_secs(5), || UnixStream::connect(&sock).ok());
        s.expect("the unix port takes a peer")
    };
    let malformed = || support::state::drops(&sw.ctl_json(&["show"]), &unix, "malformed");

    // A length far over the MTU.
    let mut s = connect();
    s.write_all(&(1u32 << 24).to_be_bytes()).unwrap();
    let _ = s.write_all(&[0xab; 64]);
    assert!(
        closed_by_peer(&mut s),
        "a 16 MiB length did not end the connection"
    );
    assert!(
        wait_for(Duration::from_secs(5), || (malformed() >= 1).then_some(())).is_some(),
        "bad length not counted: {}",
        sw.ctl_ok(&["show"])
    );

    // Garbage: random bytes read as a length prefix.
    let mut s = connect();
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8 | 0x80)
        .collect();
    let _ = s.write_all(&garbage);
    assert!(
        closed_by_peer(&mut s),
        "garbage did not end the connection: {}",
        sw.log_text()
    );

    // Half a frame, then gone.
    let mut s = connect();
    s.write_all(&60u32.to_be_bytes()).unwrap();
    s.write_all(&[0x02; 20]).unwrap();
    drop(s);

    // The hosts forwarded all along; a good peer is served next.
    assert!(lan.ns[0].ping(&lan.ips[1], 3), "{}", sw.log_text());
    let mut sniff = support::agent::Agent::start(&lan.ns[0], &lan.taps[0]);
    let mut s = connect();
    let marker = b"unix peer after abuse";
    let f = support::frame::test_frame("ff:ff:ff:ff:ff:ff", "02:00:00:00:36:01", marker);
    let mut msg = (f.len() as u32).to_be_bytes().to_vec();
    msg.extend_from_slice(&f);
    let got = wait_for(Duration::from_secs(10), || {
        s.write_all(&msg).ok()?;
        sniff
            .wait_marker(marker, Duration::from_millis(500))
            .then_some(())
    });
    assert!(
        got.is_some(),
        "a good peer's frame did not arrive: {}",
        sw.log_text()
    );
    assert!(
        sw.log_text().contains("bad frame length"),
        "{}",
        sw.log_text()
    );
}
