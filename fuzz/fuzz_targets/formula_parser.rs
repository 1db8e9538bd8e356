//! Derived-indicator formulas (`kpi_domain::formula`): any input either
//! parses or fails with an error, never panics; a parsed formula prints to
//! text that parses back to the same formula, and evaluation is total (no
//! panic on division by zero, overflow or missing inputs).
#![no_main]

use kpi_domain::formula::parse_formula;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(formula) = parse_formula(src) else {
        return;
    };
    let printed = formula.to_string();
    let reparsed = parse_formula(&printed)
        .unwrap_or_else(|e| panic!("printed formula {printed:?} does not parse: {e}"));
    assert_eq!(reparsed, formula, "round trip through {printed:?} changed the formula");
    let _ = formula.refs();
    let _ = formula.eval(&|_| None);
    let _ = formula.eval(&|_| Some(0.0));
    let _ = formula.eval(&|key| Some(key.len() as f64 - 3.5));
    let _ = formula.eval(&|_| Some(f64::MAX));
});
