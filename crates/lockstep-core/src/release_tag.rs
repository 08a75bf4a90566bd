//! The release-tag rule: whether a `release` published on GitHub releases a prepared fix.
//! Automation promotes a prepared fix to released when its tag satisfies the fix's patched
//! versions; the rule is pure, so it lives here, beside the fix it reads.

use crate::vuln::PackageFix;

/// Strips one leading `v`/`V` before a digit.
fn normalize(version: &str) -> &str {
    let v = version.trim();
    match v.strip_prefix(['v', 'V']) {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => rest,
        _ => v,
    }
}

/// Whether a release tag releases one of `packages`' patched versions.
///
/// The rule: the tag is `VERSION`, `vVERSION`, `PACKAGE@VERSION` or `PACKAGE@vVERSION`
/// (split at the last `@`, so npm's `@scope/name@1.2.3` works; the package is compared without
/// regard to case and must be one of the fix's packages). A fix's `patched_versions` is read as
/// alternatives separated by commas, `||` or spaces, each a version (`v` optional) with an
/// optional operator. The tag satisfies:
///
/// - a bare version or `= VERSION` when it is that version exactly: `1.9.0` matches `1.9.0` but
///   neither `1.9.1` nor `1.9.0-rc.1`;
/// - `>= VERSION` / `> VERSION` when it is a release (no pre-release or build suffix) at or
///   above (above) it, comparing numeric components (`1.10.0` > `1.9.0`);
/// - `^VERSION` likewise, within the same major version (the same minor below 1.0);
/// - `~VERSION` likewise, within the same major and minor version.
pub fn releases(tag: &str, packages: &[PackageFix]) -> bool {
    let tag = tag.trim();
    let (prefix, version) = match tag.rfind('@') {
        Some(i) if i > 0 => (Some(&tag[..i]), &tag[i + 1..]),
        _ => (None, tag),
    };
    let version = normalize(version);
    if version.is_empty() {
        return false;
    }
    packages.iter().any(|fix| {
        if prefix.is_some_and(|p| !p.eq_ignore_ascii_case(&fix.package)) {
            return false;
        }
        requirements(&fix.patched_versions).any(|(op, wanted)| satisfies(version, op, wanted))
    })
}

/// The alternatives of a `patched_versions` text: (operator, version) pairs. An operator
/// written apart from its version (`>= 1.9.0`) applies to the version after it.
fn requirements(text: &str) -> impl Iterator<Item = (&str, &str)> {
    let mut tokens = text
        .split(|c: char| c == ',' || c == '|' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .peekable();
    std::iter::from_fn(move || {
        let token = tokens.next()?;
        let split = token
            .find(|c: char| !matches!(c, '>' | '<' | '=' | '^' | '~'))
            .unwrap_or(token.len());
        let (op, rest) = token.split_at(split);
        if rest.is_empty() {
            // An operator on its own: it belongs to the next token.
            let next = tokens.next().unwrap_or("");
            return Some((op, normalize(next)));
        }
        Some((op, normalize(rest)))
    })
    .filter(|(_, v)| !v.is_empty())
}

/// A release version's numeric components without leading zeros (so `""` is zero), or `None`
/// for a pre-release, a build or anything that is not dotted decimal digits. Components stay
/// text: a version may hold numbers of any length.
fn release_parts(version: &str) -> Option<Vec<&str>> {
    version
        .split('.')
        .map(|p| {
            (!p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                .then(|| p.trim_start_matches('0'))
        })
        .collect()
}

fn satisfies(version: &str, op: &str, wanted: &str) -> bool {
    if matches!(op, "" | "=" | "==") {
        return version == wanted;
    }
    let (Some(have), Some(want)) = (release_parts(version), release_parts(wanted)) else {
        return false;
    };
    fn at<'a>(v: &[&'a str], i: usize) -> &'a str {
        v.get(i).copied().unwrap_or("")
    }
    let cmp = (0..have.len().max(want.len()))
        .map(|i| {
            let (a, b) = (at(&have, i), at(&want, i));
            (a.len(), a).cmp(&(b.len(), b))
        })
        .find(|o| o.is_ne())
        .unwrap_or(std::cmp::Ordering::Equal);
    match op {
        ">=" => cmp.is_ge(),
        ">" => cmp.is_gt(),
        "^" if at(&want, 0).is_empty() => {
            cmp.is_ge() && at(&have, 0).is_empty() && at(&have, 1) == at(&want, 1)
        }
        "^" => cmp.is_ge() && at(&have, 0) == at(&want, 0),
        "~" => cmp.is_ge() && at(&have, 0) == at(&want, 0) && at(&have, 1) == at(&want, 1),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fix(package: &str, patched: &str) -> PackageFix {
        PackageFix {
            package: package.into(),
            vulnerable_range: None,
            patched_versions: patched.into(),
        }
    }

    #[test]
    fn tags_match_patched_versions() {
        let core = [fix("core", "1.9.0")];
        for tag in [
            "1.9.0",
            "v1.9.0",
            "V1.9.0",
            "core@1.9.0",
            "core@v1.9.0",
            "CORE@1.9.0",
        ] {
            assert!(releases(tag, &core), "{tag}");
        }
        for tag in [
            "1.9.1",
            "v1.9",
            "1.9.0-rc.1",
            "other@1.9.0",
            "",
            "@",
            "core@",
            "release-1.9.0",
        ] {
            assert!(!releases(tag, &core), "{tag}");
        }
        assert!(releases("2.0.1", &[fix("x", "1.8.4, 2.0.1")]));
        assert!(releases("v2.0.1", &[fix("x", ">= 2.0.1")]));
        assert!(releases("2.0.1", &[fix("x", "1.8.4 || 2.0.1")]));
        // Operators: a later release satisfies `>=`, within the line for `^` and `~`.
        let at_least = [fix("x", ">= 1.9.0")];
        for tag in ["1.9.0", "v1.9.1", "1.10.0", "2.0.0"] {
            assert!(releases(tag, &at_least), "{tag}");
        }
        for tag in ["1.8.9", "1.9.1-rc.1", "1.9.x", "1.09-beta"] {
            assert!(!releases(tag, &at_least), "{tag}");
        }
        assert!(!releases("1.9.0", &[fix("x", ">1.9.0")]));
        assert!(releases("1.9.1", &[fix("x", ">1.9.0")]));
        assert!(releases("1.12.3", &[fix("x", "^1.9.0")]));
        assert!(!releases("2.0.0", &[fix("x", "^1.9.0")]));
        assert!(releases("0.4.9", &[fix("x", "^0.4.2")]));
        assert!(!releases("0.5.0", &[fix("x", "^0.4.2")]));
        assert!(releases("1.9.7", &[fix("x", "~1.9.2")]));
        assert!(!releases("1.10.0", &[fix("x", "~1.9.2")]));
        assert!(releases("1.9.0", &[fix("x", "=1.9.0")]));
        assert!(releases("1.8.5", &[fix("x", "~1.8.5, >= 1.9.0")]));
        assert!(!releases("1.9.0", &[fix("x", "< 1.9.0")]));
        let scoped = [fix("@modelcontextprotocol/sdk", "1.24.0")];
        assert!(releases("@modelcontextprotocol/sdk@1.24.0", &scoped));
        assert!(!releases("@other/sdk@1.24.0", &scoped));
        assert!(releases("b@3.0.0", &[fix("a", "1.0.0"), fix("b", "3.0.0")]));
        // Components are numbers of any length, compared as numbers; nothing else is one.
        let huge = "18446744073709551616.0";
        assert!(releases(huge, &[fix("x", &format!(">= {huge}"))]));
        assert!(releases("99999999999999999999999.0", &[fix("x", ">= 1.0")]));
        assert!(!releases("1.0", &[fix("x", "> 99999999999999999999999.0")]));
        assert!(releases("1.010.0", &[fix("x", ">= 1.9.0")]));
        assert!(releases("1.9.1", &[fix("x", "~01.9.0")]));
        assert!(!releases("+1.9.0", &[fix("x", ">= 1.9.0")]));
    }
}
