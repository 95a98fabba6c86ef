//! MIG's v1 loader protocol, spoken by the Go `mig-loader` fleets that move to mig-api
//! (docs/design.md §8.3): the text their signatures cover, the `parameters` form field, and the
//! Collection+JSON envelope of every answer.
//!
//! A Go loader verifies each signature over `json.Marshal` of
//! `{"loader_name":"","entries":[{"name","sha256"}…],"signatures":[]}` that it rebuilds from the
//! entries it was sent, so that text is made here once, byte for byte as Go writes it, stored
//! beside the statement, signed and verified like it.

use crate::error::{Error, Result};
use crate::loader::Agent;
use crate::sha256::is_sha256_hex;
use serde::{Deserialize, Serialize};

/// The form field of both v1 loader requests.
pub const PARAMETERS_FIELD: &str = "parameters";

/// One entry of a v1 manifest, in Go's field order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct V1Entry {
    pub name: String,
    pub sha256: String,
}

/// The manifest value a Go loader is sent (`mig.ManifestResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct V1Manifest {
    pub loader_name: String,
    pub entries: Vec<V1Entry>,
    /// De-armored detached signatures over [`signed_text`] (MIG's one-line form).
    pub signatures: Vec<String>,
}

/// `mig.ManifestParameters`: what a Go loader posts as `parameters`. Go's other agent fields
/// (mode, pid, times) are ignored, as is anything unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ManifestParameters {
    pub agent: Agent,
    /// The entry name a `manifest/fetch/` asks for; empty for `manifest/agent/`.
    #[serde(default)]
    pub object: String,
}

/// The `{"data": <base64>}` value of a `manifest/fetch/` answer (`mig.ManifestFetchResponse`):
/// standard base64 of a gzip stream of the file's bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchValue {
    pub data: String,
}

/// The text a Go loader verifies signatures over, for `entries` in signed (archive) order.
/// Refuses what Go versions escape differently (control characters) and anything that is not
/// a lower-case sha256, so the text is the one every deployed Go loader rebuilds.
pub fn signed_text<'a>(entries: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<String> {
    let mut out = String::from(r#"{"loader_name":"","entries":"#);
    let mut any = false;
    for (name, sha256) in entries {
        if name.chars().any(char::is_control) {
            return Err(Error::Value(format!(
                "entry name {name:?} has a control character: Go loaders of different versions \
                 would sign different texts for it"
            )));
        }
        if !is_sha256_hex(sha256) {
            return Err(Error::Value(format!(
                "entry {name:?}: {sha256:?} is not a lower-case sha256"
            )));
        }
        out.push(if any { ',' } else { '[' });
        any = true;
        out.push_str(r#"{"name":"#);
        go_string(&mut out, name);
        out.push_str(r#","sha256":""#);
        out.push_str(sha256);
        out.push_str(r#""}"#);
    }
    // Go marshals a nil slice as null: an archive without regular files.
    out.push_str(if any { "]" } else { "null" });
    out.push_str(r#","signatures":[]}"#);
    Ok(out)
}

/// The entries a signed text lists, in order; the API serves exactly these to Go loaders.
pub fn entries_of(text: &str) -> Result<Vec<V1Entry>> {
    #[derive(Deserialize)]
    struct Signed {
        entries: Option<Vec<V1Entry>>,
    }
    let s: Signed = serde_json::from_str(text).map_err(|e| Error::Json {
        what: "v1 signed text".into(),
        reason: e.to_string(),
    })?;
    let entries = s.entries.unwrap_or_default();
    let again = signed_text(entries.iter().map(|e| (e.name.as_str(), e.sha256.as_str())))?;
    if again != text {
        return Err(Error::Value(
            "the v1 signed text is not in Go's canonical form".into(),
        ));
    }
    Ok(entries)
}

/// A JSON string as Go's `encoding/json` writes it: `<`, `>`, `&`, U+2028 and U+2029 escaped as
/// `\u00XX`/`\u20XX`, everything else non-ASCII raw. Control characters never reach here.
fn go_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The `parameters` field of a `application/x-www-form-urlencoded` body: exactly one, decoded
/// (`+` is a space), parsed. Other fields are ignored, as MIG's API did.
pub fn parse_form(body: &[u8]) -> Result<ManifestParameters> {
    let bad = |reason: String| Error::Json {
        what: "v1 form".into(),
        reason,
    };
    let text = std::str::from_utf8(body).map_err(|_| bad("the body is not UTF-8".into()))?;
    let mut found = None;
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if percent_decode(name).as_deref() != Some(PARAMETERS_FIELD) {
            continue;
        }
        if found.is_some() {
            return Err(bad(format!("{PARAMETERS_FIELD} is given twice")));
        }
        found = Some(
            percent_decode(value)
                .ok_or_else(|| bad(format!("{PARAMETERS_FIELD} is not valid URL encoding")))?,
        );
    }
    let json = found.ok_or_else(|| bad(format!("no {PARAMETERS_FIELD} field")))?;
    serde_json::from_str(&json).map_err(|e| Error::Json {
        what: "v1 parameters".into(),
        reason: e.to_string(),
    })
}

/// The body a Go loader posts: `parameters=` and the JSON escaped as Go's `url.QueryEscape`
/// does (a space is `+`; letters, digits and `-_.~` stay; every other byte is `%XX`). The
/// inverse of [`parse_form`], for tests and benchmarks that stand in for a Go loader.
pub fn form_body(parameters_json: &str) -> String {
    let mut out = format!("{PARAMETERS_FIELD}=");
    for b in parameters_json.bytes() {
        match b {
            b' ' => out.push('+'),
            b if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) => out.push(b as char),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Form decoding: `+` is a space, `%XX` a byte; the result must be UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                // Two hex digits exactly: from_str_radix alone would take "+1".
                let hex = b.get(i + 1..i + 3)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// A Collection+JSON answer (MIG's `cljs`): one item holding one named value, or an error.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Collection {
    pub collection: CollectionBody,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CollectionBody {
    pub version: String,
    pub href: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<Item>,
    pub template: serde_json::Map<String, serde_json::Value>,
    pub error: CollectionError,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Item {
    pub href: String,
    pub data: Vec<Datum>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Datum {
    pub name: String,
    pub value: serde_json::Value,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CollectionError {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub code: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

impl Collection {
    fn new(href: &str) -> Collection {
        Collection {
            collection: CollectionBody {
                version: "1.0".into(),
                href: href.into(),
                items: Vec::new(),
                template: serde_json::Map::new(),
                error: CollectionError::default(),
            },
        }
    }

    /// One item `{name: value}`, as MIG's API answered `manifest` and `content`.
    pub fn item(href: &str, name: &str, value: serde_json::Value) -> Collection {
        let mut c = Collection::new(href);
        c.collection.items.push(Item {
            href: href.into(),
            data: vec![Datum {
                name: name.into(),
                value,
            }],
        });
        c
    }

    /// An error: a Go loader prints `message` and `code`, then exits 1.
    pub fn error(href: &str, code: u16, message: &str) -> Collection {
        let mut c = Collection::new(href);
        c.collection.error = CollectionError {
            code: code.to_string(),
            message: message.into(),
        };
        c
    }

    /// The value of the first datum of the first item, where a Go loader reads it.
    pub fn value(&self) -> Option<&serde_json::Value> {
        self.collection
            .items
            .first()?
            .data
            .first()
            .map(|d| &d.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "1c18199a0000000000000000000000000000000000000000000000000000d68a";
    const B: &str = "0ca35a2c000000000000000000000000000000000000000000000000000ad52b";

    #[test]
    fn the_signed_text_is_gos_compact_json_with_gos_escaping() {
        let t = signed_text([("mig-agent", A), ("configuration", B)]).unwrap();
        assert_eq!(
            t,
            format!(
                r#"{{"loader_name":"","entries":[{{"name":"mig-agent","sha256":"{A}"}},{{"name":"configuration","sha256":"{B}"}}],"signatures":[]}}"#
            )
        );
        // mig-reference.md §2.9: verified against Go, a name a<b&c> is "a\u003cb\u0026c\u003e".
        let t = signed_text([("a<b&c>", A)]).unwrap();
        assert!(t.contains(r#""name":"a\u003cb\u0026c\u003e""#), "{t}");
        let t = signed_text([("é\u{2028}\"\\", A)]).unwrap();
        assert!(t.contains(r#""name":"é\u2028\"\\""#), "{t}");
        assert_eq!(
            signed_text([]).unwrap(),
            r#"{"loader_name":"","entries":null,"signatures":[]}"#
        );
    }

    #[test]
    fn names_go_versions_escape_differently_and_bad_hashes_are_refused() {
        for name in ["a\u{8}b", "tab\there", "nl\n"] {
            let e = signed_text([(name, A)]).unwrap_err().to_string();
            assert!(e.contains("control character"), "{e}");
        }
        let upper = A.to_ascii_uppercase();
        let e = signed_text([("x", upper.as_str())])
            .unwrap_err()
            .to_string();
        assert!(e.contains("lower-case sha256"), "{e}");
    }

    #[test]
    fn entries_round_trip_and_a_non_canonical_text_is_refused() {
        let t = signed_text([("mig-agent", A), ("a<b", B)]).unwrap();
        let e = entries_of(&t).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[1].name, "a<b");
        let spaced = t.replace(",\"signatures\"", ", \"signatures\"");
        assert!(entries_of(&spaced).is_err());
        assert!(entries_of("{").is_err());
    }

    #[test]
    fn the_form_field_is_decoded_like_gos_query_escape() {
        let json = r#"{"agent":{"name":"vm one","queueloc":"linux.x","mode":"","pid":7,"starttime":"0001-01-01T00:00:00Z","environment":{"init":"systemd","ident":"Debian 12","os":"linux","arch":"amd64","isproxied":false,"addresses":["192.0.2.2/24"],"aws":{}},"tags":{"operator":"myorg"}},"object":"cacert"}"#;
        let body = format!("other=1&{}", form_body(json));
        assert!(body.contains("name%22%3A%22vm+one"), "{body}");
        let p = parse_form(body.as_bytes()).unwrap();
        assert_eq!(p.agent.name, "vm one");
        assert_eq!(p.agent.environment.arch, "amd64");
        assert_eq!(p.agent.tags["operator"], "myorg");
        assert_eq!(p.object, "cacert");
        for (bad, why) in [
            ("x=1", "no parameters"),
            ("parameters=%7B%7D&parameters=%7B%7D", "twice"),
            ("parameters=%zz", "URL encoding"),
            ("parameters=%+1", "URL encoding"),
            ("parameters=%FF", "URL encoding"),
            ("parameters=%7B", "v1 parameters"),
        ] {
            let e = parse_form(bad.as_bytes()).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn collections_put_the_value_where_a_go_loader_reads_it() {
        let c = Collection::item("/api/v1/manifest/agent/", "manifest", serde_json::json!(1));
        let text = serde_json::to_string(&c).unwrap();
        assert_eq!(
            text,
            r#"{"collection":{"version":"1.0","href":"/api/v1/manifest/agent/","items":[{"href":"/api/v1/manifest/agent/","data":[{"name":"manifest","value":1}]}],"template":{},"error":{}}}"#
        );
        let e = serde_json::to_string(&Collection::error("/x", 401, "no")).unwrap();
        assert_eq!(
            e,
            r#"{"collection":{"version":"1.0","href":"/x","template":{},"error":{"code":"401","message":"no"}}}"#
        );
        let back: Collection = serde_json::from_str(&text).unwrap();
        assert_eq!(back.value(), Some(&serde_json::json!(1)));
    }
}
