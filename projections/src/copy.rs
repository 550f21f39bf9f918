//! Bulk writes with `COPY ... FROM STDIN (FORMAT binary)`: how a replay writes a rebuilt read
//! model into its fresh shadow tables, several times faster than multi-row upserts. The binary
//! format spares both sides parsing and escaping: a text field is its UTF-8 bytes, a uuid its 16
//! bytes, integers and timestamps big-endian integers.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use sqlx::postgres::PgCopyIn;
use uuid::Uuid;

/// Data is sent to the server in messages of about this size, while the next is formatted.
const SEND_AT: usize = 1 << 20;
/// The binary format's header: signature, flags (none), header extension length (none).
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// The binary format's trailer: a field count of -1.
const TRAILER: &[u8] = &(-1i16).to_be_bytes();
/// Microseconds from the Unix epoch to PostgreSQL's, 2000-01-01 00:00:00 UTC.
const POSTGRES_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// One `COPY` into a table: each row is its fields in column order, then
/// [`end_row`](Self::end_row); then [`finish`](Self::finish). Dropped unfinished, the COPY fails
/// and nothing is written.
pub struct CopyIn<'c> {
    copy: PgCopyIn<&'c mut PgConnection>,
    rows: RowBuffer,
}

impl<'c> CopyIn<'c> {
    /// Starts `COPY table (columns) FROM STDIN`; `table` and `columns` are trusted identifiers.
    /// The fields of each row must match the columns' types exactly: `text`, `uuid`, `bigint`,
    /// `timestamptz`.
    pub async fn start(
        conn: &'c mut PgConnection,
        table: &str,
        columns: &[&str],
    ) -> Result<Self, sqlx::Error> {
        let copy = conn
            .copy_in_raw(&format!(
                "copy {table} ({}) from stdin with (format binary)",
                columns.join(", ")
            ))
            .await?;
        Ok(Self {
            copy,
            rows: RowBuffer::new(),
        })
    }

    /// A `text` field.
    pub fn text(&mut self, value: &str) -> &mut Self {
        self.rows.field(value.as_bytes());
        self
    }

    /// A `uuid` field.
    pub fn uuid(&mut self, value: Uuid) -> &mut Self {
        self.rows.field(value.as_bytes());
        self
    }

    /// A `bigint` field.
    pub fn int(&mut self, value: i64) -> &mut Self {
        self.rows.field(&value.to_be_bytes());
        self
    }

    /// A `timestamptz` field.
    pub fn timestamp(&mut self, value: DateTime<Utc>) -> &mut Self {
        self.rows.field(&postgres_micros(value).to_be_bytes());
        self
    }

    /// Ends the row; sends the buffered rows once there are enough of them.
    pub async fn end_row(&mut self) -> Result<(), sqlx::Error> {
        self.rows.end_row();
        if self.rows.bytes.len() >= SEND_AT {
            self.copy.send(self.rows.bytes.as_slice()).await?;
            self.rows.bytes.clear();
        }
        Ok(())
    }

    /// Sends the rest and ends the COPY; returns the rows written.
    pub async fn finish(mut self) -> Result<u64, sqlx::Error> {
        self.rows.bytes.extend_from_slice(TRAILER);
        self.copy.send(self.rows.bytes.as_slice()).await?;
        self.copy.finish().await
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

    fn field(&mut self, value: &[u8]) {
        match &mut self.row {
            Some((_, fields)) => *fields += 1,
            None => {
                // The count is written when the row ends.
                self.row = Some((self.bytes.len(), 1));
                self.bytes.extend_from_slice(&[0, 0]);
            }
        }
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
        rows.field("ü".as_bytes());
        rows.field(&7i64.to_be_bytes());
        rows.end_row();
        let mut expected = HEADER.to_vec();
        expected.extend_from_slice(&[0, 2]);
        expected.extend_from_slice(&[0, 0, 0, 2, 0xc3, 0xbc]);
        expected.extend_from_slice(&[0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 7]);
        assert_eq!(rows.bytes, expected);
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
