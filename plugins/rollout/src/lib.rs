//! `rollout('wave-name', PERCENT)`: true for a stable PERCENT of loaders.
//!
//! Each loader falls in one of 10,000 buckets given by SHA-256 of the wave name, a zero
//! byte and the loader's entry name (`loadername`, chosen by administrators, so a loader
//! cannot move itself into a wave). The call matches when `bucket < PERCENT × 100`, so:
//! the same loader always gets the same answer for a wave; raising PERCENT only adds
//! loaders (monotonic); different waves pick independent samples. PERCENT is a number from
//! 0 to 100 (decimals allowed: `0.5` is one loader in two hundred). A NULL argument gives
//! unknown (no match), as SQL functions do.
#![deny(unsafe_code)]

use mig_plugin_sdk::{CallResult, Loader, Value};
use sha2::{Digest, Sha256};

/// Buckets per wave: PERCENT has a resolution of 0.01.
pub const BUCKETS: u64 = 10_000;

/// The bucket of `loadername` in `wave`, in `0..BUCKETS`.
pub fn bucket(wave: &str, loadername: &str) -> u64 {
    let mut h = Sha256::new();
    h.update(wave.as_bytes());
    h.update([0u8]);
    h.update(loadername.as_bytes());
    let d = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&d[..8]);
    u64::from_be_bytes(first) % BUCKETS
}

/// The plugin function.
pub fn rollout(loader: &Loader, args: &[Value]) -> CallResult {
    let [wave, percent] = args else {
        return Err(format!(
            "rollout takes 2 arguments ('wave-name', PERCENT), got {}",
            args.len()
        ));
    };
    if wave.is_null() || percent.is_null() {
        return Ok(None);
    }
    let wave = wave
        .as_str()
        .ok_or("rollout: the wave name must be a string")?;
    if wave.is_empty() {
        return Err("rollout: the wave name must not be empty".into());
    }
    let percent = percent
        .as_f64()
        .ok_or("rollout: PERCENT must be a number")?;
    if !(0.0..=100.0).contains(&percent) {
        return Err(format!(
            "rollout: PERCENT must be between 0 and 100, got {percent}"
        ));
    }
    Ok(Some(
        (bucket(wave, &loader.loadername) as f64) < percent * 100.0,
    ))
}

mig_plugin_sdk::functions! {
    name: "rollout",
    functions: { "rollout" => rollout },
}

#[cfg(test)]
mod tests {
    use super::*;
    use mig_plugin_sdk::serde_json::json;

    fn loader(name: &str) -> Loader {
        Loader {
            loadername: name.into(),
            ..Loader::default()
        }
    }

    fn hits(wave: &str, percent: f64, n: usize) -> Vec<bool> {
        (0..n)
            .map(|i| {
                rollout(
                    &loader(&format!("loader-{i}")),
                    &[json!(wave), json!(percent)],
                )
                .unwrap()
                .unwrap()
            })
            .collect()
    }

    #[test]
    fn raising_percent_only_adds_loaders() {
        let mut previous = hits("wave-1", 0.0, 2000);
        assert!(previous.iter().all(|h| !h));
        for p in [0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 75.0, 99.99, 100.0] {
            let now = hits("wave-1", p, 2000);
            for (before, after) in previous.iter().zip(&now) {
                assert!(
                    !before || *after,
                    "a loader left the wave when PERCENT rose to {p}"
                );
            }
            previous = now;
        }
        assert!(previous.iter().all(|h| *h));
    }

    #[test]
    fn share_is_close_to_percent_and_waves_differ() {
        let a = hits("wave-1", 10.0, 5000);
        let b = hits("wave-2", 10.0, 5000);
        let share = a.iter().filter(|h| **h).count();
        assert!((400..=600).contains(&share), "{share} of 5000 at 10%");
        assert_ne!(a, b);
    }

    #[test]
    fn same_loader_same_answer() {
        // Pinned values, computed independently with Python's hashlib
        // (int.from_bytes(sha256(b"w\0" + name).digest()[:8], "big") % 10000): the hash is
        // part of the contract, changing it would reshuffle every wave.
        assert_eq!(bucket("wave-1", "loader-0"), bucket("wave-1", "loader-0"));
        let pinned: Vec<u64> = ["a", "b", "c"].iter().map(|n| bucket("w", n)).collect();
        assert_eq!(pinned, PINNED.to_vec());
    }

    const PINNED: [u64; 3] = [8355, 2363, 7966];

    #[test]
    fn bad_arguments_are_errors_and_null_is_unknown() {
        let l = loader("x");
        assert!(rollout(&l, &[json!("w")]).is_err());
        assert!(rollout(&l, &[json!(1), json!(10)]).is_err());
        assert!(rollout(&l, &[json!("w"), json!("10")]).is_err());
        assert!(rollout(&l, &[json!("w"), json!(101)]).is_err());
        assert!(rollout(&l, &[json!(""), json!(10)]).is_err());
        assert_eq!(rollout(&l, &[Value::Null, json!(10)]), Ok(None));
    }
}
