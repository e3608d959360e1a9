//! Property tests (proptest): scaler round trips and parser robustness over
//! generated inputs.

use nd_forecast::contract::PredictRequest;
use nd_forecast::dates::Stamp;
use nd_forecast::nn::scalers::TemporalScalerKind;
use nd_forecast::scaling::LocalScalerKind;
use proptest::prelude::*;

/// |a - b| within a float32 tolerance relative to the data's magnitude.
fn close(a: f32, b: f32, magnitude: f32) -> bool {
    (a - b).abs() <= 1e-3 * magnitude.max(1.0)
}

fn series() -> impl Strategy<Value = Vec<f32>> {
    proptest::collection::vec(-1e4f32..1e4, 1..64)
}

proptest! {
    /// inverse(transform(x)) == x for every series-level scaler (Box-Cox on
    /// positive data, as it refuses negatives).
    #[test]
    fn local_scalers_round_trip(x in series()) {
        let magnitude = x.iter().fold(0f32, |m, v| m.max(v.abs()));
        for kind in ["standard", "robust", "robust-iqr", "minmax"] {
            let k = LocalScalerKind::parse(kind).unwrap();
            let s = k.fit(&x).unwrap();
            for v in &x {
                let back = s.inverse(s.transform(*v));
                prop_assert!(close(back, *v, magnitude), "{kind}: {v} -> {back}");
            }
        }
    }

    #[test]
    fn boxcox_round_trips_and_refuses_negatives(x in proptest::collection::vec(0.5f32..1e3, 2..48)) {
        let k = LocalScalerKind::parse("boxcox").unwrap();
        let s = k.fit(&x).unwrap();
        for v in &x {
            let back = s.inverse(s.transform(*v));
            prop_assert!((back - v).abs() <= 1e-3 * v.abs().max(1.0), "{v} -> {back}");
        }
        let mut neg = x.clone();
        neg[0] = -1.0;
        prop_assert!(k.fit(&neg).is_err());
    }

    /// The window-level scalers invert exactly what they transform, with any
    /// mask (masked-out values do not enter the statistics) that leaves the
    /// last step observed, as every window the pipeline builds does (a fully
    /// masked window gives torch's own infinities, as in PyTorch).
    #[test]
    fn temporal_scalers_round_trip(
        x in series(),
        mask_bits in proptest::collection::vec(any::<bool>(), 64),
    ) {
        let mut mask: Vec<f32> = x.iter().zip(&mask_bits).map(|(_, m)| if *m { 1.0 } else { 0.0 }).collect();
        if let Some(last) = mask.last_mut() {
            *last = 1.0;
        }
        let magnitude = x.iter().fold(0f32, |m, v| m.max(v.abs()));
        for kind in ["identity", "standard", "robust", "minmax", "minmax1", "invariant", "revin"] {
            let k = TemporalScalerKind::parse(kind).unwrap();
            let s = k.fit(&x, &mask);
            prop_assert!(s.scale.is_finite() && s.scale > 0.0 && s.shift.is_finite(), "{kind}: {s:?}");
            for v in &x {
                let back = k.inverse(k.transform(*v, s), s);
                prop_assert!(close(back, *v, magnitude), "{kind}: {v} -> {back}");
            }
        }
    }

    /// Any bytes give a request or a typed error, never a panic.
    #[test]
    fn request_parser_never_panics(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = PredictRequest::from_slice(&body);
    }

    /// Any string gives a stamp or an error, and a parsed date prints back
    /// to something that parses to the same stamp.
    #[test]
    fn ds_parser_round_trips(s in "[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2})?)?|.{0,24}") {
        // Sub-second parts are not printed (the contract's %Y-%m-%dT%H:%M:%S).
        if let (Ok(stamp), false) = (Stamp::parse_str(&s), s.contains('.')) {
            let printed = stamp.to_string();
            prop_assert_eq!(Stamp::parse_str(&printed).ok(), Some(stamp), "{} -> {}", s, printed);
        }
    }
}
