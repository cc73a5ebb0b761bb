//! HTTP service around the engine (filled in by the service work).

#[derive(Debug, clap::Args)]
pub struct ServeArgs {}

pub fn serve(_args: ServeArgs) -> anyhow::Result<()> {
    anyhow::bail!("serve is not implemented yet")
}
