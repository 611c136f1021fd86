//! The catalog over HTTP: `/` (the page in `page.rs`), `/codes`, `/codes/{code}`, plus
//! `/openapi.json` and `/health`.

use super::page;
use crate::problem::Problem;
use crate::wire::reply::{Reply, known};
use bytes::Bytes;
use http::{HeaderValue, header};
use statuslab_catalog::{Info, Status};

/// Pages rendered once at start-up.
#[derive(Debug)]
pub(crate) struct Pages {
    index: Bytes,
    index_csp: HeaderValue,
    codes: Bytes,
    openapi: Bytes,
}

impl Pages {
    /// Renders every page; `metrics` says whether `/metrics` answers, for the index's link.
    pub(crate) fn new(metrics: bool) -> Pages {
        let infos: Vec<Info> = statuslab_catalog::all().map(Status::info).collect();
        let index = page::render(metrics);
        Pages {
            index: Bytes::from(index.html),
            index_csp: index.csp,
            codes: Bytes::from(serde_json::to_vec(&infos).expect("catalog serializes")),
            openapi: Bytes::from_static(include_bytes!("openapi.json")),
        }
    }
}

impl Pages {
    /// `GET /`.
    pub(crate) fn index(&self) -> Reply {
        Reply::new(known(200))
            .with_body(
                HeaderValue::from_static("text/html; charset=utf-8"),
                self.index.clone(),
            )
            .with_header(header::CONTENT_SECURITY_POLICY, self.index_csp.clone())
            .with_header(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            )
    }

    /// `GET /codes`.
    pub(crate) fn codes(&self) -> Reply {
        Reply::json(200, self.codes.clone())
    }

    /// `GET /openapi.json`.
    pub(crate) fn openapi(&self) -> Reply {
        Reply::json(200, self.openapi.clone())
    }
}

/// `GET /codes/{code}`: any code 100–599, registered or not.
pub(crate) fn code(param: &str) -> Result<Reply, Problem> {
    match param.parse::<Status>() {
        Ok(s) => Ok(Reply::json(
            200,
            serde_json::to_vec(&s.info()).expect("catalog serializes"),
        )),
        Err(e) => Err(Problem::new(404, format!("no catalog entry: {e}"))),
    }
}

/// `GET /health`.
pub(crate) fn health() -> Reply {
    Reply::json(200, Bytes::from_static(b"{\"status\":\"ok\"}"))
}
