//! `visage token list`: the recorded tokens (never the tokens themselves) with their state,
//! one JSON line each, read beside a running server.

use chrono::{DateTime, Utc};
use clap::Args;
use serde_json::json;
use store::ListedToken;

use crate::serve_cmd::runtime;
use crate::store_args::{client_arg, StoreArgs};

#[derive(Args)]
pub struct TokenListArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Only this client's tokens.
    #[arg(long)]
    pub client: Option<String>,
}

/// `valid`, `expired` or `revoked` at `now`; an expired token is `expired` whether or not it
/// was revoked (revocations are pruned once their token has expired).
pub fn state(token: &ListedToken, now: DateTime<Utc>) -> &'static str {
    if token.token.expires_at <= now {
        "expired"
    } else if token.revoked {
        "revoked"
    } else {
        "valid"
    }
}

pub fn run(args: &TokenListArgs) -> anyhow::Result<()> {
    let client = args.client.as_deref().map(client_arg).transpose()?;
    let tokens = runtime()?.block_on(async {
        let reads = service::operator_reads(&args.store.config()).await?;
        anyhow::Ok(reads.issued_tokens(client.as_ref()).await?)
    })?;
    let now = Utc::now();
    for t in &tokens {
        let line = json!({
            "jti": t.token.jti,
            "client": t.token.client.as_str(),
            "created": t.token.created_at.to_rfc3339(),
            "expires": t.token.expires_at.to_rfc3339(),
            "parent": t.token.parent,
            "state": state(t, now),
        });
        println!("{line}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::{ClientId, IssuedToken};

    #[test]
    fn expiry_wins_over_revocation() {
        let at = |s| DateTime::from_timestamp(s, 0).expect("valid");
        let token = |revoked| ListedToken {
            token: IssuedToken {
                jti: "j".to_owned(),
                client: ClientId::parse("acme").expect("valid"),
                created_at: at(0),
                expires_at: at(100),
                parent: None,
            },
            revoked,
        };
        assert_eq!(state(&token(false), at(50)), "valid");
        assert_eq!(state(&token(true), at(50)), "revoked");
        assert_eq!(state(&token(true), at(100)), "expired");
        assert_eq!(state(&token(false), at(101)), "expired");
    }
}
