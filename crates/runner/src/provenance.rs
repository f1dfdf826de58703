//! Where a number came from: git hash, burn version, backend, date.

/// The burn version this workspace pins (`=0.22.1` in the root Cargo.toml).
pub const BURN_VERSION: &str = burn_version!();

/// Provenance stamped on every result row.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Provenance {
    /// Short commit hash, `-dirty` when the work tree had changes, `unknown` outside git.
    pub git_hash: String,
    /// burn version.
    pub burn_version: String,
    /// Backend name.
    pub backend: String,
    /// UTC date, `YYYY-MM-DD`.
    pub date: String,
}

impl Provenance {
    /// Provenance of this process: the commit this binary was built from (stamped at build
    /// time, `-dirty` when the build saw uncommitted changes), not the checkout it runs in.
    pub fn current(backend: &str) -> Self {
        Self {
            git_hash: env!("RUNNER_GIT_HASH").into(),
            burn_version: BURN_VERSION.into(),
            backend: backend.into(),
            date: today_utc(),
        }
    }
}

/// Today's UTC date from the system clock (civil-from-days, no time-zone database needed).
pub fn today_utc() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Howard Hinnant's days → (year, month, day) algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    #[test]
    fn civil_dates() {
        assert_eq!(super::civil_from_days(0), (1970, 1, 1));
        assert_eq!(super::civil_from_days(20_415), (2025, 11, 23));
    }
}
