//! The encode stage: [`Row`](crate::Row)s in, bytes out.
//!
//! The writer thread decodes each ring record into a borrowed
//! [`Row`](crate::Row) and hands it to an encoder, which appends it to a
//! batch buffer. When the batch is full (by rows or by bytes) the writer
//! calls `finish()` and passes the resulting [`bytes::Bytes`] to a sink, which
//! ships it to PostgreSQL. The split is deliberate:
//!
//! - **Encoders never do I/O.** They are plain, synchronous, infallible
//!   functions over a buffer, so they can be unit-tested byte for byte,
//!   fuzzed, and benchmarked without a database or a runtime.
//! - **Sinks never look inside a row.** They move opaque, already-valid
//!   batches, and can retry or quarantine them without re-encoding.
//! - **Nothing fails half-way through a row.** Every value that PostgreSQL
//!   would reject (a NUL byte in text, `\u0000` or NaN in jsonb, an
//!   out-of-range timestamp) is mapped to something it accepts while
//!   encoding, so a batch is always a well-formed stream.
//!
//! Modules:
//!
//! - [`copy`]: the PostgreSQL binary `COPY` format for the `ringtrail.logs`
//!   table, with [`CopyEncoder`] as the batch builder.
//! - [`json`]: a JSON text writer whose output `jsonb` always accepts; `copy`
//!   uses it for the `fields` column.
//!
//! ```
//! use ringtrail::encode::CopyEncoder;
//! use ringtrail::{Field, Row, Value};
//!
//! let mut enc = CopyEncoder::new();
//! let fields = [Field { name: "attempt", value: Value::U64(3) }];
//! enc.push_row(&Row { message: "retrying", fields: &fields, ..Row::default() });
//! assert_eq!(enc.rows(), 1);
//!
//! // One complete COPY stream: header, one tuple, trailer. The sink sends it
//! // after `ringtrail::encode::copy::copy_statement()`.
//! let batch = enc.finish();
//! assert!(batch.starts_with(ringtrail::encode::copy::SIGNATURE));
//! assert!(batch.ends_with(&[0xff, 0xff]));
//! assert!(enc.is_empty());
//! ```

pub mod copy;
pub mod json;

pub use copy::CopyEncoder;
