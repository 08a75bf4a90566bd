//! GitHub's global advisory database, as far as published repository advisories reach it:
//! `GET /advisories/{ghsa_id}`. A copy appears once curators have reviewed it (a configured
//! delay after publication); advisories whose packages are all in ecosystems GitHub does not
//! review never get one; a withdrawn advisory keeps its copy with `withdrawn_at`; and a fault
//! drops the CVE alias, as happened to two of three advisories sharing one CVE
//! (github/advisory-database #9582).

use chrono::Duration as ChronoDuration;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::model::{AdvisoryState, ts};
use crate::state::{Ctx, OpOk, State};

impl State {
    /// `GET /advisories/{ghsa_id}`: public, no authentication needed.
    pub(crate) fn op_get_global(&self, ghsa: &str, ctx: &Ctx<'_>) -> Result<OpOk, ApiError> {
        let wanted = ghsa.to_ascii_uppercase();
        let found = self.repos.values().find_map(|repo| {
            repo.advisories
                .values()
                .find(|a| a.ghsa_id.to_ascii_uppercase() == wanted)
                .map(|a| (repo, a))
        });
        let Some((repo, adv)) = found else {
            return Err(ApiError::not_found());
        };
        let Some(published_at) = adv.published_at else {
            return Err(ApiError::not_found());
        };
        if !matches!(
            adv.state,
            AdvisoryState::Published | AdvisoryState::Withdrawn
        ) {
            return Err(ApiError::not_found());
        }
        let g = &self.config.global;
        let reviewed = !adv.vulnerabilities.is_empty()
            && adv
                .vulnerabilities
                .iter()
                .any(|v| !g.unreviewed_ecosystems.contains(&v.ecosystem));
        let delay = ChronoDuration::from_std(g.review_delay).unwrap_or(ChronoDuration::zero());
        let reviewed_at = published_at + delay;
        if !reviewed || ctx.wall < reviewed_at {
            return Err(ApiError::not_found());
        }
        // The repository advisory's own rendering, reshaped into a global one.
        let r = self.render(repo, adv, ctx);
        let urls = self.urls();
        let cve = if g.drop_alias {
            None
        } else {
            adv.cve_id.clone()
        };
        let mut identifiers = vec![json!({"type": "GHSA", "value": adv.ghsa_id})];
        if let Some(c) = &cve {
            identifiers.push(json!({"type": "CVE", "value": c}));
        }
        let vulnerabilities: Vec<Value> = adv
            .vulnerabilities
            .iter()
            .map(|v| {
                json!({
                    "package": {"ecosystem": v.ecosystem, "name": v.name},
                    "vulnerable_version_range": v.vulnerable_version_range,
                    "first_patched_version": v.patched_versions,
                    "vulnerable_functions": v.vulnerable_functions.clone().unwrap_or_default(),
                })
            })
            .collect();
        let credits: Vec<Value> = r["credits_detailed"]
            .as_array()
            .map(|cs| {
                cs.iter()
                    .map(|c| json!({"user": c["user"], "type": c["type"]}))
                    .collect()
            })
            .unwrap_or_default();
        let updated = adv.updated_at.max(reviewed_at);
        let body = json!({
            "ghsa_id": adv.ghsa_id,
            "cve_id": cve,
            "url": format!("{}/advisories/{}", urls.api, adv.ghsa_id),
            "html_url": format!("{}/advisories/{}", urls.html, adv.ghsa_id),
            "repository_advisory_url": r["url"],
            "summary": adv.summary,
            "description": adv.description,
            "type": "reviewed",
            "severity": adv.effective_severity().unwrap_or_else(|| "unknown".to_owned()),
            "source_code_location": format!("{}/{}", urls.html, repo.full_name()),
            "identifiers": identifiers,
            "references": [r["html_url"]],
            "published_at": ts(&published_at),
            "updated_at": ts(&updated),
            "github_reviewed_at": ts(&reviewed_at),
            "nvd_published_at": Value::Null,
            "withdrawn_at": adv.withdrawn_at.as_ref().map(ts),
            "vulnerabilities": vulnerabilities,
            "cvss": r["cvss"],
            "cwes": r["cwes"],
            "credits": credits,
        });
        Ok(OpOk {
            status: 200,
            body,
            repo: Some(repo.full_name()),
            ghsa: Some(adv.ghsa_id.clone()),
            ..OpOk::default()
        })
    }
}
