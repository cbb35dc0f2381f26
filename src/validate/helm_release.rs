//! Helm 3 release records, as the Secret storage driver keeps them: a Secret
//! of type `helm.sh/release.v1` named `sh.helm.release.v1.<name>.v<N>`,
//! labelled `owner=helm`, `name`, `status`, `version`, whose `release` key
//! holds base64 text of the gzip of the release JSON (plain JSON when not
//! gzipped, as Helm also reads). This module decodes that record, with size
//! caps at every step, into the few fields readiness needs; it does no I/O.

use std::io::Read;

use base64::Engine;
use serde::Deserialize;

/// The largest `release` value accepted (Secrets are at most 1 MiB; the
/// margin allows for encodings).
pub const MAX_ENCODED: usize = 4 << 20;
/// The largest release JSON accepted after gunzip.
pub const MAX_JSON: u64 = 32 << 20;

/// What readiness reads of a release.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Release {
    pub name: String,
    /// The release revision (`helm history`).
    pub version: u64,
    /// `deployed`, `failed`, `pending-install`, `superseded`, ...
    pub status: String,
    pub chart_name: String,
    /// `chart.metadata.version` (`v25.10.1`, `1.17.2`).
    pub chart_version: String,
}

/// Why a release record could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("the release record is {0} bytes, more than the {MAX_ENCODED} accepted")]
    TooLarge(usize),
    #[error("the release record is not valid base64")]
    Base64,
    #[error("the release record is not valid gzip")]
    Gzip,
    #[error("the release record decompresses to more than {MAX_JSON} bytes")]
    TooLargeJson,
    #[error("the release record is not a Helm release: {0}")]
    Json(String),
}

#[derive(Deserialize)]
struct Doc {
    #[serde(default)]
    name: String,
    #[serde(default)]
    version: u64,
    info: Info,
    chart: Chart,
}

#[derive(Deserialize)]
struct Info {
    status: String,
}

#[derive(Deserialize)]
struct Chart {
    metadata: ChartMeta,
}

#[derive(Deserialize)]
struct ChartMeta {
    #[serde(default)]
    name: String,
    version: String,
}

const GZIP_MAGIC: [u8; 3] = [0x1f, 0x8b, 0x08];

/// Decodes the `release` value of a release Secret (after the Kubernetes
/// base64 of Secret data has been removed).
pub fn decode(encoded: &[u8]) -> Result<Release, DecodeError> {
    if encoded.len() > MAX_ENCODED {
        return Err(DecodeError::TooLarge(encoded.len()));
    }
    let trimmed = encoded.trim_ascii();
    let raw = base64::engine::general_purpose::STANDARD
        .decode(trimmed)
        .map_err(|_| DecodeError::Base64)?;
    let json = if raw.starts_with(&GZIP_MAGIC) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(raw.as_slice())
            .take(MAX_JSON + 1)
            .read_to_end(&mut out)
            .map_err(|_| DecodeError::Gzip)?;
        if out.len() as u64 > MAX_JSON {
            return Err(DecodeError::TooLargeJson);
        }
        out
    } else {
        raw
    };
    let doc: Doc = serde_json::from_slice(&json).map_err(|e| {
        // serde_json's message names the field or the position, never a value.
        let msg = e.to_string();
        let msg = match msg.find(" at line ") {
            Some(i) => msg[..i].to_string(),
            None => msg,
        };
        DecodeError::Json(crate::error::excerpt(&msg).into_owned())
    })?;
    Ok(Release {
        name: doc.name,
        version: doc.version,
        status: doc.info.status,
        chart_name: doc.chart.metadata.name,
        chart_version: doc.chart.metadata.version,
    })
}

/// Encodes a release JSON the way Helm stores it (gzip, then base64): for
/// tests and fixtures.
pub fn encode(json: &[u8]) -> String {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let _ = gz.write_all(json);
    let bytes = gz.finish().unwrap_or_default();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: &str = r#"{"name":"gpu-operator","version":3,"namespace":"gpu-operator","info":{"status":"deployed","description":"Upgrade complete"},"chart":{"metadata":{"name":"gpu-operator","version":"v25.10.1"},"values":{}},"manifest":"---\n","config":{"token":"hunter2"}}"#;

    #[test]
    fn decodes_gzip_and_plain_records() {
        let want = Release {
            name: "gpu-operator".into(),
            version: 3,
            status: "deployed".into(),
            chart_name: "gpu-operator".into(),
            chart_version: "v25.10.1".into(),
        };
        assert_eq!(decode(encode(JSON.as_bytes()).as_bytes()).unwrap(), want);
        let plain = base64::engine::general_purpose::STANDARD.encode(JSON);
        assert_eq!(decode(plain.as_bytes()).unwrap(), want);
    }

    #[test]
    fn bad_records_are_refused_with_the_reason() {
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        // Bad base64.
        assert_eq!(decode(b"not base64!!").unwrap_err(), DecodeError::Base64);
        // Gzip magic, then garbage.
        let mut bad_gz = GZIP_MAGIC.to_vec();
        bad_gz.extend_from_slice(&[0xff; 40]);
        assert_eq!(
            decode(b64(&bad_gz).as_bytes()).unwrap_err(),
            DecodeError::Gzip
        );
        // A truncated gzip stream.
        let good = base64::engine::general_purpose::STANDARD
            .decode(encode(JSON.as_bytes()))
            .unwrap();
        let cut = &good[..good.len() / 2];
        assert_eq!(decode(b64(cut).as_bytes()).unwrap_err(), DecodeError::Gzip);
        // Too large before decoding.
        let big = vec![b'A'; MAX_ENCODED + 4];
        assert_eq!(
            decode(&big).unwrap_err(),
            DecodeError::TooLarge(MAX_ENCODED + 4)
        );
        // A gzip bomb: 40 MiB of zeros compresses to about 40 KiB.
        let zeros = vec![b' '; (MAX_JSON + 1024) as usize];
        let bomb = encode(&zeros);
        assert!(bomb.len() < MAX_ENCODED, "{}", bomb.len());
        assert_eq!(
            decode(bomb.as_bytes()).unwrap_err(),
            DecodeError::TooLargeJson
        );
        // JSON that is not a release; the message quotes no value.
        let e = decode(encode(br#"{"name":"x","info":{}}"#).as_bytes()).unwrap_err();
        assert_eq!(e, DecodeError::Json("missing field `status`".into()), "{e}");
        let e = decode(
            encode(br#"{"info":{"status":"hunter2"},"chart":{"metadata":{"version":7}}}"#)
                .as_bytes(),
        )
        .unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(
            e.to_string()
                .starts_with("the release record is not a Helm release: invalid type"),
            "{e}"
        );
        let e = decode(encode(b"[1,2").as_bytes()).unwrap_err();
        assert!(matches!(e, DecodeError::Json(_)), "{e}");
    }
}
