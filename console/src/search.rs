//! `search manifest where …` and `search loader where …`.

use crate::api::{encode, typed};
use crate::error::Result;
use crate::grammar::SearchKind;
use crate::session::Session;
use crate::table;
use mig_protocol::admin::{LoaderRecord, ManifestRecord};

/// MIG's default result limit.
const DEFAULT_LIMIT: &str = "100";

/// The API path of a search.
pub fn query(kind: SearchKind, filters: &[(String, String)]) -> String {
    let mut q = format!("search?type={}", kind.as_str());
    for (k, v) in filters {
        q.push_str(&format!("&{}={}", encode(k), encode(v)));
    }
    if !filters.iter().any(|(k, _)| k == "limit") {
        q.push_str(&format!("&limit={DEFAULT_LIMIT}"));
    }
    q
}

/// Runs a search and prints the table (or the API's JSON).
pub fn run(s: &mut Session, kind: SearchKind, filters: &[(String, String)]) -> Result<()> {
    let limit = filters
        .iter()
        .find(|(k, _)| k == "limit")
        .map_or(DEFAULT_LIMIT, |(_, v)| v.as_str())
        .to_string();
    let conditions: Vec<String> = filters
        .iter()
        .filter(|(k, _)| k != "limit")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let path = query(kind, filters);
    let v = s.api()?.get(&path)?;
    let what = format!("GET {path}");
    if s.ui.opts.json {
        // Checked all the same, so a script never gets a document the console cannot read.
        match kind {
            SearchKind::Manifest => drop(typed::<Vec<ManifestRecord>>(&v, &what)?),
            SearchKind::Loader => drop(typed::<Vec<LoaderRecord>>(&v, &what)?),
        }
        s.ui.json(&v);
        return Ok(());
    }
    let head = if conditions.is_empty() {
        format!("Searching {}, limited to {limit} results", kind.as_str())
    } else {
        format!(
            "Searching {} where {}, limited to {limit} results",
            kind.as_str(),
            table::clean(&conditions.join(" and "))
        )
    };
    s.ui.say(head);
    let text = match kind {
        SearchKind::Manifest => table::manifests(&typed::<Vec<ManifestRecord>>(&v, &what)?),
        SearchKind::Loader => table::loaders(&typed::<Vec<LoaderRecord>>(&v, &what)?),
    };
    s.ui.say_raw(&text);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_encodes_wildcards_and_adds_the_default_limit() {
        assert_eq!(
            query(
                SearchKind::Loader,
                &[("loadername".into(), "%corb%".into())]
            ),
            "search?type=loader&loadername=%25corb%25&limit=100"
        );
        assert_eq!(
            query(
                SearchKind::Manifest,
                &[
                    ("status".into(), "active".into()),
                    ("limit".into(), "5".into())
                ]
            ),
            "search?type=manifest&status=active&limit=5"
        );
    }
}
