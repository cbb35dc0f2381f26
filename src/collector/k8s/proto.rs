//! The Kubernetes protobuf encoding, read: the `k8s\0` envelope
//! (`runtime.Unknown`) and the protobuf wire format, enough to walk a list
//! page item by item and pick the few fields the collector counts
//! (container images, a node's GPU capacity, the continue token). Strings
//! are borrowed from the page, never copied; every other field is skipped
//! by its wire type without being decoded.
//!
//! The API server encodes a list several times faster as protobuf than as
//! JSON, and serving the pods is most of the collector's time, so built-in
//! kinds are asked for in protobuf (JSON stays the fallback the server may
//! answer with). A full protobuf library would need message types mirroring
//! Kubernetes' and would allocate every string; five field numbers
//! (`k8s.io/api/core/v1/generated.proto`) and a wire reader do the job.

use std::fmt;

/// The content type of the Kubernetes protobuf encoding.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The first bytes of every protobuf-encoded object.
const MAGIC: &[u8; 4] = b"k8s\0";

/// Why a protobuf body could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(&'static str);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "invalid protobuf: {}", self.0)
    }
}

impl std::error::Error for Error {}

/// One field's value, as the wire format carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    Varint(u64),
    Fixed64,
    Bytes(&'a [u8]),
    Fixed32,
}

impl<'a> Value<'a> {
    /// The bytes of a length-delimited field (a message, a string).
    pub fn bytes(self) -> Result<&'a [u8], Error> {
        match self {
            Value::Bytes(b) => Ok(b),
            _ => Err(Error("a message or string field has another wire type")),
        }
    }

    /// A string field, borrowed.
    pub fn str(self) -> Result<&'a str, Error> {
        std::str::from_utf8(self.bytes()?).map_err(|_| Error("a string field is not UTF-8"))
    }
}

/// The fields of one message, in order: `(number, value)`.
pub struct Fields<'a> {
    rest: &'a [u8],
}

/// Iterates the fields of `msg`; a malformed field ends the iteration with
/// an error.
pub fn fields(msg: &[u8]) -> Fields<'_> {
    Fields { rest: msg }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Value<'a>), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let r = self.field();
        if r.is_err() {
            self.rest = &[];
        }
        Some(r)
    }
}

impl<'a> Fields<'a> {
    fn field(&mut self) -> Result<(u32, Value<'a>), Error> {
        let key = self.varint()?;
        let number = u32::try_from(key >> 3)
            .ok()
            .filter(|&n| n > 0)
            .ok_or(Error("a field number is out of range"))?;
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.bytes(8)?;
                Value::Fixed64
            }
            2 => {
                let len = usize::try_from(self.varint()?)
                    .map_err(|_| Error("a length is out of range"))?;
                Value::Bytes(self.bytes(len)?)
            }
            5 => {
                self.bytes(4)?;
                Value::Fixed32
            }
            _ => return Err(Error("an unknown wire type")),
        };
        Ok((number, value))
    }

    fn varint(&mut self) -> Result<u64, Error> {
        let mut v = 0u64;
        for (i, &b) in self.rest.iter().enumerate().take(10) {
            v |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                self.rest = &self.rest[i + 1..];
                return Ok(v);
            }
        }
        Err(Error("a varint is cut short or too long"))
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if n > self.rest.len() {
            return Err(Error("a field runs past the end of its message"));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }
}

/// An object in its envelope: its kind and its encoded message.
pub struct Object<'a> {
    pub kind: &'a str,
    pub raw: &'a [u8],
}

/// Opens the `k8s\0` envelope (`runtime.Unknown`: typeMeta 1 {apiVersion 1,
/// kind 2}, raw 2, contentEncoding 3).
pub fn unwrap(body: &[u8]) -> Result<Object<'_>, Error> {
    let msg = body
        .strip_prefix(MAGIC)
        .ok_or(Error("the body does not start with the k8s envelope"))?;
    let (mut kind, mut raw) = ("", &[][..]);
    for f in fields(msg) {
        match f? {
            (1, v) => {
                for t in fields(v.bytes()?) {
                    if let (2, k) = t? {
                        kind = k.str()?;
                    }
                }
            }
            (2, v) => raw = v.bytes()?,
            (3, v) if !v.bytes()?.is_empty() => {
                return Err(Error("the object is compressed (contentEncoding)"))
            }
            _ => {}
        }
    }
    Ok(Object { kind, raw })
}

/// What a list page holds besides its items: `ListMeta.continue` (field 3
/// of field 1), `None` when absent.
fn list_meta(meta: &[u8]) -> Result<Option<String>, Error> {
    let mut token = None;
    for f in fields(meta) {
        if let (3, v) = f? {
            token = Some(v.str()?.to_string());
        }
    }
    Ok(token)
}

/// Walks a list page (`XList`: metadata 1, items 2), handing each item's
/// message to `each`; returns the continue token (`None` when absent,
/// `Some("")` when empty, as the JSON reader does) and the item count.
pub fn decode_list<'a>(
    body: &'a [u8],
    kind: &str,
    mut each: impl FnMut(&'a [u8]) -> Result<(), Error>,
) -> Result<(Option<String>, u64), Error> {
    let obj = unwrap(body)?;
    if obj.kind != kind {
        return Err(Error("the page is not the kind of list asked for"));
    }
    let (mut token, mut n) = (None, 0);
    for f in fields(obj.raw) {
        match f? {
            (1, v) => token = list_meta(v.bytes()?)?,
            (2, v) => {
                each(v.bytes()?)?;
                n += 1;
            }
            _ => {}
        }
    }
    Ok((token, n))
}

/// The continue token of a list page from its first bytes, as soon as the
/// list's metadata has arrived (the server writes it before the items):
/// `Some(token)` (`None` inside when the page is the last), or `None` while
/// more bytes are needed or the layout is not the expected one.
pub fn early_continue(prefix: &[u8]) -> Option<Option<String>> {
    let mut f = Fields {
        rest: prefix.strip_prefix(MAGIC)?,
    };
    // The envelope: typeMeta (1) first, then raw (2), whose length prefix
    // comes before its (possibly still arriving) bytes.
    loop {
        let key = f.varint().ok()?;
        if key & 7 != 2 {
            return None;
        }
        let len = usize::try_from(f.varint().ok()?).ok()?;
        if key >> 3 == 2 {
            break;
        }
        f.bytes(len).ok()?;
    }
    // Inside raw: the list's metadata (1) comes first, whole.
    let key = f.varint().ok()?;
    if key != (1 << 3 | 2) {
        return None;
    }
    let len = usize::try_from(f.varint().ok()?).ok()?;
    let meta = f.bytes(len).ok()?;
    list_meta(meta).ok().map(|t| t.filter(|t| !t.is_empty()))
}

/// A `Status` (message 3, reason 4, code 6), as an error body carries it.
pub fn status(body: &[u8]) -> Result<(String, String, u16), Error> {
    let obj = unwrap(body)?;
    if obj.kind != "Status" {
        return Err(Error("the error body is not a Status"));
    }
    let (mut message, mut reason, mut code) = (String::new(), String::new(), 0u16);
    for f in fields(obj.raw) {
        match f? {
            (3, v) => message = v.str()?.to_string(),
            (4, v) => reason = v.str()?.to_string(),
            (6, Value::Varint(c)) => code = u16::try_from(c).unwrap_or(0),
            _ => {}
        }
    }
    Ok((message, reason, code))
}

/// The images of a pod's containers and init containers (`Pod.spec` 2,
/// `PodSpec.containers` 2 and `.initContainers` 20, `Container.image` 2),
/// in order.
pub fn pod_images<'a>(pod: &'a [u8], mut each: impl FnMut(&'a str)) -> Result<(), Error> {
    for f in fields(pod) {
        let (2, spec) = f? else { continue };
        for s in fields(spec.bytes()?) {
            let (2 | 20, c) = s? else { continue };
            for cf in fields(c.bytes()?) {
                if let (2, image) = cf? {
                    each(image.str()?);
                }
            }
        }
    }
    Ok(())
}

/// A node's capacity of `resource` (`Node.status` 3, `NodeStatus.capacity`
/// 1: map entries {key 1, value 2: `Quantity` {string 1}}).
pub fn node_capacity<'a>(node: &'a [u8], resource: &str) -> Result<Option<&'a str>, Error> {
    let mut found = None;
    for f in fields(node) {
        let (3, status) = f? else { continue };
        for s in fields(status.bytes()?) {
            let (1, entry) = s? else { continue };
            let (mut key, mut value) = ("", None);
            for e in fields(entry.bytes()?) {
                match e? {
                    (1, k) => key = k.str()?,
                    (2, q) => {
                        for qf in fields(q.bytes()?) {
                            if let (1, v) = qf? {
                                value = Some(v.str()?);
                            }
                        }
                    }
                    _ => {}
                }
            }
            if key == resource {
                found = value;
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push(v as u8 | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    fn field(n: u32, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        varint(u64::from(n) << 3 | 2, &mut out);
        varint(bytes.len() as u64, &mut out);
        out.extend_from_slice(bytes);
        out
    }

    fn envelope(kind: &str, raw: &[u8]) -> Vec<u8> {
        let mut type_meta = field(1, b"v1");
        type_meta.extend(field(2, kind.as_bytes()));
        let mut out = MAGIC.to_vec();
        out.extend(field(1, &type_meta));
        out.extend(field(2, raw));
        out
    }

    fn pod(images: &[(u32, &str)]) -> Vec<u8> {
        let mut spec = Vec::new();
        for &(n, image) in images {
            let mut c = field(1, b"c");
            c.extend(field(2, image.as_bytes()));
            spec.extend(field(n, &c));
        }
        let mut p = field(1, &field(1, b"name"));
        p.extend(field(2, &spec));
        p
    }

    #[test]
    fn a_page_is_walked_item_by_item_with_its_token() {
        let mut raw = field(1, &field(3, b"tok"));
        raw.extend(field(2, &pod(&[(2, "a:1"), (20, "init:2"), (2, "b:3")])));
        raw.extend(field(2, &pod(&[])));
        let body = envelope("PodList", &raw);
        let mut images = Vec::new();
        let (token, n) =
            decode_list(&body, "PodList", |p| pod_images(p, |i| images.push(i))).unwrap();
        assert_eq!((token.as_deref(), n), (Some("tok"), 2));
        assert_eq!(images, ["a:1", "init:2", "b:3"]);

        // The token is known from the first bytes, before any item.
        let head = body.len() - raw.len() + field(1, &field(3, b"tok")).len();
        for cut in 0..head {
            assert_eq!(early_continue(&body[..cut]), None, "cut at {cut}");
        }
        assert_eq!(early_continue(&body[..head]), Some(Some("tok".into())));
        let last = envelope("PodList", &field(1, &field(2, b"9")));
        assert_eq!(early_continue(&last), Some(None));
    }

    #[test]
    fn bad_bodies_are_errors_never_fewer_items() {
        let mut raw = field(1, &[]);
        raw.extend(field(2, &pod(&[(2, "a")])));
        let body = envelope("PodList", &raw);
        let cut = &body[..body.len() - 1];
        assert_eq!(
            decode_list(cut, "PodList", |_| Ok(()))
                .unwrap_err()
                .to_string(),
            "invalid protobuf: a field runs past the end of its message"
        );
        assert_eq!(
            decode_list(&body, "NodeList", |_| Ok(()))
                .unwrap_err()
                .to_string(),
            "invalid protobuf: the page is not the kind of list asked for"
        );
        assert_eq!(
            decode_list(b"{}", "PodList", |_| Ok(()))
                .unwrap_err()
                .to_string(),
            "invalid protobuf: the body does not start with the k8s envelope"
        );
        let mut c = field(1, b"c");
        c.extend(field(2, b"\xff"));
        let bad_utf8 = envelope("PodList", &field(2, &field(2, &field(2, &c))));
        assert_eq!(
            decode_list(&bad_utf8, "PodList", |p| pod_images(p, |_| ()))
                .unwrap_err()
                .to_string(),
            "invalid protobuf: a string field is not UTF-8"
        );
    }

    #[test]
    fn node_capacity_and_status_are_read() {
        let entry = |k: &str, v: &str| {
            let mut e = field(1, k.as_bytes());
            e.extend(field(2, &field(1, v.as_bytes())));
            field(1, &e)
        };
        let mut caps = entry("cpu", "8");
        caps.extend(entry("nvidia.com/gpu", "4"));
        let node = field(3, &caps);
        assert_eq!(node_capacity(&node, "nvidia.com/gpu"), Ok(Some("4")));
        assert_eq!(node_capacity(&node, "example.com/x"), Ok(None));

        let mut st = field(3, b"pods is forbidden");
        st.extend(field(4, b"Forbidden"));
        st.extend([6 << 3, 0x93, 0x03]); // code 403, a varint
        assert_eq!(
            status(&envelope("Status", &st)),
            Ok(("pods is forbidden".into(), "Forbidden".into(), 403))
        );
    }
}
