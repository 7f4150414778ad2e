//! Resource quantities ("100m", "1.5", "128Mi", "1e3") as numbers: the
//! integers components compare (milli-units for cpu, units for everything
//! else, both rounded up as upstream's `Quantity.MilliValue()` / `Value()`
//! do), or a float for display and ratios.

/// A quantity string that is not one.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid quantity {0:?}")]
pub struct InvalidQuantity(pub String);

/// A parsed quantity: `sign * mantissa * binary_multiplier * 10^exp10`.
struct Parts {
    negative: bool,
    mantissa: i128,
    exp10: i32,
}

fn parse(q: &str) -> Result<Parts, InvalidQuantity> {
    let bad = || InvalidQuantity(q.to_string());
    let s = q.trim();
    let (negative, s) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let num_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(num_end);
    if number.is_empty() || number == "." {
        return Err(bad());
    }
    // The digits as an integer mantissa and a decimal exponent.
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    if frac_part.contains('.') {
        return Err(bad());
    }
    let mut mantissa: i128 = 0;
    for c in int_part.chars().chain(frac_part.chars()) {
        mantissa = mantissa
            .checked_mul(10)
            .and_then(|m| m.checked_add(i128::from(c as u8 - b'0')))
            .ok_or_else(bad)?;
    }
    let mut exp10: i32 = -(frac_part.len() as i32);
    let mut binary_multiplier: i128 = 1;
    match suffix {
        "" => {}
        "n" => exp10 -= 9,
        "u" => exp10 -= 6,
        "m" => exp10 -= 3,
        "k" => exp10 += 3,
        "M" => exp10 += 6,
        "G" => exp10 += 9,
        "T" => exp10 += 12,
        "P" => exp10 += 15,
        "E" => exp10 += 18,
        "Ki" => binary_multiplier = 1 << 10,
        "Mi" => binary_multiplier = 1 << 20,
        "Gi" => binary_multiplier = 1 << 30,
        "Ti" => binary_multiplier = 1 << 40,
        "Pi" => binary_multiplier = 1 << 50,
        "Ei" => binary_multiplier = 1 << 60,
        other => {
            let e = other
                .strip_prefix('e')
                .or_else(|| other.strip_prefix('E'))
                .ok_or_else(bad)?;
            exp10 += e.parse::<i32>().map_err(|_| bad())?;
        }
    }
    mantissa = mantissa.checked_mul(binary_multiplier).ok_or_else(bad)?;
    Ok(Parts {
        negative,
        mantissa,
        exp10,
    })
}

/// `q` in units of 10^-`scale`, rounded up (scale 0: `Value()`, scale 3: `MilliValue()`).
fn scaled(q: &str, scale: i32) -> Result<i64, InvalidQuantity> {
    let Parts {
        negative,
        mantissa,
        exp10,
    } = parse(q)?;
    let exp = exp10 + scale;
    let value: i128 = if exp >= 0 {
        if exp > 30 {
            if mantissa == 0 {
                0
            } else {
                i128::MAX
            }
        } else {
            mantissa.saturating_mul(10i128.pow(exp as u32))
        }
    } else if -exp > 38 {
        i128::from(mantissa != 0)
    } else {
        let div = 10i128.pow((-exp) as u32);
        // Round away from zero, as upstream's Value()/MilliValue() do.
        (mantissa + div - 1) / div
    };
    let value = i64::try_from(value).unwrap_or(i64::MAX);
    Ok(if negative { -value } else { value })
}

/// Upstream's `Quantity.Value()`: whole units, rounded up.
pub fn value(q: &str) -> Result<i64, InvalidQuantity> {
    scaled(q, 0)
}

/// Upstream's `Quantity.MilliValue()`: thousandths, rounded up.
pub fn milli_value(q: &str) -> Result<i64, InvalidQuantity> {
    scaled(q, 3)
}

/// The quantity as a float in base units (`100m` = 0.1, `1Ki` = 1024).
pub fn to_f64(q: &str) -> Result<f64, InvalidQuantity> {
    let p = parse(q)?;
    let v = p.mantissa as f64 * 10f64.powi(p.exp10);
    Ok(if p.negative { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_in_millis() {
        assert_eq!(milli_value("100m"), Ok(100));
        assert_eq!(milli_value("1"), Ok(1000));
        assert_eq!(milli_value("1.5"), Ok(1500));
        assert_eq!(milli_value("0.0001"), Ok(1));
        assert_eq!(milli_value("2k"), Ok(2_000_000));
        assert_eq!(milli_value("1e3"), Ok(1_000_000));
        assert_eq!(milli_value("500u"), Ok(1));
    }

    #[test]
    fn memory_in_bytes() {
        assert_eq!(value("128Mi"), Ok(128 << 20));
        assert_eq!(value("1Gi"), Ok(1 << 30));
        assert_eq!(value("1G"), Ok(1_000_000_000));
        assert_eq!(value("1.5Ki"), Ok(1536));
        assert_eq!(value("100m"), Ok(1));
        assert_eq!(value("110"), Ok(110));
        assert_eq!(value("0"), Ok(0));
    }

    #[test]
    fn floats() {
        assert_eq!(to_f64("500m"), Ok(0.5));
        assert_eq!(to_f64("64Mi"), Ok(67108864.0));
        assert_eq!(to_f64("1e3"), Ok(1000.0));
        assert_eq!(to_f64("1.5Gi"), Ok(1.5 * 1024.0 * 1024.0 * 1024.0));
        assert_eq!(to_f64("-2k"), Ok(-2000.0));
        assert!(to_f64("12x").is_err());
    }

    #[test]
    fn refuses_garbage() {
        for q in ["", "abc", "1x", "1..2", ".", "Mi"] {
            assert!(value(q).is_err(), "{q:?} accepted");
        }
    }
}
