//! Resource quantities ("100m", "128Mi", "1e3") as numbers, enough to compare
//! and add them (QoS class, request <= limit checks).

/// Upstream's message when a quantity does not parse.
pub const QUANTITY_FORMAT_ERROR: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/// The quantity in nano-units (1 = 10^-9), rounded up; `None` if it does not
/// parse or does not fit.
pub fn parse_quantity(s: &str) -> Option<i128> {
    let (negative, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let number_end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(number_end);
    let (mantissa, fraction_digits) = parse_decimal(number)?;
    let (exp10, exp2) = parse_suffix(suffix)?;
    let value = scale(mantissa, 9 + exp10 - fraction_digits, exp2)?;
    Some(if negative { -value } else { value })
}

/// Digits with at most one '.', as (all digits as an integer, digits after '.').
fn parse_decimal(number: &str) -> Option<(i128, i32)> {
    let (whole, fraction) = match number.split_once('.') {
        Some((w, f)) => (w, f),
        None => (number, ""),
    };
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
        return None;
    }
    let mut mantissa: i128 = 0;
    for c in whole.bytes().chain(fraction.bytes()) {
        mantissa = mantissa
            .checked_mul(10)?
            .checked_add(i128::from(c - b'0'))?;
    }
    Some((mantissa, i32::try_from(fraction.len()).ok()?))
}

/// A suffix as (power of ten, power of two).
fn parse_suffix(suffix: &str) -> Option<(i32, u32)> {
    let known = match suffix {
        "" => Some((0, 0)),
        "n" => Some((-9, 0)),
        "u" => Some((-6, 0)),
        "m" => Some((-3, 0)),
        "k" => Some((3, 0)),
        "M" => Some((6, 0)),
        "G" => Some((9, 0)),
        "T" => Some((12, 0)),
        "P" => Some((15, 0)),
        "E" => Some((18, 0)),
        "Ki" => Some((0, 10)),
        "Mi" => Some((0, 20)),
        "Gi" => Some((0, 30)),
        "Ti" => Some((0, 40)),
        "Pi" => Some((0, 50)),
        "Ei" => Some((0, 60)),
        _ => None,
    };
    if known.is_some() {
        return known;
    }
    // Decimal exponent: e3, E-2, e+6.
    let exponent = suffix.strip_prefix(['e', 'E'])?;
    let digits = exponent.trim_start_matches(['+', '-']);
    if digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || exponent.len() - digits.len() > 1
    {
        return None;
    }
    let value: i32 = exponent.parse().ok()?;
    Some((value, 0))
}

/// mantissa * 10^exp10 * 2^exp2, rounding a fractional result up.
fn scale(mantissa: i128, exp10: i32, exp2: u32) -> Option<i128> {
    let with_binary = mantissa.checked_mul(2i128.checked_pow(exp2)?)?;
    if exp10 >= 0 {
        with_binary.checked_mul(10i128.checked_pow(u32::try_from(exp10).ok()?)?)
    } else {
        let divisor = 10i128
            .checked_pow(u32::try_from(-exp10).ok()?)
            .unwrap_or(i128::MAX);
        Some((with_binary + divisor - 1) / divisor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: i128 = 1_000_000_000;

    #[test]
    fn parses_the_usual_forms() {
        assert_eq!(parse_quantity("1"), Some(ONE));
        assert_eq!(parse_quantity("100m"), Some(ONE / 10));
        assert_eq!(parse_quantity("0.1"), Some(ONE / 10));
        assert_eq!(parse_quantity("128Mi"), Some(128 * 1024 * 1024 * ONE));
        assert_eq!(parse_quantity("1k"), Some(1000 * ONE));
        assert_eq!(parse_quantity("1e3"), Some(1000 * ONE));
        assert_eq!(parse_quantity("1E"), Some(1_000_000_000_000_000_000 * ONE));
        assert_eq!(parse_quantity("-2"), Some(-2 * ONE));
        assert_eq!(parse_quantity(".5"), Some(ONE / 2));
        assert_eq!(parse_quantity("1n"), Some(1));
    }

    #[test]
    fn rejects_malformed_quantities() {
        for bad in ["", "abc", "1x", "1..2", ".", "1e", "1Mii", "--1"] {
            assert_eq!(parse_quantity(bad), None, "{bad}");
        }
    }
}
