//! Validated value types. Each is built through `parse`, which says what was wrong with the input,
//! so a value that exists is valid.
//!
//! Deserialization does not re-validate: serde is how recorded events come back from the log, and
//! a recorded fact must always load even if a later release tightens the input rules. Input from
//! outside always goes through `parse`.
//!
//! Nothing is trimmed: a value with white space around it is refused, not silently changed. Each
//! type that parses text states its rule once more as a `PATTERN`, a regular expression in the
//! subset that ECMA-262 (JSON Schema), Python and Rust's `regex` read alike; the API publishes it
//! so that clients can check before sending. A property test holds each pattern to its `parse`.

use serde::{Deserialize, Serialize};
use std::fmt;
use thiserror::Error;

/// Why a value was refused. The message is written for the person who typed the value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ValueError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {max} characters long")]
    TooLong { max: usize },
    #[error("must not contain control characters")]
    ControlCharacter,
    #[error("must not begin or end with white space")]
    SurroundingWhitespace,
    #[error(
        "may contain only letters A-Z, digits 0-9, '-', '_' and '.', and must start with a letter or digit"
    )]
    InvalidCode,
    #[error("a BIN has exactly 13 digits, written as 13 digits or 9+4 (e.g. 002871821-0101)")]
    InvalidBin,
    #[error("a TIN (e-TIN) has exactly 12 digits")]
    InvalidTin,
    #[error("a currency is a three-letter ISO 4217 code such as BDT")]
    InvalidCurrency,
    #[error("{month:02}-{day:02} is not a day that exists in every year")]
    InvalidFiscalYearStart { month: u8, day: u8 },
    #[error("must be a month and day as MM-DD, e.g. 07-01")]
    InvalidMonthDay,
}

/// A short identifier chosen by people, unique within its parent: letters, digits, `-`, `_`, `.`,
/// starting with a letter or digit, at most 32 characters. Stored in upper case so that `dhk-01`
/// and `DHK-01` are the same code.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Code(String);

impl Code {
    pub const MAX_LEN: usize = 32;
    pub const PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$";

    pub fn parse(input: &str) -> Result<Self, ValueError> {
        let code = input.to_ascii_uppercase();
        if code.is_empty() {
            return Err(ValueError::Empty);
        }
        if code.chars().count() > Self::MAX_LEN {
            return Err(ValueError::TooLong { max: Self::MAX_LEN });
        }
        let starts_well = code.starts_with(|c: char| c.is_ascii_alphanumeric());
        let all_allowed = code
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
        if !(starts_well && all_allowed) {
            return Err(ValueError::InvalidCode);
        }
        Ok(Self(code))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A display name: 1 to 200 characters, no control characters, no white space at either end.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Name(String);

impl Name {
    pub const MAX_LEN: usize = 200;
    /// `\s` differs between engines only on characters that are control characters anyway.
    pub const PATTERN: &str =
        r"^[^\s\x00-\x1F\x7F-\x9F]([^\x00-\x1F\x7F-\x9F]{0,198}[^\s\x00-\x1F\x7F-\x9F])?$";

    pub fn parse(name: &str) -> Result<Self, ValueError> {
        if name.is_empty() {
            return Err(ValueError::Empty);
        }
        if name.chars().count() > Self::MAX_LEN {
            return Err(ValueError::TooLong { max: Self::MAX_LEN });
        }
        if name.chars().any(char::is_control) {
            return Err(ValueError::ControlCharacter);
        }
        if name.starts_with(char::is_whitespace) || name.ends_with(char::is_whitespace) {
            return Err(ValueError::SurroundingWhitespace);
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Business Identification Number (VAT registration): 13 digits, printed 9+4 (`002871821-0101`).
/// No check digit is published, so only length and digits are validated.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Bin(String);

impl Bin {
    pub const PATTERN: &str = "^([0-9]{13}|[0-9]{9}-[0-9]{4})$";

    /// Accepts 13 digits, or 9 digits, a dash and 4 digits.
    pub fn parse(input: &str) -> Result<Self, ValueError> {
        let digits: String = match input.split_once('-') {
            Some((head, tail)) if head.len() == 9 && tail.len() == 4 => format!("{head}{tail}"),
            Some(_) => return Err(ValueError::InvalidBin),
            None => input.to_owned(),
        };
        if digits.len() == 13 && digits.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(digits))
        } else {
            Err(ValueError::InvalidBin)
        }
    }

    /// The 13 digits without separator.
    pub fn digits(&self) -> &str {
        &self.0
    }
}

/// Prints the 9+4 form, e.g. `002871821-0101`.
impl fmt::Display for Bin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (head, tail) = self.0.split_at(self.0.len().min(9));
        write!(f, "{head}-{tail}")
    }
}

/// Taxpayer Identification Number (e-TIN): 12 digits, no published check digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Tin(String);

impl Tin {
    pub const PATTERN: &str = "^[0-9]{12}$";

    pub fn parse(digits: &str) -> Result<Self, ValueError> {
        if digits.len() == 12 && digits.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(digits.to_owned()))
        } else {
            Err(ValueError::InvalidTin)
        }
    }

    pub fn digits(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An ISO 4217 alphabetic currency code. Bangladeshi taka (`BDT`) is the default base currency.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CurrencyCode(String);

impl CurrencyCode {
    pub fn bdt() -> Self {
        Self("BDT".to_owned())
    }

    /// Three letters, either case.
    pub const PATTERN: &str = "^[A-Za-z]{3}$";

    pub fn parse(input: &str) -> Result<Self, ValueError> {
        let code = input.to_ascii_uppercase();
        if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(Self(code))
        } else {
            Err(ValueError::InvalidCurrency)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CurrencyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Default for CurrencyCode {
    fn default() -> Self {
        Self::bdt()
    }
}

/// The month and day on which an organization's fiscal year begins; 1 July by default (the
/// Bangladesh government fiscal year). 29 February is refused because it does not exist every year.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FiscalYearStart {
    month: u8,
    day: u8,
}

impl FiscalYearStart {
    /// `MM-DD` of a day that exists in every year.
    pub const PATTERN: &str = "^((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))$";

    /// Reads `MM-DD`, e.g. `07-01`.
    pub fn parse_month_day(text: &str) -> Result<Self, ValueError> {
        let two_digits = |part: &str| {
            (part.len() == 2 && part.bytes().all(|b| b.is_ascii_digit()))
                .then(|| part.parse::<u8>().ok())
                .flatten()
        };
        let (month, day) = text
            .split_once('-')
            .and_then(|(month, day)| two_digits(month).zip(two_digits(day)))
            .ok_or(ValueError::InvalidMonthDay)?;
        Self::parse(month, day)
    }

    pub fn parse(month: u8, day: u8) -> Result<Self, ValueError> {
        let days_in_month = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 => 28,
            _ => 0,
        };
        if day >= 1 && day <= days_in_month {
            Ok(Self { month, day })
        } else {
            Err(ValueError::InvalidFiscalYearStart { month, day })
        }
    }

    pub fn month(&self) -> u8 {
        self.month
    }

    pub fn day(&self) -> u8 {
        self.day
    }
}

impl Default for FiscalYearStart {
    fn default() -> Self {
        Self { month: 7, day: 1 }
    }
}

impl fmt::Display for FiscalYearStart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}-{:02}", self.month, self.day)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn codes_are_upper_cased_and_never_trimmed() {
        assert_eq!(Code::parse("dhk-01").unwrap().as_str(), "DHK-01");
        assert_eq!(Code::parse(" DHK"), Err(ValueError::InvalidCode));
    }

    #[test]
    fn codes_with_spaces_symbols_or_a_leading_dash_are_refused() {
        for bad in ["A B", "A/B", "-A", "ÄBC", ""] {
            assert!(Code::parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert_eq!(
            Code::parse(&"A".repeat(33)),
            Err(ValueError::TooLong { max: 32 })
        );
    }

    #[test]
    fn names_must_not_be_blank_padded_or_hold_control_characters() {
        assert_eq!(
            Name::parse("Padma Bridge").unwrap().as_str(),
            "Padma Bridge"
        );
        assert_eq!(
            Name::parse("  Padma Bridge"),
            Err(ValueError::SurroundingWhitespace)
        );
        assert_eq!(Name::parse("   "), Err(ValueError::SurroundingWhitespace));
        assert_eq!(Name::parse(""), Err(ValueError::Empty));
        assert_eq!(Name::parse("a\nb"), Err(ValueError::ControlCharacter));
        assert!(Name::parse(&"ব".repeat(200)).is_ok());
        assert!(Name::parse(&"ব".repeat(201)).is_err());
    }

    #[test]
    fn bin_accepts_13_digits_or_the_9_plus_4_form_and_prints_9_plus_4() {
        let plain = Bin::parse("0028718210101").unwrap();
        let dashed = Bin::parse("002871821-0101").unwrap();
        assert_eq!(plain, dashed);
        assert_eq!(plain.to_string(), "002871821-0101");
        assert_eq!(plain.digits(), "0028718210101");
    }

    #[test]
    fn bin_of_wrong_length_or_with_letters_is_refused() {
        for bad in [
            "002871821010",
            "00287182101011",
            "00287182A0101",
            "0028718-210101",
            "002871821-010",
            "",
        ] {
            assert_eq!(Bin::parse(bad), Err(ValueError::InvalidBin), "{bad:?}");
        }
    }

    #[test]
    fn tin_needs_exactly_12_digits() {
        assert!(Tin::parse("123456789012").is_ok());
        for bad in [
            "12345678901",
            "1234567890123",
            "12345678901a",
            "1234-5678-9012",
        ] {
            assert_eq!(Tin::parse(bad), Err(ValueError::InvalidTin), "{bad:?}");
        }
    }

    #[test]
    fn fiscal_year_starts_on_1_july_by_default_and_refuses_impossible_days() {
        assert_eq!(FiscalYearStart::default().to_string(), "07-01");
        assert!(FiscalYearStart::parse(1, 1).is_ok());
        assert!(FiscalYearStart::parse(2, 29).is_err());
        assert!(FiscalYearStart::parse(4, 31).is_err());
        assert!(FiscalYearStart::parse(13, 1).is_err());
        assert!(FiscalYearStart::parse(6, 0).is_err());
        assert_eq!(
            FiscalYearStart::parse_month_day("07-01"),
            Ok(FiscalYearStart::default())
        );
        for bad in ["7-01", "+7-01", "07-1", "07/01", "0701", " 07-01"] {
            assert_eq!(
                FiscalYearStart::parse_month_day(bad),
                Err(ValueError::InvalidMonthDay),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn currency_defaults_to_taka() {
        assert_eq!(CurrencyCode::default().as_str(), "BDT");
        assert_eq!(CurrencyCode::parse("usd").unwrap().as_str(), "USD");
        assert!(CurrencyCode::parse("TK").is_err());
    }

    proptest! {
        #[test]
        fn any_13_digit_string_is_a_bin_that_round_trips_through_its_printed_form(digits in "[0-9]{13}") {
            let bin = Bin::parse(&digits).unwrap();
            prop_assert_eq!(Bin::parse(&bin.to_string()).unwrap(), bin);
        }

        /// Every string drawn from a type's published pattern parses.
        #[test]
        fn what_a_pattern_describes_parses(
            code in Code::PATTERN.trim_matches(['^', '$']),
            name in Name::PATTERN.trim_matches(['^', '$']),
            bin in Bin::PATTERN.trim_matches(['^', '$']),
            tin in Tin::PATTERN.trim_matches(['^', '$']),
            currency in CurrencyCode::PATTERN.trim_matches(['^', '$']),
            month_day in FiscalYearStart::PATTERN.trim_matches(['^', '$']),
        ) {
            prop_assert!(Code::parse(&code).is_ok(), "{:?}", code);
            prop_assert!(Name::parse(&name).is_ok(), "{:?}", name);
            prop_assert!(Bin::parse(&bin).is_ok(), "{:?}", bin);
            prop_assert!(Tin::parse(&tin).is_ok(), "{:?}", tin);
            prop_assert!(CurrencyCode::parse(&currency).is_ok(), "{:?}", currency);
            prop_assert!(FiscalYearStart::parse_month_day(&month_day).is_ok(), "{:?}", month_day);
        }

        /// And nothing else parses: near misses (the same alphabets, padded, cut or lengthened)
        /// parse exactly when they match.
        #[test]
        fn only_what_a_pattern_describes_parses(
            text in r"[ \ta-zA-Z0-9._/+\x00\x7Fব-]{0,16}|[0-9-]{11,15}|[0-9+ -]{3,7}|.{0,3}[^\x00-\x1F]{195,205}",
        ) {
            let agrees = |pattern: &str, parsed: bool| {
                regex::Regex::new(pattern).map(|re| re.is_match(&text) == parsed)
            };
            prop_assert!(agrees(Code::PATTERN, Code::parse(&text).is_ok()).unwrap(), "code {:?}", text);
            prop_assert!(agrees(Name::PATTERN, Name::parse(&text).is_ok()).unwrap(), "name {:?}", text);
            prop_assert!(agrees(Bin::PATTERN, Bin::parse(&text).is_ok()).unwrap(), "bin {:?}", text);
            prop_assert!(agrees(Tin::PATTERN, Tin::parse(&text).is_ok()).unwrap(), "tin {:?}", text);
            prop_assert!(agrees(CurrencyCode::PATTERN, CurrencyCode::parse(&text).is_ok()).unwrap(), "currency {:?}", text);
            prop_assert!(
                agrees(FiscalYearStart::PATTERN, FiscalYearStart::parse_month_day(&text).is_ok()).unwrap(),
                "month-day {:?}", text
            );
        }

        #[test]
        fn a_parsed_code_parses_to_itself(input in "[a-zA-Z0-9][a-zA-Z0-9._-]{0,31}") {
            let code = Code::parse(&input).unwrap();
            prop_assert_eq!(Code::parse(code.as_str()).unwrap(), code);
        }
    }
}
