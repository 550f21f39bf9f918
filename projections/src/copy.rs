//! Bulk writes with `COPY ... FROM STDIN (FORMAT binary)`: how a replay writes a rebuilt read
//! model into its fresh shadow tables, several times faster than multi-row upserts. The binary
//! format spares both sides parsing and escaping: a text field is its UTF-8 bytes, a uuid its 16
//! bytes, integers and timestamps big-endian integers.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use sqlx::PgConnection;
use sqlx::postgres::PgCopyIn;
use uuid::Uuid;

use crate::columns::{Expect, Fields, Sql};

/// Data is sent to the server in messages of about this size, while the next is formatted.
const SEND_AT: usize = 1 << 20;
/// The binary format's header: signature, flags (none), header extension length (none).
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// The binary format's trailer: a field count of -1.
const TRAILER: &[u8] = &(-1i16).to_be_bytes();
/// Microseconds from the Unix epoch to PostgreSQL's, 2000-01-01 00:00:00 UTC.
const POSTGRES_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// One `COPY` into a table: each row is its fields in column order (through [`Fields`]; the
/// first row checked against the declared columns), then [`end_row`](Self::end_row); then [`finish`](Self::finish).
/// Dropped unfinished, the COPY fails and nothing is written.
pub(crate) struct CopyIn<'c> {
    copy: PgCopyIn<&'c mut PgConnection>,
    rows: RowBuffer,
    expect: Expect,
    /// Until the first row ends: every value is checked against the declared columns.
    checking: bool,
}

impl<'c> CopyIn<'c> {
    /// Starts `COPY table (columns) FROM STDIN (FORMAT binary, FREEZE)`; `table` is a trusted,
    /// qualified name, created or truncated in the connection's open transaction (which FREEZE
    /// requires: the rows are written frozen, the pages marked all-visible).
    pub(crate) async fn start(
        conn: &'c mut PgConnection,
        table: &str,
        expect: Expect,
    ) -> Result<Self, sqlx::Error> {
        let columns: Vec<&str> = expect.columns().iter().map(|column| column.name).collect();
        let copy = conn
            .copy_in_raw(&format!(
                "copy {table} ({}) from stdin with (format binary, freeze)",
                columns.join(", ")
            ))
            .await?;
        Ok(Self {
            copy,
            rows: RowBuffer::new(),
            expect,
            checking: true,
        })
    }

    fn put(&mut self, sql: Sql, value: &[u8]) {
        if !self.checking || self.expect.field(Some(sql)).is_some() {
            self.rows.field(Some(value));
        }
    }

    /// Ends the row; sends the buffered rows once there are enough of them.
    pub(crate) async fn end_row(&mut self) -> Result<(), sqlx::Error> {
        if self.checking {
            self.expect.end_row()?;
            // A row type writes the same columns in the same order every time: once its first
            // row fits the declaration, the rest are the server's to check (a null in a
            // `not null` column, a wrong length: the COPY fails). Replay writes millions.
            self.checking = false;
        }
        self.rows.end_row();
        if self.rows.bytes.len() >= SEND_AT {
            self.copy.send(self.rows.bytes.as_slice()).await?;
            self.rows.bytes.clear();
        }
        Ok(())
    }

    /// Sends the rest and ends the COPY; returns the rows written.
    pub(crate) async fn finish(mut self) -> Result<u64, sqlx::Error> {
        self.rows.bytes.extend_from_slice(TRAILER);
        self.copy.send(self.rows.bytes.as_slice()).await?;
        self.copy.finish().await
    }
}

impl Fields for CopyIn<'_> {
    fn uuid(&mut self, value: Uuid) {
        self.put(Sql::Uuid, value.as_bytes());
    }
    fn text(&mut self, value: &str) {
        self.put(Sql::Text, value.as_bytes());
    }
    fn int4(&mut self, value: i32) {
        self.put(Sql::Int4, &value.to_be_bytes());
    }
    fn int8(&mut self, value: i64) {
        self.put(Sql::Int8, &value.to_be_bytes());
    }
    fn bool(&mut self, value: bool) {
        self.put(Sql::Bool, &[u8::from(value)]);
    }
    fn date(&mut self, value: NaiveDate) {
        self.put(Sql::Date, &postgres_days(value).to_be_bytes());
    }
    fn timestamptz(&mut self, value: DateTime<Utc>) {
        self.put(Sql::Timestamptz, &postgres_micros(value).to_be_bytes());
    }
    fn jsonb(&mut self, value: &Value) {
        // jsonb's binary form: a version byte (1), then the JSON text.
        let mut bytes = vec![1];
        // Serializing a `Value` into memory cannot fail.
        let _ = serde_json::to_writer(&mut bytes, value);
        self.put(Sql::Jsonb, &bytes);
    }
    fn null(&mut self) {
        if !self.checking || self.expect.field(None).is_some() {
            self.rows.field(None);
        }
    }
}

/// Rows in the binary COPY format, not yet sent.
struct RowBuffer {
    bytes: Vec<u8>,
    /// Where the current row's field count goes, and the count so far; `None` between rows.
    row: Option<(usize, i16)>,
}

impl RowBuffer {
    fn new() -> Self {
        let mut bytes = Vec::with_capacity(SEND_AT + SEND_AT / 4);
        bytes.extend_from_slice(HEADER);
        Self { bytes, row: None }
    }

    /// A field: its bytes, or `None` for SQL null.
    fn field(&mut self, value: Option<&[u8]>) {
        match &mut self.row {
            Some((_, fields)) => *fields += 1,
            None => {
                // The count is written when the row ends.
                self.row = Some((self.bytes.len(), 1));
                self.bytes.extend_from_slice(&[0, 0]);
            }
        }
        let Some(value) = value else {
            self.bytes.extend_from_slice(&(-1i32).to_be_bytes());
            return;
        };
        // No column value reaches 2 GiB (PostgreSQL's limit is 1 GiB); if one did, the
        // mismatched length would make the server refuse the COPY.
        let length = i32::try_from(value.len()).unwrap_or(i32::MAX);
        self.bytes.extend_from_slice(&length.to_be_bytes());
        self.bytes.extend_from_slice(value);
    }

    fn end_row(&mut self) {
        if let Some((at, fields)) = self.row.take() {
            self.bytes[at..at + 2].copy_from_slice(&fields.to_be_bytes());
        }
    }
}

/// A date as PostgreSQL stores it: days since 2000-01-01.
fn postgres_days(value: NaiveDate) -> i32 {
    let epoch = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or_default();
    // PostgreSQL's dates span about ±5.8 million years, chrono's ±262,000: the count fits.
    i32::try_from((value - epoch).num_days()).unwrap_or(i32::MAX)
}

/// A timestamp as PostgreSQL stores it: microseconds since 2000-01-01 00:00:00 UTC.
fn postgres_micros(value: DateTime<Utc>) -> i64 {
    value.timestamp_micros() - POSTGRES_EPOCH_MICROS
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn rows_are_field_counts_then_length_prefixed_fields() {
        let mut rows = RowBuffer::new();
        rows.field(Some("ü".as_bytes()));
        rows.field(Some(&7i64.to_be_bytes()));
        rows.field(None);
        rows.end_row();
        let mut expected = HEADER.to_vec();
        expected.extend_from_slice(&[0, 3]);
        expected.extend_from_slice(&[0, 0, 0, 2, 0xc3, 0xbc]);
        expected.extend_from_slice(&[0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 7]);
        expected.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(rows.bytes, expected);
    }

    #[test]
    fn dates_count_days_from_the_postgres_epoch() {
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        assert_eq!(postgres_days(day(2000, 1, 1)), 0);
        assert_eq!(postgres_days(day(2000, 1, 2)), 1);
        assert_eq!(postgres_days(day(1999, 12, 31)), -1);
    }

    #[test]
    fn timestamps_count_microseconds_from_the_postgres_epoch() {
        let epoch = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(postgres_micros(epoch), 0);
        let later = Utc.timestamp_opt(946_684_801, 123_456_000).unwrap();
        assert_eq!(postgres_micros(later), 1_123_456);
        let before = Utc.timestamp_opt(946_684_799, 999_999_000).unwrap();
        assert_eq!(postgres_micros(before), -1);
    }
}
