//! Human output: aligned tables, and colour only on a terminal without `NO_COLOR`.

use std::io::IsTerminal as _;

/// Whether to colour stdout.
pub(crate) fn colour() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}

/// Wraps `text` in an ANSI colour when colouring.
pub(crate) fn paint(text: &str, code: &str) -> String {
    if colour() {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

/// Green for good, yellow for waiting, red for trouble.
pub(crate) fn state(text: &str) -> String {
    let code = match text {
        "published" | "released" | "affected: fixed" | "not affected" | "closed" => "32",
        "draft" | "unassessed" | "investigating" | "prepared" | "waiting" | "publishing" => "33",
        "affected" | "failed" | "leaked" => "31",
        _ => return text.to_owned(),
    };
    paint(text, code)
}

/// Prints rows as a table with a header, columns padded to their widest cell.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            let w = visible_width(cell);
            if i < widths.len() && w > widths[i] {
                widths[i] = w;
            }
        }
    }
    let line = |cells: Vec<String>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let pad = widths
                .get(i)
                .copied()
                .unwrap_or(0)
                .saturating_sub(visible_width(cell));
            out.push_str(cell);
            if i + 1 < cells.len() {
                out.push_str(&" ".repeat(pad + 2));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.iter().map(|h| paint(h, "1")).collect());
    for row in rows {
        line(row.clone());
    }
}

/// Width without ANSI escapes.
fn visible_width(s: &str) -> usize {
    let mut width = 0;
    let mut in_escape = false;
    for c in s.chars() {
        match (in_escape, c) {
            (false, '\x1b') => in_escape = true,
            (true, 'm') => in_escape = false,
            (true, _) => {}
            (false, _) => width += 1,
        }
    }
    width
}
