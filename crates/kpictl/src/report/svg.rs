//! The report's charts as inline SVG strings: no script, no external
//! reference, no `xmlns` (HTML parsers put `<svg>` in its namespace), so
//! the page stays self-contained.
//!
//! - [`sparkline`]: a small line of totals (or an alert's series) with gaps
//!   where a period had no data;
//! - [`trend_chart`]: the team's average total per period, with axes;
//! - [`target_bar`]: an indicator's value against its target.
//!
//! Every text drawn goes through [`escape`](super::html::escape).

use std::fmt::Write as _;

use super::html::escape;

/// The colours the charts share with the page's CSS.
mod colour {
    pub(super) const LINE: &str = "#2563eb";
    pub(super) const MET: &str = "#16a34a";
    pub(super) const MISSED: &str = "#dc2626";
    pub(super) const NEUTRAL: &str = "#94a3b8";
    pub(super) const GRID: &str = "#e2e8f0";
    pub(super) const TEXT: &str = "#64748b";
    pub(super) const TARGET: &str = "#0f172a";
}

/// How values map onto the vertical axis.
#[derive(Debug, Clone, Copy)]
pub enum Scale {
    /// Totals and scores: always 0 to 100, so lines compare across agents.
    Percent,
    /// From the values' own minimum to maximum (an alert's series).
    Fit,
}

impl Scale {
    fn bounds(self, values: &[Option<f64>]) -> (f64, f64) {
        match self {
            Scale::Percent => (0.0, 100.0),
            Scale::Fit => {
                let present = values.iter().flatten().copied();
                let low = present.clone().fold(f64::INFINITY, f64::min);
                let high = present.fold(f64::NEG_INFINITY, f64::max);
                if !low.is_finite() {
                    (0.0, 1.0)
                } else if (high - low).abs() < f64::EPSILON {
                    (low - 1.0, high + 1.0)
                } else {
                    (low, high)
                }
            }
        }
    }
}

/// Maps values onto a box: x evenly spaced, y from `bounds` (top is high).
struct Plot {
    left: f64,
    top: f64,
    width: f64,
    height: f64,
    count: usize,
    low: f64,
    high: f64,
}

impl Plot {
    fn x(&self, index: usize) -> f64 {
        if self.count <= 1 {
            return self.left + self.width / 2.0;
        }
        self.left + self.width * index as f64 / (self.count - 1) as f64
    }

    fn y(&self, value: f64) -> f64 {
        let share = ((value - self.low) / (self.high - self.low)).clamp(0.0, 1.0);
        self.top + self.height * (1.0 - share)
    }

    /// One `<polyline>` per run of consecutive values (a period without
    /// data breaks the line), and a dot on every value.
    fn lines(&self, values: &[Option<f64>], stroke: &str, width: f64, dot: f64) -> String {
        let mut out = String::new();
        let mut run: Vec<(f64, f64)> = Vec::new();
        let flush = |run: &mut Vec<(f64, f64)>, out: &mut String| {
            if run.len() >= 2 {
                let points: Vec<String> =
                    run.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
                let _ = write!(
                    out,
                    r#"<polyline fill="none" stroke="{stroke}" stroke-width="{width}" stroke-linejoin="round" stroke-linecap="round" points="{}"/>"#,
                    points.join(" ")
                );
            }
            run.clear();
        };
        for (i, value) in values.iter().enumerate() {
            match value {
                Some(v) => run.push((self.x(i), self.y(*v))),
                None => flush(&mut run, &mut out),
            }
        }
        flush(&mut run, &mut out);
        for (i, value) in values.iter().enumerate() {
            if let Some(v) = value {
                let _ = write!(
                    out,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="{dot}" fill="{stroke}"/>"#,
                    self.x(i),
                    self.y(*v)
                );
            }
        }
        out
    }
}

/// A small line (120 × 28) of values, oldest first; `None` is a period
/// without data. The title lists the values for a hover.
pub fn sparkline(values: &[Option<f64>], labels: &[String], scale: Scale) -> String {
    let (width, height) = (120.0, 28.0);
    let (low, high) = scale.bounds(values);
    let plot = Plot {
        left: 4.0,
        top: 4.0,
        width: width - 8.0,
        height: height - 8.0,
        count: values.len(),
        low,
        high,
    };
    let title: Vec<String> = labels
        .iter()
        .zip(values)
        .map(|(label, v)| match v {
            Some(v) => format!("{label}: {v:.1}"),
            None => format!("{label}: no data"),
        })
        .collect();
    let body = if values.iter().any(Option::is_some) {
        // A faint floor gives a lone point (one period with data) context.
        format!(
            r#"<line x1="4" y1="{bottom:.1}" x2="{right:.1}" y2="{bottom:.1}" stroke="{}"/>{}"#,
            colour::GRID,
            plot.lines(values, colour::LINE, 1.8, 1.8),
            bottom = height - 4.0,
            right = width - 4.0,
        )
    } else {
        let y = height / 2.0;
        format!(
            r#"<line x1="4" y1="{y}" x2="{}" y2="{y}" stroke="{}" stroke-dasharray="3 3"/>"#,
            width - 4.0,
            colour::NEUTRAL
        )
    };
    format!(
        r#"<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img"><title>{}</title>{body}</svg>"#,
        escape(&title.join(" · "))
    )
}

/// The team's average total per period (0–100), with a grid, the period
/// labels under the axis and each value above its point.
pub fn trend_chart(labels: &[String], values: &[Option<f64>]) -> String {
    let (width, height) = (1140.0, 230.0);
    // The grid spans from the axis to the right edge; the points sit inset
    // from both ends so the first and last labels are not cut.
    let (axis, edge, inset) = (44.0, width - 12.0, 48.0);
    let plot = Plot {
        left: axis + inset,
        top: 24.0,
        width: edge - axis - 2.0 * inset,
        height: height - 24.0 - 36.0,
        count: values.len(),
        low: 0.0,
        high: 100.0,
    };
    let mut out = format!(
        r#"<svg class="trend" width="100%" viewBox="0 0 {width} {height}" role="img"><title>Team average total per period</title>"#
    );
    for tick in [0.0, 25.0, 50.0, 75.0, 100.0] {
        let y = plot.y(tick);
        let _ = write!(
            out,
            r#"<line x1="{axis:.1}" y1="{y:.1}" x2="{edge:.1}" y2="{y:.1}" stroke="{}"/><text x="{:.1}" y="{:.1}" text-anchor="end" font-size="11" fill="{}">{tick}</text>"#,
            colour::GRID,
            axis - 8.0,
            y + 4.0,
            colour::TEXT
        );
    }
    for (i, label) in labels.iter().enumerate() {
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="12" fill="{}">{}</text>"#,
            plot.x(i),
            height - 12.0,
            colour::TEXT,
            escape(label)
        );
    }
    out.push_str(&plot.lines(values, colour::LINE, 2.5, 4.0));
    for (i, value) in values.iter().enumerate() {
        let Some(v) = value else {
            let _ = write!(
                out,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="11" fill="{}">no data</text>"#,
                plot.x(i),
                plot.y(0.0) - 8.0,
                colour::NEUTRAL
            );
            continue;
        };
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="12" font-weight="600" fill="{}">{v:.1}</text>"#,
            plot.x(i),
            plot.y(*v) - 10.0,
            colour::TARGET
        );
    }
    out.push_str("</svg>");
    out
}

/// An indicator's value as a bar (green when the target is met, red when
/// missed, grey without a target) and the target as a dark tick, on a
/// scale from 0 to a little over the larger of the two.
pub fn target_bar(value: Option<f64>, target: Option<f64>, met: Option<bool>) -> String {
    let (width, height) = (160.0, 18.0);
    let Some(value) = value else {
        return format!(
            r#"<svg class="bar" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img"><title>no data</title><rect x="0" y="5" width="{width}" height="8" rx="4" fill="{}"/></svg>"#,
            colour::GRID
        );
    };
    let top = value
        .abs()
        .max(target.map_or(0.0, f64::abs))
        .max(f64::EPSILON)
        * 1.15;
    let at = |v: f64| (v.abs() / top).clamp(0.0, 1.0) * width;
    let fill = match met {
        Some(true) => colour::MET,
        Some(false) => colour::MISSED,
        None => colour::NEUTRAL,
    };
    let mut out = format!(
        r#"<svg class="bar" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img"><title>{}</title><rect x="0" y="5" width="{width}" height="8" rx="4" fill="{}"/><rect x="0" y="5" width="{:.1}" height="8" rx="4" fill="{fill}"/>"#,
        escape(&match target {
            Some(t) => format!("value {value:.2}, target {t:.2}"),
            None => format!("value {value:.2}, no target"),
        }),
        colour::GRID,
        at(value).max(2.0)
    );
    if let Some(t) = target {
        let x = at(t).clamp(1.5, width - 1.5);
        let _ = write!(
            out,
            r#"<line x1="{x:.1}" y1="1" x2="{x:.1}" y2="17" stroke="{}" stroke-width="2.5"/>"#,
            colour::TARGET
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gap_breaks_the_line_and_every_value_gets_a_dot() {
        let labels: Vec<String> = (1..=5).map(|i| format!("P{i}")).collect();
        let svg = sparkline(
            &[Some(10.0), Some(20.0), None, Some(40.0), Some(50.0)],
            &labels,
            Scale::Percent,
        );
        assert_eq!(svg.matches("<polyline").count(), 2, "{svg}");
        assert_eq!(svg.matches("<circle").count(), 4, "{svg}");
        assert!(svg.contains("P3: no data"), "{svg}");
    }

    #[test]
    fn a_met_target_is_green_a_missed_one_red_and_the_tick_is_drawn() {
        let met = target_bar(Some(90.0), Some(80.0), Some(true));
        assert!(met.contains(colour::MET) && met.contains("<line"), "{met}");
        let missed = target_bar(Some(50.0), Some(80.0), Some(false));
        assert!(missed.contains(colour::MISSED), "{missed}");
        assert!(target_bar(None, Some(1.0), None).contains("no data"));
    }

    #[test]
    fn labels_are_escaped() {
        let svg = trend_chart(&["<b>".into()], &[Some(50.0)]);
        assert!(svg.contains("&lt;b&gt;") && !svg.contains("<b>"), "{svg}");
    }
}
