//! Kubernetes resource quantities (`200Gi`, `500m`, `1.5`), parsed exactly
//! as the API server does, plus the hints users need for near misses
//! (`200GB`, `200gi`, `200 Gi`).

use std::fmt;

/// A parsed quantity. The original spelling is kept because that is what we
/// render (the API server preserves it too); comparisons use the value.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(into = "String")]
pub struct Quantity {
    text: String,
    /// Value in base units (bytes for storage/memory, cores for CPU), as a
    /// rational with a power-of-ten denominator so `0.1` stays exact.
    milli: i128,
}

impl Quantity {
    /// Parses a Kubernetes quantity. On failure returns a message and, when
    /// the input looks like a common mistake, the corrected spelling.
    pub fn parse(text: &str) -> Result<Quantity, QuantityError> {
        let (number, suffix) = split_number(text);
        let fail = || QuantityError {
            suggestion: suggest(text),
        };
        if number.is_empty() || number == "." || number == "+" || number == "-" {
            return Err(fail());
        }
        let multiplier_milli: i128 = match suffix {
            "" => 1_000,
            "m" => 1,
            "k" => 1_000_000,
            "M" => 1_000_000_000,
            "G" => 1_000_000_000_000,
            "T" => 1_000_000_000_000_000,
            "P" => 1_000_000_000_000_000_000,
            "E" => 1_000_000_000_000_000_000_000,
            "Ki" => 1_000 << 10,
            "Mi" => 1_000 << 20,
            "Gi" => 1_000 << 30,
            "Ti" => 1_000 << 40,
            "Pi" => 1_000 << 50,
            "Ei" => 1_000 << 60,
            s if s.starts_with(['e', 'E']) => {
                let exp: i32 = s[1..].parse().map_err(|_| fail())?;
                if !(-3..=18).contains(&exp) {
                    return Err(fail());
                }
                10i128.pow((exp + 3) as u32)
            }
            _ => return Err(fail()),
        };
        let (negative, digits) = match number.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, number.strip_prefix('+').unwrap_or(number)),
        };
        let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
        if !int_part.bytes().all(|b| b.is_ascii_digit())
            || !frac_part.bytes().all(|b| b.is_ascii_digit())
            || int_part.len() + frac_part.len() > 24
        {
            return Err(fail());
        }
        let scale = 10i128.pow(frac_part.len() as u32);
        let mantissa: i128 = format!("{int_part}{frac_part}").parse().unwrap_or(0);
        // Kubernetes rounds sub-milli precision up; so do we.
        let scaled = mantissa.checked_mul(multiplier_milli).ok_or_else(fail)?;
        let milli = (scaled + scale - 1) / scale;
        Ok(Quantity {
            text: text.to_string(),
            milli: if negative { -milli } else { milli },
        })
    }

    /// The quantity as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Value in thousandths of the base unit (milli-cores, milli-bytes).
    pub fn milli(&self) -> i128 {
        self.milli
    }

    /// Value in whole base units, rounded up.
    pub fn units_ceil(&self) -> i128 {
        (self.milli + 999).div_euclid(1000)
    }

    /// Size in GiB, rounded up (Azure disks are provisioned in whole GiB).
    pub fn gib_ceil(&self) -> u64 {
        let bytes = self.units_ceil().max(0) as u128;
        bytes.div_ceil(1 << 30) as u64
    }

    pub fn is_negative(&self) -> bool {
        self.milli < 0
    }

    /// What follows the number: a unit (`Gi`, `m`), a decimal exponent
    /// (`e3`), or nothing.
    pub fn suffix(&self) -> &str {
        split_number(&self.text).1
    }
}

impl From<Quantity> for String {
    fn from(q: Quantity) -> String {
        q.text
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Why a quantity failed to parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantityError {
    /// A corrected spelling when the mistake is recognisable.
    pub suggestion: Option<String>,
}

fn split_number(text: &str) -> (&str, &str) {
    let end = text
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || c == '.' || ((c == '+' || c == '-') && i == 0)))
        .map_or(text.len(), |(i, _)| i);
    text.split_at(end)
}

/// Recognises the usual mistakes: decimal SI units meant as binary
/// (`200GB`), wrong case (`200gi`), stray spaces, `iB` suffixes.
fn suggest(text: &str) -> Option<String> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let (number, suffix) = split_number(&compact);
    if number.is_empty() || !number.bytes().any(|b| b.is_ascii_digit()) {
        return None;
    }
    let fixed = match suffix.to_ascii_lowercase().as_str() {
        "kb" | "kib" | "ki" | "k" => "Ki",
        "mb" | "mib" | "mi" => "Mi",
        "gb" | "gib" | "gi" | "g" => "Gi",
        "tb" | "tib" | "ti" | "t" => "Ti",
        "pb" | "pib" | "pi" => "Pi",
        "" => "",
        _ => return None,
    };
    let candidate = format!("{number}{fixed}");
    (candidate != text && Quantity::parse(&candidate).is_ok()).then_some(candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_binary_and_decimal_suffixes() {
        assert_eq!(Quantity::parse("200Gi").unwrap().units_ceil(), 200 << 30);
        assert_eq!(Quantity::parse("1G").unwrap().units_ceil(), 1_000_000_000);
        assert_eq!(Quantity::parse("500m").unwrap().milli(), 500);
        assert_eq!(Quantity::parse("1.5").unwrap().milli(), 1500);
        assert_eq!(Quantity::parse("2").unwrap().milli(), 2000);
        assert_eq!(Quantity::parse("1e3").unwrap().units_ceil(), 1000);
        assert_eq!(Quantity::parse("0.5Gi").unwrap().gib_ceil(), 1);
        assert_eq!(Quantity::parse("100Gi").unwrap().gib_ceil(), 100);
    }

    #[test]
    fn rejects_and_suggests() {
        for (bad, hint) in [
            ("200GB", Some("200Gi")),
            ("200gi", Some("200Gi")),
            ("200 Gi", Some("200Gi")),
            ("8GiB", Some("8Gi")),
            ("lots", None),
            ("", None),
            ("1..2Gi", None),
            ("Gi", None),
        ] {
            let err = Quantity::parse(bad).unwrap_err();
            assert_eq!(err.suggestion.as_deref(), hint, "{bad}");
        }
    }

    #[test]
    fn huge_numbers_do_not_overflow() {
        assert!(Quantity::parse("99999999999999999999999Ei").is_err());
    }
}
