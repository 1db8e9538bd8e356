//! The measure filter language (`kpi_domain::filter`): any input either
//! parses or fails with an error, never panics; a parsed filter prints to
//! text that parses back to the same expression, and evaluating it against
//! any row is total.
#![no_main]

use kpi_domain::filter::{Value, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(expr) = parse(src) else {
        return;
    };
    let printed = expr.to_string();
    let reparsed = parse(&printed)
        .unwrap_or_else(|e| panic!("printed filter {printed:?} does not parse: {e}"));
    assert_eq!(reparsed, expr, "round trip through {printed:?} changed the filter");
    let _ = expr.fields();
    let _ = expr.eval(&|_| Value::Null);
    let _ = expr.eval(&|field| Value::String(field.to_string()));
});
