//! Output: aligned tables for people, JSON for scripts; durations and times as people
//! write them.

use crate::error::{CliError, Result};
use serde::Serialize;

/// Print `value` as pretty JSON on stdout.
pub fn json<T: Serialize>(value: &T) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".into())
    );
}

/// Columns padded to their widest cell; the last column is not padded.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        out.trim_end().to_owned()
    };
    let mut out = vec![line(headers.to_vec())];
    for r in rows {
        out.push(line(r.iter().map(String::as_str).collect()));
    }
    out.join("\n")
}

/// `90m`, `2h`, `1d`, `1h30m` as minutes.
pub fn minutes(text: &str) -> Result<u64> {
    let bad = || {
        CliError::Usage(format!(
            "duration {text:?}: write it as minutes, hours or days, e.g. 90m, 2h, 1d, 1h30m"
        ))
    };
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            'm' => 1,
            'h' => 60,
            'd' => 24 * 60,
            _ => return Err(bad()),
        };
        let v: u64 = digits.parse().map_err(|_| bad())?;
        total = v
            .checked_mul(unit)
            .and_then(|m| total.checked_add(m))
            .ok_or_else(bad)?;
        digits.clear();
    }
    if !digits.is_empty() || total == 0 {
        return Err(bad());
    }
    Ok(total)
}

/// `FUNCTION` or `FUNCTION:ALIAS`.
pub fn target(text: &str) -> Result<(String, Option<String>)> {
    match text.split_once(':') {
        _ if text.starts_with("arn:") => Err(CliError::Usage(format!(
            "{text}: name the function (rollgate acts only in the account and region it runs in)"
        ))),
        Some((f, a)) if !f.is_empty() && !a.is_empty() && !a.contains(':') => {
            Ok((f.to_owned(), Some(a.to_owned())))
        }
        None if !text.is_empty() => Ok((text.to_owned(), None)),
        _ => Err(CliError::Usage(format!(
            "{text:?}: expected FUNCTION or FUNCTION:ALIAS"
        ))),
    }
}

/// Who asks: `--requester`, else `$ROLLGATE_REQUESTER`, else `$USER@host`.
pub fn requester(given: Option<&str>) -> String {
    if let Some(r) = given {
        return r.to_owned();
    }
    if let Ok(r) = std::env::var("ROLLGATE_REQUESTER")
        && !r.trim().is_empty()
    {
        return r;
    }
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default();
    if host.is_empty() {
        user
    } else {
        format!("{user}@{host}")
    }
}

/// A fresh request id: a retry of the same command line makes a new request.
pub fn request_id() -> String {
    format!("cli-{:016x}", fastrand::u64(..))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(minutes("90m").unwrap(), 90);
        assert_eq!(minutes("2h").unwrap(), 120);
        assert_eq!(minutes("1d").unwrap(), 1440);
        assert_eq!(minutes("1h30m").unwrap(), 90);
        for bad in [
            "",
            "2",
            "2x",
            "h",
            "0m",
            "99999999999999999999d",
            "-1h",
            "1.5h",
        ] {
            let e = minutes(bad).unwrap_err();
            assert_eq!(e.code(), 2, "{bad}");
        }
    }

    #[test]
    fn targets_are_a_function_and_maybe_an_alias() {
        assert_eq!(target("orders").unwrap(), ("orders".into(), None));
        assert_eq!(
            target("orders:live").unwrap(),
            ("orders".into(), Some("live".into()))
        );
        for bad in ["", ":live", "orders:", "a:b:c", "arn:aws:lambda:x"] {
            assert!(target(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tables_line_up() {
        let t = table(
            &["A", "BB"],
            &[vec!["xxx".into(), "y".into()], vec!["z".into(), "".into()]],
        );
        assert_eq!(t, "A    BB\nxxx  y\nz");
    }
}
