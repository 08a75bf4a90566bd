//! CSAF 2.0 §6.1's mandatory tests that concern what Lockstep writes, implemented over the
//! JSON: each failure is one line naming the test.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Every product defined in the tree, with its branch category, in order of appearance.
fn defined(
    branches: &Value,
    parent: Option<&str>,
    out: &mut Vec<(String, Option<String>, String)>,
) {
    for b in branches.as_array().into_iter().flatten() {
        let category = b["category"].as_str();
        if let Some(p) = b.get("product") {
            out.push((
                p["product_id"].as_str().unwrap_or_default().to_owned(),
                category.map(str::to_owned),
                b["name"].as_str().unwrap_or_default().to_owned(),
            ));
        }
        if let Some(children) = b.get("branches") {
            defined(children, category.or(parent), out);
        }
    }
}

pub fn mandatory(doc: &Value) -> Vec<String> {
    let mut fail = Vec::new();
    let mut products = Vec::new();
    defined(&doc["product_tree"]["branches"], None, &mut products);
    let ids: BTreeSet<&str> = products.iter().map(|(id, _, _)| id.as_str()).collect();

    // 6.1.2 Multiple definition of product id.
    if ids.len() != products.len() {
        fail.push("6.1.2: a product id is defined more than once".to_owned());
    }
    // 6.1.31 Version range in product version.
    for (id, category, name) in &products {
        if category.as_deref() == Some("product_version") {
            let lower = name.to_ascii_lowercase();
            if [
                "<", ">", "after", "all", "before", "earlier", "later", "prior", "versions",
            ]
            .iter()
            .any(|w| lower.contains(w))
                || lower.starts_with("vers:")
            {
                fail.push(format!(
                    "6.1.31: product_version {name:?} ({id}) is a range"
                ));
            }
        }
    }

    let vulns = doc["vulnerabilities"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    // 6.1.27.3 Vulnerabilities (VEX profile).
    if vulns.is_empty() {
        fail.push("6.1.27.3: a VEX document has no vulnerabilities".to_owned());
    }
    // 6.1.27.4 Product tree.
    if doc.get("product_tree").is_none() {
        fail.push("6.1.27.4: a VEX document has no product tree".to_owned());
    }
    let mut cves = BTreeMap::new();
    for (i, v) in vulns.iter().enumerate() {
        let at = format!("/vulnerabilities/{i}");
        let status = &v["product_status"];
        let group = |keys: &[&str]| -> BTreeSet<String> {
            keys.iter().flat_map(|k| strings(&status[*k])).collect()
        };
        let affected = group(&["first_affected", "known_affected", "last_affected"]);
        let not_affected = group(&["known_not_affected"]);
        let fixed = group(&["first_fixed", "fixed"]);
        let investigating = group(&["under_investigation"]);
        // 6.1.1 Missing definition of product id.
        let mut referenced: Vec<String> = Vec::new();
        for set in [&affected, &not_affected, &fixed, &investigating] {
            referenced.extend(set.iter().cloned());
        }
        for key in ["remediations", "threats", "flags"] {
            for r in v[key].as_array().into_iter().flatten() {
                referenced.extend(strings(&r["product_ids"]));
            }
        }
        for s in v["scores"].as_array().into_iter().flatten() {
            referenced.extend(strings(&s["products"]));
        }
        for id in &referenced {
            if !ids.contains(id.as_str()) {
                fail.push(format!("6.1.1: {at} references undefined product {id}"));
            }
        }
        // 6.1.6 Contradicting product status.
        let groups = [&affected, &not_affected, &fixed, &investigating];
        for (a, ga) in groups.iter().enumerate() {
            for gb in groups.iter().skip(a + 1) {
                if let Some(id) = ga.intersection(gb).next() {
                    fail.push(format!("6.1.6: {at}: {id} has contradicting statuses"));
                }
            }
        }
        // 6.1.27.6/7 VEX product status.
        if groups.iter().all(|g| g.is_empty()) {
            fail.push(format!("6.1.27.7: {at} has no VEX product status"));
        }
        // 6.1.27.8 Vulnerability id.
        if v.get("cve").is_none() && v.get("ids").is_none() {
            fail.push(format!("6.1.27.8: {at} has neither cve nor ids"));
        }
        // 6.1.27.5 Vulnerability notes.
        if v["notes"].as_array().is_none_or(|n| n.is_empty()) {
            fail.push(format!("6.1.27.5: {at} has no notes"));
        }
        // 6.1.27.9 Impact statement: every product not affected has one.
        let mut with_impact: BTreeSet<String> = BTreeSet::new();
        for t in v["threats"].as_array().into_iter().flatten() {
            if t["category"] == "impact" {
                with_impact.extend(strings(&t["product_ids"]));
            }
        }
        for f in v["flags"].as_array().into_iter().flatten() {
            with_impact.extend(strings(&f["product_ids"]));
        }
        for id in &not_affected {
            if !with_impact.contains(id) {
                fail.push(format!(
                    "6.1.27.9: {at}: {id} is not affected without an impact statement"
                ));
            }
        }
        // 6.1.27.10 Action statement: every product affected has a remediation; 6.1.29
        // every remediation names products.
        let mut with_action: BTreeSet<String> = BTreeSet::new();
        for r in v["remediations"].as_array().into_iter().flatten() {
            let p = strings(&r["product_ids"]);
            if p.is_empty() && r.get("group_ids").is_none() {
                fail.push(format!("6.1.29: {at} has a remediation without products"));
            }
            with_action.extend(p);
        }
        for id in &affected {
            if !with_action.contains(id) {
                fail.push(format!(
                    "6.1.27.10: {at}: {id} is affected without an action statement"
                ));
            }
        }
        // 6.1.8–10 CVSS: the score is the vector's.
        for s in v["scores"].as_array().into_iter().flatten() {
            if let Some(c) = s.get("cvss_v3") {
                let vector = c["vectorString"].as_str().unwrap_or_default();
                match vector.parse::<cvss::Cvss>() {
                    Ok(parsed) => {
                        if c["baseScore"].as_f64() != Some(parsed.score()) {
                            fail.push(format!("6.1.9: {at}: base score does not match {vector}"));
                        }
                        let sev = format!("{:?}", parsed.severity()).to_ascii_uppercase();
                        if c["baseSeverity"].as_str() != Some(sev.as_str()) {
                            fail.push(format!(
                                "6.1.9: {at}: base severity does not match {vector}"
                            ));
                        }
                        if !vector.starts_with(&format!(
                            "CVSS:{}/",
                            c["version"].as_str().unwrap_or_default()
                        )) {
                            fail.push(format!("6.1.10: {at}: version does not match {vector}"));
                        }
                    }
                    Err(_) => fail.push(format!("6.1.8: {at}: invalid CVSS vector {vector}")),
                }
            }
        }
        // 6.1.23 Multiple use of same CVE.
        if let Some(c) = v["cve"].as_str()
            && cves.insert(c.to_owned(), i).is_some()
        {
            fail.push(format!("6.1.23: {c} appears twice"));
        }
    }

    // Revision history: 6.1.14 sorted, 6.1.16 latest version, 6.1.18/19 no pre-release or
    // zero versions outside drafts, 6.1.21 no missing item, 6.1.22 no duplicates.
    let tracking = &doc["document"]["tracking"];
    let history = tracking["revision_history"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let numbers: Vec<u64> = history
        .iter()
        .filter_map(|r| r["number"].as_str().and_then(|n| n.parse().ok()))
        .collect();
    if numbers.len() != history.len() {
        fail.push("6.1.30: revision numbers are not all integers".to_owned());
    }
    let status = tracking["status"].as_str().unwrap_or_default();
    if status != "draft" && numbers.contains(&0) {
        fail.push("6.1.18: a released document has revision 0".to_owned());
    }
    if numbers.iter().copied().collect::<BTreeSet<_>>().len() != numbers.len() {
        fail.push("6.1.22: a revision number appears twice".to_owned());
    }
    let mut sorted = numbers.clone();
    sorted.sort_unstable();
    if sorted.first() != Some(&1) || sorted.windows(2).any(|w| w[1] != w[0] + 1) {
        fail.push("6.1.21: the revision history misses an item".to_owned());
    }
    let dates: Vec<&str> = history.iter().filter_map(|r| r["date"].as_str()).collect();
    if dates.windows(2).any(|w| w[1] < w[0]) || numbers != sorted {
        fail.push("6.1.14: the revision history is not sorted".to_owned());
    }
    if tracking["version"]
        .as_str()
        .and_then(|v| v.parse::<u64>().ok())
        != sorted.last().copied()
    {
        fail.push("6.1.16: the document version is not the latest revision".to_owned());
    }
    if tracking["current_release_date"].as_str() != dates.last().copied() {
        fail.push("current_release_date is not the latest revision's date".to_owned());
    }
    // 6.1.12 Language.
    if doc["document"]["lang"].as_str() != Some("en") {
        fail.push("6.1.12: the document's language is not en".to_owned());
    }
    fail
}
