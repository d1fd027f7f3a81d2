//! Small helpers for the pages authpulse writes (the daemon's status page and the
//! backtest report): escaping text from outside, plurals and UTC times. A leaf: it
//! imports nothing from the crate.

/// Escape text for HTML (and XML) element content and attribute values: `&`, `<`, `>`,
/// `"` and `'` become entities, so text from outside (rule names, labels, summaries)
/// can neither open a tag nor close an attribute.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `1 rule`, `2 rules`, `0 rules`.
pub fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// A UTC time in `format` (chrono's `strftime` syntax); empty when `ms` is out of range.
pub fn time(ms: i64, format: &str) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .map(|t| t.format(format).to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            esc(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(esc("plain · text"), "plain · text");
    }

    #[test]
    fn plurals_and_times() {
        assert_eq!(plural(1, "rule"), "1 rule");
        assert_eq!(plural(0, "sink"), "0 sinks");
        assert_eq!(plural(3, "sink"), "3 sinks");
        assert_eq!(time(0, "%Y-%m-%d %H:%M"), "1970-01-01 00:00");
        assert_eq!(time(i64::MAX, "%Y"), "");
    }

    proptest! {
        /// Escaped text has no markup character left, and every `&` in it starts one of
        /// the five entities: nothing from the input survives as markup.
        #[test]
        fn escaped_text_carries_no_markup(text in any::<String>()) {
            let out = esc(&text);
            for c in ['<', '>', '"', '\''] {
                prop_assert!(!out.contains(c), "{c:?} in {out:?}");
            }
            for (i, _) in out.match_indices('&') {
                let rest = &out[i..];
                prop_assert!(
                    ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"]
                        .iter()
                        .any(|e| rest.starts_with(e)),
                    "a bare & at {i} in {out:?}"
                );
            }
            // Nothing is lost: unescaping gives the input back.
            let back = out
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&#39;", "'")
                .replace("&amp;", "&");
            prop_assert_eq!(back, text);
        }

        #[test]
        fn markup_heavy_text_is_escaped(text in "[<>\"'&a ]{0,40}") {
            let out = esc(&text);
            prop_assert!(!out.contains(['<', '>', '"', '\'']));
            prop_assert_eq!(out.matches('&').count(), text.matches(['<', '>', '"', '\'', '&']).count());
        }
    }
}
