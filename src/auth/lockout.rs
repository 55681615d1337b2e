//! Per-account login lockout: failed logins for one account *from one address* give a
//! growing delay (0, 0, 0, 1 s, 2 s, 4 s, … capped at [`MAX_DELAY`]). Keyed by account and
//! address so that an attacker elsewhere cannot lock the real user out; the per-address
//! limiter (`api::authn::LoginLimiter`) stays in front of it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures that cost nothing (typos).
const FREE_FAILURES: u32 = 3;
/// The longest delay.
pub const MAX_DELAY: Duration = Duration::from_secs(300);
/// Entries idle this long are forgotten when the table is large.
const FORGET_AFTER: Duration = Duration::from_secs(3600);
/// Size above which idle entries are dropped.
const MAX_ENTRIES: usize = 10_000;

/// The delay after the `failures`-th failure in a row.
pub fn delay_after(failures: u32) -> Duration {
    if failures <= FREE_FAILURES {
        return Duration::ZERO;
    }
    let exp = (failures - FREE_FAILURES - 1).min(16);
    Duration::from_secs(1u64 << exp).min(MAX_DELAY)
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last: Instant,
    until: Instant,
}

/// The table of failures by (account, address).
#[derive(Default)]
pub struct Lockout {
    /// A std mutex, never held across `.await`.
    map: Mutex<HashMap<(String, IpAddr), Entry>>,
}

fn key(account: &str, ip: IpAddr) -> (String, IpAddr) {
    // Names are case-sensitive in the store, but the lockout of "Admin" and "admin"
    // is one: an attacker should not get fresh attempts by changing case.
    let account: String = account.chars().take(64).collect();
    (account.to_lowercase(), ip)
}

impl Lockout {
    /// `Err(wait)` while `account` is locked for `ip`.
    pub fn check(&self, account: &str, ip: IpAddr) -> Result<(), Duration> {
        self.check_at(account, ip, Instant::now())
    }

    fn check_at(&self, account: &str, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let map = crate::sync::lock(&self.map);
        match map.get(&key(account, ip)) {
            Some(e) if e.until > now => Err(e.until - now),
            _ => Ok(()),
        }
    }

    /// Counts a failure; returns the delay it started.
    pub fn fail(&self, account: &str, ip: IpAddr) -> Duration {
        self.fail_at(account, ip, Instant::now())
    }

    fn fail_at(&self, account: &str, ip: IpAddr, now: Instant) -> Duration {
        let mut map = crate::sync::lock(&self.map);
        if map.len() > MAX_ENTRIES {
            map.retain(|_, e| now.saturating_duration_since(e.last) < FORGET_AFTER);
        }
        let e = map.entry(key(account, ip)).or_insert(Entry {
            failures: 0,
            last: now,
            until: now,
        });
        // A long quiet spell forgives old failures.
        if now.saturating_duration_since(e.last) > FORGET_AFTER {
            e.failures = 0;
        }
        e.failures = e.failures.saturating_add(1);
        e.last = now;
        let d = delay_after(e.failures);
        e.until = now + d;
        d
    }

    /// Forgets the failures of `account` from `ip` (after a successful login).
    pub fn clear(&self, account: &str, ip: IpAddr) {
        crate::sync::lock(&self.map).remove(&key(account, ip));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_from_the_fourth_failure_and_are_capped() {
        let d: Vec<u64> = (1..=8).map(|n| delay_after(n).as_secs()).collect();
        assert_eq!(d, vec![0, 0, 0, 1, 2, 4, 8, 16]);
        assert_eq!(delay_after(40), MAX_DELAY);
    }

    #[test]
    fn another_address_is_not_locked_and_success_clears() {
        let l = Lockout::default();
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let t0 = Instant::now();
        for _ in 0..4 {
            l.fail_at("Admin", a, t0);
        }
        assert!(l.check_at("admin", a, t0).is_err(), "case does not matter");
        assert!(l.check_at("admin", b, t0).is_ok());
        assert!(l.check_at("admin", a, t0 + Duration::from_secs(2)).is_ok());
        l.clear("admin", a);
        assert_eq!(l.fail_at("admin", a, t0), Duration::ZERO);
    }
}
