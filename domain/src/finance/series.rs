//! Gapless document numbers (design.md D13): one [`NumberSeries`] stream per series and fiscal
//! year, its version the last serial issued.
//!
//! A document's submit appends its number to the series in the same transaction as the document
//! itself, with the series' version as the expected one. The append takes the series' stream lock
//! exclusively, so of two concurrent submits one commits serial n and the other is refused as
//! stale and decides again with n + 1: a number never repeats, and since only a committed submit
//! takes one, none is skipped.

use chrono::{Datelike, NaiveDate};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;

use crate::ids::OrganizationId;
use crate::unique::UniqueValues;

/// The stream id of `organization`'s series `prefix` in the fiscal year starting `fiscal_year`.
pub fn series_id(organization: OrganizationId, prefix: &str, fiscal_year: NaiveDate) -> String {
    format!("{organization}/{prefix}/{fiscal_year}")
}

/// How a serial is printed: `SI-2025-26-000042` for a July–June year, `SI-2025-000042` for a
/// calendar year.
pub fn document_number(prefix: &str, fiscal_year: NaiveDate, serial: u64) -> String {
    let year = fiscal_year.year();
    if fiscal_year.month() == 1 && fiscal_year.day() == 1 {
        format!("{prefix}-{year}-{serial:06}")
    } else {
        format!(
            "{prefix}-{year}-{:02}-{serial:06}",
            (year + 1).rem_euclid(100)
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeriesCommand {
    /// The next serial, for `document_id`, which must be `serial`, printed as `number`.
    Issue {
        document_id: Uuid,
        serial: u64,
        number: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeriesEvent {
    NumberIssued {
        document_id: Uuid,
        serial: u64,
        number: String,
    },
}

impl DomainEvent for SeriesEvent {
    fn event_type(&self) -> String {
        "NumberIssued".to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SeriesError {
    #[error("serial {asked} is not the series' next ({next})")]
    NotNext { asked: u64, next: u64 },
}

/// How many numbers a series has issued (see the module docs).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NumberSeries {
    issued: u64,
}

impl NumberSeries {
    /// The serial the series issues next.
    pub fn next_serial(&self) -> u64 {
        self.issued + 1
    }
}

impl Aggregate for NumberSeries {
    const TYPE: &'static str = "number_series";
    type Command = SeriesCommand;
    type Event = SeriesEvent;
    type Error = SeriesError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let SeriesCommand::Issue {
            document_id,
            serial,
            number,
        } = command;
        if serial != self.next_serial() {
            return Err(SeriesError::NotNext {
                asked: serial,
                next: self.next_serial(),
            });
        }
        let event = SeriesEvent::NumberIssued {
            document_id,
            serial,
            number,
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        let SeriesEvent::NumberIssued { serial, .. } = event;
        self.issued = serial;
    }
}

impl UniqueValues for NumberSeries {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_name_the_series_the_fiscal_year_and_the_serial() {
        let july = NaiveDate::from_ymd_opt(2025, 7, 1).unwrap();
        let january = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        assert_eq!(document_number("SI", july, 42), "SI-2025-26-000042");
        assert_eq!(document_number("PB", january, 7), "PB-2026-000007");
        let end_of_century = NaiveDate::from_ymd_opt(2099, 7, 1).unwrap();
        assert_eq!(
            document_number("SI", end_of_century, 1),
            "SI-2099-00-000001"
        );
    }
}
