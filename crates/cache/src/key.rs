//! Cache keys: every part that decides a value, rendered into one Redis key.

use std::fmt::Write as _;

/// A cache key: every part that decides the value, so a change to any of them
/// is a different key.
///
/// For a scorecard the parts are the subject, the period, the template with its
/// version and the data version (watermark): a new template version or newly
/// ingested data gives a new key, and the old entry simply ages out by its TTL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// The tenant; rendered as a Redis Cluster hash tag so a tenant's keys stay
    /// on one slot.
    pub tenant: String,
    /// What is cached, e.g. `"scorecard"`.
    pub kind: &'static str,
    /// The other parts, in a fixed order: subject, period, `template@version`,
    /// data version, …
    pub parts: Vec<String>,
}

impl CacheKey {
    /// A key for `kind` of `tenant` with `parts`.
    pub fn new(
        tenant: impl Into<String>,
        kind: &'static str,
        parts: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            tenant: tenant.into(),
            kind,
            parts: parts.into_iter().map(Into::into).collect(),
        }
    }

    /// Renders the key as `{prefix}:{kind}:{{tenant}}:{part1}:{part2}…`, e.g.
    /// `kpi:v2:scorecard:{acme}:agent-7:2026-W14:csat@3:w1234`.
    ///
    /// `%`, `:`, `{` and `}` inside the kind, the tenant and the parts are
    /// percent-escaped, so the rendering is injective: two keys that differ in
    /// any part never render the same, and no part can break the hash tag.
    /// The prefix is used as given.
    pub fn render(&self, prefix: &str) -> String {
        let mut out = String::with_capacity(
            prefix.len()
                + self.kind.len()
                + self.tenant.len()
                + self.parts.iter().map(|p| p.len() + 1).sum::<usize>()
                + 8,
        );
        out.push_str(prefix);
        out.push(':');
        escape_into(&mut out, self.kind);
        out.push_str(":{");
        escape_into(&mut out, &self.tenant);
        out.push('}');
        for part in &self.parts {
            out.push(':');
            escape_into(&mut out, part);
        }
        out
    }
}

fn escape_into(out: &mut String, part: &str) {
    for c in part.chars() {
        match c {
            '%' | ':' | '{' | '}' => {
                // Writing to a String cannot fail.
                let _ = write!(out, "%{:02X}", c as u32);
            }
            _ => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_with_hash_tag_and_escapes() {
        let key = CacheKey::new(
            "acme",
            "scorecard",
            ["agent:7", "2026-W14", "t{1}@3", "50%"],
        );
        assert_eq!(
            key.render("kpi:v2"),
            "kpi:v2:scorecard:{acme}:agent%3A7:2026-W14:t%7B1%7D@3:50%25"
        );
    }

    #[test]
    fn part_boundaries_are_kept() {
        let a = CacheKey::new("t", "scorecard", ["a:b"]);
        let b = CacheKey::new("t", "scorecard", ["a", "b"]);
        let c = CacheKey::new("t:a", "scorecard", ["b"]);
        let d = CacheKey::new("t", "scorecard", ["a", "b", ""]);
        let rendered: Vec<String> = [a, b, c, d].iter().map(|k| k.render("p")).collect();
        for (i, x) in rendered.iter().enumerate() {
            for y in &rendered[i + 1..] {
                assert_ne!(x, y);
            }
        }
    }
}
