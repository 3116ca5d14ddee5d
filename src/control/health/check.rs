//! One check of one real server, with ordinary sockets (through the
//! exception path when the director's addresses live there) or a program.
//!
//! The contract: [`run`] blocks for at most about the connect timeout (a
//! misc program: that long too, then it is killed) and says whether the
//! server passed, or why not in one line.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::md5;
use crate::config::health::Check;

/// The most of a page read for a digest.
const MAX_BODY: u64 = 1 << 20;

/// Checks `addr:port` once.
pub fn run(check: &Check, addr: Ipv4Addr, port: u16, timeout: Duration) -> Result<(), String> {
    match check {
        Check::TcpConnect => connect(addr, port, timeout).map(|_| ()),
        Check::HttpGet {
            url,
            status,
            digest,
            virtualhost,
        } => http_get(
            addr,
            port,
            timeout,
            url,
            *status,
            digest.as_deref(),
            virtualhost.as_deref(),
        ),
        Check::Misc { argv } => misc(argv, addr, port, timeout),
    }
}

fn connect(addr: Ipv4Addr, port: u16, timeout: Duration) -> Result<TcpStream, String> {
    TcpStream::connect_timeout(&SocketAddr::from((addr, port)), timeout)
        .map_err(|e| format!("connect to {addr}:{port}: {e}"))
}

fn http_get(
    addr: Ipv4Addr,
    port: u16,
    timeout: Duration,
    url: &str,
    want: u16,
    digest: Option<&str>,
    virtualhost: Option<&str>,
) -> Result<(), String> {
    let mut s =
        connect(addr, port, timeout).map_err(|e| format!("GET http://{addr}:{port}{url}: {e}"))?;
    let io = |e: std::io::Error| format!("GET http://{addr}:{port}{url}: {e}");
    s.set_read_timeout(Some(timeout)).map_err(io)?;
    s.set_write_timeout(Some(timeout)).map_err(io)?;
    let host = virtualhost.map_or_else(|| addr.to_string(), str::to_owned);
    write!(
        s,
        "GET {url} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: dlvs-health\r\nConnection: close\r\n\r\n"
    )
    .map_err(io)?;
    // The whole answer within the timeout: a server that trickles it fails.
    let deadline = std::time::Instant::now() + timeout;
    let mut page = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(format!(
                "GET http://{addr}:{port}{url}: no whole answer within {timeout:?}"
            ));
        }
        s.set_read_timeout(Some(left)).map_err(io)?;
        let n = match s.read(&mut buf) {
            // A signal for another thread of the process: read again.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            r => r.map_err(io)?,
        };
        if n == 0 || page.len() as u64 >= MAX_BODY {
            break;
        }
        page.extend_from_slice(&buf[..n]);
    }
    let (status, body) = parse_response(&page)
        .ok_or_else(|| format!("GET http://{addr}:{port}{url}: not an HTTP response"))?;
    if status != want {
        return Err(format!(
            "GET http://{addr}:{port}{url}: status {status}, not {want}"
        ));
    }
    if let Some(d) = digest {
        let got = md5::hex(body);
        if got != d {
            return Err(format!(
                "GET http://{addr}:{port}{url}: body digest {got}, not {d}"
            ));
        }
    }
    Ok(())
}

/// The status and body of an HTTP/1.x response.
fn parse_response(page: &[u8]) -> Option<(u16, &[u8])> {
    let end = page.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&page[..end]).ok()?;
    let line = head.lines().next()?;
    let mut words = line.split_whitespace();
    if !words.next()?.starts_with("HTTP/1.") {
        return None;
    }
    let status = words.next()?.parse().ok()?;
    Some((status, &page[end + 4..]))
}

fn misc(argv: &[String], addr: Ipv4Addr, port: u16, timeout: Duration) -> Result<(), String> {
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .env("DLVS_RS_ADDR", addr.to_string())
        .env("DLVS_RS_PORT", port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e}", argv[0]))?;
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("{} for {addr}:{port}: {status}", argv[0])),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{} for {addr}:{port}: no answer within {:?}, killed",
                    argv[0], timeout
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("{}: {e}", argv[0])),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn responses_are_read() {
        assert_eq!(
            parse_response(b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\nhello"),
            Some((200, &b"hello"[..]))
        );
        assert_eq!(
            parse_response(b"HTTP/1.1 503 Busy\r\n\r\n"),
            Some((503, &b""[..]))
        );
        assert_eq!(parse_response(b"SSH-2.0-OpenSSH\r\n\r\n"), None);
        assert_eq!(parse_response(b"HTTP/1.0 200 OK\r\n"), None);
    }

    /// A one-shot HTTP server on loopback answering `reply`.
    fn serve(reply: &'static str) -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = l.accept() {
                // The whole request first: closing on unread bytes would
                // reset the connection before the client reads the reply.
                let (mut got, mut buf) = (Vec::new(), [0u8; 1024]);
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = s.write_all(reply.as_bytes());
            }
        });
        port
    }

    #[test]
    fn checks_pass_and_fail_for_their_reasons() {
        let lo = Ipv4Addr::LOCALHOST;
        let t = Duration::from_secs(2);
        let get = |status, digest: Option<&str>| Check::HttpGet {
            url: "/health".into(),
            status,
            digest: digest.map(str::to_owned),
            virtualhost: None,
        };
        let port = serve("HTTP/1.0 200 OK\r\n\r\nabc");
        assert_eq!(
            run(
                &get(200, Some("900150983cd24fb0d6963f7d28e17f72")),
                lo,
                port,
                t
            ),
            Ok(())
        );
        let port = serve("HTTP/1.0 200 OK\r\n\r\nabd");
        let e = run(
            &get(200, Some("900150983cd24fb0d6963f7d28e17f72")),
            lo,
            port,
            t,
        )
        .unwrap_err();
        assert!(e.contains("body digest"), "{e}");
        let port = serve("HTTP/1.0 500 Oops\r\n\r\n");
        let e = run(&get(200, None), lo, port, t).unwrap_err();
        assert!(e.contains("status 500, not 200"), "{e}");
        let port = serve("");
        assert_eq!(run(&Check::TcpConnect, lo, port, t), Ok(()));
        // A port nobody listens on (just closed).
        let closed = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = run(&Check::TcpConnect, lo, closed, t).unwrap_err();
        assert!(e.starts_with("connect to 127.0.0.1:"), "{e}");
        let sh = |script: &str| Check::Misc {
            argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
        };
        assert_eq!(run(&sh("test \"$DLVS_RS_PORT\" = 81"), lo, 81, t), Ok(()));
        assert!(run(&sh("exit 3"), lo, 81, t).is_err());
        let e = run(&sh("sleep 5"), lo, 81, Duration::from_millis(200)).unwrap_err();
        assert!(e.contains("killed"), "{e}");
    }
}
