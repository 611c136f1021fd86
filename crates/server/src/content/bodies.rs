//! Response bodies carrying the table's text, rendered once at start-up for every code and
//! format so the on-demand hot path only clones a reference-counted buffer.

use super::negotiate::Format;
use bytes::Bytes;
use serde_json::json;
use statuslab_catalog::Status;

/// Pre-rendered bodies for codes 100–599 in every format.
#[derive(Debug)]
pub(crate) struct Bodies {
    by_code: Vec<[Bytes; 4]>,
}

impl Bodies {
    pub(crate) fn new() -> Bodies {
        let by_code = (100..=599u16)
            .map(|code| {
                let s = Status::new(code).expect("100-599");
                Format::ALL.map(|f| Bytes::from(render(s, f, None, None)))
            })
            .collect();
        Bodies { by_code }
    }

    /// The body of `status` in `format`.
    pub(crate) fn get(&self, status: Status, format: Format) -> Bytes {
        let i = Format::ALL.iter().position(|&f| f == format).unwrap_or(0);
        self.by_code[usize::from(status.code() - 100)][i].clone()
    }
}

/// Renders a body for `status`: the table's message and description, plus `detail` (what
/// exactly went wrong) when the reply reports an error in the request.
///
/// `advice` replaces the table's next step where this reply knows better (a 413 for a fixed
/// limit is not worth repeating after a `Retry-After`).
pub(crate) fn render(
    status: Status,
    format: Format,
    detail: Option<&str>,
    advice: Option<&str>,
) -> String {
    let code = status.code();
    let message = status.message();
    let description = status.description();
    match format {
        Format::Text => match detail {
            Some(d) => format!("{code} {message}: {d}\n"),
            None => format!("{code} {message}: {description}\n"),
        },
        Format::Json => {
            let mut v = json!({
                "code": code,
                "message": message,
                "description": description,
                "reason": status.reason(),
                "advice": status.advice().name(),
            });
            if let Some(d) = detail {
                v["detail"] = d.into();
            }
            if let Some(a) = advice {
                v["next_step"] = a.into();
            }
            v.to_string()
        }
        Format::Problem => json!({
            "type": format!("/codes/{code}"),
            "title": message,
            "status": code,
            "detail": detail.unwrap_or(description),
            "description": description,
            "advice": advice.unwrap_or(status.advice().summary()),
        })
        .to_string(),
        Format::Html => {
            let detail_html = detail
                .map(|d| format!("<p><strong>{}</strong></p>\n", escape(d)))
                .unwrap_or_default();
            format!(
                "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{code} {m}</title></head>\n<body>\n<h1>{code} {m}</h1>\n{detail_html}<p>{d}</p>\n<p>RFC reason: {r}. Next step: {a}</p>\n<p><a href=\"/codes/{code}\">catalog entry</a> · <a href=\"/\">all codes</a></p>\n</body></html>\n",
                m = escape(message),
                d = escape(description),
                r = escape(status.reason()),
                a = escape(advice.unwrap_or(status.advice().summary())),
            )
        }
    }
}

/// Escapes text for HTML element content and attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
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
