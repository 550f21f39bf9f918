//! Exact rates and quantities, the other numbers an invoice is made of.
//!
//! [`Rate`] is a percentage in hundredths of a percent (`"7.5"` % is 750), so every tax rate of
//! Bangladesh is exact; [`Quantity`] counts thousandths of a unit (`"12.5"` m³ is 12,500). Both
//! travel as decimal strings like [`Money`], and every product with money is rounded half-up once,
//! where it is taken (domain-finance.md).

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::Money;

/// Why a rate or a quantity was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MeasureError {
    #[error("must be a percentage from 0 to 100 with at most 2 decimals, e.g. \"7.5\"")]
    Rate,
    #[error(
        "must be a quantity written as a decimal string with at most 3 decimals, greater than 0 and at most 999999999"
    )]
    Quantity,
    #[error(
        "must be an exchange rate written as a decimal string with at most 6 decimals, greater than 0, e.g. \"122.50\""
    )]
    ExchangeRate,
}

/// A percentage from 0 to 100 in hundredths of a percent: 15 % is 1,500, 7.5 % is 750.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Rate(u32);

impl Rate {
    pub const ZERO: Rate = Rate(0);
    const WHOLE: i128 = 10_000;
    /// What [`Rate::parse`] accepts, as a regular expression.
    pub const PATTERN: &str = r"^(100(\.0{1,2})?|[0-9]{1,2}(\.[0-9]{1,2})?)$";

    /// `hundredths` of a percent; `None` above 100 %.
    pub const fn from_hundredths(hundredths: u32) -> Option<Self> {
        if hundredths as i128 > Self::WHOLE {
            None
        } else {
            Some(Self(hundredths))
        }
    }

    pub const fn hundredths(self) -> u32 {
        self.0
    }

    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// `"15"`, `"7.5"`, `"0"`, `"100.00"`.
    pub fn parse(text: &str) -> Result<Self, MeasureError> {
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
        let valid = !whole.is_empty()
            && (whole.len() <= 2 || whole == "100")
            && digits(whole)
            && digits(fraction)
            && fraction.len() <= 2
            && !(text.contains('.') && fraction.is_empty());
        if !valid {
            return Err(MeasureError::Rate);
        }
        let whole: u32 = whole.parse().map_err(|_| MeasureError::Rate)?;
        let fraction: u32 = match fraction.len() {
            0 => 0,
            1 => fraction.parse::<u32>().map_err(|_| MeasureError::Rate)? * 10,
            _ => fraction.parse().map_err(|_| MeasureError::Rate)?,
        };
        whole
            .checked_mul(100)
            .and_then(|h| h.checked_add(fraction))
            .and_then(Self::from_hundredths)
            .ok_or(MeasureError::Rate)
    }

    /// This share of `amount`, rounded half-up to a paisa.
    pub fn of(self, amount: Money) -> Money {
        Money::from_paisa(round_half_up(
            i128::from(amount.paisa()) * i128::from(self.0),
            Self::WHOLE,
        ))
    }

    /// `gross` (a price with this rate's tax included) split into the price without the tax,
    /// rounded half-up, and the tax, the rest: 86,79,600.00 at 15 % is 75,47,478.26 and
    /// 11,32,121.74.
    pub fn split_inclusive(self, gross: Money) -> (Money, Money) {
        let base = Money::from_paisa(round_half_up(
            i128::from(gross.paisa()) * Self::WHOLE,
            Self::WHOLE + i128::from(self.0),
        ));
        (base, gross - base)
    }

    /// `"15.00"`, `"7.50"`.
    pub fn to_decimal(self) -> String {
        format!("{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.to_decimal())
    }
}

/// A quantity in thousandths of a unit, greater than zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Quantity(i64);

impl Quantity {
    pub const ONE: Quantity = Quantity(1_000);
    const MAX: i64 = 999_999_999_999;
    /// What [`Quantity::parse`] accepts, as a regular expression: up to nine digits and three
    /// decimals, not all zero (each alternative places the first digit that is not zero).
    pub const PATTERN: &str = "^(?:(?:[1-9][0-9]{0,8}|0[1-9][0-9]{0,7}|00[1-9][0-9]{0,6}|000[1-9][0-9]{0,5}|0000[1-9][0-9]{0,4}|00000[1-9][0-9]{0,3}|000000[1-9][0-9]{0,2}|0000000[1-9][0-9]?|00000000[1-9])(?:\\.[0-9]{1,3})?|0{1,9}\\.(?:[1-9][0-9]{0,2}|0[1-9][0-9]?|00[1-9]))$";

    pub fn thousandths(self) -> i64 {
        self.0
    }

    /// `"12.5"` is 12,500 thousandths; zero and more than three decimals are refused.
    pub fn parse(text: &str) -> Result<Self, MeasureError> {
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
        let valid = !whole.is_empty()
            && whole.len() <= 9
            && digits(whole)
            && digits(fraction)
            && fraction.len() <= 3
            && !(text.contains('.') && fraction.is_empty());
        if !valid {
            return Err(MeasureError::Quantity);
        }
        let whole: i64 = whole.parse().map_err(|_| MeasureError::Quantity)?;
        let padded = format!("{fraction:0<3}");
        let fraction: i64 = padded.parse().map_err(|_| MeasureError::Quantity)?;
        let thousandths = whole * 1_000 + fraction;
        if thousandths == 0 || thousandths > Self::MAX {
            return Err(MeasureError::Quantity);
        }
        Ok(Self(thousandths))
    }

    /// `unit_price` times this quantity, rounded half-up to a paisa; `None` beyond
    /// [`Money::MAX`].
    pub fn times(self, unit_price: Money) -> Option<Money> {
        let paisa = round_half_up(i128::from(unit_price.paisa()) * i128::from(self.0), 1_000);
        (paisa <= Money::MAX.paisa()).then(|| Money::from_paisa(paisa))
    }

    /// `"12.5"`, `"3"`.
    pub fn to_decimal(self) -> String {
        let (whole, fraction) = (self.0 / 1_000, self.0 % 1_000);
        if fraction == 0 {
            whole.to_string()
        } else {
            format!("{whole}.{fraction:03}")
                .trim_end_matches('0')
                .to_owned()
        }
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_decimal())
    }
}

/// `numerator / denominator` (a positive denominator) rounded half-up, saturating at `i64`.
fn round_half_up(numerator: i128, denominator: i128) -> i64 {
    let rounded = if numerator >= 0 {
        (numerator * 2 + denominator) / (denominator * 2)
    } else {
        -((-numerator * 2 + denominator) / (denominator * 2))
    };
    i64::try_from(rounded).unwrap_or(if rounded > 0 { i64::MAX } else { i64::MIN })
}

/// How many units of the base currency (taka) one unit of a foreign currency is worth, exact to
/// a millionth: `"122.50"` is 122,500,000 millionths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ExchangeRate(i64);

impl ExchangeRate {
    const MILLION: i128 = 1_000_000;
    /// What [`ExchangeRate::parse`] accepts, as a regular expression: up to six digits and six
    /// decimals, not all zero (each alternative places the first digit that is not zero).
    pub const PATTERN: &str = "^(?:(?:[1-9][0-9]{0,5}|0[1-9][0-9]{0,4}|00[1-9][0-9]{0,3}|000[1-9][0-9]{0,2}|0000[1-9][0-9]?|00000[1-9])(?:\\.[0-9]{1,6})?|0{1,6}\\.(?:[1-9][0-9]{0,5}|0[1-9][0-9]{0,4}|00[1-9][0-9]{0,3}|000[1-9][0-9]{0,2}|0000[1-9][0-9]?|00000[1-9]))$";

    pub fn millionths(self) -> i64 {
        self.0
    }

    /// `"120"`, `"122.50"`, `"0.000123"`; zero and more than six decimals are refused.
    pub fn parse(text: &str) -> Result<Self, MeasureError> {
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
        let valid = !whole.is_empty()
            && whole.len() <= 6
            && digits(whole)
            && digits(fraction)
            && fraction.len() <= 6
            && !(text.contains('.') && fraction.is_empty());
        if !valid {
            return Err(MeasureError::ExchangeRate);
        }
        let whole: i64 = whole.parse().map_err(|_| MeasureError::ExchangeRate)?;
        let fraction: i64 = format!("{fraction:0<6}")
            .parse()
            .map_err(|_| MeasureError::ExchangeRate)?;
        let millionths = whole * 1_000_000 + fraction;
        if millionths == 0 {
            return Err(MeasureError::ExchangeRate);
        }
        Ok(Self(millionths))
    }

    /// `amount` of the foreign currency in the base currency, rounded half-up to a paisa.
    pub fn convert(self, amount: Money) -> Money {
        Money::from_paisa(round_half_up(
            i128::from(amount.paisa()) * i128::from(self.0),
            Self::MILLION,
        ))
    }

    /// `"122.500000"`.
    pub fn to_decimal(self) -> String {
        format!("{}.{:06}", self.0 / 1_000_000, self.0 % 1_000_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn taka(text: &str) -> Money {
        Money::parse(text).unwrap()
    }

    #[test]
    fn rates_are_exact_hundredths_of_a_percent() {
        assert_eq!(Rate::parse("15").unwrap().hundredths(), 1_500);
        assert_eq!(Rate::parse("7.5").unwrap().hundredths(), 750);
        assert_eq!(Rate::parse("100.00").unwrap().hundredths(), 10_000);
        for bad in ["100.01", "-1", "1.234", "", ".5", "5.", "1e2", "NaN", "101"] {
            assert_eq!(Rate::parse(bad), Err(MeasureError::Rate), "{bad:?}");
        }
        assert_eq!(Rate::parse("7.5").unwrap().to_decimal(), "7.50");
    }

    #[test]
    fn a_share_is_rounded_half_up_once() {
        let fifteen = Rate::parse("15").unwrap();
        assert_eq!(fifteen.of(taka("100000")), taka("15000"));
        // 0.03 at 15 % is 0.0045: rounds down; 0.10 is 0.015: rounds up.
        assert_eq!(fifteen.of(taka("0.03")), taka("0"));
        assert_eq!(fifteen.of(taka("0.10")), taka("0.02"));
        let five = Rate::parse("5").unwrap();
        assert_eq!(five.of(taka("7547478.26")), taka("377373.91"));
    }

    #[test]
    fn usd_1_000_at_120_and_at_122_50_are_1_20_000_and_1_22_500_taka() {
        assert_eq!(
            ExchangeRate::parse("120").unwrap().convert(taka("1000")),
            taka("120000")
        );
        assert_eq!(
            ExchangeRate::parse("122.50").unwrap().convert(taka("1000")),
            taka("122500")
        );
        assert_eq!(
            ExchangeRate::parse("0.000001")
                .unwrap()
                .convert(taka("0.5")),
            taka("0")
        );
        for bad in ["0", "0.0", "-1", "1.2345678", "", "1e3", "1234567"] {
            assert_eq!(
                ExchangeRate::parse(bad),
                Err(MeasureError::ExchangeRate),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn vat_inclusive_86_79_600_at_15_is_75_47_478_26_and_11_32_121_74() {
        let (base, vat) = Rate::parse("15").unwrap().split_inclusive(taka("8679600"));
        assert_eq!(base, taka("7547478.26"));
        assert_eq!(vat, taka("1132121.74"));
    }

    #[test]
    fn quantities_count_thousandths_and_multiply_with_one_rounding() {
        assert_eq!(Quantity::parse("12.5").unwrap().thousandths(), 12_500);
        assert_eq!(Quantity::parse("12.5").unwrap().to_decimal(), "12.5");
        assert_eq!(Quantity::parse("3").unwrap().to_decimal(), "3");
        for bad in ["0", "0.000", "-1", "1.2345", "", "1e3", "1234567890"] {
            assert_eq!(Quantity::parse(bad), Err(MeasureError::Quantity), "{bad:?}");
        }
        let q = Quantity::parse("2.5").unwrap();
        assert_eq!(q.times(taka("0.05")), Some(taka("0.13")));
        assert_eq!(Quantity::ONE.times(taka("100000")), Some(taka("100000")));
        assert_eq!(
            Quantity::parse("999999999").unwrap().times(Money::MAX),
            None
        );
    }

    proptest! {
        #[test]
        fn an_inclusive_split_adds_back_and_its_tax_is_the_rate_of_its_base_within_a_paisa(
            paisa in 0i64..=Money::MAX.paisa(), hundredths in 0u32..=10_000
        ) {
            let rate = Rate::from_hundredths(hundredths).unwrap();
            let gross = Money::from_paisa(paisa);
            let (base, tax) = rate.split_inclusive(gross);
            prop_assert_eq!(base + tax, gross);
            prop_assert!((rate.of(base) - tax).paisa().abs() <= 1);
        }

        #[test]
        fn the_exchange_rate_pattern_accepts_exactly_what_parse_accepts(
            text in "-?[0-9]{0,7}(\\.[0-9]{0,7})?"
        ) {
            let pattern = regex::Regex::new(ExchangeRate::PATTERN).unwrap();
            prop_assert_eq!(pattern.is_match(&text), ExchangeRate::parse(&text).is_ok(), "{:?}", text);
        }

        #[test]
        fn the_quantity_pattern_accepts_exactly_what_parse_accepts(
            text in "-?0{0,3}[0-9]{0,8}(\\.0{0,2}[0-9]{0,2})?"
        ) {
            let pattern = regex::Regex::new(Quantity::PATTERN).unwrap();
            prop_assert_eq!(pattern.is_match(&text), Quantity::parse(&text).is_ok(), "{:?}", text);
        }

        #[test]
        fn zeros_and_their_neighbours_match_as_parse_decides(
            whole in "0{0,6}[0-9]?", fraction in "0{0,6}[0-9]?"
        ) {
            let pattern = regex::Regex::new(ExchangeRate::PATTERN).unwrap();
            for text in [whole.clone(), format!("{whole}.{fraction}")] {
                prop_assert_eq!(pattern.is_match(&text), ExchangeRate::parse(&text).is_ok(), "{:?}", text);
            }
        }

        #[test]
        fn the_rate_pattern_accepts_exactly_what_parse_accepts(text in "-?[0-9]{0,4}(\\.[0-9]{0,3})?") {
            let pattern = regex::Regex::new(Rate::PATTERN).unwrap();
            prop_assert_eq!(pattern.is_match(&text), Rate::parse(&text).is_ok(), "{:?}", text);
        }
    }
}
