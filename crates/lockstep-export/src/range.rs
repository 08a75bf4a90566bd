//! GitHub's vulnerable-range syntax (`>= 1.0.0, < 1.24.0`) turned into OSV events.
//!
//! The parser takes whatever a maintainer typed: it never panics, and a range it cannot read
//! yields `None`, so the exporter falls back to "every version before the patched one" and
//! keeps the text as written.

/// A vulnerable range as bounds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bounds {
    /// `>= X`: the first vulnerable version.
    pub introduced: Option<String>,
    /// `< Y`: the first version past the range.
    pub below: Option<String>,
    /// `<= Y`: the last vulnerable version.
    pub last_affected: Option<String>,
    /// `= X`: exactly one vulnerable version.
    pub exact: Option<String>,
}

/// Parses GitHub's range syntax: constraints `OP VERSION` separated by commas, with `OP` one
/// of `>=`, `<`, `<=`, `=`. At most one of each; `>` (an exclusive lower bound OSV cannot
/// express) and anything else is `None`.
pub fn parse(range: &str) -> Option<Bounds> {
    let mut b = Bounds::default();
    let mut any = false;
    for part in range.split(',') {
        let part = part.trim();
        let (op, version) = if let Some(v) = part.strip_prefix(">=") {
            (">=", v)
        } else if let Some(v) = part.strip_prefix("<=") {
            ("<=", v)
        } else if let Some(v) = part.strip_prefix('<') {
            ("<", v)
        } else if let Some(v) = part.strip_prefix('=') {
            ("=", v)
        } else {
            return None;
        };
        let version = version.trim();
        if version.is_empty()
            || version.len() > 128
            || version
                .chars()
                .any(|c| c.is_whitespace() || c == '<' || c == '>' || c == '=' || c.is_control())
        {
            return None;
        }
        let slot = match op {
            ">=" => &mut b.introduced,
            "<=" => &mut b.last_affected,
            "<" => &mut b.below,
            _ => &mut b.exact,
        };
        if slot.replace(version.to_owned()).is_some() {
            return None;
        }
        any = true;
    }
    let upper = usize::from(b.below.is_some()) + usize::from(b.last_affected.is_some());
    if !any || upper > 1 || (b.exact.is_some() && (b.introduced.is_some() || upper > 0)) {
        return None;
    }
    Some(b)
}

/// One OSV range event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OsvEvent {
    /// `introduced`.
    Introduced(String),
    /// `fixed`.
    Fixed(String),
    /// `last_affected`.
    LastAffected(String),
}

impl OsvEvent {
    /// The event's key and version.
    pub fn parts(&self) -> (&'static str, &str) {
        match self {
            Self::Introduced(v) => ("introduced", v),
            Self::Fixed(v) => ("fixed", v),
            Self::LastAffected(v) => ("last_affected", v),
        }
    }
}

/// The OSV events of one release line: always an `introduced` first, then the patched
/// version as `fixed`, or, without one, the range's upper bound. Whether the range parsed
/// comes back too, so the caller can keep unreadable text as written.
pub fn events(vulnerable_range: Option<&str>, patched: Option<&str>) -> (Vec<OsvEvent>, bool) {
    let bounds = vulnerable_range.map(parse);
    let parsed = !matches!(bounds, Some(None));
    let b = bounds.flatten().unwrap_or_default();
    if let Some(x) = b.exact {
        return (
            vec![OsvEvent::Introduced(x.clone()), OsvEvent::LastAffected(x)],
            parsed,
        );
    }
    let mut out = vec![OsvEvent::Introduced(
        b.introduced.unwrap_or_else(|| "0".to_owned()),
    )];
    if let Some(p) = patched {
        out.push(OsvEvent::Fixed(p.to_owned()));
    } else if let Some(y) = b.below {
        out.push(OsvEvent::Fixed(y));
    } else if let Some(y) = b.last_affected {
        out.push(OsvEvent::LastAffected(y));
    }
    (out, parsed)
}

/// Whether `v` is a SemVer 2.0 version (`MAJOR.MINOR.PATCH[-pre][+build]`), or OSV's `0`.
pub fn is_semver(v: &str) -> bool {
    if v == "0" {
        return true;
    }
    let (core, rest) = match v.find(['-', '+']) {
        Some(i) => v.split_at(i),
        None => (v, ""),
    };
    let nums: Vec<&str> = core.split('.').collect();
    nums.len() == 3
        && nums.iter().all(|n| {
            !n.is_empty()
                && n.chars().all(|c| c.is_ascii_digit())
                && (n.len() == 1 || !n.starts_with('0'))
        })
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '+' | '.'))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn github_ranges_become_osv_events() {
        let (e, ok) = events(Some(">= 1.0.0, < 1.24.0"), Some("1.24.0"));
        assert!(ok);
        assert_eq!(
            e,
            [
                OsvEvent::Introduced("1.0.0".into()),
                OsvEvent::Fixed("1.24.0".into())
            ]
        );
        let (e, _) = events(Some("<= 0.9.2"), None);
        assert_eq!(
            e,
            [
                OsvEvent::Introduced("0".into()),
                OsvEvent::LastAffected("0.9.2".into())
            ]
        );
        let (e, _) = events(Some("= 2.0.0"), Some("2.0.1"));
        assert_eq!(
            e,
            [
                OsvEvent::Introduced("2.0.0".into()),
                OsvEvent::LastAffected("2.0.0".into())
            ]
        );
        let (e, ok) = events(Some("before the rewrite"), Some("3.0.0"));
        assert!(!ok, "unreadable text is reported");
        assert_eq!(
            e,
            [
                OsvEvent::Introduced("0".into()),
                OsvEvent::Fixed("3.0.0".into())
            ]
        );
        for bad in [
            "> 1.0",
            "< 1, < 2",
            "< 1, <= 2",
            "= 1, < 2",
            "",
            ",",
            "<",
            "< 1 2",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn semver_check() {
        for ok in ["0", "1.2.3", "1.24.0-rc.1", "0.0.1+build.5"] {
            assert!(is_semver(ok), "{ok}");
        }
        for bad in ["1.2", "v1.2.3", "01.2.3", "1.2.3.4", "latest"] {
            assert!(!is_semver(bad), "{bad}");
        }
    }
}
