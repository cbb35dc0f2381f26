//! Paged listing for the Kubernetes collector: a collection (all pods, all
//! nodes) read page by page (`limit` + `continue`), each page folded into
//! the caller's summary before the next is fetched, so memory holds one page
//! at a time whatever the size of the cluster. Pages are decoded straight
//! into the caller's partial types, item by item; every other field is
//! skipped, never stored.
//!
//! Every request shares the collector's deadline, a page's body is capped,
//! and an expired continue token (`410 Gone`) restarts the listing from the
//! beginning once, with a warning; a second expiry is an error. A listing
//! that fails part-way yields an error, never the part that was read.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use kube::api::ListParams;
use kube::core::Status;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use tokio::time::Instant;

use crate::k8s::access::{error_status, read_capped, SendError};

/// The largest page body read: a page of 500 ordinary pods is about 1 MiB.
const MAX_PAGE: usize = 128 << 20;

/// Test-only (debug builds): the page size of every listing.
#[cfg(debug_assertions)]
pub const TEST_PAGE_SIZE_ENV: &str = "AICR_TEST_K8S_PAGE_SIZE";
/// Test-only (debug builds): a shell command run after each page that has a
/// next one, with `AICR_PAGE_RESOURCE` (`pods`, `nodes`) and
/// `AICR_PAGE_NUMBER` (from 1) set; the tests expire continue tokens and
/// stall the server with it.
#[cfg(debug_assertions)]
pub const TEST_PAGE_HOOK_ENV: &str = "AICR_TEST_K8S_PAGE_HOOK";

/// Test-only (debug builds): `json` asks for JSON pages only, as from a
/// server that does not speak protobuf.
#[cfg(debug_assertions)]
pub const TEST_ENCODING_ENV: &str = "AICR_TEST_K8S_ENCODING";

/// How a listing is bounded.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Items per page.
    pub page: u32,
    /// When every request of the collector must have been answered.
    pub deadline: Instant,
    /// The collector's whole time budget, for the reasons.
    pub budget: Duration,
}

impl Limits {
    /// `page` items per page; in debug builds the test-only
    /// [`TEST_PAGE_SIZE_ENV`] overrides it.
    pub fn new(page: u32, deadline: Instant, budget: Duration) -> Self {
        #[cfg(debug_assertions)]
        let page = std::env::var(TEST_PAGE_SIZE_ENV)
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&p| p > 0)
            .unwrap_or(page);
        Limits {
            page,
            deadline,
            budget,
        }
    }

    /// "5s" for the reasons.
    pub fn budget_text(&self) -> String {
        humantime::format_duration(self.budget).to_string()
    }
}

/// A whole listing, folded.
#[derive(Debug)]
pub struct Listed<S> {
    pub state: S,
    /// Set when the listing was restarted: the warning to log.
    pub warning: Option<String>,
}

/// Why a listing gave no result.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// The server refused or could not be reached (the reason of
    /// [`crate::k8s::reason`]).
    #[error("{0}")]
    Request(String),
    #[error("timed out after {budget} listing {what}: the API server stopped answering after {pages} page(s) ({items} {what} read); no counts are given from a partial list")]
    Timeout {
        what: &'static str,
        budget: String,
        pages: u32,
        items: u64,
    },
    #[error("listing {what} failed: the continue token expired twice (410 Gone), the list changes faster than it can be read: {message}")]
    ExpiredTwice { what: &'static str, message: String },
    #[error("listing {what} failed: page {page} is over {} MiB, the most read; no counts are given from a partial list", MAX_PAGE >> 20)]
    TooLarge { what: &'static str, page: u32 },
    #[error("listing {what} failed: page {page} is not a valid list: {why}")]
    Invalid {
        what: &'static str,
        page: u32,
        why: String,
    },
    #[error("listing {what} failed: the connection broke while reading page {page}: {why}")]
    Broken {
        what: &'static str,
        page: u32,
        why: String,
    },
}

/// What a page says besides its items.
#[derive(Debug, Default, Deserialize)]
pub struct PageMeta {
    #[serde(rename = "continue", default)]
    pub continue_: Option<String>,
}

/// One page, decoded.
#[derive(Debug, Default)]
pub struct PageInfo {
    pub meta: PageMeta,
    pub items: u64,
}

impl From<(Option<String>, u64)> for PageInfo {
    /// A protobuf page's token and item count.
    fn from((continue_, items): (Option<String>, u64)) -> Self {
        PageInfo {
            meta: PageMeta { continue_ },
            items,
        }
    }
}

/// How a page is encoded: built-in kinds are asked for in protobuf, which
/// the API server encodes several times faster than JSON; it may answer
/// JSON, and the page is read as what the server says it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Json,
    Protobuf,
}

/// Lists `path` (`/api/v1/pods`) page by page. `init` makes the empty
/// summary (again when the listing restarts); `fold` decodes one page's
/// body, in the encoding the server chose, into it, usually through
/// [`decode_page`] or [`super::proto::decode_list`].
///
/// The next page is asked for as soon as the current page's continue token
/// has arrived (the server writes a list's metadata before its items), so
/// the server encodes page n+1 while page n is still being read and folded:
/// at most two requests are in flight. The token the next page was asked
/// with is checked against the one the whole page holds.
pub async fn fold<S>(
    client: &kube::Client,
    what: &'static str,
    path: &str,
    limits: Limits,
    init: impl Fn() -> S,
    mut fold: impl FnMut(&mut S, Encoding, &[u8]) -> Result<PageInfo, String>,
) -> Result<Listed<S>, ListError> {
    let mut warning = None;
    let mut buf = Vec::new();
    'attempt: loop {
        let mut state = init();
        let (mut pages, mut items) = (0u32, 0u64);
        let mut token: Option<String> = None;
        let mut ahead: Option<Ahead> = None;
        loop {
            let n = pages + 1;
            let fetch = Fetch {
                client,
                what,
                path,
                n,
                limit: limits.page,
            };
            let got = tokio::time::timeout_at(
                limits.deadline,
                fetch.page(token.as_deref(), &mut ahead, &mut buf),
            )
            .await;
            let encoding = match got {
                Err(_) => {
                    return Err(ListError::Timeout {
                        what,
                        budget: limits.budget_text(),
                        pages,
                        items,
                    })
                }
                Ok(Err(PageError::Expired(message))) => {
                    if warning.is_some() {
                        return Err(ListError::ExpiredTwice { what, message });
                    }
                    warning = Some(format!(
                        "listing {what} again from the start: the continue token expired (410 Gone) after {pages} page(s)"
                    ));
                    continue 'attempt;
                }
                Ok(Err(PageError::List(e))) => return Err(e),
                Ok(Ok(encoding)) => encoding,
            };
            let page = fold(&mut state, encoding, &buf).map_err(|why| ListError::Invalid {
                what,
                page: n,
                why,
            })?;
            pages = n;
            items += page.items;
            token = page.meta.continue_.filter(|t| !t.is_empty());
            if token.is_none() {
                return Ok(Listed { state, warning });
            }
            #[cfg(debug_assertions)]
            test_hook(what, n);
        }
    }
}

enum PageError {
    Expired(String),
    List(ListError),
}

/// The request for the next page, sent ahead: the token it was sent with
/// and the response on its way. Dropped (the request aborted) when the
/// listing ends or restarts before it is used.
struct Ahead {
    token: String,
    task: tokio::task::JoinHandle<Result<http::Response<kube::client::Body>, kube::Error>>,
}

impl Drop for Ahead {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One page request of a listing.
struct Fetch<'a> {
    client: &'a kube::Client,
    what: &'static str,
    path: &'a str,
    /// The page's number, from 1.
    n: u32,
    limit: u32,
}

impl Fetch<'_> {
    /// The request for the page after `token` (the first page without).
    fn request(&self, token: Option<&str>) -> Result<http::Request<kube::client::Body>, PageError> {
        let mut lp = ListParams::default().limit(self.limit);
        if let Some(t) = token {
            lp = lp.continue_token(t);
        }
        let mut request = kube::core::Request::new(self.path).list(&lp).map_err(|e| {
            PageError::List(ListError::Request(format!("listing {}: {e}", self.what)))
        })?;
        request.headers_mut().insert(
            http::header::ACCEPT,
            http::HeaderValue::from_static(accept()),
        );
        Ok(request.map(kube::client::Body::from))
    }

    /// Fetches the page after `token` into `buf` (using the request sent
    /// ahead when it was sent with that token), sends the request for the
    /// next page ahead into `ahead` as soon as this page's token is known,
    /// and says how the page is encoded.
    async fn page(
        &self,
        token: Option<&str>,
        ahead: &mut Option<Ahead>,
        buf: &mut Vec<u8>,
    ) -> Result<Encoding, PageError> {
        let response = match ahead.take() {
            Some(mut a) if Some(a.token.as_str()) == token => {
                (&mut a.task).await.unwrap_or_else(|e| {
                    Err(kube::Error::Service(
                        format!("the request for the next page failed: {e}").into(),
                    ))
                })
            }
            _ => self.client.send(self.request(token)?).await,
        }
        .map_err(|e| PageError::List(ListError::Request(crate::k8s::reason(&e))))?;
        let encoding = match response.headers().get(http::header::CONTENT_TYPE) {
            Some(t)
                if t.as_bytes()
                    .starts_with(super::proto::CONTENT_TYPE.as_bytes()) =>
            {
                Encoding::Protobuf
            }
            _ => Encoding::Json,
        };
        // Looking for this page's token stops once it is found or cannot
        // be: after the first bytes.
        let mut looking = send_ahead();
        let seen = |prefix: &[u8]| {
            if !looking {
                return;
            }
            let early = match encoding {
                Encoding::Protobuf => super::proto::early_continue(prefix),
                Encoding::Json => early_continue_json(prefix),
            };
            if let Some(next) = early {
                looking = false;
                // A request that cannot be made is made again, and its
                // error reported, when the page is due.
                if let Some((next, Ok(request))) = next.map(|t| {
                    let r = self.request(Some(&t));
                    (t, r)
                }) {
                    let client = self.client.clone();
                    *ahead = Some(Ahead {
                        token: next,
                        task: tokio::spawn(async move { client.send(request).await }),
                    });
                }
            } else if prefix.len() > EARLY_WINDOW {
                looking = false;
            }
        };
        let code = match read_capped(response, MAX_PAGE, buf, seen).await {
            Ok(code) => code,
            Err(SendError::Send(e)) => {
                return Err(PageError::List(ListError::Request(crate::k8s::reason(&e))))
            }
            Err(SendError::Body(e)) => {
                return Err(PageError::List(ListError::Broken {
                    what: self.what,
                    page: self.n,
                    why: crate::k8s::reason(&e),
                }))
            }
            Err(SendError::TooLarge) => {
                return Err(PageError::List(ListError::TooLarge {
                    what: self.what,
                    page: self.n,
                }))
            }
        };
        if code.is_success() {
            return Ok(encoding);
        }
        // A Status, in the answer's encoding, or one made of its text.
        let status = match encoding {
            Encoding::Protobuf => super::proto::status(buf)
                .ok()
                .filter(|(.., c)| *c == code.as_u16())
                .map(|(message, reason, c)| Status::failure(&message, &reason).with_code(c))
                .unwrap_or_else(|| error_status(code, b"")),
            Encoding::Json => error_status(code, buf),
        };
        if status.code == 410 {
            return Err(PageError::Expired(crate::collector::redact::text(
                &status.message,
            )));
        }
        Err(PageError::List(ListError::Request(crate::k8s::reason(
            &kube::Error::Api(status.boxed()),
        ))))
    }
}

/// What the listings accept: protobuf first, JSON from servers (or
/// aggregated APIs) that do not speak it.
const ACCEPT: &str = "application/vnd.kubernetes.protobuf, application/json";

fn accept() -> &'static str {
    #[cfg(debug_assertions)]
    if std::env::var(TEST_ENCODING_ENV).is_ok_and(|v| v == "json") {
        return "application/json";
    }
    ACCEPT
}

/// How far into a page its token is looked for: the metadata comes first.
const EARLY_WINDOW: usize = 64 << 10;

/// Whether the next page is asked for ahead. Not in debug builds running
/// the test page hook, which must run between a page and the request for
/// the next.
fn send_ahead() -> bool {
    #[cfg(debug_assertions)]
    if std::env::var_os(TEST_PAGE_HOOK_ENV).is_some() {
        return false;
    }
    true
}

/// The continue token of a JSON list page from its first bytes: the
/// server writes `{"kind":…,"apiVersion":…,"metadata":{…},"items":[`, and
/// the part before `"items"` is read as a list without items. `None` while
/// that part has not all arrived, or when the page is laid out otherwise;
/// the token the whole page holds is what counts.
fn early_continue_json(prefix: &[u8]) -> Option<Option<String>> {
    #[derive(Deserialize)]
    struct Head {
        metadata: Option<PageMeta>,
    }
    let window = &prefix[..prefix.len().min(EARLY_WINDOW)];
    let at = window.windows(8).position(|w| w == b"\"items\":")?;
    let head = window[..at].trim_ascii_end().strip_suffix(b",")?;
    let mut text = head.to_vec();
    text.push(b'}');
    let head: Head = serde_json::from_slice(&text).ok()?;
    Some(head.metadata?.continue_.filter(|t| !t.is_empty()))
}

#[cfg(debug_assertions)]
fn test_hook(what: &str, page: u32) {
    if let Some(cmd) = std::env::var_os(TEST_PAGE_HOOK_ENV) {
        let _ = std::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .env("AICR_PAGE_RESOURCE", what)
            .env("AICR_PAGE_NUMBER", page.to_string())
            .stdin(std::process::Stdio::null())
            .status();
    }
}

/// Decodes a list page (`{"metadata": {...}, "items": [...]}`), handing
/// each item to `each` as it is read: the items are never collected, and
/// an item type with few fields skips the rest without storing it.
pub fn decode_page<'de, I, F>(page: &'de [u8], each: F) -> Result<PageInfo, serde_json::Error>
where
    I: Deserialize<'de>,
    F: FnMut(I),
{
    let mut de = serde_json::Deserializer::from_slice(page);
    let info = PageSeed {
        each,
        _item: PhantomData,
    }
    .deserialize(&mut de)?;
    de.end()?;
    Ok(info)
}

struct PageSeed<I, F> {
    each: F,
    _item: PhantomData<fn() -> I>,
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum Field {
    Metadata,
    Items,
    #[serde(other)]
    Other,
}

impl<'de, I: Deserialize<'de>, F: FnMut(I)> DeserializeSeed<'de> for PageSeed<I, F> {
    type Value = PageInfo;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<PageInfo, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, I: Deserialize<'de>, F: FnMut(I)> Visitor<'de> for PageSeed<I, F> {
    type Value = PageInfo;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list object")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<PageInfo, A::Error> {
        let mut info = PageInfo::default();
        while let Some(key) = map.next_key::<Field>()? {
            match key {
                Field::Metadata => info.meta = map.next_value()?,
                Field::Items => {
                    info.items += map.next_value_seed(Items {
                        each: &mut self.each,
                        _item: PhantomData,
                    })?
                }
                Field::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(info)
    }
}

/// The `items` array (or null), item by item.
struct Items<'f, I, F> {
    each: &'f mut F,
    _item: PhantomData<fn() -> I>,
}

impl<'de, I: Deserialize<'de>, F: FnMut(I)> DeserializeSeed<'de> for Items<'_, I, F> {
    type Value = u64;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de, I: Deserialize<'de>, F: FnMut(I)> Visitor<'de> for Items<'_, I, F> {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of items")
    }

    fn visit_none<E>(self) -> Result<u64, E> {
        Ok(0)
    }

    fn visit_unit<E>(self) -> Result<u64, E> {
        Ok(0)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
        d.deserialize_seq(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<u64, A::Error> {
        let mut n = 0;
        while let Some(item) = seq.next_element::<I>()? {
            (self.each)(item);
            n += 1;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Named<'a> {
        #[serde(borrow)]
        metadata: NameOnly<'a>,
    }
    #[derive(Deserialize)]
    struct NameOnly<'a> {
        name: &'a str,
    }

    /// Items come one by one in order, other fields are skipped wherever
    /// they stand, and the continue token is read before or after the items.
    #[test]
    fn pages_decode_item_by_item() {
        let page = br#"{"kind":"PodList","items":[{"metadata":{"name":"a","uid":"1"},"spec":{"x":[1,2]}},{"metadata":{"name":"b"}}],"metadata":{"resourceVersion":"9","continue":"tok"},"apiVersion":"v1"}"#;
        let mut names = Vec::new();
        let info = decode_page(page, |n: Named| names.push(n.metadata.name.to_string())).unwrap();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(info.items, 2);
        assert_eq!(info.meta.continue_.as_deref(), Some("tok"));

        let info = decode_page(br#"{"metadata":{},"items":null}"#, |_: Named| panic!()).unwrap();
        assert_eq!((info.items, info.meta.continue_), (0, None));
        let info = decode_page(br#"{"metadata":{"continue":""}}"#, |_: Named| panic!()).unwrap();
        assert_eq!(info.meta.continue_.as_deref(), Some(""));
    }

    /// The token of a JSON page is known from its first bytes, as the
    /// server lays a list out; any other layout gives no early token.
    #[test]
    fn json_token_is_read_early() {
        let page = br#"{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"9","continue":"tok","remainingItemCount":3},"items":[{"metadata":{"name":"a"}}]}"#;
        let head = page.windows(8).position(|w| w == b"\"items\":").unwrap();
        for cut in 0..head + 8 {
            assert_eq!(early_continue_json(&page[..cut]), None, "cut at {cut}");
        }
        assert_eq!(
            early_continue_json(&page[..head + 8]),
            Some(Some("tok".into()))
        );
        let last = br#"{"kind":"PodList","metadata":{"resourceVersion":"9"},"items":[]}"#;
        assert_eq!(early_continue_json(last), Some(None));
        let empty = br#"{"metadata":{"continue":""},"items":[]}"#;
        assert_eq!(early_continue_json(empty), Some(None));
        for other in [
            &br#"{"items":[],"metadata":{"continue":"tok"}}"#[..],
            br#"{"kind":"PodList","items":[]}"#,
            br#"{"metadata":{"continue":"tok"} "items":[]}"#,
        ] {
            assert_eq!(early_continue_json(other), None);
        }
    }

    /// A page that is not a list, or is cut short, is an error with the
    /// place, never a shorter list.
    #[test]
    fn bad_pages_are_errors() {
        let cut = br#"{"metadata":{},"items":[{"metadata":{"name":"a"}},{"metadata":{"na"#;
        let mut seen = 0;
        let err = decode_page(cut, |_: Named| seen += 1).unwrap_err();
        assert_eq!(
            err.to_string(),
            "EOF while parsing a string at line 1 column 66"
        );
        assert_eq!(
            seen, 1,
            "the items before the cut were read; fold() drops them"
        );
        assert_eq!(
            decode_page(b"[1]", |_: Named| ()).unwrap_err().to_string(),
            "invalid type: sequence, expected a list object at line 1 column 0"
        );
        assert_eq!(
            decode_page(br#"{"items":{}}"#, |_: Named| ())
                .unwrap_err()
                .to_string(),
            "invalid type: map, expected a list of items at line 1 column 9"
        );
        assert_eq!(
            decode_page(br#"{"items":[]} x"#, |_: Named| ())
                .unwrap_err()
                .to_string(),
            "trailing characters at line 1 column 14"
        );
    }
}
