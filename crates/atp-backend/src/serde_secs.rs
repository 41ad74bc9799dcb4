//! A [`Duration`] as seconds (a JSON number, millisecond precision) — the one seconds format of
//! every atp artifact. Use with `#[serde(with = "atp_backend::serde_secs")]`.
//!
//! Invariant: a value that is not a finite, non-negative number of seconds is a deserialisation
//! error, never silently zero.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// Seconds with millisecond precision.
pub fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(secs(*d))
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let v = f64::deserialize(d)?;
    Duration::try_from_secs_f64(v)
        .map_err(|e| serde::de::Error::custom(format!("{v} is not a duration in seconds: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Serialize, serde::Deserialize, PartialEq)]
    struct T {
        #[serde(with = "super")]
        d: Duration,
    }

    #[test]
    fn round_trips_milliseconds_and_refuses_bad_input() {
        let t = T {
            d: Duration::from_micros(2_500_400),
        };
        assert_eq!(serde_json::to_string(&t).expect("ser"), r#"{"d":2.5}"#);
        let back: T = serde_json::from_str(r#"{"d":0.25}"#).expect("de");
        assert_eq!(back.d, Duration::from_millis(250));
        for bad in [r#"{"d":-1.0}"#, r#"{"d":1e300}"#, r#"{"d":"3"}"#] {
            let e = serde_json::from_str::<T>(bad).expect_err(bad);
            assert!(!e.to_string().is_empty());
        }
    }
}
