//! `statuslab explain` and `statuslab list`.

use crate::Failure;
use anyhow::Context as _;
use clap::Args;
use statuslab_catalog::{Class, Info, Need, Source, Status, lookup};
use std::io::Write;

/// Arguments of `statuslab explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// A code (`404`), a message or reason phrase (`NotFound`, `"Gateway Timeout"`), or words
    /// (`too large`): every code whose message, RFC phrase, description or RFC meaning has them all.
    #[arg(required = true, num_args = 1.., value_name = "CODE | MESSAGE | WORDS")]
    pub query: Vec<String>,
    /// Print JSON: one object for one match, an array for several.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `statuslab list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only codes of this class: 1xx, 2xx, 3xx, 4xx or 5xx.
    #[arg(long, value_name = "CLASS", value_parser = parse_class)]
    pub class: Option<Class>,
    /// Only the table's 41 rows (no 200, no registry-only codes).
    #[arg(long)]
    pub table_only: bool,
    /// Print JSON: an array of catalog entries.
    #[arg(long)]
    pub json: bool,
}

fn parse_class(s: &str) -> Result<Class, String> {
    s.parse()
        .map_err(|e: statuslab_catalog::Error| e.to_string())
}

fn io(e: std::io::Error) -> Failure {
    Failure::Runtime(anyhow::Error::new(e).context("writing output"))
}

/// `statuslab explain`.
pub(crate) fn explain(args: &ExplainArgs, out: &mut dyn Write) -> Result<(), Failure> {
    let query = args.query.join(" ");
    let found = lookup(&query).map_err(|e| Failure::Usage(e.to_string()))?;
    if args.json {
        let infos: Vec<Info> = found.iter().map(|s| s.info()).collect();
        let text = if let [one] = infos.as_slice() {
            serde_json::to_string_pretty(one)
        } else {
            serde_json::to_string_pretty(&infos)
        }
        .context("encoding JSON")?;
        return writeln!(out, "{text}").map_err(io);
    }
    if let [one] = found.as_slice() {
        return write!(out, "{}", describe(*one)).map_err(io);
    }
    writeln!(out, "{} codes match {query:?}:", found.len()).map_err(io)?;
    for s in &found {
        writeln!(out, "  {}  {:<32} {}", s.code(), s.message(), s.reason()).map_err(io)?;
    }
    writeln!(out, "Run `statuslab explain CODE` for one of them.").map_err(io)
}

/// A person-readable explanation of one code.
pub(crate) fn describe(s: Status) -> String {
    use std::fmt::Write as _;
    let i = s.info();
    let mut t = String::new();
    let source = match i.source {
        Source::Table => "from the status-code table",
        Source::Registry => "IANA registry, not in the table",
        Source::Unregistered => "unregistered: only its class is known",
    };
    let unused = if i.unused { ", unused" } else { "" };
    let _ = writeln!(
        t,
        "{} {}  ({} {}, {source}{unused})",
        i.code,
        i.message,
        i.class,
        i.class.name()
    );
    let field = |t: &mut String, name: &str, value: &str| {
        let _ = writeln!(t, "  {name:<13} {value}");
    };
    field(&mut t, "Description:", i.description);
    let reason = match (i.reason, i.reference) {
        ("", _) => "(none registered)".to_owned(),
        (r, Some(rf)) => format!("{r} ({rf})"),
        (r, None) => r.to_owned(),
    };
    field(&mut t, "RFC reason:", &reason);
    field(&mut t, "RFC meaning:", i.meaning);
    field(&mut t, "Next step:", i.advice.summary());
    if i.rfc_advice != i.advice {
        field(&mut t, "RFC advice:", i.rfc_advice.summary());
    }
    let body = match i.wire.body {
        statuslab_catalog::BodyRule::Forbidden => "no content",
        statuslab_catalog::BodyRule::Empty => "no content (the server sends none)",
        statuslab_catalog::BodyRule::Allowed => "content allowed",
    };
    field(&mut t, "Framing:", body);
    if i.wire.headers.is_empty() {
        field(&mut t, "Headers:", "none required");
    } else {
        for (n, h) in i.wire.headers.iter().enumerate() {
            let need = match h.need {
                Need::Required => "required",
                Need::Expected => "expected",
                Need::Optional => "optional",
            };
            let line = format!("{}: {need}, {}", h.name, h.when);
            field(&mut t, if n == 0 { "Headers:" } else { "" }, &line);
        }
    }
    for d in i.differences {
        let _ = writeln!(t, "  Table vs RFC ({}):", d.aspect.name());
        field(&mut t, "  table:", d.table);
        field(&mut t, "  RFC:", d.rfc);
        field(&mut t, "  note:", d.note);
    }
    t
}

/// `statuslab list`.
pub(crate) fn list(args: &ListArgs, out: &mut dyn Write) -> Result<(), Failure> {
    let rows: Vec<Status> = statuslab_catalog::all()
        .filter(|s| args.class.is_none_or(|c| s.class() == c))
        .filter(|s| !args.table_only || s.source() == Source::Table)
        .collect();
    if args.json {
        let infos: Vec<Info> = rows.iter().map(|s| s.info()).collect();
        let text = serde_json::to_string_pretty(&infos).context("encoding JSON")?;
        return writeln!(out, "{text}").map_err(io);
    }
    let msg_w = rows
        .iter()
        .map(|s| s.message().len())
        .max()
        .unwrap_or(0)
        .max("MESSAGE".len());
    let rsn_w = rows
        .iter()
        .map(|s| s.reason().len())
        .max()
        .unwrap_or(0)
        .max("RFC REASON".len());
    writeln!(
        out,
        "CODE  {:<msg_w$}  {:<rsn_w$}  SOURCE    NEXT STEP",
        "MESSAGE", "RFC REASON"
    )
    .map_err(io)?;
    for s in rows {
        let source = match s.source() {
            Source::Table => "table",
            Source::Registry => "registry",
            Source::Unregistered => "-",
        };
        let advice = s.advice().name();
        writeln!(
            out,
            "{:<4}  {:<msg_w$}  {:<rsn_w$}  {source:<8}  {advice}",
            s.code(),
            s.message(),
            s.reason()
        )
        .map_err(io)?;
    }
    Ok(())
}
