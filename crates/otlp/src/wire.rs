//! Request bodies: the size bound (as sent and after decompression), the
//! encodings, and the error body OTLP/HTTP answers with.

use std::io::Read;

/// How a body is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Not compressed.
    Identity,
    /// `Content-Encoding: gzip`.
    Gzip,
}

impl Encoding {
    /// The encoding a `Content-Encoding` header names; `None` for one
    /// ringtrail does not take.
    pub fn from_header(value: Option<&str>) -> Option<Encoding> {
        match value.map(str::trim) {
            None | Some("") | Some("identity") => Some(Encoding::Identity),
            Some(v) if v.eq_ignore_ascii_case("gzip") => Some(Encoding::Gzip),
            _ => None,
        }
    }
}

/// Why a body could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyError {
    /// Larger than the limit, as sent or decompressed.
    TooLarge,
    /// The compressed stream is corrupt.
    Corrupt(String),
}

/// `body` decompressed, at most `max` bytes of it: a gzip bomb stops
/// at `max + 1` bytes inflated.
pub fn decompress(body: &[u8], encoding: Encoding, max: usize) -> Result<Vec<u8>, BodyError> {
    if body.len() > max {
        return Err(BodyError::TooLarge);
    }
    match encoding {
        Encoding::Identity => Ok(body.to_vec()),
        Encoding::Gzip => {
            let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(max));
            let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
            flate2::read::MultiGzDecoder::new(body)
                .take(limit)
                .read_to_end(&mut out)
                .map_err(|e| BodyError::Corrupt(format!("invalid gzip body: {e}")))?;
            if out.len() > max {
                return Err(BodyError::TooLarge);
            }
            Ok(out)
        }
    }
}

/// `google.rpc.Status`, the body of an OTLP/HTTP error response.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Status {
    /// A `google.rpc.Code`.
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// What went wrong, for people.
    #[prost(string, tag = "2")]
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_gzip_bomb_stops_at_the_limit() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&vec![0u8; 50 << 20]).unwrap();
        let bomb = gz.finish().unwrap();
        assert!(bomb.len() < 100 << 10);
        assert_eq!(
            decompress(&bomb, Encoding::Gzip, 1 << 20),
            Err(BodyError::TooLarge)
        );
        assert_eq!(
            decompress(&bomb, Encoding::Identity, 10),
            Err(BodyError::TooLarge)
        );
        assert!(matches!(
            decompress(b"not gzip", Encoding::Gzip, 100),
            Err(BodyError::Corrupt(_))
        ));
        assert_eq!(Encoding::from_header(Some("GZIP")), Some(Encoding::Gzip));
        assert_eq!(Encoding::from_header(Some("br")), None);
    }
}
