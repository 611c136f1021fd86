//! The page at `/`: every registered code grouped by class, with the table's message and
//! description, the RFC reason phrase, the next step, and links to `/codes/{code}` and
//! `/status/{code}`. Rendered once at start and served from memory.
//!
//! Everything works without JavaScript; a small inline script adds a search field and a
//! try-it panel that fetches `/status/{code}`. The page carries no external assets, and its
//! `Content-Security-Policy` admits exactly its own inline script and style by their SHA-256
//! hashes, so no injected markup could run.

use crate::content::bodies::escape;
use base64::Engine as _;
use http::HeaderValue;
use sha2::{Digest as _, Sha256};
use statuslab_catalog::{Aspect, Class, Source, Status};
use std::fmt::Write as _;

const SCRIPT: &str = include_str!("page/index.js");
const STYLE: &str = include_str!("page/index.css");

/// The rendered page and the policy that lets its inline script and style run.
pub(crate) struct Page {
    pub(crate) html: String,
    pub(crate) csp: HeaderValue,
}

/// `'sha256-…'`, the CSP source expression that admits exactly `inline`.
fn hash_source(inline: &str) -> String {
    let digest = Sha256::digest(inline.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// Renders the page; `metrics` says whether `/metrics` answers (it is off under `--no-metrics`).
pub(crate) fn render(metrics: bool) -> Page {
    let csp = format!(
        "default-src 'none'; script-src {}; style-src {}; connect-src 'self'; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        hash_source(SCRIPT),
        hash_source(STYLE)
    );
    let mut html = String::with_capacity(96 * 1024);
    head(&mut html);
    html.push_str("<main>\n<div id=\"codes\">\n<p id=\"none\" hidden>No code matches.</p>\n");
    for class in Class::ALL {
        section(&mut html, class);
    }
    html.push_str("</div>\n");
    panel(&mut html);
    html.push_str("</main>\n");
    more(&mut html, metrics);
    let _ = write!(html, "<script>{SCRIPT}</script>\n</body></html>\n");
    Page {
        html,
        csp: HeaderValue::from_str(&csp).expect("hashes are base64"),
    }
}

fn head(out: &mut String) {
    let total = statuslab_catalog::all().count();
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\n\
<title>statuslab: every HTTP status code</title>\n<style>{STYLE}</style>\n</head><body>\n\
<header>\n<h1>statuslab</h1>\n\
<p>Every HTTP status code from the status-code table, answered in full dress. The status line carries \
the RFC reason phrase; bodies carry the table's message and description. \
<a href=\"/status/429\">/status/429</a> answers 429 with <code>Retry-After</code>; \
<code>/status/500,503</code> picks one, <code>/status/200:0.9,500:0.1</code> weighs them; \
<code>/{{code}}?sleep=250ms</code> as httpstat.us. Options: <code>sleep</code>, <code>retry_after</code>, \
<code>location</code>, <code>header=Name:Value</code>, <code>then</code> (the final code after a 1xx), \
<code>format</code> (text, json, problem, html) or <code>Accept</code>.</p>\n\
<nav><a href=\"#retry\">Retry report</a><a href=\"#probe\">Probe</a><a href=\"#httpbin\">httpbin routes</a>\
<a href=\"/codes\">/codes</a><a href=\"/openapi.json\">/openapi.json</a></nav>\n</header>\n\
<div id=\"tools\" hidden><label for=\"q\">Search </label><input id=\"q\" type=\"search\" \
placeholder=\"code, message or words: 42, gateway, too large, 4xx\" autocomplete=\"off\" spellcheck=\"false\"> \
<output id=\"count\" for=\"q\">{total}</output> of {total} codes</div>\n\
<noscript><p class=\"note\">&#160;&#160;&#160;Search and the try-it panel need JavaScript; every code and link below works without it.</p></noscript>\n"
    );
}

fn section(out: &mut String, class: Class) {
    let d = class.digit();
    let _ = write!(
        out,
        "<section class=\"class\" id=\"x{d}\"><h2>{class} {name}</h2><p>{meaning}</p>\n\
<table><thead><tr><th>Code</th><th>Message (table) · RFC reason</th><th>Description</th>\
<th>Next step</th><th>Try it</th></tr></thead><tbody>\n",
        name = class.name(),
        meaning = escape(class.meaning()),
    );
    for s in statuslab_catalog::all().filter(|s| s.class() == class) {
        row(out, s);
    }
    out.push_str("</tbody></table></section>\n");
}

fn row(out: &mut String, s: Status) {
    let code = s.code();
    let reason_differs = s.differences().iter().any(|d| d.aspect == Aspect::Reason);
    // Where message and RFC phrase are one text (the registry's rows, 200), it shows once;
    // the hidden copy still counts for the search.
    let same = if s.message() == s.reason() {
        " same"
    } else {
        ""
    };
    let src = match s.source() {
        Source::Table => "",
        _ => {
            "<span class=\"src\" title=\"In the IANA registry, not in the status-code table\">registry</span>"
        }
    };
    let _ = write!(
        out,
        "<tr id=\"c{code}\" data-code=\"{code}\"><td class=\"c\"><a href=\"/codes/{code}\">{code}</a>{src}</td>\
<td><span class=\"k\">{m}</span><span class=\"k rfc{ne}{same}\"{title}>{r}</span></td><td class=\"k\">{desc}</td><td class=\"next\">{next}",
        m = escape(s.message()),
        r = escape(s.reason()),
        ne = if reason_differs { " ne" } else { "" },
        title = if reason_differs {
            " title=\"The status line carries the RFC phrase; bodies carry the table's message.\""
        } else {
            ""
        },
        desc = escape(s.description()),
        next = escape(s.advice().summary()),
    );
    if s.advice() != s.rfc_advice() {
        let _ = write!(
            out,
            "<p class=\"diff\">RFC 9110 differs: {}</p>",
            escape(s.rfc_advice().summary())
        );
    }
    for d in s
        .differences()
        .iter()
        .filter(|d| d.aspect != Aspect::Reason)
    {
        let _ = write!(
            out,
            "<p class=\"diff\">Table vs RFC ({}): {}</p>",
            d.aspect.name(),
            escape(d.note)
        );
    }
    let _ = writeln!(
        out,
        "</td><td class=\"t\"><a href=\"/status/{code}\">/status/{code}</a> \
<button type=\"button\" data-try hidden>try</button></td></tr>"
    );
}

fn panel(out: &mut String) {
    out.push_str(
        "<aside id=\"panel\" hidden aria-live=\"polite\"><h2>Try it</h2>\n\
<form id=\"opts\"><label>Code<input id=\"code\" inputmode=\"numeric\" size=\"4\" value=\"429\"></label>\
<label>Method<select id=\"method\"><option>GET</option><option>HEAD</option><option>POST</option>\
<option>PUT</option><option>PATCH</option><option>DELETE</option><option>OPTIONS</option></select></label>\
<label>Accept<select id=\"accept\"><option value=\"application/json\">json</option>\
<option value=\"application/problem+json\">problem+json</option><option value=\"text/plain\">text</option>\
<option value=\"text/html\">html</option></select></label>\
<label>retry_after<input id=\"retry_after\" size=\"7\" placeholder=\"120\"></label>\
<label>sleep<input id=\"sleep\" size=\"7\" placeholder=\"250ms\"></label>\
<button type=\"submit\">Send</button></form>\n\
<div id=\"req\"></div>\n<pre id=\"out\">Press “try” on a row, or choose a code and Send.</pre>\n\
<p id=\"why\" class=\"why\" hidden></p>\n\
<p class=\"note\">fetch() never sees the real status line: the first line is built from \
<code>response.status</code> and the catalog's reason phrase. A same-origin fetch reads every header \
but <code>Set-Cookie</code>; other origins read <code>Retry-After</code>, <code>Location</code> and the \
rest statuslab lists in <code>Access-Control-Expose-Headers</code>.</p>\n</aside>\n",
    );
}

fn more(out: &mut String, metrics: bool) {
    let metrics = if metrics {
        ", Prometheus metrics: <a href=\"/metrics\">/metrics</a>"
    } else {
        ""
    };
    let _ = write!(
        out,
        "<section id=\"more\">\n<h2>More</h2>\n<ul>\n\
<li>Catalog as JSON: <a href=\"/codes\">/codes</a>, one code: <a href=\"/codes/504\">/codes/504</a>; \
API description: <a href=\"/openapi.json\">/openapi.json</a>; health: <a href=\"/health\">/health</a>{metrics}; \
WebSocket echo: <code>/websocket/echo</code>.</li>\n\
<li id=\"retry\"><b>Retry report.</b> Point the client under test at \
<a href=\"/sequence/demo/503,429,200?retry_after=1\">/sequence/demo/503,429,200?retry_after=1</a> (fails twice \
with <code>Retry-After: 1</code>, then succeeds), then <a href=\"/sequences/demo/report\">/sequences/demo/report</a> \
judges it against the table: did it wait out <code>Retry-After</code>, back off, and stop where the table says not to repeat? \
(<code>?format=html</code> draws a time line; <code>DELETE /sequences/demo</code> resets the key; \
<code>/fault/reset</code>, <code>/fault/truncate</code>, … break connections on demand.)</li>\n\
<li id=\"probe\"><b>Probe.</b> <code>statuslab probe https://api.example/</code> checks another server against the \
table and RFC 9110 and reports per check (table, JSON or JUnit XML); see “Probe another server” in the README \
and <code>docs/PROBE.md</code>.</li>\n\
</ul>\n<h2 id=\"httpbin\">httpbin drop-in</h2>\n<p>httpbin and go-httpbin endpoints with their JSON shapes \
(redirects stay on this host or a <code>--redirect-allow</code> host; sizes and waits are bounded by \
<code>--max-body</code> and <code>--max-delay</code>):</p>\n<ul>\n\
<li>Echo: <a href=\"/get\">/get</a>, <code>/post</code>, <code>/put</code>, <code>/patch</code>, <code>/delete</code>, <a href=\"/anything\">/anything</a>, <a href=\"/headers\">/headers</a>, <a href=\"/ip\">/ip</a>, <a href=\"/user-agent\">/user-agent</a>, <a href=\"/uuid\">/uuid</a>, <a href=\"/dump/request\">/dump/request</a></li>\n\
<li>Delays and streams: <a href=\"/delay/1\">/delay/{{n}}</a>, <a href=\"/drip\">/drip</a>, <a href=\"/stream/5\">/stream/{{n}}</a>, <a href=\"/stream-bytes/1024\">/stream-bytes/{{n}}</a>, <a href=\"/bytes/64\">/bytes/{{n}}</a>, <a href=\"/range/64\">/range/{{n}}</a>, <a href=\"/links/10/0\">/links/{{n}}/{{offset}}</a>, <a href=\"/sse?count=5&amp;duration=5s\">/sse</a>, <a href=\"/trailers?X-Sum=1\">/trailers</a>, <a href=\"/unstable\">/unstable</a></li>\n\
<li>Redirects: <a href=\"/redirect/3\">/redirect/{{n}}</a>, <a href=\"/relative-redirect/3\">/relative-redirect/{{n}}</a>, <a href=\"/absolute-redirect/3\">/absolute-redirect/{{n}}</a>, <a href=\"/redirect-to?url=/get\">/redirect-to</a></li>\n\
<li>Cookies: <a href=\"/cookies\">/cookies</a>, <a href=\"/cookies/set?name=value\">/cookies/set</a>, <code>/cookies/set/{{name}}/{{value}}</code>, <a href=\"/cookies/delete?name\">/cookies/delete</a></li>\n\
<li>Formats: <a href=\"/json\">/json</a>, <a href=\"/html\">/html</a>, <a href=\"/xml\">/xml</a>, <a href=\"/robots.txt\">/robots.txt</a>, <a href=\"/deny\">/deny</a>, <a href=\"/encoding/utf8\">/encoding/utf8</a>, <a href=\"/image\">/image</a>, <a href=\"/image/png\">/image/{{png,jpeg,webp,svg}}</a>, <a href=\"/gzip\">/gzip</a>, <a href=\"/deflate\">/deflate</a>, <a href=\"/brotli\">/brotli</a>, <a href=\"/zstd\">/zstd</a>, <a href=\"/base64/c3RhdHVzbGFi\">/base64/{{value}}</a></li>\n\
<li>Caching: <a href=\"/cache\">/cache</a>, <a href=\"/cache/60\">/cache/{{n}}</a>, <a href=\"/etag/v1\">/etag/{{etag}}</a>, <a href=\"/response-headers?X-Hello=1\">/response-headers</a></li>\n\
<li>Auth: <a href=\"/basic-auth/user/pass\">/basic-auth/{{user}}/{{passwd}}</a>, <code>/hidden-basic-auth/…</code>, <code>/bearer</code>, <a href=\"/digest-auth/auth/user/pass\">/digest-auth/{{qop}}/{{user}}/{{passwd}}[/{{algorithm}}[/{{stale_after}}]]</a></li>\n\
</ul>\n<p class=\"note\">Docs: README.md (routes, options, deployment), docs/COMPATIBILITY.md (httpbin), docs/PROBE.md (the probe).</p>\n</section>\n"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> Page {
        render(true)
    }

    #[test]
    fn every_registered_code_has_a_row_with_both_links() {
        let html = page().html;
        for s in statuslab_catalog::all() {
            let c = s.code();
            let open = format!("<tr id=\"c{c}\" data-code=\"{c}\">");
            assert_eq!(html.matches(&open).count(), 1, "{open}");
            let start = html.find(&open).unwrap();
            let row = &html[start..start + html[start..].find("</tr>").unwrap()];
            for needle in [
                format!("<a href=\"/codes/{c}\">{c}</a>"),
                format!("<a href=\"/status/{c}\">/status/{c}</a>"),
                escape(s.message()),
                escape(s.reason()),
                escape(s.description()),
                escape(s.advice().summary()),
            ] {
                assert!(row.contains(&needle), "{needle} not in {row}");
            }
        }
        for class in Class::ALL {
            assert!(html.contains(&format!("<h2>{class} {}</h2>", class.name())));
        }
    }

    #[test]
    fn the_policy_admits_exactly_the_inline_script_and_style() {
        let Page { html, csp } = page();
        let csp = csp.to_str().unwrap();
        assert!(!csp.contains("unsafe"), "{csp}");
        let between = |open: &str, close: &str| {
            let start = html.find(open).expect(open) + open.len();
            let end = start + html[start..].find(close).expect(close);
            html[start..end].to_owned()
        };
        for (inline, directive) in [
            (between("<script>", "</script>"), "script-src"),
            (between("<style>", "</style>"), "style-src"),
        ] {
            let want = format!("{directive} {};", hash_source(&inline));
            assert!(csp.contains(&want), "{csp} lacks {want}");
        }
        assert_eq!(html.matches("<script").count(), 1);
        assert_eq!(html.matches("<style").count(), 1);
        // No external assets, no inline style attributes (the policy would block them).
        for banned in [
            "src=",
            "href=\"http",
            "href=\"//",
            "style=\"",
            "@import",
            "url(",
        ] {
            assert!(!html.contains(banned), "{banned}");
        }
    }

    #[test]
    fn the_page_is_small() {
        let len = page().html.len();
        assert!(len < 200 * 1024, "{len} bytes");
    }

    #[test]
    fn differences_and_registry_rows_are_marked() {
        let html = page().html;
        let row = |c: u16| {
            let start = html.find(&format!("<tr id=\"c{c}\"")).unwrap();
            let end = start + html[start..].find("</tr>").unwrap();
            html[start..end].to_owned()
        };
        let r503 = row(503);
        assert!(
            r503.contains("RFC 9110 differs: Repeat the request after"),
            "{r503}"
        );
        assert!(r503.contains("Table vs RFC (advice)"), "{r503}");
        assert!(row(504).contains("rfc ne"), "{}", row(504));
        assert!(row(507).contains("not in the status-code table"));
        assert!(!row(404).contains("registry"));
        assert!(!row(200).contains("class=\"diff\""));
    }

    #[test]
    fn the_metrics_link_follows_the_configuration() {
        assert!(render(true).html.contains("href=\"/metrics\""));
        assert!(!render(false).html.contains("href=\"/metrics\""));
    }
}
