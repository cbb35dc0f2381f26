//! `aicr validate` with `https://` inputs, against a local HTTPS server on
//! 127.0.0.1 (rustls, in this process) whose certificates come from a
//! test-only CA (tests/fixtures/https): the documents read, a redirect
//! followed, and each failure with its exit code and message: a CA the
//! client does not trust and a wrong host name (6), a server that never
//! answers (5, at the --timeout deadline), too large (2, by Content-Length
//! and by the bytes sent), 404 (3), a redirect to http:// (2), a closed
//! port (6), a bad --ca-file (2, 3).

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

const RECIPE: &str = "tests/fixtures/go-aicr-v0.11.1/golden/recipe-eks-h100-training-ubuntu.yaml";
const SNAP: &str = "tests/fixtures/go-aicr-v0.11.1/golden/mock-snapshot-cuj1.yaml";
const CA: &str = "tests/fixtures/https/ca.pem";

/// A one-purpose HTTPS server on 127.0.0.1: answers each connection on
/// its own thread, for as long as the test process lives.
fn serve(cert: &str) -> u16 {
    let dir = fixture("https");
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(dir.join(format!("{cert}.pem")))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
    let key = PrivateKeyDer::from_pem_file(dir.join(format!("{cert}.key"))).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let config = config.clone();
            std::thread::spawn(move || {
                let _ = answer(config, tcp, port);
            });
        }
    });
    port
}

fn answer(config: Arc<rustls::ServerConfig>, tcp: TcpStream, port: u16) -> std::io::Result<()> {
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let conn = rustls::ServerConnection::new(config).map_err(std::io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tls.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        request.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&request);
    let path = text.split_whitespace().nth(1).unwrap_or("/").to_string();
    let file = |p: &str| std::fs::read(p).unwrap();
    let ok = |body: &[u8]| {
        let mut r = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        r.extend_from_slice(body);
        r
    };
    let big = 16 * 1024 * 1024 + 1;
    match path.as_str() {
        "/recipe.yaml" => tls.write_all(&ok(&file(RECIPE)))?,
        "/snapshot.yaml" => tls.write_all(&ok(&file(SNAP)))?,
        "/moved" => tls.write_all(
            b"HTTP/1.1 302 Found\r\nLocation: /recipe.yaml\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )?,
        "/to-http" => tls.write_all(
            format!("HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{port}/recipe.yaml\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )?,
        "/loop" => tls.write_all(
            b"HTTP/1.1 302 Found\r\nLocation: /loop\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )?,
        "/big-declared" => tls.write_all(
            format!("HTTP/1.1 200 OK\r\nContent-Length: {big}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )?,
        "/big-streamed" => {
            // No Content-Length: the body ends when the connection closes.
            tls.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")?;
            let chunk = vec![b'#'; 64 * 1024];
            for _ in 0..(big / chunk.len() + 2) {
                tls.write_all(&chunk)?;
            }
        }
        _ => tls.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found",
        )?,
    }
    tls.conn.send_close_notify();
    tls.flush()
}

/// A server that accepts connections and never says anything.
fn silent() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for tcp in listener.incoming().flatten() {
            held.push(tcp);
        }
    });
    port
}

/// A port nothing listens on.
fn closed() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Runs validate (the constraints phase: no cluster is read) with the
/// test's whole system trust store being a CA that
/// signed nothing here, so "untrusted" never depends on the machine.
fn validate(args: &[&str]) -> std::process::Output {
    aicr()
        .env("SSL_CERT_FILE", fixture("https/other-ca.pem"))
        .env_remove("SSL_CERT_DIR")
        .args(["validate", "--phase", "constraints"])
        .args(args)
        .output()
        .unwrap()
}

/// The error line with the port numbers made stable.
fn error_line(out: &std::process::Output) -> String {
    let err = stderr(out);
    let line = err
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line: {err}"))
        .to_string();
    let mut s = String::new();
    let mut rest = line.as_str();
    while let Some(i) = rest.find("127.0.0.1:") {
        s.push_str(&rest[..i + 10]);
        rest = &rest[i + 10..];
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        s.push_str("PORT");
        rest = &rest[digits..];
    }
    s.push_str(rest);
    s
}

#[test]
fn documents_are_read_from_https_with_a_private_ca() {
    let port = serve("server");
    let base = format!("https://127.0.0.1:{port}");
    let from_files = run(&[
        "validate",
        "--phase",
        "constraints",
        "-r",
        RECIPE,
        "-s",
        SNAP,
        "-t",
        "json",
    ]);
    assert_eq!(code(&from_files), 0, "{}", stderr(&from_files));
    for recipe in [format!("{base}/recipe.yaml"), format!("{base}/moved")] {
        let out = validate(&[
            "-r",
            &recipe,
            "-s",
            &format!("{base}/snapshot.yaml"),
            "--ca-file",
            CA,
            "-t",
            "json",
        ]);
        assert_eq!(code(&out), 0, "{recipe}: {}", stderr(&out));
        assert_eq!(stdout(&out), stdout(&from_files), "{recipe}");
    }
    // localhost is in the certificate too.
    let out = validate(&[
        "-r",
        &format!("https://localhost:{port}/recipe.yaml"),
        "-s",
        SNAP,
        "--ca-file",
        CA,
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn each_https_failure_has_its_exit_code_and_says_why() {
    let good = serve("server");
    let wrong = serve("wrong-name");
    let refused = closed();
    let url = |port: u16, path: &str| format!("https://127.0.0.1:{port}{path}");
    let not_pem = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(not_pem.path(), "not a certificate\n").unwrap();
    let not_pem = not_pem.path().to_str().unwrap().to_string();
    let cases: Vec<(&str, Vec<String>, i32)> = vec![
        ("untrusted CA", vec![url(good, "/recipe.yaml")], 6),
        (
            "wrong host name",
            vec![url(wrong, "/recipe.yaml"), "--ca-file".into(), CA.into()],
            6,
        ),
        (
            "404",
            vec![
                url(good, "/nothing-here.yaml"),
                "--ca-file".into(),
                CA.into(),
            ],
            3,
        ),
        (
            "too large, declared",
            vec![url(good, "/big-declared"), "--ca-file".into(), CA.into()],
            2,
        ),
        (
            "too large, streamed",
            vec![url(good, "/big-streamed"), "--ca-file".into(), CA.into()],
            2,
        ),
        (
            "redirect to http",
            vec![url(good, "/to-http"), "--ca-file".into(), CA.into()],
            2,
        ),
        (
            "redirect loop",
            vec![url(good, "/loop"), "--ca-file".into(), CA.into()],
            2,
        ),
        ("refused", vec![url(refused, "/recipe.yaml")], 6),
        (
            "CA file missing",
            vec![
                url(good, "/recipe.yaml"),
                "--ca-file".into(),
                "no-such-ca.pem".into(),
            ],
            3,
        ),
        (
            "CA file not PEM",
            vec![url(good, "/recipe.yaml"), "--ca-file".into(), not_pem],
            2,
        ),
    ];
    let mut all = String::new();
    for (name, args, want) in cases {
        let mut full = vec!["-s", SNAP, "-r"];
        full.extend(args.iter().map(String::as_str));
        let out = validate(&full);
        assert_eq!(code(&out), want, "{name}: {}", stderr(&out));
        assert_eq!(stdout(&out), "", "{name}");
        all.push_str(&format!("{name}: exit {want}\n  {}\n", error_line(&out)));
    }
    settings().bind(|| insta::assert_snapshot!("validate_https_failures", all));
}

#[test]
fn a_server_that_never_answers_ends_at_the_deadline_with_exit_5() {
    let port = silent();
    let start = Instant::now();
    let out = validate(&[
        "-r",
        &format!("https://127.0.0.1:{port}/recipe.yaml"),
        "-s",
        SNAP,
        "--timeout",
        "1s",
    ]);
    let took = start.elapsed();
    assert_eq!(code(&out), 5, "{}", stderr(&out));
    assert_eq!(
        error_line(&out),
        "error: https://127.0.0.1:PORT/recipe.yaml: no complete answer within 1s (--timeout)"
    );
    assert!(took >= Duration::from_secs(1), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}
