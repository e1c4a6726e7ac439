//! Property test of the binary COPY encoder against a real PostgreSQL.
//!
//! A seeded xorshift PRNG builds a few hundred rows full of hostile values
//! (NUL, quotes, backslashes, control characters, any Unicode scalar,
//! empty and long strings, extreme integers, NaN, infinities, subnormals,
//! `-0.0`, duplicate field names, `None`/`Some` context). They are encoded
//! with `CopyEncoder` in random-sized batches, loaded with `COPY ... FROM
//! STDIN (FORMAT binary)`, read back with `COPY (SELECT ...) TO STDOUT (FORMAT
//! binary)`, decoded with the independent decoder in
//! `ringtrail_testkit::copy_decoder`, and compared column by column with the
//! documented sanitizing (`ringtrail_testkit::fuzz_checks`, in the mode that
//! allows for what `jsonb` itself normalizes: duplicate keys, key order,
//! the sign of zero). The float fields are also cast back with
//! `(fields->>key)::float8` in SQL, as the encoder's docs promise works.
//!
//! The seed is printed, and named in every failure; rerun one with
//! `RINGTRAIL_PROPTEST_SEED=<seed>`. `RINGTRAIL_PROPTEST_ROWS` changes the
//! number of random rows (default 300).

use ringtrail_testkit as common;
use ringtrail_testkit::copy_decoder;
use ringtrail_testkit::fuzz_checks;

use futures_util::TryStreamExt;
use ringtrail::encode::copy::CopyEncoder;

use copy_decoder::{decode_logs_with, SerdeCheck, COLUMNS};
use fuzz_checks::{check_row, sanitized, JsonbMode, OwnedRow, OwnedValue, F64_EDGES, NASTY};

ringtrail_testkit::rng_wrapper!(Rng);

impl Rng {
    fn push_char(&mut self, s: &mut String) {
        match self.below(100) {
            0..=39 => s.push(char::from(0x20 + self.below(0x5f) as u8)),
            40..=54 => s.push_str(self.pick(NASTY)),
            55..=59 => s.push('\0'),
            60..=64 => s.push(char::from(self.below(0x20) as u8)),
            65..=74 => loop {
                if let Some(c) = char::from_u32(self.below(0x11_0000) as u32) {
                    s.push(c);
                    break;
                }
            },
            75..=89 => s.push(self.pick(&['é', 'ß', 'Ω', '日', '本', '🦀', '\u{FFFD}', 'ü'])),
            _ => s.push(self.pick(&['"', '\\', '\'', '{', '}', ':', ',', '[', '/'])),
        }
    }

    fn string(&mut self) -> String {
        let units = match self.below(100) {
            0..=9 => 0,
            10..=69 => 1 + self.below(16),
            70..=94 => 16 + self.below(200),
            _ => 200 + self.below(4000),
        };
        let mut s = String::new();
        for _ in 0..units {
            self.push_char(&mut s);
        }
        s
    }

    fn opt_string(&mut self) -> Option<String> {
        self.percent(50).then(|| self.string())
    }

    fn f64(&mut self) -> f64 {
        match self.below(10) {
            0..=2 => self.pick(F64_EDGES),
            3..=5 => f64::from_bits(self.next()),
            _ => {
                let mantissa = self.next() as i64 as f64;
                mantissa / 10f64.powi(self.below(40) as i32 - 10)
            }
        }
    }

    fn value(&mut self) -> OwnedValue {
        match self.below(7) {
            0 => OwnedValue::Bool(self.percent(50)),
            1 => OwnedValue::I64(if self.percent(30) {
                self.pick(&[0, -1, i64::MIN, i64::MAX])
            } else {
                self.next() as i64 >> self.below(64)
            }),
            2 => OwnedValue::U64(if self.percent(30) {
                self.pick(&[0, u64::MAX])
            } else {
                self.next() >> self.below(64)
            }),
            3 => OwnedValue::I128(if self.percent(30) {
                self.pick(&[i128::MIN, i128::MAX, -1])
            } else {
                self.u128() as i128 >> self.below(128)
            }),
            4 => OwnedValue::U128(if self.percent(30) {
                self.pick(&[0, u128::MAX])
            } else {
                self.u128() >> self.below(128)
            }),
            5 => OwnedValue::F64(self.f64()),
            _ => OwnedValue::Str(self.string()),
        }
    }

    fn row(&mut self, index: usize) -> OwnedRow {
        let mut id = [0u8; 16];
        for b in &mut id {
            *b = self.next() as u8;
        }
        // Rows are read back ORDER BY id: the index leads.
        id[..2].copy_from_slice(&(index as u16).to_be_bytes());
        let n_fields = self.below(10);
        OwnedRow {
            ts_unix_nanos: match self.below(10) {
                0 => self.pick(&[i64::MIN, i64::MAX, -1, 0, -1000, -1001, 999]),
                1..=4 => self.next() as i64,
                _ => 1_770_000_000_000_000_000 + (self.next() % 1_000_000_000_000_000) as i64,
            },
            id,
            level: if self.percent(70) {
                self.pick(&[1, 5, 9, 13, 17])
            } else {
                self.next() as i16
            },
            target: self.string(),
            message: self.string(),
            fields: (0..n_fields)
                .map(|_| {
                    let name = if self.percent(60) {
                        self.pick(&["a", "b", "latency", "a\0", "a\u{FFFD}", ""])
                            .to_owned()
                    } else {
                        self.string()
                    };
                    (name, self.value())
                })
                .collect(),
            context: std::array::from_fn(|_| self.opt_string()),
            span_name: self.opt_string(),
            file: self.opt_string(),
            line: match self.below(10) {
                0..=1 => None,
                2 => Some(self.pick(&[0, i32::MAX as u32, i32::MAX as u32 + 1, u32::MAX])),
                _ => Some(self.below(100_000) as u32),
            },
            truncated: self.percent(50),
            kind: match self.below(4) {
                0 => None,
                1 => Some(self.pick(&[i16::MIN, -1, 0, i16::MAX])),
                _ => Some(1 + self.below(5) as i16),
            },
            redacted: match self.below(4) {
                0 => self.pick(&[0, i16::MAX as u32, i16::MAX as u32 + 1, u32::MAX]),
                _ => self.below(8) as u32,
            },
            seq: match self.below(4) {
                0 => self.pick(&[0, 1, i64::MAX as u64, i64::MAX as u64 + 1, u64::MAX]),
                _ => self.next(),
            },
        }
    }
}

/// Rows that every seed includes, so the nastiest cases never depend on luck.
fn anchor_rows() -> Vec<OwnedRow> {
    let all_nasty = NASTY.concat();
    let mut rows = vec![OwnedRow {
        ts_unix_nanos: i64::MIN,
        level: i16::MIN,
        target: all_nasty.clone(),
        message: "\0".to_owned(),
        fields: F64_EDGES
            .iter()
            .enumerate()
            .map(|(i, &f)| (format!("f{i}"), OwnedValue::F64(f)))
            .chain([
                ("i128".to_owned(), OwnedValue::I128(i128::MIN)),
                ("u128".to_owned(), OwnedValue::U128(u128::MAX)),
                ("i64".to_owned(), OwnedValue::I64(i64::MIN)),
                ("u64".to_owned(), OwnedValue::U64(u64::MAX)),
                ("nul\0".to_owned(), OwnedValue::Str(all_nasty.clone())),
                ("dup".to_owned(), OwnedValue::Bool(true)),
                ("dup".to_owned(), OwnedValue::F64(f64::NAN)),
            ])
            .collect(),
        context: std::array::from_fn(|i| Some(NASTY[i].to_owned())),
        span_name: Some(String::new()),
        file: Some(all_nasty),
        line: Some(u32::MAX),
        truncated: true,
        ..OwnedRow::default()
    }];
    rows.push(OwnedRow {
        id: [0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], // after row 0
        ts_unix_nanos: i64::MAX,
        level: i16::MAX,
        line: Some(0),
        ..OwnedRow::default()
    });
    rows
}

fn seed() -> u64 {
    match std::env::var("RINGTRAIL_PROPTEST_SEED") {
        Ok(s) => {
            let s = s.trim();
            match s.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => s.parse(),
            }
            .unwrap_or_else(|e| panic!("RINGTRAIL_PROPTEST_SEED={s:?}: {e}"))
        }
        Err(_) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap();
            now.as_nanos() as u64 ^ u64::from(std::process::id()).rotate_left(32)
        }
    }
}

#[tokio::test]
async fn random_rows_survive_postgres() {
    let seed = seed();
    eprintln!("encode_property: seed {seed:#x} (rerun with RINGTRAIL_PROPTEST_SEED={seed:#x})");
    let n_random: usize = std::env::var("RINGTRAIL_PROPTEST_ROWS")
        .ok()
        .map(|s| s.parse().expect("RINGTRAIL_PROPTEST_ROWS"))
        .unwrap_or(300);
    let mut rng = Rng::new(seed);
    let mut rows = anchor_rows();
    for _ in 0..n_random {
        let index = rows.len();
        rows.push(rng.row(index));
    }

    let url = common::database();
    let mut client = common::connect(&url).await;
    ringtrail::schema::apply(&mut client).await.unwrap();

    // Random batch sizes through one reused encoder, like the writer.
    let mut encoder = CopyEncoder::new();
    let mut start = 0;
    while start < rows.len() {
        let end = (start + 1 + rng.below(80) as usize).min(rows.len());
        for row in &rows[start..end] {
            row.with_row(|r| encoder.push_row(r));
        }
        let loaded = common::copy_in(&mut client, encoder.finish())
            .await
            .unwrap();
        assert_eq!(
            loaded,
            (end - start) as u64,
            "seed {seed:#x}: batch {start}..{end}"
        );
        start = end;
    }

    // Read everything back in binary and decode it independently.
    let query = format!(
        "COPY (SELECT {} FROM ringtrail.logs ORDER BY id) TO STDOUT (FORMAT binary)",
        COLUMNS.join(", ")
    );
    let stream = client.copy_out(&query).await.unwrap();
    futures_util::pin_mut!(stream);
    let mut out = Vec::new();
    while let Some(chunk) = stream.try_next().await.unwrap() {
        out.extend_from_slice(&chunk);
    }
    // serde_json (default features) refuses PostgreSQL's spelling of
    // f64::MAX, a 309-digit integer; parse_json still checks the text.
    let got = decode_logs_with(&out, SerdeCheck::Skip)
        .unwrap_or_else(|e| panic!("seed {seed:#x}: server output does not decode: {e}"));
    assert_eq!(got.len(), rows.len(), "seed {seed:#x}: row count");
    let mut failures = Vec::new();
    for (i, (want, got)) in rows.iter().zip(&got).enumerate() {
        if let Err(e) = check_row(want, got, JsonbMode::Server) {
            failures.push(format!("row {i} (id {:02x?}):\n{e}", want.id));
        }
    }
    assert!(
        failures.is_empty(),
        "seed {seed:#x}: {} of {} rows differ:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );

    // Every float field (the last of its name, as jsonb keeps) casts back to
    // the same float with ->> and ::float8, NaN and infinities included.
    let (mut ids, mut keys, mut want) = (Vec::new(), Vec::new(), Vec::new());
    for row in &rows {
        let mut last: Vec<(String, &OwnedValue)> = Vec::new();
        for (name, value) in &row.fields {
            let key = sanitized(name);
            last.retain(|(k, _)| *k != key);
            last.push((key, value));
        }
        for (key, value) in last {
            if let OwnedValue::F64(f) = value {
                ids.push(uuid_text(&row.id));
                keys.push(key);
                want.push(*f);
            }
        }
    }
    assert!(want.len() >= F64_EDGES.len(), "the anchor row's floats");
    let cast = client
        .query(
            "SELECT (l.fields ->> t.key)::float8
             FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS t(id, key, ord)
             JOIN ringtrail.logs l ON l.id = t.id::uuid
             ORDER BY t.ord",
            &[&ids, &keys],
        )
        .await
        .unwrap();
    assert_eq!(cast.len(), want.len(), "seed {seed:#x}: float rows");
    for (i, (row, f)) in cast.iter().zip(&want).enumerate() {
        let back: f64 = row.get(0);
        let same = if f.is_nan() {
            back.is_nan()
        } else {
            // numeric has no -0: zero comes back unsigned.
            back.to_bits() == f.to_bits() || (*f == 0.0 && back == 0.0)
        };
        assert!(
            same,
            "seed {seed:#x}: float {i} ({}, {:?}): {f:e} cast back as {back:e}",
            ids[i], keys[i]
        );
    }
}

/// The canonical text form of a uuid.
fn uuid_text(id: &[u8; 16]) -> String {
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}
