use super::*;

#[test]
fn index_matches_position_in_all() {
    let all = all();
    assert_eq!(all.len(), COUNT);
    for (i, m) in all.iter().enumerate() {
        assert_eq!(m.index(), i, "{m:?}");
    }
}

#[test]
fn names_are_unique_and_prometheus_safe() {
    let names: Vec<String> = all().iter().map(|m| m.name()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), names.len());
    for n in &names {
        assert!(n.starts_with("nd_filter_"), "{n}");
        assert!(
            n.chars()
                .all(|c| c.is_ascii_lowercase() || c == '_' || c == '.'),
            "{n}"
        );
        // Base name, then label/value pairs.
        assert_eq!(n.split('.').count() % 2, 1, "{n}");
    }
}

#[test]
fn counters_end_in_total() {
    for m in all() {
        let n = m.name();
        let base = n.split('.').next().unwrap_or_default();
        assert_eq!(m.kind() == Kind::Counter, base.ends_with("_total"), "{n}");
    }
}

#[test]
fn labels_cover_every_pair() {
    for m in all() {
        let n = m.name();
        let parts: Vec<&str> = n.split('.').collect();
        for pair in parts[1..].chunks(2) {
            assert!(
                LABELS.contains(&pair[0]),
                "{n}: label {} undocumented",
                pair[0]
            );
        }
    }
}

#[test]
fn divergence_is_parts_per_million() {
    assert_eq!(divergence_ppm(0.0), 0);
    assert_eq!(divergence_ppm(1e-4), 100);
    assert_eq!(divergence_ppm(2.5), 2_500_000);
    assert_eq!(divergence_ppm(f64::NAN), 0);
    assert_eq!(divergence_ppm(f64::INFINITY), u64::MAX);
}

#[test]
fn readme_lists_every_metric_and_tag_regex() {
    let readme = include_str!("../../README.md");
    for m in all() {
        let base = m.name();
        let base = base.split('.').next().unwrap_or_default().to_string();
        assert!(readme.contains(&base), "README does not document {base}");
    }
    for l in LABELS {
        let re = tag_regex(l);
        assert!(
            readme.contains(&re),
            "README lacks the stats_tags regex for {l}: {re}"
        );
    }
}
