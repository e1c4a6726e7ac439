//! The columns of `ringtrail.logs`, listed once: [`COLUMNS`].
//!
//! Everything that names the table's columns is derived from it: the
//! `COPY` statement's column list ([`LOG_COLUMNS`](super::LOG_COLUMNS)),
//! the tuple's field count, the `SELECT` list that reads a row back as
//! stored ([`SELECT_COLUMNS`], which is
//! [`STORED_COLUMNS`](crate::chain::canonical::STORED_COLUMNS) and what
//! `export` selects), and the positions decoders read a column at
//! ([`col`]).
//!
//! Migrations only append columns, so a new column goes at the end of
//! [`TAIL`].

use crate::row::{CONTEXT_KEYS, CONTEXT_LEN};

/// The PostgreSQL type of a column, which decides its binary form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// `timestamptz`: `int64` microseconds since 2000-01-01 UTC.
    Timestamptz,
    /// `uuid`: 16 bytes.
    Uuid,
    /// `smallint`: `int16`.
    Smallint,
    /// `integer`: `int32`.
    Integer,
    /// `bigint`: `int64`.
    Bigint,
    /// `boolean`: one byte.
    Boolean,
    /// `text`: UTF-8 without NUL.
    Text,
    /// `jsonb`: a version byte (1), then JSON text.
    Jsonb,
}

/// One column of `ringtrail.logs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// Its name.
    pub name: &'static str,
    /// Its type.
    pub ty: ColumnType,
}

const fn column(name: &'static str, ty: ColumnType) -> Column {
    Column { name, ty }
}

/// The columns before the context columns.
const HEAD: [Column; 6] = [
    column("ts", ColumnType::Timestamptz),
    column("id", ColumnType::Uuid),
    column("level", ColumnType::Smallint),
    column("target", ColumnType::Text),
    column("message", ColumnType::Text),
    column("fields", ColumnType::Jsonb),
];

/// The columns after the context columns; a new column is appended here.
const TAIL: [Column; 7] = [
    column("span_name", ColumnType::Text),
    column("file", ColumnType::Text),
    column("line", ColumnType::Integer),
    column("truncated", ColumnType::Boolean),
    column("kind", ColumnType::Smallint),
    column("redacted", ColumnType::Smallint),
    column("seq", ColumnType::Bigint),
];

/// How many columns `ringtrail.logs` has (before the shipper's
/// `batch_id`).
pub const WIDTH: usize = HEAD.len() + CONTEXT_LEN + TAIL.len();

/// The columns of `ringtrail.logs`, in the order each `COPY` tuple
/// carries them: `HEAD`, then one `text` column per
/// [`CONTEXT_KEYS`], in its order, then `TAIL`.
///
/// ```
/// use ringtrail::encode::copy::{ColumnType, COLUMNS};
///
/// assert_eq!(COLUMNS[0].name, "ts");
/// assert_eq!(COLUMNS[6].name, "trace_id");
/// assert_eq!(COLUMNS[5].ty, ColumnType::Jsonb);
/// ```
pub const COLUMNS: [Column; WIDTH] = {
    let mut columns = [column("", ColumnType::Text); WIDTH];
    let mut i = 0;
    while i < HEAD.len() {
        columns[i] = HEAD[i];
        i += 1;
    }
    let mut k = 0;
    while k < CONTEXT_LEN {
        columns[HEAD.len() + k] = column(CONTEXT_KEYS[k], ColumnType::Text);
        k += 1;
    }
    let mut t = 0;
    while t < TAIL.len() {
        columns[HEAD.len() + CONTEXT_LEN + t] = TAIL[t];
        t += 1;
    }
    columns
};

/// The names of [`COLUMNS`], in order.
pub const NAMES: [&str; WIDTH] = {
    let mut names = [""; WIDTH];
    let mut i = 0;
    while i < WIDTH {
        names[i] = COLUMNS[i].name;
        i += 1;
    }
    names
};

/// What a `SELECT` adds to a `jsonb` column to read it as text.
const TEXT_CAST: &str = "::text";

const fn select_len() -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < WIDTH {
        if i > 0 {
            n += 2;
        }
        n += COLUMNS[i].name.len();
        if matches!(COLUMNS[i].ty, ColumnType::Jsonb) {
            n += TEXT_CAST.len();
        }
        i += 1;
    }
    n
}

const fn copy_into<const N: usize>(out: &mut [u8; N], at: usize, s: &str) -> usize {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        out[at + i] = bytes[i];
        i += 1;
    }
    at + bytes.len()
}

const SELECT_BYTES: [u8; select_len()] = {
    let mut out = [0; select_len()];
    let mut at = 0;
    let mut i = 0;
    while i < WIDTH {
        if i > 0 {
            at = copy_into(&mut out, at, ", ");
        }
        at = copy_into(&mut out, at, COLUMNS[i].name);
        if matches!(COLUMNS[i].ty, ColumnType::Jsonb) {
            at = copy_into(&mut out, at, TEXT_CAST);
        }
        i += 1;
    }
    assert!(at == out.len());
    out
};

/// Every column of [`COLUMNS`], in order, for a `SELECT` that reads a row
/// back as the table stores it: `jsonb` as its text (`fields::text`),
/// the others as they are, each at its position in [`COLUMNS`] (`col`).
///
/// ```
/// assert_eq!(
///     ringtrail::encode::copy::SELECT_COLUMNS,
///     "ts, id, level, target, message, fields::text, \
///      trace_id, user_id, session_id, task_id, context_id, client_id, \
///      span_name, file, line, truncated, kind, redacted, seq"
/// );
/// ```
pub const SELECT_COLUMNS: &str = match core::str::from_utf8(&SELECT_BYTES) {
    Ok(s) => s,
    Err(_) => panic!("column names are UTF-8"),
};

/// The position of the column `name` in [`COLUMNS`]; a compile error
/// (in a `const`) when there is none.
pub const fn position(name: &str) -> usize {
    let mut i = 0;
    while i < WIDTH {
        if eq(COLUMNS[i].name, name) {
            return i;
        }
        i += 1;
    }
    panic!("not a column of ringtrail.logs");
}

const fn eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Positions in [`COLUMNS`] (and in a [`SELECT_COLUMNS`] row), by name.
pub mod col {
    use super::position;
    use crate::row::CONTEXT_KEYS;

    /// `ts`.
    pub const TS: usize = position("ts");
    /// `id`.
    pub const ID: usize = position("id");
    /// `level`.
    pub const LEVEL: usize = position("level");
    /// `target`.
    pub const TARGET: usize = position("target");
    /// `message`.
    pub const MESSAGE: usize = position("message");
    /// `fields`.
    pub const FIELDS: usize = position("fields");
    /// The first context column; the others follow in
    /// [`CONTEXT_KEYS`] order.
    pub const CONTEXT: usize = position(CONTEXT_KEYS[0]);
    /// `span_name`.
    pub const SPAN_NAME: usize = position("span_name");
    /// `file`.
    pub const FILE: usize = position("file");
    /// `line`.
    pub const LINE: usize = position("line");
    /// `truncated`.
    pub const TRUNCATED: usize = position("truncated");
    /// `kind`.
    pub const KIND: usize = position("kind");
    /// `redacted`.
    pub const REDACTED: usize = position("redacted");
    /// `seq`.
    pub const SEQ: usize = position("seq");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_columns_follow_the_keys() {
        assert_eq!(
            NAMES[col::CONTEXT..col::CONTEXT + CONTEXT_LEN],
            CONTEXT_KEYS
        );
        assert!(COLUMNS[col::CONTEXT..col::CONTEXT + CONTEXT_LEN]
            .iter()
            .all(|c| c.ty == ColumnType::Text));
    }

    #[test]
    fn positions_name_their_columns() {
        for (at, name) in [
            (col::TS, "ts"),
            (col::ID, "id"),
            (col::LEVEL, "level"),
            (col::TARGET, "target"),
            (col::MESSAGE, "message"),
            (col::FIELDS, "fields"),
            (col::SPAN_NAME, "span_name"),
            (col::FILE, "file"),
            (col::LINE, "line"),
            (col::TRUNCATED, "truncated"),
            (col::KIND, "kind"),
            (col::REDACTED, "redacted"),
            (col::SEQ, "seq"),
        ] {
            assert_eq!(NAMES[at], name);
        }
        let select: Vec<&str> = SELECT_COLUMNS.split(", ").collect();
        assert_eq!(select.len(), WIDTH);
        for (s, c) in select.iter().zip(&COLUMNS) {
            assert_eq!(s.trim_end_matches(TEXT_CAST), c.name);
        }
    }
}
