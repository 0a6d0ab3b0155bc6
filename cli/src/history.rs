//! `history FUNCTION[:ALIAS]`: every row the ledger holds for the function's aliases,
//! explained, newest first.

use crate::args::HistoryArgs;
use crate::context::Context;
use crate::error::Result;
use crate::out;
use crate::status::targets;
use crate::view;
use rollgate::clock::utc;

pub async fn run(ctx: &Context, a: &HistoryArgs) -> Result<()> {
    let mut entries = Vec::new();
    for (function, alias) in targets(ctx, Some(&a.function)).await? {
        let rows = ctx.ledger.alias_rows(&function, &alias).await?;
        entries.extend(rows.iter().filter_map(|r| view::entry(&alias, r)));
    }
    let mut entries = view::newest_first(entries);
    entries.truncate(a.limit);
    if ctx.json {
        out::json(&entries);
        return Ok(());
    }
    if entries.is_empty() {
        println!("the ledger holds nothing about {}", a.function);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            let at = if e.at_ms > 0 {
                utc(e.at_ms)
            } else {
                "-".into()
            };
            vec![at, e.alias.clone(), e.kind.into(), e.summary.clone()]
        })
        .collect();
    println!("{}", out::table(&["WHEN", "ALIAS", "KIND", "WHAT"], &rows));
    Ok(())
}
