//! Wall-clock time as warden stores it: milliseconds since the Unix epoch. A module at the
//! bottom of the house, so `os`, `program` and the services read the time without reaching
//! into the store.

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The minute of the day in local time, now (0-1439).
pub fn local_minute_of_day() -> u32 {
    use chrono::Timelike;
    let t = chrono::Local::now();
    t.hour() * 60 + t.minute()
}
