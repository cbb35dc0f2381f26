//! Reading an input document from an `https://` URL: one GET, TLS verified
//! against the system's roots and any `--ca-file` CA, a connect timeout and
//! a total deadline, the same size cap as a file, at most
//! [`MAX_REDIRECTS`] redirects and every one of them to `https://` too.
//! Plain `http://` is refused: a recipe or snapshot fetched in clear text
//! could be altered on the way and still validate. Each failure is
//! classified: timeout 5, unreachable or untrusted server 6, 404 3, 401/403
//! 4, 429 7, too large and bad URLs 2.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::Uri;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};

use crate::error::{excerpt, Class, Classify};

/// Redirects followed before giving up.
pub const MAX_REDIRECTS: usize = 5;

/// The longest a TCP connection may take to open, within the deadline.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The cap on a `--ca-file`, in bytes (a bundle of a few hundred CAs).
pub const MAX_CA_FILE_BYTES: u64 = 1024 * 1024;

/// How URLs are fetched, resolved once from the command's flags.
#[derive(Clone, Debug)]
pub struct FetchOptions {
    /// The whole fetch (connect, TLS, redirects, body) must end within it.
    pub timeout: Duration,
    /// Extra trusted CA certificates (PEM), beside the system's.
    pub ca_file: Option<PathBuf>,
    /// The size cap of the body, as for a file.
    pub limit: u64,
}

/// Why a URL could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{url}: not a valid URL ({reason})")]
    BadUrl { url: String, reason: String },
    #[error("{url}: plain http:// is not accepted, since a document fetched in clear text can be altered on the way; serve it over https://")]
    PlainHttp { url: String },
    #[error(
        "{url}: redirected to {to}, which is not https://; only https:// redirects are followed"
    )]
    InsecureRedirect { url: String, to: String },
    #[error("{url}: more than {MAX_REDIRECTS} redirects")]
    TooManyRedirects { url: String },
    #[error("{url}: no complete answer within {} (--timeout)", humantime::format_duration(*.timeout))]
    Timeout { url: String, timeout: Duration },
    #[error("{url}: cannot connect to {host}: {io}")]
    Connect {
        url: String,
        host: String,
        io: std::io::Error,
    },
    #[error("{url}: cannot resolve host {host}: {io}")]
    Resolve {
        url: String,
        host: String,
        io: std::io::Error,
    },
    #[error("{url}: the certificate of {host} was not accepted: {reason}")]
    Certificate {
        url: String,
        host: String,
        reason: String,
    },
    #[error("{url}: TLS with {host} failed: {reason}")]
    Tls {
        url: String,
        host: String,
        reason: String,
    },
    #[error("{url}: the server answered {status}{}", status_text(*.status))]
    Status { url: String, status: u16 },
    #[error("{url}: the server broke off the exchange: {reason}")]
    Protocol { url: String, reason: String },
    #[error("{url} is larger than {}, the limit for a document", super::size_text(*.limit))]
    TooLarge { url: String, limit: u64 },
    #[error("--ca-file {path}: {reason}")]
    CaFile { path: String, reason: String },
    #[error("--ca-file: {err}")]
    CaFileRead {
        path: String,
        err: Box<super::Error>,
    },
    #[error(
        "no trusted CA certificates: the system has none ({reason}) and no --ca-file was given"
    )]
    NoRoots { reason: String },
    #[error("cannot start the network runtime: {0}")]
    Runtime(std::io::Error),
}

impl Classify for FetchError {
    fn class(&self) -> Class {
        match self {
            FetchError::BadUrl { .. }
            | FetchError::PlainHttp { .. }
            | FetchError::InsecureRedirect { .. }
            | FetchError::TooManyRedirects { .. }
            | FetchError::TooLarge { .. }
            | FetchError::CaFile { .. }
            | FetchError::NoRoots { .. } => Class::InvalidInput,
            FetchError::CaFileRead { err, .. } => err.class(),
            FetchError::Timeout { .. } => Class::Timeout,
            FetchError::Connect { io, .. } if io.kind() == std::io::ErrorKind::TimedOut => {
                Class::Timeout
            }
            FetchError::Connect { .. }
            | FetchError::Resolve { .. }
            | FetchError::Certificate { .. }
            | FetchError::Tls { .. }
            | FetchError::Protocol { .. } => Class::Unavailable,
            FetchError::Status { status, .. } => match status {
                404 | 410 => Class::NotFound,
                401 | 403 | 407 => Class::Unauthorized,
                408 | 504 => Class::Timeout,
                429 => Class::RateLimited,
                400..=499 => Class::InvalidInput,
                _ => Class::Unavailable,
            },
            FetchError::Runtime(_) => Class::Internal,
        }
    }
}

/// True when `arg` names a URL rather than a file (`https://`, `http://`).
pub fn is_url(arg: &str) -> bool {
    let lower = arg.get(..8).unwrap_or(arg).to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://")
}

/// A URL as messages show it: without user information and query, which
/// may carry credentials.
pub fn display_url(url: &str) -> String {
    let no_query = url.split(['?', '#']).next().unwrap_or(url);
    match no_query.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority.rsplit('@').next().unwrap_or(authority);
            let cut = if no_query.len() < url.len() {
                "?…"
            } else {
                ""
            };
            excerpt(&format!("{scheme}://{host}{path}{cut}")).into_owned()
        }
        None => excerpt(no_query).into_owned(),
    }
}

/// Fetches the document at `url` (GET), following https redirects.
pub fn fetch(url: &str, opts: &FetchOptions) -> Result<Vec<u8>, FetchError> {
    let shown = display_url(url);
    let tls = tls_config(opts)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(FetchError::Runtime)?;
    let result = rt.block_on(async {
        match tokio::time::timeout(opts.timeout, follow(url, &shown, opts.limit, tls)).await {
            Ok(r) => r,
            Err(_) => Err(FetchError::Timeout {
                url: shown.clone(),
                timeout: opts.timeout,
            }),
        }
    });
    // A name lookup still blocked in its thread past the deadline is
    // abandoned, not waited for (dropping the runtime would wait).
    rt.shutdown_background();
    result
}

/// The TLS client: the system's roots plus `--ca-file`'s, ring as the
/// provider, rustls's safe defaults (TLS 1.2 and 1.3).
fn tls_config(opts: &FetchOptions) -> Result<Arc<rustls::ClientConfig>, FetchError> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (added, _) = roots.add_parsable_certificates(native.certs);
    if let Some(path) = &opts.ca_file {
        let shown = path.display().to_string();
        let bytes = super::read_capped(path, MAX_CA_FILE_BYTES, "CA file").map_err(|source| {
            FetchError::CaFileRead {
                path: shown.clone(),
                err: Box::new(source),
            }
        })?;
        let certs = CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| FetchError::CaFile {
                path: shown.clone(),
                reason: format!("not PEM certificates ({e})"),
            })?;
        if certs.is_empty() {
            return Err(FetchError::CaFile {
                path: shown,
                reason: "holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
            });
        }
        for cert in certs {
            roots.add(cert).map_err(|e| FetchError::CaFile {
                path: shown.clone(),
                reason: format!("a certificate is not a usable CA: {e}"),
            })?;
        }
    } else if added == 0 {
        let reason = match native.errors.first() {
            Some(e) => e.to_string(),
            None => "none found".into(),
        };
        return Err(FetchError::NoRoots { reason });
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| FetchError::Tls {
            url: String::new(),
            host: String::new(),
            reason: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// GETs `url`, following up to [`MAX_REDIRECTS`] https redirects.
async fn follow(
    url: &str,
    shown: &str,
    limit: u64,
    tls: Arc<rustls::ClientConfig>,
) -> Result<Vec<u8>, FetchError> {
    let mut target = parse(url, shown)?;
    for _ in 0..=MAX_REDIRECTS {
        match get(&target, shown, limit, tls.clone()).await? {
            Answer::Body(body) => return Ok(body),
            Answer::Redirect(location) => target = redirect(&target, &location, shown)?,
        }
    }
    Err(FetchError::TooManyRedirects {
        url: shown.to_string(),
    })
}

/// A checked https URL.
struct Target {
    uri: Uri,
    host: String,
    port: u16,
}

fn parse(url: &str, shown: &str) -> Result<Target, FetchError> {
    let bad = |reason: &str| FetchError::BadUrl {
        url: shown.to_string(),
        reason: reason.to_string(),
    };
    let uri: Uri = url
        .parse()
        .map_err(|e: hyper::http::uri::InvalidUri| bad(&e.to_string()))?;
    match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
        Some("https") => {}
        Some("http") => {
            return Err(FetchError::PlainHttp {
                url: shown.to_string(),
            })
        }
        _ => return Err(bad("expected https://HOST/PATH")),
    }
    let authority = uri.authority().ok_or_else(|| bad("no host"))?;
    if authority.as_str().contains('@') {
        return Err(bad(
            "user information in the URL is not sent; serve the document without credentials in the URL",
        ));
    }
    let host = authority.host().to_string();
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let port = authority.port_u16().unwrap_or(443);
    Ok(Target { uri, host, port })
}

/// The target of a redirect: an absolute https URL or an absolute path on
/// the same server.
fn redirect(from: &Target, location: &str, shown: &str) -> Result<Target, FetchError> {
    if location.starts_with('/') && !location.starts_with("//") {
        let url = format!("https://{}:{}{}", from.host, from.port, location);
        return parse(&url, shown);
    }
    if is_url(location)
        && !location
            .get(..8)
            .unwrap_or("")
            .eq_ignore_ascii_case("https://")
    {
        return Err(FetchError::InsecureRedirect {
            url: shown.to_string(),
            to: display_url(location),
        });
    }
    parse(location, shown)
}

enum Answer {
    Body(Vec<u8>),
    Redirect(String),
}

/// One GET over one TLS connection.
async fn get(
    target: &Target,
    shown: &str,
    limit: u64,
    tls: Arc<rustls::ClientConfig>,
) -> Result<Answer, FetchError> {
    let url = shown.to_string();
    let host = target.host.clone();
    let tcp = connect(target, shown).await?;
    // An IPv6 literal is bracketed in the URI, not in the TLS name.
    let name_text = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let name = ServerName::try_from(name_text).map_err(|e| FetchError::BadUrl {
        url: url.clone(),
        reason: format!("host {host:?} is not a valid server name: {e}"),
    })?;
    let stream = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .map_err(|io| tls_error(&url, &host, io))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| protocol(&url, &e))?;
    let driver = tokio::spawn(conn);
    let path = target
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let authority = target
        .uri
        .authority()
        .map_or(host.clone(), |a| a.as_str().to_string());
    let request = hyper::Request::get(path)
        .header(hyper::header::HOST, authority)
        .header(
            hyper::header::USER_AGENT,
            concat!("aicr/", env!("CARGO_PKG_VERSION")),
        )
        .header(
            hyper::header::ACCEPT,
            "application/yaml, application/json, text/plain, */*",
        )
        .body(Empty::<Bytes>::new())
        .map_err(|e| FetchError::BadUrl {
            url: url.clone(),
            reason: e.to_string(),
        })?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| protocol(&url, &e))?;
    let status = response.status();
    if status.is_redirection() {
        let location = response
            .headers()
            .get(hyper::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        driver.abort();
        return match location {
            Some(l) => Ok(Answer::Redirect(l)),
            None => Err(FetchError::Status {
                url,
                status: status.as_u16(),
            }),
        };
    }
    if !status.is_success() {
        driver.abort();
        return Err(FetchError::Status {
            url,
            status: status.as_u16(),
        });
    }
    let too_large = || FetchError::TooLarge {
        url: url.clone(),
        limit,
    };
    let declared = response
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        driver.abort();
        return Err(too_large());
    }
    let mut body = response.into_body();
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| protocol(&url, &e))?;
        if let Ok(data) = frame.into_data() {
            if (out.len() + data.len()) as u64 > limit {
                driver.abort();
                return Err(too_large());
            }
            out.extend_from_slice(&data);
        }
    }
    driver.abort();
    Ok(Answer::Body(out))
}

async fn connect(target: &Target, shown: &str) -> Result<tokio::net::TcpStream, FetchError> {
    let host = target.host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<_> = tokio::net::lookup_host((host, target.port))
        .await
        .map_err(|io| FetchError::Resolve {
            url: shown.to_string(),
            host: host.to_string(),
            io,
        })?
        .collect();
    let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no address");
    for addr in addrs {
        match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(s)) => return Ok(s),
            Ok(Err(e)) => last = e,
            Err(_) => {
                last = std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "no connection within {}",
                        humantime::format_duration(CONNECT_TIMEOUT)
                    ),
                )
            }
        }
    }
    Err(FetchError::Connect {
        url: shown.to_string(),
        host: format!("{}:{}", target.host, target.port),
        io: last,
    })
}

/// A TLS handshake error: a certificate rustls refused, or another failure.
fn tls_error(url: &str, host: &str, io: std::io::Error) -> FetchError {
    let rustls_err = io
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
        .cloned();
    match rustls_err {
        Some(rustls::Error::InvalidCertificate(e)) => FetchError::Certificate {
            url: url.to_string(),
            host: host.to_string(),
            reason: cert_reason(&e),
        },
        Some(e) => FetchError::Tls {
            url: url.to_string(),
            host: host.to_string(),
            reason: e.to_string(),
        },
        None => FetchError::Tls {
            url: url.to_string(),
            host: host.to_string(),
            reason: io.to_string(),
        },
    }
}

fn cert_reason(e: &rustls::CertificateError) -> String {
    use rustls::CertificateError as C;
    match e {
        C::UnknownIssuer => {
            "it is signed by a CA this machine does not trust; for a private CA give its certificate with --ca-file CA.pem".into()
        }
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            format!("it does not name this host ({e}); use a host name the certificate names")
        }
        C::Expired | C::ExpiredContext { .. } => format!("it has expired ({e})"),
        C::NotValidYet | C::NotValidYetContext { .. } => format!("it is not valid yet ({e})"),
        other => other.to_string(),
    }
}

/// The reason phrase after a status code (` Not Found`), when known.
fn status_text(status: u16) -> String {
    hyper::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .map(|r| format!(" {r}"))
        .unwrap_or_default()
}

fn protocol(url: &str, e: &hyper::Error) -> FetchError {
    FetchError::Protocol {
        url: url.to_string(),
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_credentials_or_query() {
        assert_eq!(
            display_url("https://user:pw@example.com:8443/r.yaml?token=abc"),
            "https://example.com:8443/r.yaml?…"
        );
        assert_eq!(display_url("https://example.com"), "https://example.com");
        assert!(is_url("HTTPS://x"));
        assert!(is_url("http://x"));
        assert!(!is_url("./https://x"));
    }

    #[test]
    fn plain_http_bad_urls_and_http_redirects_are_refused() {
        let e = parse("http://example.com/r.yaml", "u").err().unwrap();
        assert!(matches!(e, FetchError::PlainHttp { .. }), "{e}");
        assert_eq!(e.class(), Class::InvalidInput);
        let e = parse("https://u:p@example.com/", "u").err().unwrap();
        assert!(matches!(e, FetchError::BadUrl { .. }), "{e}");
        let from = parse("https://example.com/a", "u").unwrap();
        let e = redirect(&from, "http://example.com/b", "u").err().unwrap();
        assert!(matches!(e, FetchError::InsecureRedirect { .. }), "{e}");
        let to = redirect(&from, "/b?x=1", "u").unwrap();
        assert_eq!(to.uri.to_string(), "https://example.com:443/b?x=1");
    }

    #[test]
    fn statuses_map_to_the_exit_code_table() {
        for (status, class) in [
            (404, Class::NotFound),
            (403, Class::Unauthorized),
            (429, Class::RateLimited),
            (504, Class::Timeout),
            (400, Class::InvalidInput),
            (503, Class::Unavailable),
        ] {
            let e = FetchError::Status {
                url: "u".into(),
                status,
            };
            assert_eq!(e.class(), class, "{status}");
        }
    }
}
