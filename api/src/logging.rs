//! Structured logs: one `key=value` line per event on stderr, values quoted when needed, so a
//! line can be grepped and parsed (`ts=… level=info event=request method=POST …`).

use mig_protocol::time::Timestamp;
use std::io::Write;

/// Writes one log line.
pub fn event(level: &str, event: &str, fields: &[(&str, &dyn std::fmt::Display)]) {
    let mut line = format!("ts={} level={level} event={event}", Timestamp::now());
    for (k, v) in fields {
        line.push(' ');
        line.push_str(k);
        line.push('=');
        push_value(&mut line, &v.to_string());
    }
    line.push('\n');
    // One write per line keeps concurrent lines whole.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

fn push_value(line: &mut String, v: &str) {
    let plain = !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_graphic() && c != '"' && c != '=' && c != '\\');
    if plain {
        line.push_str(v);
        return;
    }
    line.push('"');
    for c in v.chars() {
        match c {
            '"' => line.push_str("\\\""),
            '\\' => line.push_str("\\\\"),
            '\n' => line.push_str("\\n"),
            '\r' => line.push_str("\\r"),
            c if c.is_control() => line.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => line.push(c),
        }
    }
    line.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_quoted_only_when_needed() {
        let mut s = String::new();
        push_value(&mut s, "plain");
        s.push(' ');
        push_value(&mut s, "two words \"q\"\nx");
        s.push(' ');
        push_value(&mut s, "");
        assert_eq!(s, r#"plain "two words \"q\"\nx" """#);
    }
}
