//! Sensor scales and the original's Celsius-to-Fahrenheit arithmetic, shared by both
//! plugins. What they feed in differs (Arista divides readings by 10 first, ASR does not,
//! see each plugin); the arithmetic here is the same and must stay bit-for-bit Python's,
//! since the rounded result is the published value.

use super::SectionError;
use crate::plugins::generic_snmp::expr::round_float;

/// The original's `_convert_scaled_celsius_value_to_units(x, scale)`: `x * 10 ** (scale -
/// 9)`, where `scale` is the SensorDataScale code (8 milli, 9 units, 10 kilo, ...). Codes
/// 14 and 15 are swapped first: the original's authors found peta and exa "flip-flopped"
/// on their devices, and we publish what the original publishes.
pub fn in_units(x: f64, scale: i128, entity: &str) -> Result<f64, SectionError> {
    let swapped = match scale {
        14 => 15,
        15 => 14,
        s => s,
    };
    let exponent = swapped - 9;
    // 10^e correctly rounded, as Python's `float(10 ** e)` (e >= 0, an exact integer) and
    // its float `10 ** -k` are: reading "1e<e>" rounds once, where repeated
    // multiplication would round at every step past 10^22.
    let factor: f64 = format!("1e{exponent}").parse().unwrap_or(f64::INFINITY);
    if !factor.is_finite() {
        // Python raises OverflowError turning such an integer into a float.
        return Err(SectionError::Scale {
            entity: entity.to_string(),
            scale,
        });
    }
    Ok(x * factor)
}

/// The original's `convert_celsius_to_fahrenheit`: `round(c * 1.8 + 32, 2)`, rounding
/// half to even on the binary value as Python's `round` does.
pub fn fahrenheit(celsius: f64) -> f64 {
    round_float(celsius * 1.8 + 32.0, 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peta_and_exa_are_swapped() {
        assert_eq!(in_units(1.0, 9, "e"), Ok(1.0));
        assert_eq!(in_units(1.0, 10, "e"), Ok(10.0));
        assert_eq!(in_units(1.0, 14, "e"), Ok(1e6), "14 is read as 15");
        assert_eq!(in_units(1.0, 15, "e"), Ok(1e5), "15 is read as 14");
        assert_eq!(in_units(1.0, 13, "e"), Ok(1e4));
        assert_eq!(in_units(1.0, 16, "e"), Ok(1e7));
    }

    #[test]
    fn small_scales_multiply_by_a_float_as_python_does() {
        // Python computes x * 0.1, not x / 10: 3 * 0.1 is 0.30000000000000004.
        assert_eq!(in_units(3.0, 8, "e"), Ok(0.30000000000000004));
        assert_eq!(in_units(290.0, 8, "e"), Ok(29.0));
        assert_eq!(in_units(421.0, 8, "e"), Ok(42.1));
        assert_eq!(in_units(5.0, 6, "e"), Ok(5.0 * 0.001));
        assert_eq!(in_units(7.0, 1, "e"), Ok(7.0 * 1e-8));
    }

    #[test]
    fn a_scale_past_the_float_range_fails() {
        let err = in_units(1.0, 400, "7002").unwrap_err();
        assert_eq!(
            err.to_string(),
            "entity 7002: sensor scale 400 is out of range"
        );
        assert_eq!(in_units(1.0, -400, "7002"), Ok(0.0));
    }

    #[test]
    fn fahrenheit_rounds_like_python() {
        assert_eq!(fahrenheit(50.3), 122.54);
        assert_eq!(fahrenheit(28.7), 83.66);
        assert_eq!(fahrenheit(42.1), 107.78);
        assert_eq!(fahrenheit(29.0), 84.2);
        assert_eq!(fahrenheit(0.30000000000000004), 32.54);
        assert_eq!(fahrenheit(0.0), 32.0);
        // 100.125 is exact in binary: half to even gives 100.12, as round(100.125, 2).
        assert_eq!(round_float(100.125, 2), 100.12);
    }
}
