//! What the cache tests need besides an origin and a client: a clock the
//! test moves by hand, HTTP dates read from that clock, and a scratch
//! directory for `--cache-dir`.
//!
//! Freshness (RFC 9111 §4.2) is arithmetic on the origin's `Date`, the time
//! the response arrived and "now". With a [`ManualClock`] shared by the
//! proxy's cache and the test origin (which stamps its `Date` from it), "61
//! seconds later" is one call, and no test sleeps to let a response expire.

use super::tempdir::TempDir;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use webproxy::cache::{Cache, CacheConfig, ManualClock};

/// Where every test clock starts: 2023-11-14 22:13:20 UTC, a whole second,
/// so the origin's one-second `Date` and the cache's clock agree exactly.
pub const CLOCK_START_SECS: u64 = 1_700_000_000;

/// A clock standing still at [`CLOCK_START_SECS`] until the test moves it.
pub fn manual_clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(
        UNIX_EPOCH + Duration::from_secs(CLOCK_START_SECS),
    ))
}

/// An in-memory cache (no directory) on `clock`.
pub fn test_cache(config: CacheConfig, clock: &Arc<ManualClock>) -> Cache {
    let clock: Arc<dyn webproxy::cache::Clock> = clock.clone();
    Cache::new(config, clock).expect("an in-memory cache always opens")
}

const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `t` as an IMF-fixdate (RFC 9110 §5.6.7), `Sun, 06 Nov 1994 08:49:37 GMT`,
/// the form origins send in `Date`, `Expires` and `Last-Modified`. Whole
/// seconds; times before 1970 are not needed and panic.
pub fn http_date(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .expect("a time after 1970")
        .as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // 1970-01-01 was a Thursday.
    let weekday = DAYS[((days + 4) % 7) as usize];
    // Days since 1970 to a civil date (Howard Hinnant's algorithm), with
    // years starting on 1 March so that the leap day comes last.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{weekday}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        MONTHS[(month - 1) as usize],
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// A scratch directory for `--cache-dir`, removed on drop.
pub struct CacheDir(TempDir);

impl CacheDir {
    pub fn new(tag: &str) -> CacheDir {
        CacheDir(TempDir::new(tag))
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }

    pub fn to_str(&self) -> &str {
        self.path().to_str().expect("temp paths are UTF-8 in tests")
    }

    /// The cache's entry files (`*.wpc`), sorted by name.
    pub fn entry_files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = fs::read_dir(self.path())
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "wpc"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
    }
}
