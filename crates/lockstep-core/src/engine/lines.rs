//! Release lines: a fix on several release lines (backports).
//!
//! A fix names, per package, one or more *lines*: a vulnerable range and the version that
//! patches it, as GitHub's advisories model them (one `vulnerabilities` entry each). Java's
//! GHSA-hv2w-8mjj-jw22, for instance, lists `< 1.0.3` patched in `1.0.3` and
//! `>= 1.1.0, < 1.1.2` patched in `1.1.2`. The stored form is the fix's list of
//! [`PackageFix`]es, one per line (a package appears once per line); a line is prepared or
//! released on its own, and the repository counts as fixed only when every line is released.
//! [`Participant::lines`] shows them per package.
//!
//! This module holds the parser of GitHub's vulnerable-range syntax, the checks a fix's lines
//! must pass (a range that parses, a patched version outside its own range, no two lines of a
//! package overlapping), and the rule that marks the lines a published release satisfies.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Tx;
use crate::event::EventKind;
use crate::ids::RepoId;
use crate::model::{Fix, Participant};
use crate::reject::Rejection;
use crate::vuln::PackageFix;

/// The longest range or version text accepted.
pub const MAX_LEN: usize = 256;

/// A version as GitHub's ranges compare them: dotted numeric components (missing ones are
/// zero), then an optional pre-release suffix (`-rc.1`, `rc1`, `.dev0`), which sorts before
/// the release. A leading `v` is allowed. Build metadata (`+…`) is ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// Numeric components without leading zeros, compared as numbers of any length.
    parts: Vec<String>,
    /// The pre-release suffix, if any.
    pre: Option<String>,
}

impl Version {
    /// Parses one version; `None` if it is not one.
    pub fn parse(text: &str) -> Option<Version> {
        let t = text.trim();
        let t = match t.strip_prefix(['v', 'V']) {
            Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => rest,
            _ => t,
        };
        let t = t.split('+').next().unwrap_or("");
        if t.is_empty() || t.len() > MAX_LEN || !t.starts_with(|c: char| c.is_ascii_digit()) {
            return None;
        }
        // The numeric core: digits and dots up to the first other character.
        let end = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (core, rest) = t.split_at(end);
        let core = core
            .strip_suffix('.')
            .filter(|_| !rest.is_empty())
            .unwrap_or(core);
        let mut parts = Vec::new();
        for p in core.split('.') {
            if p.is_empty() {
                return None;
            }
            parts.push(p.trim_start_matches('0').to_owned());
        }
        let pre = rest.trim_start_matches(['-', '.', '_']);
        if !rest.is_empty()
            && (pre.is_empty()
                || !pre
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
        {
            return None;
        }
        // Trailing zero components do not change a version: 1.0 == 1.0.0.
        while parts.last().is_some_and(String::is_empty) && parts.len() > 1 {
            parts.pop();
        }
        Some(Version {
            parts,
            pre: (!pre.is_empty()).then(|| pre.to_ascii_lowercase()),
        })
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        let n = self.parts.len().max(other.parts.len());
        let at = |v: &Version, i: usize| v.parts.get(i).map_or("", String::as_str).to_owned();
        for i in 0..n {
            let (a, b) = (at(self, i), at(other, i));
            let o = (a.len(), &a).cmp(&(b.len(), &b));
            if o.is_ne() {
                return o;
            }
        }
        match (&self.pre, &other.pre) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(a), Some(b)) => a.cmp(b),
        }
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// One end of a range: a version, and whether the range includes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bound {
    /// The version.
    pub version: Version,
    /// Whether it is included.
    pub inclusive: bool,
}

/// A vulnerable range in GitHub's syntax: `= 1.0.0`, `< 1.0.3`, `<= 1.0.8`, `>= 0.0.1`, or
/// a lower and an upper bound separated by a comma, `>= 1.1.0, < 1.1.2`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRange {
    /// The lower bound, if any.
    pub lower: Option<Bound>,
    /// The upper bound, if any.
    pub upper: Option<Bound>,
}

impl VersionRange {
    /// Parses a range, or says in one line why it does not parse.
    pub fn parse(text: &str) -> Result<VersionRange, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("is empty".into());
        }
        if text.len() > MAX_LEN {
            return Err(format!("is longer than {MAX_LEN} bytes"));
        }
        let mut range = VersionRange {
            lower: None,
            upper: None,
        };
        for part in text.split(',') {
            let part = part.trim();
            let split = part
                .find(|c: char| !matches!(c, '<' | '>' | '='))
                .unwrap_or(part.len());
            let (op, version) = part.split_at(split);
            let version = Version::parse(version).ok_or_else(|| {
                format!(
                    "{text:?} does not parse: {:?} is not a version",
                    version.trim()
                )
            })?;
            let (lower, upper) = match op {
                "=" | "==" => (true, true),
                ">=" => (true, false),
                ">" => (true, false),
                "<=" | "<" => (false, true),
                _ => {
                    return Err(format!(
                        "{text:?} does not parse: expected an operator (<, <=, >, >=, =) before {:?}",
                        version_text(part, split)
                    ));
                }
            };
            let inclusive = matches!(op, "=" | "==" | ">=" | "<=");
            let bound = Bound { version, inclusive };
            for (wanted, slot) in [(lower, &mut range.lower), (upper, &mut range.upper)] {
                if wanted {
                    if slot.is_some() {
                        return Err(format!(
                            "{text:?} does not parse: it has two {} bounds",
                            if lower && !upper { "lower" } else { "upper" }
                        ));
                    }
                    *slot = Some(bound.clone());
                }
            }
        }
        if range.is_empty() {
            return Err(format!("{text:?} is empty: no version lies in it"));
        }
        Ok(range)
    }

    /// Whether `v` lies in the range.
    pub fn contains(&self, v: &Version) -> bool {
        let above = self.lower.as_ref().is_none_or(|b| match v.cmp(&b.version) {
            Ordering::Greater => true,
            Ordering::Equal => b.inclusive,
            Ordering::Less => false,
        });
        let below = self.upper.as_ref().is_none_or(|b| match v.cmp(&b.version) {
            Ordering::Less => true,
            Ordering::Equal => b.inclusive,
            Ordering::Greater => false,
        });
        above && below
    }

    /// Whether no version lies in the range (treating versions as dense).
    fn is_empty(&self) -> bool {
        match (&self.lower, &self.upper) {
            (Some(l), Some(u)) => match l.version.cmp(&u.version) {
                Ordering::Greater => true,
                Ordering::Equal => !(l.inclusive && u.inclusive),
                Ordering::Less => false,
            },
            _ => false,
        }
    }

    /// Whether some version lies in both ranges (treating versions as dense).
    pub fn overlaps(&self, other: &VersionRange) -> bool {
        let lower = match (&self.lower, &other.lower) {
            (Some(a), Some(b)) => Some(tighter(a, b, Ordering::Greater)),
            (a, b) => a.clone().or_else(|| b.clone()),
        };
        let upper = match (&self.upper, &other.upper) {
            (Some(a), Some(b)) => Some(tighter(a, b, Ordering::Less)),
            (a, b) => a.clone().or_else(|| b.clone()),
        };
        !VersionRange { lower, upper }.is_empty()
    }
}

fn version_text(part: &str, split: usize) -> &str {
    part.get(split..).unwrap_or(part).trim()
}

/// The tighter of two bounds: the greater lower bound (`prefer` Greater) or the smaller upper
/// bound (`prefer` Less); at equal versions, the exclusive one.
fn tighter(a: &Bound, b: &Bound, prefer: Ordering) -> Bound {
    match a.version.cmp(&b.version) {
        o if o == prefer => a.clone(),
        Ordering::Equal => Bound {
            version: a.version.clone(),
            inclusive: a.inclusive && b.inclusive,
        },
        _ => b.clone(),
    }
}

/// Parses `--line "VULNERABLE_RANGE=PATCHED_VERSION"`: split at the last `=`, so a range
/// may hold `>=`/`<=`/`=` itself. Says in one line what is wrong.
pub fn parse_line_arg(text: &str) -> Result<(String, String), String> {
    let Some(i) = text.rfind('=') else {
        return Err(format!(
            "--line {text:?}: expected VULNERABLE_RANGE=PATCHED_VERSION, as in \"< 1.0.3=1.0.3\""
        ));
    };
    let (range, patched) = (text[..i].trim(), text[i + 1..].trim());
    if range.is_empty() || patched.is_empty() || range.ends_with(['<', '>', '=']) {
        return Err(format!(
            "--line {text:?}: expected VULNERABLE_RANGE=PATCHED_VERSION, as in \"< 1.0.3=1.0.3\""
        ));
    }
    Ok((range.to_owned(), patched.to_owned()))
}

/// The fix of `packages` on `lines` (each a vulnerable range and its patched version): one
/// [`PackageFix`] per package and line, as `fix-ready --line` and the API's `lines` give it.
/// The engine checks the result when the fix is marked.
pub fn fix_lines(packages: &[String], lines: &[(String, String)]) -> Vec<PackageFix> {
    packages
        .iter()
        .flat_map(|package| {
            lines.iter().map(move |(range, patched)| PackageFix {
                package: package.clone(),
                vulnerable_range: Some(range.clone()),
                patched_versions: patched.clone(),
            })
        })
        .collect()
}

/// Checks a fix's lines: each range parses, a patched version that is one version lies
/// outside its own range, and no two lines of a package overlap (so each needs its range).
pub(crate) fn check(packages: &[PackageFix]) -> Result<(), Rejection> {
    let invalid = |field: &'static str, why: String| Rejection::Invalid { field, why };
    let mut by_package: BTreeMap<&str, Vec<(&PackageFix, Option<VersionRange>)>> = BTreeMap::new();
    for f in packages {
        let range = match &f.vulnerable_range {
            Some(text) => Some(
                VersionRange::parse(text)
                    .map_err(|why| invalid("vulnerable_range", format!("{text:?}: {why}")))?,
            ),
            None => None,
        };
        if let (Some(r), Some(v)) = (&range, Version::parse(&f.patched_versions))
            && r.contains(&v)
        {
            return Err(invalid(
                "patched_versions",
                format!(
                    "{}: patched version {} lies inside its own vulnerable range {:?}",
                    f.package,
                    f.patched_versions,
                    f.vulnerable_range.as_deref().unwrap_or_default()
                ),
            ));
        }
        by_package.entry(&f.package).or_default().push((f, range));
    }
    for (package, lines) in by_package {
        if lines.len() < 2 {
            continue;
        }
        for (i, (a, ra)) in lines.iter().enumerate() {
            for (b, rb) in &lines[i + 1..] {
                let (Some(ra), Some(rb)) = (ra, rb) else {
                    return Err(invalid(
                        "lines",
                        format!(
                            "package {package:?} has several lines: each needs its vulnerable range"
                        ),
                    ));
                };
                if ra.overlaps(rb) {
                    return Err(invalid(
                        "lines",
                        format!(
                            "package {package:?}: lines {:?} and {:?} overlap",
                            a.vulnerable_range.as_deref().unwrap_or_default(),
                            b.vulnerable_range.as_deref().unwrap_or_default()
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The lines of a prepared fix that the release `tag` releases and that are not released yet.
pub fn released_by(p: &Participant, tag: &str) -> Vec<PackageFix> {
    let Fix::Prepared { packages } = &p.fix else {
        return Vec::new();
    };
    packages
        .iter()
        .filter(|l| !p.released_lines.contains(*l))
        .filter(|l| crate::release_tag::releases(tag, std::slice::from_ref(*l)))
        .cloned()
        .collect()
}

impl Tx<'_> {
    /// A release was published: marks the lines of `repo`'s prepared fix that its tag
    /// releases. A tag that releases nothing new changes nothing.
    pub(super) fn release_published(&mut self, repo: RepoId, tag: String) -> Result<(), Rejection> {
        let tag = tag.trim().to_owned();
        if tag.is_empty() || tag.len() > MAX_LEN || tag.chars().any(char::is_control) {
            return Err(Rejection::Invalid {
                field: "tag",
                why: format!("must be one line of 1 to {MAX_LEN} bytes"),
            });
        }
        let p = self
            .case
            .participants
            .get(&repo)
            .filter(|p| p.in_scope)
            .ok_or_else(|| Rejection::NotInCase { repo: repo.clone() })?;
        let lines = released_by(p, &tag);
        if lines.is_empty() {
            return Ok(());
        }
        self.emit(EventKind::LinesReleased { repo, tag, lines })
    }
}

/// One release line as `case show`, `plan` and exports present it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineView {
    /// The vulnerable range, e.g. `>= 1.1.0, < 1.1.2`.
    pub vulnerable_range: Option<String>,
    /// The version that patches it, e.g. `1.1.2`.
    pub patched_version: String,
    /// Whether this line is released.
    pub released: bool,
}

impl Participant {
    /// Whether this line of its fix is released.
    pub fn line_released(&self, line: &PackageFix) -> bool {
        match &self.fix {
            Fix::Released { .. } => true,
            Fix::Prepared { .. } => self.released_lines.contains(line),
            Fix::None => false,
        }
    }

    /// The fix's lines per package, each with its own released state.
    pub fn lines(&self) -> BTreeMap<String, Vec<LineView>> {
        let mut out: BTreeMap<String, Vec<LineView>> = BTreeMap::new();
        for f in self.fix.packages() {
            out.entry(f.package.clone()).or_default().push(LineView {
                vulnerable_range: f.vulnerable_range.clone(),
                patched_version: f.patched_versions.clone(),
                released: self.line_released(f),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    fn line(range: &str, patched: &str) -> PackageFix {
        PackageFix {
            package: "sdk".into(),
            vulnerable_range: Some(range.into()),
            patched_versions: patched.into(),
        }
    }

    #[test]
    fn versions_compare_numerically_with_pre_releases_first() {
        assert!(v("1.10.0") > v("1.9.9"));
        assert_eq!(v("1.0"), v("v1.0.0"));
        assert!(v("1.0.0-rc.1") < v("1.0.0"));
        assert!(v("1.0.0rc1") < v("1.0.0"));
        assert!(v("2.0.0.dev0") < v("2.0.0"));
        assert!(v("99999999999999999999.0") > v("9.0"));
        for bad in ["", "v", "abc", "1..2", ".1", "1.0-", "1.0 2", "1.0-!"] {
            assert!(Version::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn ranges_parse_in_githubs_syntax() {
        let r = VersionRange::parse(">= 1.1.0, < 1.1.2").unwrap();
        assert!(r.contains(&v("1.1.0")) && r.contains(&v("1.1.1")));
        assert!(!r.contains(&v("1.1.2")) && !r.contains(&v("1.0.9")));
        assert!(
            VersionRange::parse("= 1.0.0")
                .unwrap()
                .contains(&v("1.0.0"))
        );
        assert!(
            VersionRange::parse("<= 1.0.8")
                .unwrap()
                .contains(&v("1.0.8"))
        );
        for bad in [
            "",
            "1.0.0",
            "< ",
            "<< 1.0",
            "< 1.0, < 2.0",
            "> 2.0, < 1.0",
            "> 1.0, < 1.0",
            "~ 1.0",
            "< one",
        ] {
            assert!(VersionRange::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn lines_are_checked() {
        assert!(check(&[line("< 1.0.3", "1.0.3"), line(">= 1.1.0, < 1.1.2", "1.1.2")]).is_ok());
        let e = check(&[line("< 1.0.3", "1.0.2")]).unwrap_err();
        assert!(
            e.to_string().contains("inside its own vulnerable range"),
            "{e}"
        );
        let e = check(&[line("< 1.1.0", "1.1.0"), line(">= 1.0.0, < 1.1.2", "1.1.2")]).unwrap_err();
        assert!(e.to_string().contains("overlap"), "{e}");
        // Touching bounds overlap only when both include the version.
        assert!(check(&[line("< 1.1.0", "1.1.0"), line(">= 1.1.0, < 1.2", "1.2")]).is_ok());
        assert!(check(&[line("<= 1.1.0", "1.1.1"), line(">= 1.1.0, < 1.2", "1.2")]).is_err());
        // Several lines of one package each need their range; the same line twice overlaps.
        let mut bare = line("< 1.0", "1.0");
        bare.vulnerable_range = None;
        assert!(check(&[bare, line(">= 1.1.0, < 1.2", "1.2")]).is_err());
        assert!(check(&[line("< 1.0", "1.0"), line("< 1.0", "1.0")]).is_err());
        let e = check(&[line("not a range", "1.0")]).unwrap_err();
        assert!(e.to_string().contains("does not parse"), "{e}");
    }

    #[test]
    fn line_arguments_split_at_the_last_equals_sign() {
        assert_eq!(
            parse_line_arg(">= 1.1.0, < 1.1.2=1.1.2").unwrap(),
            (">= 1.1.0, < 1.1.2".to_owned(), "1.1.2".to_owned())
        );
        assert_eq!(
            parse_line_arg("= 1.0.0=1.0.1").unwrap(),
            ("= 1.0.0".to_owned(), "1.0.1".to_owned())
        );
        for bad in ["1.0.3", "< 1.0.3=", "=1.0.3", "<=1.2"] {
            assert!(parse_line_arg(bad).is_err(), "{bad:?}");
        }
    }
}
