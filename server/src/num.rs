//! Rounding on the hot paths (the store's codecs, the engine's exact sums).

/// `x.round()` (half away from zero), bit for bit, without the library call that the
/// baseline x86-64 target (no SSE4.1 rounding instruction) makes of it once per value.
#[inline]
pub(crate) fn round(x: f64) -> f64 {
    // 2^52: from here on every f64 is an integer; NaN and the infinities go there too.
    if x.abs().partial_cmp(&4_503_599_627_370_496.0) != Some(std::cmp::Ordering::Less) {
        return x.round();
    }
    let t = x as i64 as f64;
    // Exact: `t` and `x` are within 1 of each other below 2^52.
    let frac = x - t;
    let r = if frac >= 0.5 {
        t + 1.0
    } else if frac <= -0.5 {
        t - 1.0
    } else {
        t
    };
    // -0.3 rounds to -0.0, as `f64::round` does.
    r.copysign(x)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    fn same(x: f64) {
        assert_eq!(super::round(x).to_bits(), x.round().to_bits(), "{x:e}");
    }

    #[test]
    fn rounds_the_edges_as_the_library_does() {
        for x in [
            0.0,
            -0.0,
            0.3,
            -0.3,
            0.5,
            -0.5,
            1.5,
            2.5,
            -2.5,
            0.499_999_999_999_999_94,
            -0.499_999_999_999_999_94,
            4_503_599_627_370_495.5,
            -4_503_599_627_370_495.5,
            4_503_599_627_370_496.0,
            9.0e18,
            1e300,
            f64::MIN_POSITIVE,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ] {
            same(x);
        }
        assert!(super::round(f64::NAN).is_nan());
    }

    proptest! {
        #[test]
        fn rounds_any_value_as_the_library_does(bits in any::<u64>()) {
            let x = f64::from_bits(bits);
            prop_assume!(!x.is_nan());
            same(x);
        }

        #[test]
        fn rounds_sensor_values_as_the_library_does(m in -1_000_000_000i64..1_000_000_000, e in 0u32..10) {
            let x = m as f64 / 10f64.powi(e as i32) * 10f64.powi(e as i32 / 2);
            same(x);
        }
    }
}
