//! Parsers for command-line values that clap has no type for: durations and sizes. Each
//! error names the value and what was expected.

use std::time::Duration;

/// `500ms`, `2s`, `5m`, `1h`, `7d`; a bare number is seconds.
pub fn duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 =
        num.parse().map_err(|_| format!("{s:?} is not a duration: use e.g. 500ms, 2s, 5m, 1h, 7d"))?;
    let secs = match unit {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        "d" => value * 86_400.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?}; use ms, s, m, h or d")),
    };
    if !secs.is_finite() || !(0.0..=10.0 * 365.0 * 86_400.0).contains(&secs) {
        return Err(format!("{s:?} is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A memory size in MB: `512`, `512M`, `512MB`, `2G`, `2GiB`.
pub fn memory_mb(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_uppercase();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: u64 = num.parse().map_err(|_| format!("{s:?} is not a memory size: use e.g. 512M or 2G"))?;
    let mb = match unit {
        "" | "M" | "MB" | "MIB" => Some(value),
        "G" | "GB" | "GIB" => value.checked_mul(1024),
        "K" | "KB" | "KIB" => Some(value / 1024),
        _ => return Err(format!("{s:?}: unknown unit {unit:?}; use K, M or G")),
    };
    match mb {
        Some(mb) if mb >= 4 => Ok(mb),
        _ => Err(format!("{s:?} is not a usable memory limit: at least 4M")),
    }
}

/// CPU cores: a positive number up to 256, e.g. `0.5`.
pub fn cpu(s: &str) -> Result<f32, String> {
    let v: f32 = s.trim().parse().map_err(|_| format!("{s:?} is not a number of CPU cores, e.g. 0.5"))?;
    if v.is_finite() && v > 0.0 && v <= 256.0 {
        Ok(v)
    } else {
        Err(format!("{s} cores is out of range: use more than 0, at most 256"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(duration("1h").unwrap(), Duration::from_secs(3600));
        assert!(duration("1y").unwrap_err().contains("unknown unit"));
        assert!(duration("abc").is_err());
        assert!(duration("-1s").is_err());
    }

    #[test]
    fn memory_and_cpu() {
        assert_eq!(memory_mb("512M").unwrap(), 512);
        assert_eq!(memory_mb("2g").unwrap(), 2048);
        assert_eq!(memory_mb("256").unwrap(), 256);
        assert!(memory_mb("lots").is_err());
        assert!(memory_mb("2T").unwrap_err().contains("unknown unit"));
        assert!(memory_mb("1M").is_err());
        assert!(cpu("0.5").is_ok());
        assert!(cpu("0").is_err());
        assert!(cpu("NaN").is_err());
    }
}
