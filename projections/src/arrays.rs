//! Rows as one array per column, for multi-row statements over `unnest($1::uuid[], …)`: one
//! round trip for any number of rows, with the values bound, never spliced into the SQL.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use sqlx::Postgres;
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use uuid::Uuid;

use crate::columns::{Column, Expect, Fields, Sql};

/// One column's values.
enum Array {
    Uuid(Vec<Option<Uuid>>),
    Text(Vec<Option<String>>),
    Int4(Vec<Option<i32>>),
    Int8(Vec<Option<i64>>),
    Bool(Vec<Option<bool>>),
    Date(Vec<Option<NaiveDate>>),
    Timestamptz(Vec<Option<DateTime<Utc>>>),
    Jsonb(Vec<Option<Value>>),
}

impl Array {
    fn new(sql: Sql, capacity: usize) -> Self {
        match sql {
            Sql::Uuid => Self::Uuid(Vec::with_capacity(capacity)),
            Sql::Text => Self::Text(Vec::with_capacity(capacity)),
            Sql::Int4 => Self::Int4(Vec::with_capacity(capacity)),
            Sql::Int8 => Self::Int8(Vec::with_capacity(capacity)),
            Sql::Bool => Self::Bool(Vec::with_capacity(capacity)),
            Sql::Date => Self::Date(Vec::with_capacity(capacity)),
            Sql::Timestamptz => Self::Timestamptz(Vec::with_capacity(capacity)),
            Sql::Jsonb => Self::Jsonb(Vec::with_capacity(capacity)),
        }
    }

    fn push_null(&mut self) {
        match self {
            Self::Uuid(values) => values.push(None),
            Self::Text(values) => values.push(None),
            Self::Int4(values) => values.push(None),
            Self::Int8(values) => values.push(None),
            Self::Bool(values) => values.push(None),
            Self::Date(values) => values.push(None),
            Self::Timestamptz(values) => values.push(None),
            Self::Jsonb(values) => values.push(None),
        }
    }

    fn bind<'q>(self, query: Query<'q, Postgres, PgArguments>) -> Query<'q, Postgres, PgArguments> {
        match self {
            Self::Uuid(values) => query.bind(values),
            Self::Text(values) => query.bind(values),
            Self::Int4(values) => query.bind(values),
            Self::Int8(values) => query.bind(values),
            Self::Bool(values) => query.bind(values),
            Self::Date(values) => query.bind(values),
            Self::Timestamptz(values) => query.bind(values),
            Self::Jsonb(values) => query.bind(values),
        }
    }
}

/// Rows collected column by column; every value is checked against its declared column.
pub(crate) struct Arrays {
    arrays: Vec<Array>,
    expect: Expect,
    rows: usize,
}

impl Arrays {
    pub(crate) fn new(expect: Expect, capacity: usize) -> Self {
        Self {
            arrays: expect
                .columns()
                .iter()
                .map(|column| Array::new(column.sql, capacity))
                .collect(),
            expect,
            rows: 0,
        }
    }

    /// The declared columns, in order.
    pub(crate) fn columns(&self) -> &[Column] {
        self.expect.columns()
    }

    pub(crate) fn end_row(&mut self) -> Result<(), sqlx::Error> {
        self.expect.end_row()?;
        self.rows += 1;
        Ok(())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The columns' names, comma separated, in order.
    pub(crate) fn names(&self) -> String {
        let names: Vec<&str> = self.columns().iter().map(|column| column.name).collect();
        names.join(", ")
    }

    /// The columns' array parameters: `$first::uuid[]`, `$first+1::text[]`, …
    pub(crate) fn parameters(&self, first: usize) -> Vec<String> {
        self.columns()
            .iter()
            .enumerate()
            .map(|(index, column)| format!("${}::{}", first + index, column.sql.array_cast()))
            .collect()
    }

    /// `unnest($first::uuid[], $first+1::text[], …)` over the columns.
    pub(crate) fn unnest(&self, first: usize) -> String {
        format!("unnest({})", self.parameters(first).join(", "))
    }

    /// Binds every column's array, in order.
    pub(crate) fn bind<'q>(
        self,
        mut query: Query<'q, Postgres, PgArguments>,
    ) -> Query<'q, Postgres, PgArguments> {
        for array in self.arrays {
            query = array.bind(query);
        }
        query
    }

    fn array(&mut self, sql: Sql) -> Option<&mut Array> {
        let index = self.expect.field(Some(sql))?;
        self.arrays.get_mut(index)
    }
}

impl Fields for Arrays {
    fn uuid(&mut self, value: Uuid) {
        if let Some(Array::Uuid(values)) = self.array(Sql::Uuid) {
            values.push(Some(value));
        }
    }
    fn text(&mut self, value: &str) {
        if let Some(Array::Text(values)) = self.array(Sql::Text) {
            values.push(Some(value.to_owned()));
        }
    }
    fn int4(&mut self, value: i32) {
        if let Some(Array::Int4(values)) = self.array(Sql::Int4) {
            values.push(Some(value));
        }
    }
    fn int8(&mut self, value: i64) {
        if let Some(Array::Int8(values)) = self.array(Sql::Int8) {
            values.push(Some(value));
        }
    }
    fn bool(&mut self, value: bool) {
        if let Some(Array::Bool(values)) = self.array(Sql::Bool) {
            values.push(Some(value));
        }
    }
    fn date(&mut self, value: NaiveDate) {
        if let Some(Array::Date(values)) = self.array(Sql::Date) {
            values.push(Some(value));
        }
    }
    fn timestamptz(&mut self, value: DateTime<Utc>) {
        if let Some(Array::Timestamptz(values)) = self.array(Sql::Timestamptz) {
            values.push(Some(value));
        }
    }
    fn jsonb(&mut self, value: &Value) {
        if let Some(Array::Jsonb(values)) = self.array(Sql::Jsonb) {
            values.push(Some(value.clone()));
        }
    }
    fn null(&mut self) {
        if let Some(array) = self
            .expect
            .field(None)
            .and_then(|index| self.arrays.get_mut(index))
        {
            array.push_null();
        }
    }
}
