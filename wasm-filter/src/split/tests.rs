use super::*;

fn key(i: u32) -> String {
    format!("user-{i}")
}

fn rust_share_of_keys(n: u32, weight: u32) -> f64 {
    let rust = (0..n)
        .filter(|&i| backend_for(key_bucket(key(i).as_bytes()), weight) == Backend::Rust)
        .count();
    100.0 * rust as f64 / f64::from(n)
}

#[test]
fn sticky_split_is_within_1_5_points_over_10k_keys() {
    for weight in [0, 100, 500, 1000, 2500, 5000, 7500, 9000, 9900, 10_000] {
        let got = rust_share_of_keys(10_000, weight);
        let want = f64::from(weight) / 100.0;
        assert!(
            (got - want).abs() <= 1.5,
            "weight {weight} bp: {got:.2} % of keys on rust, want {want:.2} +- 1.5"
        );
    }
}

#[test]
fn numeric_and_uuid_like_keys_also_spread() {
    for weight in [1000, 5000] {
        let numeric = (0..10_000u32)
            .filter(|i| key_bucket(i.to_string().as_bytes()) < weight)
            .count();
        let want = f64::from(weight) / 100.0;
        assert!(
            (numeric as f64 / 100.0 - want).abs() <= 1.5,
            "numeric keys at {weight}: {numeric}"
        );
        let uuids = (0..10_000u64)
            .filter(|i| {
                let k = format!(
                    "{:08x}-7d2c-4c3e-9b1a-{:012x}",
                    mix64(*i) as u32,
                    mix64(i + 7) >> 16
                );
                key_bucket(k.as_bytes()) < weight
            })
            .count();
        assert!(
            (uuids as f64 / 100.0 - want).abs() <= 1.5,
            "uuid keys at {weight}: {uuids}"
        );
    }
}

#[test]
fn same_key_same_backend_at_a_weight() {
    for i in 0..1000 {
        let k = key(i);
        let first = backend_for(key_bucket(k.as_bytes()), 3333);
        for _ in 0..3 {
            assert_eq!(backend_for(key_bucket(k.as_bytes()), 3333), first);
        }
    }
}

#[test]
fn raising_the_weight_only_moves_keys_from_python_to_rust() {
    let weights = [0, 1, 10, 100, 1000, 2500, 2501, 5000, 7500, 9999, 10_000];
    for i in 0..10_000 {
        let b = key_bucket(key(i).as_bytes());
        let mut was_rust = false;
        for w in weights {
            let is_rust = backend_for(b, w) == Backend::Rust;
            assert!(
                is_rust || !was_rust,
                "key {i} moved back to python at {w} bp"
            );
            was_rust = is_rust;
        }
        assert!(was_rust, "at 100 % every key is on rust");
    }
}

#[test]
fn buckets_cover_the_range() {
    let mut seen = vec![false; BUCKETS as usize];
    for i in 0..200_000u32 {
        let b = key_bucket(&i.to_le_bytes());
        assert!(b < BUCKETS);
        seen[b as usize] = true;
    }
    assert!(seen.iter().all(|&s| s), "some bucket is never hit");
}

#[test]
fn sequence_hits_the_weight_in_short_windows() {
    for weight in [1, 100, 1000, 3000, 5000, 9000] {
        let mut seq = Sequence::golden(0);
        let n = 1000;
        let rust = (0..n)
            .filter(|_| backend_for(seq.next_bucket(), weight) == Backend::Rust)
            .count();
        let want = f64::from(weight) / 100.0;
        assert!(
            (rust as f64 / 10.0 - want).abs() <= 0.5,
            "weight {weight}: {rust} of {n}"
        );
    }
}

#[test]
fn split_and_shadow_sequences_are_independent() {
    // 50 % split and 50 % shadow: each quarter should get about a quarter.
    let mut split = Sequence::golden(0);
    let mut shadow = Sequence::silver(0);
    let mut cells = [0u32; 4];
    for _ in 0..10_000 {
        let r = usize::from(split.next_bucket() < 5000);
        let s = usize::from(shadow.next_bucket() < 5000);
        cells[r * 2 + s] += 1;
    }
    for c in cells {
        assert!((2300..=2700).contains(&c), "{cells:?}");
    }
}
