//! Reading the codec back: [`TupleReader`], one tuple's fields in their
//! binary forms (the inverse of [`fields`](super::fields)), and
//! [`WireUuid`] and [`WireMicros`], the same binary forms of `uuid` and
//! `timestamptz` as the driver hands them over in a query's row.

use tokio_postgres::types::{FromSql, IsNull, ToSql, Type};

/// Reads the fields of one binary `COPY` tuple in order, each in its
/// column type's binary form. Every read is `None` when the bytes are not
/// that form (cut short, a wrong width, NULL where there may be none,
/// text that is not UTF-8).
#[derive(Debug, Clone)]
pub(crate) struct TupleReader<'a> {
    tuple: &'a [u8],
    at: usize,
    width: i16,
}

impl<'a> TupleReader<'a> {
    /// A reader of `tuple`'s fields; `None` when it has no field count.
    #[inline]
    pub(crate) fn new(tuple: &'a [u8]) -> Option<Self> {
        let width = i16::from_be_bytes(tuple.get(..2)?.try_into().ok()?);
        Some(TupleReader {
            tuple,
            at: 2,
            width,
        })
    }

    /// The tuple's field count.
    #[inline]
    pub(crate) fn width(&self) -> i16 {
        self.width
    }

    /// The next field's bytes, `None` inside for NULL (any negative
    /// length).
    #[inline]
    pub(crate) fn field(&mut self) -> Option<Option<&'a [u8]>> {
        let at = self.at;
        let len = i32::from_be_bytes(self.tuple.get(at..at + 4)?.try_into().ok()?);
        self.at += 4;
        if len < 0 {
            return Some(None);
        }
        let field = self.tuple.get(self.at..self.at + len as usize)?;
        self.at += len as usize;
        Some(Some(field))
    }

    /// A field of exactly `N` bytes, not NULL.
    #[inline]
    fn fixed<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.field()??.try_into().ok()
    }

    /// A nullable field of exactly `N` bytes.
    #[inline]
    fn opt_fixed<const N: usize>(&mut self) -> Option<Option<[u8; N]>> {
        match self.field()? {
            None => Some(None),
            Some(bytes) => bytes.try_into().ok().map(Some),
        }
    }

    /// A `timestamptz`: its wire value, microseconds since 2000-01-01 UTC.
    #[inline]
    pub(crate) fn timestamptz(&mut self) -> Option<i64> {
        self.fixed().map(i64::from_be_bytes)
    }

    /// A `uuid`: its 16 bytes.
    #[inline]
    pub(crate) fn uuid(&mut self) -> Option<[u8; 16]> {
        self.fixed()
    }

    /// A `smallint`.
    #[inline]
    pub(crate) fn smallint(&mut self) -> Option<i16> {
        self.fixed().map(i16::from_be_bytes)
    }

    /// A nullable `smallint`.
    #[inline]
    pub(crate) fn opt_smallint(&mut self) -> Option<Option<i16>> {
        Some(self.opt_fixed()?.map(i16::from_be_bytes))
    }

    /// A `bigint`.
    #[inline]
    pub(crate) fn bigint(&mut self) -> Option<i64> {
        self.fixed().map(i64::from_be_bytes)
    }

    /// A nullable `integer`.
    #[inline]
    pub(crate) fn opt_integer(&mut self) -> Option<Option<i32>> {
        Some(self.opt_fixed()?.map(i32::from_be_bytes))
    }

    /// A `boolean`: one byte, any but 0 true.
    #[inline]
    pub(crate) fn boolean(&mut self) -> Option<bool> {
        match self.field()? {
            Some([b]) => Some(*b != 0),
            _ => None,
        }
    }

    /// A `text`, not NULL.
    #[inline]
    pub(crate) fn text(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.field()??).ok()
    }

    /// A nullable `text`.
    #[inline]
    pub(crate) fn opt_text(&mut self) -> Option<Option<&'a str>> {
        match self.field()? {
            None => Some(None),
            Some(bytes) => std::str::from_utf8(bytes).ok().map(Some),
        }
    }

    /// A `jsonb`: its JSON text, after the version byte (1).
    #[inline]
    pub(crate) fn jsonb(&mut self) -> Option<&'a str> {
        match self.field()? {
            Some([1, json @ ..]) => std::str::from_utf8(json).ok(),
            _ => None,
        }
    }

    /// `Some` when every byte of the tuple has been read.
    #[inline]
    pub(crate) fn end(&self) -> Option<()> {
        (self.at == self.tuple.len()).then_some(())
    }
}

/// A `uuid` read (in a query's row) as its 16 bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WireUuid(pub(crate) [u8; 16]);

impl<'a> FromSql<'a> for WireUuid {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(WireUuid(raw.try_into()?))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::UUID
    }
}

/// A `timestamptz` read or bound as its wire value: microseconds since
/// 2000-01-01 UTC, with no conversion that could round or overflow (what
/// the `ts` column's [`TupleReader::timestamptz`] reads, and what the
/// ledger hashes).
#[derive(Debug, Clone, Copy)]
pub(crate) struct WireMicros(pub(crate) i64);

impl<'a> FromSql<'a> for WireMicros {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(WireMicros(i64::from_be_bytes(raw.try_into()?)))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::TIMESTAMPTZ
    }
}

impl ToSql for WireMicros {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        use bytes::BufMut;
        out.put_i64(self.0);
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::TIMESTAMPTZ
    }

    tokio_postgres::types::to_sql_checked!();
}
