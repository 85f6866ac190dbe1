//! `visage client erase NAME --yes`: every person, face, thumbnail and collection of a client,
//! with the on-disk guarantee of `DELETE /persons/{id}`, audited.

use anyhow::bail;
use clap::Args;

use crate::serve_cmd::runtime;
use crate::store_args::{client_arg, StoreArgs};

#[derive(Args)]
pub struct ClientEraseArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The client whose data is erased.
    pub client: String,
    /// Confirms the erasure (it cannot be undone).
    #[arg(long)]
    pub yes: bool,
}

pub fn run(args: &ClientEraseArgs) -> anyhow::Result<()> {
    let client = client_arg(&args.client)?;
    if !args.yes {
        bail!(
            "this erases every person, face and collection of {client} and cannot be undone: \
             add --yes"
        );
    }
    let erased = runtime()?.block_on(service::erase_client(&args.store.config(), &client))?;
    println!(
        "erased client {client}: {} persons, {} collections",
        erased.persons, erased.collections
    );
    Ok(())
}
