//! What a read-model row is made of: its table, key and columns with their SQL types, declared
//! once per row type ([`Row`]), and the two ways a row is written and one it is read, all in
//! declared order: [`Fields`] (into multi-row upsert arrays or a binary COPY) and [`Fields`]'s
//! mirror, [`RowReader`]. Each writer and the reader check every value against the declared
//! type, so a row that writes an `int8` into an `int4` column fails at its first save with the
//! column's name, not at the first replay.

use std::fmt::Debug;
use std::hash::Hash;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use sqlx::Row as _;
use sqlx::postgres::PgRow;
use uuid::Uuid;

/// A column's SQL type, as the migration declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sql {
    Uuid,
    Text,
    Int4,
    Int8,
    Bool,
    Date,
    Timestamptz,
    Jsonb,
}

impl Sql {
    /// The name `information_schema.columns.data_type` gives the type.
    pub fn information_schema_name(self) -> &'static str {
        match self {
            Self::Uuid => "uuid",
            Self::Text => "text",
            Self::Int4 => "integer",
            Self::Int8 => "bigint",
            Self::Bool => "boolean",
            Self::Date => "date",
            Self::Timestamptz => "timestamp with time zone",
            Self::Jsonb => "jsonb",
        }
    }

    /// The array type a multi-row statement binds a column as (`unnest($1::uuid[])`).
    pub(crate) fn array_cast(self) -> &'static str {
        match self {
            Self::Uuid => "uuid[]",
            Self::Text => "text[]",
            Self::Int4 => "int4[]",
            Self::Int8 => "int8[]",
            Self::Bool => "bool[]",
            Self::Date => "date[]",
            Self::Timestamptz => "timestamptz[]",
            Self::Jsonb => "jsonb[]",
        }
    }
}

/// One column of a read-model table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub sql: Sql,
    /// May hold SQL `null`.
    pub nullable: bool,
    /// A counter's additive column: saved as `c = c + excluded.c`.
    pub additive: bool,
}

impl Column {
    /// A `not null` column.
    pub const fn new(name: &'static str, sql: Sql) -> Self {
        Self {
            name,
            sql,
            nullable: false,
            additive: false,
        }
    }

    /// The same column, allowed to be `null`.
    pub const fn nullable(self) -> Self {
        Self {
            nullable: true,
            ..self
        }
    }

    /// The same column, added to on conflict instead of replaced (counters only).
    pub const fn additive(self) -> Self {
        Self {
            additive: true,
            ..self
        }
    }
}

/// A `not null` column: `col("code", Sql::Text)`.
pub const fn col(name: &'static str, sql: Sql) -> Column {
    Column::new(name, sql)
}

/// Every table's first key column: rows are always per tenant.
pub const TENANT: Column = col("tenant_id", Sql::Uuid);

/// A row type of one read-model table, declared once. The table's primary key is `tenant_id`
/// then [`KEY`](Row::KEY); its other columns are [`COLUMNS`](Row::COLUMNS). `write_key`,
/// `write` and `read` go through the columns in exactly the declared order.
pub trait Row: Send + Sync + Sized + 'static {
    /// The key within a tenant.
    type Key: Clone + Eq + Ord + Hash + Debug + Send + Sync;
    /// The table's name in schema `public` (and in the replay's shadow schema).
    const TABLE: &'static str;
    /// The key columns after `tenant_id`.
    const KEY: &'static [Column];
    /// The other columns.
    const COLUMNS: &'static [Column];

    fn write_key(key: &Self::Key, out: &mut impl Fields);
    fn write(&self, out: &mut impl Fields);
    /// Reads the key columns, then the other columns.
    fn read(row: &mut RowReader<'_>) -> Result<(Self::Key, Self), sqlx::Error>;
}

/// Where a row's values go, one per column in declared order.
pub trait Fields {
    fn uuid(&mut self, value: Uuid);
    fn text(&mut self, value: &str);
    fn int4(&mut self, value: i32);
    fn int8(&mut self, value: i64);
    fn bool(&mut self, value: bool);
    fn date(&mut self, value: NaiveDate);
    fn timestamptz(&mut self, value: DateTime<Utc>);
    fn jsonb(&mut self, value: &Value);
    /// SQL `null`, for a nullable column.
    fn null(&mut self);

    fn uuid_or_null(&mut self, value: Option<Uuid>) {
        match value {
            Some(value) => self.uuid(value),
            None => self.null(),
        }
    }

    fn text_or_null(&mut self, value: Option<&str>) {
        match value {
            Some(value) => self.text(value),
            None => self.null(),
        }
    }
}

/// The columns of a table in the order every statement and COPY lists them: tenant, key,
/// the rest.
pub(crate) fn all_columns<R: Row>() -> Vec<Column> {
    let mut columns = Vec::with_capacity(1 + R::KEY.len() + R::COLUMNS.len());
    columns.push(TENANT);
    columns.extend_from_slice(R::KEY);
    columns.extend_from_slice(R::COLUMNS);
    columns
}

/// Checks each value a writer receives against the declared columns, in order.
#[derive(Debug)]
pub(crate) struct Expect {
    table: &'static str,
    columns: Vec<Column>,
    next: usize,
    /// The first mismatch, reported when the row ends.
    mismatch: Option<String>,
}

impl Expect {
    pub(crate) fn new(table: &'static str, columns: Vec<Column>) -> Self {
        Self {
            table,
            columns,
            next: 0,
            mismatch: None,
        }
    }

    /// The index of the column a value of type `sql` (`None`: null) goes to, if it fits.
    pub(crate) fn field(&mut self, sql: Option<Sql>) -> Option<usize> {
        let index = self.next;
        self.next += 1;
        let fits = match self.columns.get(index) {
            Some(column) => match sql {
                Some(sql) => sql == column.sql,
                None => column.nullable,
            },
            None => false,
        };
        if fits {
            return Some(index);
        }
        if self.mismatch.is_none() {
            let got = sql.map_or("null", Sql::information_schema_name);
            self.mismatch = Some(match self.columns.get(index) {
                Some(column) => format!(
                    "{}.{}: a {got} value written to a{} {} column",
                    self.table,
                    column.name,
                    if column.nullable { "" } else { " not null" },
                    column.sql.information_schema_name()
                ),
                None => format!(
                    "{}: more values written than its {} columns",
                    self.table,
                    self.columns.len()
                ),
            });
        }
        None
    }

    /// Ends a row: every column got exactly one fitting value, or the first mismatch.
    pub(crate) fn end_row(&mut self) -> Result<(), sqlx::Error> {
        let written = std::mem::replace(&mut self.next, 0);
        if let Some(mismatch) = self.mismatch.take() {
            return Err(sqlx::Error::Encode(mismatch.into()));
        }
        if written != self.columns.len() {
            return Err(sqlx::Error::Encode(
                format!(
                    "{}: {written} values written for {} columns",
                    self.table,
                    self.columns.len()
                )
                .into(),
            ));
        }
        Ok(())
    }

    pub(crate) fn columns(&self) -> &[Column] {
        &self.columns
    }
}

/// Reads a row's key and columns in declared order from a result row that selected them in
/// that order, checking each against its declared type.
pub struct RowReader<'r> {
    row: &'r PgRow,
    table: &'static str,
    columns: &'r [Column],
    next: usize,
}

impl<'r> RowReader<'r> {
    /// `columns`: what `row` selected, in order (the key columns, then the others).
    pub(crate) fn new(row: &'r PgRow, table: &'static str, columns: &'r [Column]) -> Self {
        Self {
            row,
            table,
            columns,
            next: 0,
        }
    }

    fn get<'a, T>(&'a mut self, sql: Sql, nullable: bool) -> Result<T, sqlx::Error>
    where
        T: sqlx::Decode<'a, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
        'r: 'a,
    {
        let index = self.next;
        self.next += 1;
        match self.columns.get(index) {
            Some(column) if column.sql == sql && (column.nullable || !nullable) => {
                self.row.try_get(index)
            }
            Some(column) => Err(sqlx::Error::Decode(
                format!(
                    "{}.{}: read as {}{} but declared {}{}",
                    self.table,
                    column.name,
                    if nullable { "nullable " } else { "" },
                    sql.information_schema_name(),
                    if column.nullable { "nullable " } else { "" },
                    column.sql.information_schema_name()
                )
                .into(),
            )),
            None => Err(sqlx::Error::Decode(
                format!("{}: more columns read than declared", self.table).into(),
            )),
        }
    }

    pub fn uuid(&mut self) -> Result<Uuid, sqlx::Error> {
        self.get(Sql::Uuid, false)
    }
    pub fn uuid_or_null(&mut self) -> Result<Option<Uuid>, sqlx::Error> {
        self.get(Sql::Uuid, true)
    }
    pub fn text(&mut self) -> Result<String, sqlx::Error> {
        self.get(Sql::Text, false)
    }
    pub fn text_or_null(&mut self) -> Result<Option<String>, sqlx::Error> {
        self.get(Sql::Text, true)
    }
    pub fn int4(&mut self) -> Result<i32, sqlx::Error> {
        self.get(Sql::Int4, false)
    }
    pub fn int4_or_null(&mut self) -> Result<Option<i32>, sqlx::Error> {
        self.get(Sql::Int4, true)
    }
    pub fn int8_or_null(&mut self) -> Result<Option<i64>, sqlx::Error> {
        self.get(Sql::Int8, true)
    }
    pub fn bool_or_null(&mut self) -> Result<Option<bool>, sqlx::Error> {
        self.get(Sql::Bool, true)
    }
    pub fn date_or_null(&mut self) -> Result<Option<NaiveDate>, sqlx::Error> {
        self.get(Sql::Date, true)
    }
    pub fn timestamptz_or_null(&mut self) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
        self.get(Sql::Timestamptz, true)
    }
    pub fn jsonb_or_null(&mut self) -> Result<Option<Value>, sqlx::Error> {
        self.get(Sql::Jsonb, true)
    }
    pub fn int8(&mut self) -> Result<i64, sqlx::Error> {
        self.get(Sql::Int8, false)
    }
    pub fn bool(&mut self) -> Result<bool, sqlx::Error> {
        self.get(Sql::Bool, false)
    }
    pub fn date(&mut self) -> Result<NaiveDate, sqlx::Error> {
        self.get(Sql::Date, false)
    }
    pub fn timestamptz(&mut self) -> Result<DateTime<Utc>, sqlx::Error> {
        self.get(Sql::Timestamptz, false)
    }
    pub fn jsonb(&mut self) -> Result<Value, sqlx::Error> {
        self.get(Sql::Jsonb, false)
    }
}

/// A Rust type that is one column: its SQL type, and how it is written and read. What lets
/// [`row!`](crate::row) declare a row as plain fields.
pub trait Field: Sized {
    const SQL: Sql;
    const NULLABLE: bool = false;
    fn write_field(&self, out: &mut impl Fields);
    fn read_field(row: &mut RowReader<'_>) -> Result<Self, sqlx::Error>;
}

macro_rules! field {
    ($type:ty, $sql:ident, |$value:ident, $out:ident| $write:expr, $read:ident, $read_null:ident) => {
        impl Field for $type {
            const SQL: Sql = Sql::$sql;
            fn write_field(&self, $out: &mut impl Fields) {
                let $value = self;
                $write
            }
            fn read_field(row: &mut RowReader<'_>) -> Result<Self, sqlx::Error> {
                row.$read()
            }
        }

        impl Field for Option<$type> {
            const SQL: Sql = Sql::$sql;
            const NULLABLE: bool = true;
            fn write_field(&self, out: &mut impl Fields) {
                match self {
                    Some(value) => value.write_field(out),
                    None => out.null(),
                }
            }
            fn read_field(row: &mut RowReader<'_>) -> Result<Self, sqlx::Error> {
                row.$read_null()
            }
        }
    };
}

field!(
    Uuid,
    Uuid,
    |value, out| out.uuid(*value),
    uuid,
    uuid_or_null
);
field!(
    String,
    Text,
    |value, out| out.text(value),
    text,
    text_or_null
);
field!(i32, Int4, |value, out| out.int4(*value), int4, int4_or_null);
field!(i64, Int8, |value, out| out.int8(*value), int8, int8_or_null);
field!(
    bool,
    Bool,
    |value, out| out.bool(*value),
    bool,
    bool_or_null
);
field!(
    NaiveDate,
    Date,
    |value, out| out.date(*value),
    date,
    date_or_null
);
field!(
    DateTime<Utc>,
    Timestamptz,
    |value, out| out.timestamptz(*value),
    timestamptz,
    timestamptz_or_null
);
field!(
    Value,
    Jsonb,
    |value, out| out.jsonb(value),
    jsonb,
    jsonb_or_null
);

/// The column a field of type `T` is, under `name`.
pub const fn field_column<T: Field>(name: &'static str) -> Column {
    Column {
        name,
        sql: T::SQL,
        nullable: T::NULLABLE,
        additive: false,
    }
}

/// Several columns that travel together in many row types (who changed a row, and when), as one
/// Rust value: a row declares it with `=> flatten`.
pub trait FieldGroup: Sized {
    const COLUMNS: &'static [Column];
    fn write_group(&self, out: &mut impl Fields);
    fn read_group(row: &mut RowReader<'_>) -> Result<Self, sqlx::Error>;
}

/// How many columns `parts` hold together.
pub const fn columns_len(parts: &[&[Column]]) -> usize {
    let (mut count, mut part) = (0, 0);
    while part < parts.len() {
        count += parts[part].len();
        part += 1;
    }
    count
}

/// `parts`, one after the other; `N` is [`columns_len`] of them.
pub const fn concat_columns<const N: usize>(parts: &[&[Column]]) -> [Column; N] {
    let mut columns = [col("", Sql::Text); N];
    let (mut next, mut part) = (0, 0);
    while part < parts.len() {
        let mut index = 0;
        while index < parts[part].len() {
            columns[next] = parts[part][index];
            next += 1;
            index += 1;
        }
        part += 1;
    }
    columns
}

/// Declares a row type once: a struct of [`Field`]s (and [`FieldGroup`]s) and its [`Row`] impl:
/// table, key and columns, written and read in declared order. The key is not a struct field;
/// it is the one type, or the tuple, of the `key` list. After a field's type, `=> additive`
/// marks a counter's additive column, `=> flatten` a [`FieldGroup`].
///
/// ```ignore
/// row! {
///     /// Counts per actor and day.
///     pub struct ActivityCount in "audit_activity" {
///         key { actor: String, day: NaiveDate }
///         events: i64 => additive,
///         note: Option<String>,
///     }
/// }
/// ```
#[macro_export]
macro_rules! row {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident in $table:literal {
            key { $key:ident : $key_type:ty $(,)? }
            $($(#[$field_meta:meta])* $field:ident : $field_type:ty $(=> $kind:ident)?),+ $(,)?
        }
    ) => {
        $crate::row!(@row $(#[$meta])* $vis $name $table
            key_type { $key_type }
            key { $key : $key_type }
            write_key(key, out) { $crate::Field::write_field(key, out); }
            read_key(row) { <$key_type as $crate::Field>::read_field(row)? }
            fields { $($(#[$field_meta])* $field : $field_type $(=> $kind)?),+ });
    };
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident in $table:literal {
            key { $($key:ident : $key_type:ty),+ $(,)? }
            $($(#[$field_meta:meta])* $field:ident : $field_type:ty $(=> $kind:ident)?),+ $(,)?
        }
    ) => {
        $crate::row!(@row $(#[$meta])* $vis $name $table
            key_type { ($($key_type),+) }
            key { $($key : $key_type),+ }
            write_key(key, out) {
                let ($($key),+) = key;
                $($crate::Field::write_field($key, out);)+
            }
            read_key(row) { ($(<$key_type as $crate::Field>::read_field(row)?),+) }
            fields { $($(#[$field_meta])* $field : $field_type $(=> $kind)?),+ });
    };
    (@row $(#[$meta:meta])* $vis:vis $name:ident $table:literal
        key_type { $key_type:ty }
        key { $($key:ident : $key_column_type:ty),+ }
        write_key($key_value:ident, $key_out:ident) { $($write_key:tt)* }
        read_key($key_row:ident) { $read_key:expr }
        fields { $($(#[$field_meta:meta])* $field:ident : $field_type:ty $(=> $kind:ident)?),+ }
    ) => {
        $(#[$meta])*
        $vis struct $name {
            $($(#[$field_meta])* pub $field: $field_type,)+
        }

        impl $crate::Row for $name {
            type Key = $key_type;
            const TABLE: &'static str = $table;
            const KEY: &'static [$crate::Column] =
                &[$($crate::field_column::<$key_column_type>(stringify!($key))),+];
            const COLUMNS: &'static [$crate::Column] = &$crate::concat_columns::<
                { $crate::columns_len(&[$($crate::row!(@columns $field $field_type $(=> $kind)?)),+]) },
            >(&[$($crate::row!(@columns $field $field_type $(=> $kind)?)),+]);

            fn write_key($key_value: &Self::Key, $key_out: &mut impl $crate::Fields) {
                $($write_key)*
            }

            fn write(&self, out: &mut impl $crate::Fields) {
                $($crate::row!(@write (&self.$field), $field_type $(=> $kind)?, out);)+
            }

            fn read(
                $key_row: &mut $crate::RowReader<'_>,
            ) -> ::std::result::Result<(Self::Key, Self), $crate::__sqlx::Error> {
                let key = $read_key;
                Ok((key, Self { $($field: $crate::row!(@read $key_row, $field_type $(=> $kind)?)),+ }))
            }
        }
    };
    (@columns $field:ident $field_type:ty) => {
        &[$crate::field_column::<$field_type>(stringify!($field))]
    };
    (@columns $field:ident $field_type:ty => additive) => {
        &[$crate::field_column::<$field_type>(stringify!($field)).additive()]
    };
    (@columns $field:ident $field_type:ty => flatten) => {
        <$field_type as $crate::FieldGroup>::COLUMNS
    };
    (@write $value:expr, $field_type:ty, $out:ident) => {
        $crate::Field::write_field($value, $out)
    };
    (@write $value:expr, $field_type:ty => additive, $out:ident) => {
        $crate::Field::write_field($value, $out)
    };
    (@write $value:expr, $field_type:ty => flatten, $out:ident) => {
        $crate::FieldGroup::write_group($value, $out)
    };
    (@read $row:ident, $field_type:ty) => {
        <$field_type as $crate::Field>::read_field($row)?
    };
    (@read $row:ident, $field_type:ty => additive) => {
        <$field_type as $crate::Field>::read_field($row)?
    };
    (@read $row:ident, $field_type:ty => flatten) => {
        <$field_type as $crate::FieldGroup>::read_group($row)?
    };
}

/// Declares a [`FieldGroup`]: a struct of [`Field`]s (and nested groups, `=> flatten`) whose
/// columns a row takes in with `=> flatten`.
///
/// ```ignore
/// field_group! {
///     /// Who changed a row last.
///     pub struct Stamp {
///         updated_at: DateTime<Utc>,
///         updated_by: String,
///     }
/// }
/// ```
#[macro_export]
macro_rules! field_group {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $($(#[$field_meta:meta])* $field:ident : $field_type:ty $(=> $kind:ident)?),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis struct $name {
            $($(#[$field_meta])* pub $field: $field_type,)+
        }

        impl $crate::FieldGroup for $name {
            const COLUMNS: &'static [$crate::Column] = &$crate::concat_columns::<
                { $crate::columns_len(&[$($crate::row!(@columns $field $field_type $(=> $kind)?)),+]) },
            >(&[$($crate::row!(@columns $field $field_type $(=> $kind)?)),+]);

            fn write_group(&self, out: &mut impl $crate::Fields) {
                $($crate::row!(@write (&self.$field), $field_type $(=> $kind)?, out);)+
            }

            fn read_group(
                row: &mut $crate::RowReader<'_>,
            ) -> ::std::result::Result<Self, $crate::__sqlx::Error> {
                Ok(Self { $($field: $crate::row!(@read row, $field_type $(=> $kind)?)),+ })
            }
        }
    };
}

/// A row type's declaration, as a test compares it with the migrated table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declaration {
    pub table: &'static str,
    /// The primary key: `tenant_id`, then the row's key columns.
    pub key: Vec<Column>,
    /// Every column, in declared order (the key's first).
    pub columns: Vec<Column>,
}

impl Declaration {
    pub fn of<R: Row>() -> Self {
        let mut key = vec![TENANT];
        key.extend_from_slice(R::KEY);
        Self {
            table: R::TABLE,
            key,
            columns: all_columns::<R>(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::field_group! {
        struct Who {
            by: String,
            at: Option<NaiveDate>,
        }
    }

    crate::row! {
        struct Counted in "counted" {
            key { day: NaiveDate, kind: String }
            events: i64 => additive,
            who: Who => flatten,
            note: Option<String>,
        }
    }

    #[test]
    fn a_declared_row_lists_its_fields_as_columns_in_order_with_groups_in_place() {
        assert_eq!(Counted::TABLE, "counted");
        assert_eq!(
            Counted::KEY,
            &[col("day", Sql::Date), col("kind", Sql::Text)]
        );
        assert_eq!(
            Counted::COLUMNS,
            &[
                col("events", Sql::Int8).additive(),
                col("by", Sql::Text),
                col("at", Sql::Date).nullable(),
                col("note", Sql::Text).nullable(),
            ]
        );
        // What it writes fits what it declares, value for value.
        let mut expect = Expect::new("counted", all_columns::<Counted>());
        let row = Counted {
            events: 2,
            who: Who {
                by: "alice".into(),
                at: None,
            },
            note: Some("x".into()),
        };
        struct Check<'a>(&'a mut Expect);
        impl Fields for Check<'_> {
            fn uuid(&mut self, _: Uuid) {
                self.0.field(Some(Sql::Uuid));
            }
            fn text(&mut self, _: &str) {
                self.0.field(Some(Sql::Text));
            }
            fn int4(&mut self, _: i32) {
                self.0.field(Some(Sql::Int4));
            }
            fn int8(&mut self, _: i64) {
                self.0.field(Some(Sql::Int8));
            }
            fn bool(&mut self, _: bool) {
                self.0.field(Some(Sql::Bool));
            }
            fn date(&mut self, _: NaiveDate) {
                self.0.field(Some(Sql::Date));
            }
            fn timestamptz(&mut self, _: DateTime<Utc>) {
                self.0.field(Some(Sql::Timestamptz));
            }
            fn jsonb(&mut self, _: &Value) {
                self.0.field(Some(Sql::Jsonb));
            }
            fn null(&mut self) {
                self.0.field(None);
            }
        }
        let mut check = Check(&mut expect);
        check.uuid(Uuid::nil());
        let day = NaiveDate::from_ymd_opt(2026, 12, 2).unwrap();
        Counted::write_key(&(day, "k".to_owned()), &mut check);
        row.write(&mut check);
        expect.end_row().unwrap();
    }

    #[test]
    fn a_value_of_another_type_than_declared_is_refused_with_the_column_named() {
        let mut expect = Expect::new(
            "t",
            vec![col("a", Sql::Int4), col("b", Sql::Text).nullable()],
        );
        assert_eq!(expect.field(Some(Sql::Int8)), None);
        assert_eq!(expect.field(None), Some(1));
        let error = expect.end_row().unwrap_err().to_string();
        assert!(
            error.contains("t.a: a bigint value written to a not null integer column"),
            "{error}"
        );
        // The next row starts clean.
        assert_eq!(expect.field(Some(Sql::Int4)), Some(0));
        assert_eq!(expect.field(Some(Sql::Text)), Some(1));
        expect.end_row().unwrap();
    }

    #[test]
    fn null_fits_only_a_nullable_column_and_every_column_needs_a_value() {
        let mut expect = Expect::new("t", vec![col("a", Sql::Uuid), col("b", Sql::Text)]);
        assert_eq!(expect.field(None), None);
        assert!(expect.end_row().unwrap_err().to_string().contains("t.a"));
        assert_eq!(expect.field(Some(Sql::Uuid)), Some(0));
        let error = expect.end_row().unwrap_err().to_string();
        assert!(error.contains("1 values written for 2 columns"), "{error}");
        expect.field(Some(Sql::Uuid));
        expect.field(Some(Sql::Text));
        expect.field(Some(Sql::Text));
        assert!(
            expect
                .end_row()
                .unwrap_err()
                .to_string()
                .contains("more values")
        );
    }
}
