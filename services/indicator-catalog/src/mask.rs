//! Field masks for partial updates (AIP-134): the fields named by the mask
//! are copied from the request onto the current version; an empty mask
//! replaces every writable field.

use kpi_domain::error::FieldViolation;
use kpi_proto::catalog as pb;
use kpi_proto::common as cpb;

/// Copies the masked fields of `incoming` onto `current`.
pub(crate) fn merge_indicator(
    current: &mut pb::Indicator,
    incoming: &pb::Indicator,
    paths: &[String],
) -> Result<(), Vec<FieldViolation>> {
    if paths.is_empty() {
        let keep = (current.name.clone(), current.key.clone());
        *current = incoming.clone();
        (current.name, current.key) = keep;
        return Ok(());
    }
    let mut problems = Vec::new();
    for (i, p) in paths.iter().enumerate() {
        let (head, rest) = p
            .split_once('.')
            .map_or((p.as_str(), None), |(h, r)| (h, Some(r)));
        let ok = match (head, rest) {
            ("display_names", None) => set(&mut current.display_names, &incoming.display_names),
            ("description", None) => set(&mut current.description, &incoming.description),
            ("kind", None) => set(&mut current.kind, &incoming.kind),
            ("measure", sub) => merge_measure(&mut current.measure, &incoming.measure, sub),
            ("numerator", sub) => merge_measure(&mut current.numerator, &incoming.numerator, sub),
            ("denominator", sub) => {
                merge_measure(&mut current.denominator, &incoming.denominator, sub)
            }
            ("formula", None) => set(&mut current.formula, &incoming.formula),
            ("scale", None) => set(&mut current.scale, &incoming.scale),
            ("unit", None) => set(&mut current.unit, &incoming.unit),
            ("direction", None) => set(&mut current.direction, &incoming.direction),
            ("category", None) => set(&mut current.category, &incoming.category),
            ("attribution", None) => set(&mut current.attribution, &incoming.attribution),
            ("time_basis", None) => set(&mut current.time_basis, &incoming.time_basis),
            ("min_sample", None) => set(&mut current.min_sample, &incoming.min_sample),
            ("default_target", None) => set(&mut current.default_target, &incoming.default_target),
            ("default_scoring", None) => {
                set(&mut current.default_scoring, &incoming.default_scoring)
            }
            ("calendar", None) => set(&mut current.calendar, &incoming.calendar),
            ("per_working_day", None) => {
                set(&mut current.per_working_day, &incoming.per_working_day)
            }
            _ => false,
        };
        if !ok {
            problems.push(FieldViolation::new(
                format!("update_mask.paths[{i}]"),
                format!("\"{p}\" is not an updatable indicator field"),
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// Copies the masked fields of `incoming` onto `current`.
pub(crate) fn merge_template(
    current: &mut pb::Template,
    incoming: &pb::Template,
    paths: &[String],
) -> Result<(), Vec<FieldViolation>> {
    if paths.is_empty() {
        let keep = (current.name.clone(), current.key.clone());
        *current = incoming.clone();
        (current.name, current.key) = keep;
        return Ok(());
    }
    let mut problems = Vec::new();
    for (i, p) in paths.iter().enumerate() {
        let ok = match p.as_str() {
            "display_names" => set(&mut current.display_names, &incoming.display_names),
            "description" => set(&mut current.description, &incoming.description),
            "industry" => set(&mut current.industry, &incoming.industry),
            "applicability" => set(&mut current.applicability, &incoming.applicability),
            "items" => set(&mut current.items, &incoming.items),
            "vetoes" => set(&mut current.vetoes, &incoming.vetoes),
            "grades" => set(&mut current.grades, &incoming.grades),
            "team_rollup" => set(&mut current.team_rollup, &incoming.team_rollup),
            "alerts" => set(&mut current.alerts, &incoming.alerts),
            "effective_from" => set(&mut current.effective_from, &incoming.effective_from),
            "effective_until" => set(&mut current.effective_until, &incoming.effective_until),
            _ => false,
        };
        if !ok {
            problems.push(FieldViolation::new(
                format!("update_mask.paths[{i}]"),
                format!("\"{p}\" is not an updatable template field"),
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

fn set<T: Clone>(target: &mut T, source: &T) -> bool {
    *target = source.clone();
    true
}

fn merge_measure(
    current: &mut Option<cpb::Measure>,
    incoming: &Option<cpb::Measure>,
    sub: Option<&str>,
) -> bool {
    let Some(sub) = sub else {
        return set(current, incoming);
    };
    let from = incoming.clone().unwrap_or_default();
    let to = current.get_or_insert_with(Default::default);
    match sub {
        "fact_type" => set(&mut to.fact_type, &from.fact_type),
        "aggregation" => set(&mut to.aggregation, &from.aggregation),
        "field" => set(&mut to.field, &from.field),
        "percentile" => set(&mut to.percentile, &from.percentile),
        "filter" => set(&mut to.filter, &from.filter),
        "time_field" => set(&mut to.time_field, &from.time_field),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_masked_fields_change() {
        let mut current = pb::Indicator {
            key: "fcr".into(),
            unit: "%".into(),
            min_sample: 20,
            ..Default::default()
        };
        let incoming = pb::Indicator {
            unit: "ignored".into(),
            min_sample: 10,
            numerator: Some(cpb::Measure {
                field: "x".into(),
                filter: Some(cpb::Filter {
                    expression: "resolved".into(),
                    condition: None,
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        merge_indicator(
            &mut current,
            &incoming,
            &["min_sample".into(), "numerator.filter".into()],
        )
        .unwrap();
        assert_eq!(current.unit, "%");
        assert_eq!(current.min_sample, 10);
        let numerator = current.numerator.unwrap();
        assert_eq!(numerator.filter.unwrap().expression, "resolved");
        assert_eq!(numerator.field, "");
    }

    #[test]
    fn unknown_paths_are_named() {
        let mut current = pb::Template::default();
        let err = merge_template(
            &mut current,
            &pb::Template::default(),
            &["items".into(), "nope".into()],
        )
        .unwrap_err();
        assert_eq!(err[0].field, "update_mask.paths[1]");
    }
}
