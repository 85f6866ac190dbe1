//! `visage audit`: the audit log as JSON lines, oldest first, read beside a running server in
//! short pages (never face data: the log holds none).

use anyhow::{bail, Context};
use chrono::{DateTime, NaiveDate, Utc};
use clap::Args;
use serde_json::json;
use store::AuditFilter;

use crate::serve_cmd::{parse_ttl, runtime};
use crate::store_args::{client_arg, StoreArgs};

/// Rows read per transaction: short reads leave the server's checkpoints alone.
const PAGE: u32 = 2_000;

/// Every action the store writes (`--action` takes one of them).
const ACTIONS: &[&str] = &[
    store::audit::COLLECTION_CREATE,
    store::audit::COLLECTION_UPDATE,
    store::audit::COLLECTION_DELETE,
    store::audit::PERSON_ATTACH,
    store::audit::PERSON_DETACH,
    store::audit::PERSON_CREATE,
    store::audit::PERSON_UPDATE,
    store::audit::PERSON_FACES_REPLACE,
    store::audit::PERSON_ERASE,
    store::audit::TOKEN_CREATE,
    store::audit::TOKEN_REVOKE,
    store::audit::TOKEN_RENEW,
    store::audit::TOKEN_REVOKE_CLIENT,
    store::audit::CLIENT_ERASE,
];

#[derive(Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Only this client's rows (operator token revocations belong to no client).
    #[arg(long)]
    pub client: Option<String>,
    /// Only rows from this time on: RFC 3339 (2026-01-31T12:00:00Z), a date (2026-01-31,
    /// UTC), or an age (90s, 15m, 12h, 30d ago).
    #[arg(long)]
    pub since: Option<String>,
    /// Only this action (e.g. person.erase).
    #[arg(long)]
    pub action: Option<String>,
}

/// `--since` as a time.
pub fn parse_since(text: &str, now: DateTime<Utc>) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(d.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    if let Ok(secs) = parse_ttl(text) {
        return Ok(now - chrono::Duration::seconds(secs));
    }
    bail!("bad --since {text:?}: give an RFC 3339 time, a date (YYYY-MM-DD) or an age (e.g. 12h, 30d)")
}

fn filter(args: &AuditArgs) -> anyhow::Result<AuditFilter> {
    let client = args.client.as_deref().map(client_arg).transpose()?;
    let since = args
        .since
        .as_deref()
        .map(|s| parse_since(s, Utc::now()))
        .transpose()?;
    if let Some(a) = &args.action {
        if !ACTIONS.contains(&a.as_str()) {
            bail!("unknown --action {a:?}: one of {}", ACTIONS.join(", "));
        }
    }
    Ok(AuditFilter {
        client,
        since,
        action: args.action.clone(),
    })
}

pub fn run(args: &AuditArgs) -> anyhow::Result<()> {
    let filter = filter(args)?;
    runtime()?.block_on(async {
        let reads = service::operator_reads(&args.store.config()).await?;
        let mut after = 0;
        loop {
            let page = reads
                .audit_entries(&filter, after, PAGE)
                .await
                .context("reading the audit log")?;
            for e in &page {
                let line = json!({
                    "seq": e.seq,
                    "at": e.at.to_rfc3339(),
                    "client": e.client.as_ref().map(|c| c.as_str()),
                    "action": e.action,
                    "object": e.object_id,
                });
                println!("{line}");
            }
            match page.last() {
                Some(last) if page.len() == PAGE as usize => after = last.seq,
                _ => break,
            }
        }
        anyhow::Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_times_dates_and_ages() {
        let now = DateTime::parse_from_rfc3339("2026-02-01T00:00:00Z")
            .expect("valid")
            .with_timezone(&Utc);
        let t = |s| parse_since(s, now).map(|t| t.to_rfc3339()).ok();
        assert_eq!(
            t("2026-01-31T12:00:00Z").as_deref(),
            Some("2026-01-31T12:00:00+00:00")
        );
        assert_eq!(
            t("2026-01-31").as_deref(),
            Some("2026-01-31T00:00:00+00:00")
        );
        assert_eq!(t("12h").as_deref(), Some("2026-01-31T12:00:00+00:00"));
        assert_eq!(t("yesterday"), None);
    }
}
