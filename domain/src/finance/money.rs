//! Exact money: integer paisa (1 taka = 100 paisa), never a float.
//!
//! [`Money`] is what events, read models and rules hold. Text from outside goes through
//! [`Money::parse`], which takes a decimal string with at most two decimals (`"12.5"` is 1,250
//! paisa) and refuses everything else with a reason written for the person who typed it. In
//! events it serializes as its integer number of paisa (design.md D13); the API writes amounts as
//! decimal strings ([`Money::to_decimal`]).

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Neg, Sub, SubAssign};

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why an amount was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MoneyError {
    #[error("must be an amount written as a decimal string such as \"1250.50\"")]
    NotADecimal,
    #[error("must have at most 2 decimal places (whole paisa)")]
    TooManyDecimals,
    #[error("must not be negative")]
    Negative,
    #[error("must be at most 9999999999999.99")]
    TooLarge,
}

/// An amount of money in paisa. Non-negative amounts are what users enter; signed amounts
/// (balances, differences) come from arithmetic.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Money(i64);

impl Money {
    pub const ZERO: Money = Money(0);
    /// The largest amount one line may carry: ten trillion taka less a paisa. With at most
    /// [`crate::finance::MAX_LINES`] lines, every sum of an entry fits in an `i64` many times over.
    pub const MAX: Money = Money(999_999_999_999_999);
    /// What [`Money::parse`] accepts, as a regular expression (published in the OpenAPI document).
    pub const PATTERN: &str = r"^[0-9]{1,13}(\.[0-9]{1,2})?$";

    pub const fn from_paisa(paisa: i64) -> Self {
        Self(paisa)
    }

    pub const fn paisa(self) -> i64 {
        self.0
    }

    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    pub const fn is_positive(self) -> bool {
        self.0 > 0
    }

    /// A non-negative amount written as `digits[.d[d]]`: `"12.5"` is 1,250 paisa. Refuses signs,
    /// exponents, white space, more than two decimals and anything above [`Money::MAX`].
    pub fn parse(text: &str) -> Result<Self, MoneyError> {
        let unsigned = match text.strip_prefix('-') {
            Some(rest)
                if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit() || b == b'.') =>
            {
                return Err(MoneyError::Negative);
            }
            _ => text,
        };
        let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
        let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !digits(whole) || !digits(fraction) {
            return Err(MoneyError::NotADecimal);
        }
        if unsigned.contains('.') && fraction.is_empty() {
            return Err(MoneyError::NotADecimal);
        }
        if fraction.len() > 2 {
            return Err(MoneyError::TooManyDecimals);
        }
        if whole.len() > 13 {
            return Err(MoneyError::TooLarge);
        }
        let taka: i64 = whole.parse().map_err(|_| MoneyError::TooLarge)?;
        let paisa: i64 = match fraction.len() {
            0 => 0,
            1 => i64::from(fraction.as_bytes()[0] - b'0') * 10,
            _ => fraction.parse().map_err(|_| MoneyError::NotADecimal)?,
        };
        let amount = taka
            .checked_mul(100)
            .and_then(|p| p.checked_add(paisa))
            .ok_or(MoneyError::TooLarge)?;
        if amount > Self::MAX.0 {
            return Err(MoneyError::TooLarge);
        }
        Ok(Self(amount))
    }

    /// The amount as a decimal string with two places: `"1250.50"`, `"-3.00"`.
    pub fn to_decimal(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        format!("{sign}{}.{:02}", abs / 100, abs % 100)
    }

    /// The amount for people, in Bangladeshi (Indian) digit grouping: `1,00,000.00` is one lakh,
    /// `1,00,00,000.00` one crore.
    pub fn to_grouped(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let whole = (abs / 100).to_string();
        let grouped = if whole.len() <= 3 {
            whole
        } else {
            let (head, last3) = whole.split_at(whole.len() - 3);
            let mut groups: Vec<&str> = Vec::new();
            let mut rest = head;
            while rest.len() > 2 {
                let (front, pair) = rest.split_at(rest.len() - 2);
                groups.push(pair);
                rest = front;
            }
            groups.push(rest);
            groups.reverse();
            format!("{},{last3}", groups.join(","))
        };
        format!("{sign}{grouped}.{:02}", abs % 100)
    }

    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }

    /// `self` split into `weights.len()` parts in proportion to `weights` by the largest-remainder
    /// method: each part is rounded down to a paisa, then the paisa left over go one each to the
    /// parts with the largest remainders (the later part first on ties, so the last line carries
    /// the odd paisa), and the parts always add up to `self` exactly. `100.00` in three equal
    /// parts is `33.33 / 33.33 / 33.34`. `None` when
    /// there are no weights, a weight is negative or all are zero.
    pub fn split(self, weights: &[i64]) -> Option<Vec<Money>> {
        if weights.is_empty() || weights.iter().any(|w| *w < 0) {
            return None;
        }
        let total_weight: i128 = weights.iter().map(|w| i128::from(*w)).sum();
        if total_weight == 0 {
            return None;
        }
        let amount = i128::from(self.0);
        let mut parts: Vec<i128> = Vec::with_capacity(weights.len());
        let mut remainders: Vec<(i128, usize)> = Vec::with_capacity(weights.len());
        for (index, weight) in weights.iter().enumerate() {
            let exact = amount * i128::from(*weight);
            parts.push(exact.div_euclid(total_weight));
            remainders.push((exact.rem_euclid(total_weight), index));
        }
        let assigned: i128 = parts.iter().sum();
        let left = usize::try_from(amount - assigned).ok()?;
        remainders.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
        for (_, index) in remainders.into_iter().take(left) {
            parts[index] += 1;
        }
        parts
            .into_iter()
            .map(|part| i64::try_from(part).ok().map(Money))
            .collect()
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_decimal())
    }
}

impl Add for Money {
    type Output = Money;
    fn add(self, other: Money) -> Money {
        Money(self.0 + other.0)
    }
}

impl AddAssign for Money {
    fn add_assign(&mut self, other: Money) {
        self.0 += other.0;
    }
}

impl Sub for Money {
    type Output = Money;
    fn sub(self, other: Money) -> Money {
        Money(self.0 - other.0)
    }
}

impl SubAssign for Money {
    fn sub_assign(&mut self, other: Money) {
        self.0 -= other.0;
    }
}

impl Neg for Money {
    type Output = Money;
    fn neg(self) -> Money {
        Money(-self.0)
    }
}

impl Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        iter.fold(Money::ZERO, Add::add)
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
    fn decimal_strings_become_whole_paisa() {
        assert_eq!(taka("12.5").paisa(), 1250);
        assert_eq!(taka("12.50").paisa(), 1250);
        assert_eq!(taka("0.01").paisa(), 1);
        assert_eq!(taka("50000").paisa(), 5_000_000);
        assert_eq!(taka("007.10").paisa(), 710);
        assert_eq!(taka("9999999999999.99"), Money::MAX);
    }

    #[test]
    fn everything_but_a_plain_decimal_is_refused_with_its_reason() {
        assert_eq!(Money::parse("1.234"), Err(MoneyError::TooManyDecimals));
        assert_eq!(Money::parse("-5.00"), Err(MoneyError::Negative));
        assert_eq!(Money::parse("10000000000000"), Err(MoneyError::TooLarge));
        assert_eq!(
            Money::parse("99999999999999999999999"),
            Err(MoneyError::TooLarge)
        );
        assert_eq!(Money::parse("00000000000001"), Err(MoneyError::TooLarge));
        for bad in [
            "NaN", "", ".5", "5.", "1e3", " 5", "5 ", "+5", "1,000", "--5", "-", "١٢",
        ] {
            assert_eq!(Money::parse(bad), Err(MoneyError::NotADecimal), "{bad:?}");
        }
    }

    #[test]
    fn amounts_are_written_with_two_places_and_grouped_in_lakh_and_crore() {
        assert_eq!(taka("12.5").to_decimal(), "12.50");
        assert_eq!((-taka("3")).to_decimal(), "-3.00");
        assert_eq!(taka("100000").to_grouped(), "1,00,000.00");
        assert_eq!(taka("10000000").to_grouped(), "1,00,00,000.00");
        assert_eq!(taka("8679600").to_grouped(), "86,79,600.00");
        assert_eq!(taka("999.99").to_grouped(), "999.99");
        assert_eq!(taka("1234.5").to_grouped(), "1,234.50");
        assert_eq!((-taka("115000")).to_grouped(), "-1,15,000.00");
    }

    #[test]
    fn a_hundred_in_three_is_33_33_33_33_33_34() {
        let parts = taka("100").split(&[1, 1, 1]).unwrap();
        assert_eq!(parts, vec![taka("33.33"), taka("33.33"), taka("33.34")]);
        assert_eq!(taka("100").split(&[]), None);
        assert_eq!(taka("100").split(&[0, 0]), None);
        assert_eq!(taka("100").split(&[1, -1]), None);
    }

    proptest! {
        #[test]
        fn the_pattern_accepts_exactly_what_parse_accepts(text in "-?[0-9]{0,15}(\\.[0-9]{0,3})?") {
            let pattern = regex::Regex::new(Money::PATTERN).unwrap();
            prop_assert_eq!(pattern.is_match(&text), Money::parse(&text).is_ok(), "{:?}", text);
        }

        #[test]
        fn decimal_text_round_trips(paisa in 0i64..=Money::MAX.paisa()) {
            let money = Money::from_paisa(paisa);
            prop_assert_eq!(Money::parse(&money.to_decimal()), Ok(money));
        }

        #[test]
        fn splits_add_up_exactly_and_no_part_is_more_than_a_paisa_off(
            paisa in 0i64..=1_000_000_000_000, weights in proptest::collection::vec(0i64..1_000_000, 1..12)
        ) {
            prop_assume!(weights.iter().any(|w| *w > 0));
            let parts = Money::from_paisa(paisa).split(&weights).unwrap();
            prop_assert_eq!(parts.iter().copied().sum::<Money>(), Money::from_paisa(paisa));
            let total: i128 = weights.iter().map(|w| i128::from(*w)).sum();
            for (part, weight) in parts.iter().zip(&weights) {
                let exact = i128::from(paisa) * i128::from(*weight);
                let share = i128::from(part.paisa()) * total;
                prop_assert!((share - exact).abs() < total, "part {} for weight {}", part, weight);
            }
        }
    }
}
