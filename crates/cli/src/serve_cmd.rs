//! `statuslab serve`.

use crate::Failure;
use clap::Args;

pub(crate) const AFTER_HELP: &str = "Examples:\n  statuslab serve\n  statuslab serve --listen 0.0.0.0:8080 --max-delay 30s";

/// Arguments of `statuslab serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "STATUSLAB_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
}

pub(crate) fn serve(_args: ServeArgs) -> Result<(), Failure> {
    Err(Failure::Runtime(anyhow::anyhow!("serve is not built yet")))
}
