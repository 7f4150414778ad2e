//! Ages as upstream's tables print them (apimachinery's `duration.HumanDuration`).

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

/// Upstream's `duration.HumanDuration`: about two significant figures,
/// e.g. "45s", "3m20s", "15m", "2h5m", "3d4h", "400d", "2y10d".
pub fn human_duration(d: Duration) -> String {
    let seconds = d.as_secs();
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        return with_remainder(minutes, "m", seconds % 60, "s");
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        return with_remainder(hours, "h", minutes % 60, "m");
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / 24;
    if hours < 24 * 8 {
        return with_remainder(days, "d", hours % 24, "h");
    }
    if hours < 24 * 365 * 2 {
        return format!("{days}d");
    }
    let years = days / 365;
    if hours < 24 * 365 * 8 {
        return with_remainder(years, "y", days % 365, "d");
    }
    format!("{years}y")
}

fn with_remainder(major: u64, major_unit: &str, minor: u64, minor_unit: &str) -> String {
    if minor == 0 {
        format!("{major}{major_unit}")
    } else {
        format!("{major}{major_unit}{minor}{minor_unit}")
    }
}

/// The age of `then` at `now`, as upstream's `translateTimestampSince`:
/// "<unknown>" without a timestamp; a clock up to one second ahead counts as
/// "0s", further ahead as "<invalid>".
pub fn age_between(then: Option<Timestamp>, now: Timestamp) -> String {
    let Some(then) = then else {
        return "<unknown>".to_string();
    };
    let nanos = now.as_nanosecond() - then.as_nanosecond();
    if nanos >= 0 {
        return human_duration(Duration::from_nanos(
            u64::try_from(nanos).unwrap_or(u64::MAX),
        ));
    }
    // Go truncates towards zero: -1.5s is -1 whole second, still "now".
    if nanos <= -2_000_000_000 {
        "<invalid>".to_string()
    } else {
        "0s".to_string()
    }
}

/// [`age_between`] with the current time.
pub fn age_since(then: Option<Timestamp>) -> String {
    age_between(then, Timestamp::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(secs: u64) -> String {
        human_duration(Duration::from_secs(secs))
    }

    #[test]
    fn human_duration_matches_upstream_table() {
        assert_eq!(h(0), "0s");
        assert_eq!(h(5), "5s");
        assert_eq!(h(119), "119s");
        assert_eq!(h(120), "2m");
        assert_eq!(h(200), "3m20s");
        assert_eq!(h(9 * 60 + 59), "9m59s");
        assert_eq!(h(10 * 60 + 30), "10m");
        assert_eq!(h(179 * 60), "179m");
        assert_eq!(h(3 * 3600), "3h");
        assert_eq!(h(3 * 3600 + 5 * 60), "3h5m");
        assert_eq!(h(8 * 3600 + 59 * 60), "8h");
        assert_eq!(h(47 * 3600), "47h");
        assert_eq!(h(48 * 3600), "2d");
        assert_eq!(h(3 * 86400 + 4 * 3600), "3d4h");
        assert_eq!(h(8 * 86400), "8d");
        assert_eq!(h(400 * 86400), "400d");
        assert_eq!(h(2 * 365 * 86400), "2y");
        assert_eq!(h((2 * 365 + 10) * 86400), "2y10d");
        assert_eq!(h(9 * 365 * 86400), "9y");
    }

    #[test]
    fn ages_handle_missing_and_future_timestamps() {
        let now: Timestamp = "2024-01-01T00:10:00Z".parse().unwrap();
        let then: Timestamp = "2024-01-01T00:05:00Z".parse().unwrap();
        assert_eq!(age_between(Some(then), now), "5m");
        assert_eq!(age_between(None, now), "<unknown>");
        let soon: Timestamp = "2024-01-01T00:10:01Z".parse().unwrap();
        assert_eq!(age_between(Some(soon), now), "0s");
        let later: Timestamp = "2024-01-01T00:10:05Z".parse().unwrap();
        assert_eq!(age_between(Some(later), now), "<invalid>");
    }
}
