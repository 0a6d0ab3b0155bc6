//! Writes a deployment's report page from its data (a `report_page::ReportData` as JSON),
//! for the browser test (`tests/test_report_page.py`) until `rollgate report DEPLOYMENT
//! --html FILE` writes it from the ledger:
//!
//!     cargo run -p rollgate --example report_page -- DATA.json PAGE.html
//!
//! Prints the page's path and size.

use rollgate::report_page::{ReportData, render};
use std::error::Error;
use std::fs;
use std::path::Path;

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [data, page] = args.as_slice() else {
        return Err("usage: report_page DATA.json PAGE.html".into());
    };
    let text = fs::read_to_string(data).map_err(|e| format!("{data}: {e}"))?;
    let data: ReportData = serde_json::from_str(&text).map_err(|e| format!("{data}: {e}"))?;
    let html = render(&data);
    if let Some(dir) = Path::new(page)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        fs::create_dir_all(dir)?;
    }
    fs::write(page, &html)?;
    println!("{page}: {} bytes", html.len());
    Ok(())
}
