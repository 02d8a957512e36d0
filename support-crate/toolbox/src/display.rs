//! Rich output in notebooks: tables, HTML, and numbers in human units.
//!
//! The kernel shows a value through its `evcxr_display` method when a cell ends with that
//! value. The method prints one block of the kernel's display protocol:
//! `EVCXR_BEGIN_CONTENT <mime type>`, the content, `EVCXR_END_CONTENT`. A cell keeps one
//! output per MIME type (a later table replaces an earlier one in the same cell), so show one
//! table or chart per cell, and print text for the rest.

use std::fmt;
use std::time::Duration;

/// Prints `content` as one output of type `mime` through the kernel's display protocol.
///
/// Outside a notebook this prints the protocol's markers around the content.
///
/// ```
/// parcours::display::emit("text/html", "<b>bold</b>");
/// ```
pub fn emit(mime: &str, content: &str) {
    println!("EVCXR_BEGIN_CONTENT {mime}\n{content}\nEVCXR_END_CONTENT");
}

/// Gives every value with `Debug` an `evcxr_display` method that shows it as text, so that a
/// cell ending with such a value compiles once instead of twice.
///
/// The kernel shows a cell's last expression by compiling the cell with
/// `(expression).evcxr_display();` and, when that does not compile (most values have no such
/// method), compiling it again with `Debug` formatting: a cell ending in `1 + 1` paid for two
/// compilations. With this trait in scope (the prelude brings it) the first one succeeds and
/// shows what the second would have: `{:?}` as `text/plain`. Types with an `evcxr_display` of
/// their own, as the toolbox's tables and charts, keep it: an inherent method comes first.
///
/// ```
/// use parcours::prelude::*;
/// (1 + 1).evcxr_display(); // prints the display protocol's block around "2"
/// ```
pub trait ShowDebug {
    /// Shows `self` as `text/plain`, formatted with `Debug`.
    fn evcxr_display(&self);
}

impl<T: fmt::Debug + ?Sized> ShowDebug for T {
    fn evcxr_display(&self) {
        emit("text/plain", &format!("{self:?}"));
    }
}

/// Escapes `&`, `<`, `>` and `"` for HTML.
///
/// ```
/// assert_eq!(parcours::display::escape_html("a < b"), "a &lt; b");
/// ```
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

/// A piece of HTML that a notebook shows as rendered HTML.
///
/// ```
/// use parcours::prelude::*;
/// let note = Html::new("<b>Rayon</b> is ready");
/// assert!(note.as_str().contains("Rayon"));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Html(String);

impl Html {
    /// Wraps HTML source (not escaped: it is shown as markup).
    pub fn new(html: impl Into<String>) -> Self {
        Html(html.into())
    }

    /// The HTML source.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Shows the HTML in the notebook.
    pub fn evcxr_display(&self) {
        emit("text/html", &self.0);
    }
}

/// A table with a header row, shown as HTML in a notebook and as aligned text elsewhere.
///
/// ```
/// use parcours::prelude::*;
///
/// let table = Table::new(["threads", "time"])
///     .title("Scaling")
///     .row([1.to_string(), "2.0 s".into()])
///     .row([2.to_string(), "1.1 s".into()]);
/// assert_eq!(table.len(), 2);
/// assert!(table.to_string().contains("1.1 s"));
/// assert!(table.to_html().contains("<th>threads</th>"));
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    title: Option<String>,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column names and no rows.
    pub fn new<I, S>(header: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: fmt::Display,
    {
        Table {
            title: None,
            header: header.into_iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Sets the caption shown above the table.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// Adds a row (builder style).
    pub fn row<I, S>(mut self, cells: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: fmt::Display,
    {
        self.push_row(cells);
        self
    }

    /// Adds a row. A row shorter than the header is padded with empty cells.
    ///
    /// # Panics
    /// If the row has more cells than the header has columns.
    pub fn push_row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: fmt::Display,
    {
        let mut row: Vec<String> = cells.into_iter().map(|s| s.to_string()).collect();
        assert!(
            row.len() <= self.header.len(),
            "a row of {} cells does not fit a table of {} columns ({:?})",
            row.len(),
            self.header.len(),
            self.header
        );
        row.resize(self.header.len(), String::new());
        self.rows.push(row);
    }

    /// The number of rows, the header excluded.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The rows, each a cell per column.
    pub fn rows(&self) -> &[Vec<String>] {
        &self.rows
    }

    /// The table as an HTML `<table>`.
    pub fn to_html(&self) -> String {
        let mut html = String::from("<table>\n");
        if let Some(title) = &self.title {
            html += &format!("<caption>{}</caption>\n", escape_html(title));
        }
        html += "<thead><tr>";
        for name in &self.header {
            html += &format!("<th>{}</th>", escape_html(name));
        }
        html += "</tr></thead>\n<tbody>\n";
        for row in &self.rows {
            html += "<tr>";
            for cell in row {
                html += &format!("<td>{}</td>", escape_html(cell));
            }
            html += "</tr>\n";
        }
        html + "</tbody>\n</table>"
    }

    /// Shows the table in the notebook.
    pub fn evcxr_display(&self) {
        emit("text/html", &self.to_html());
    }
}

impl fmt::Display for Table {
    /// Aligned plain text, for terminals and logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        if let Some(title) = &self.title {
            writeln!(f, "{title}")?;
        }
        let line = |f: &mut fmt::Formatter<'_>, cells: &[String]| -> fmt::Result {
            let padded: Vec<String> = cells
                .iter()
                .zip(&widths)
                .map(|(cell, &width)| format!("{cell:>width$}"))
                .collect();
            writeln!(f, "{}", padded.join("  ").trim_end())
        };
        line(f, &self.header)?;
        let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
        line(f, &rule)?;
        for row in &self.rows {
            line(f, row)?;
        }
        Ok(())
    }
}

/// A duration with three significant digits and a unit that fits: ns, µs, ms or s.
///
/// ```
/// use std::time::Duration;
/// use parcours::prelude::*;
/// assert_eq!(format_duration(Duration::from_micros(1500)), "1.50 ms");
/// assert_eq!(format_duration(Duration::from_secs(42)), "42.0 s");
/// ```
pub fn format_duration(duration: Duration) -> String {
    let seconds = duration.as_secs_f64();
    let (value, unit) = if seconds >= 1.0 {
        (seconds, "s")
    } else if seconds >= 1e-3 {
        (seconds * 1e3, "ms")
    } else if seconds >= 1e-6 {
        (seconds * 1e6, "µs")
    } else {
        (seconds * 1e9, "ns")
    };
    format!("{} {unit}", three_digits(value))
}

/// A quantity with three significant digits and an SI prefix (k, M, G, T, ...), then `unit`.
///
/// ```
/// use parcours::prelude::*;
/// assert_eq!(format_si(2.5e9, "FLOP/s"), "2.50 GFLOP/s");
/// assert_eq!(format_si(950.0, "B"), "950 B");
/// assert_eq!(format_si(0.0123, "s"), "12.3 ms");
/// ```
pub fn format_si(value: f64, unit: &str) -> String {
    const PREFIXES: [(f64, &str); 10] = [
        (1e15, "P"),
        (1e12, "T"),
        (1e9, "G"),
        (1e6, "M"),
        (1e3, "k"),
        (1.0, ""),
        (1e-3, "m"),
        (1e-6, "µ"),
        (1e-9, "n"),
        (1e-12, "p"),
    ];
    if value == 0.0 || !value.is_finite() {
        return format!("{value} {unit}");
    }
    let magnitude = value.abs();
    let (scale, prefix) = PREFIXES
        .iter()
        .find(|(scale, _)| magnitude >= *scale)
        .unwrap_or(&PREFIXES[PREFIXES.len() - 1]);
    format!("{} {prefix}{unit}", three_digits(value / scale))
}

/// A size in bytes with binary units (KiB, MiB, GiB, TiB), as caches and memory are sold.
///
/// ```
/// use parcours::display::format_bytes;
/// assert_eq!(format_bytes(32 * 1024), "32.0 KiB");
/// assert_eq!(format_bytes(1536 << 20), "1.50 GiB");
/// assert_eq!(format_bytes(512), "512 B");
/// ```
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = "B";
    for next in UNITS {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = next;
    }
    if unit == "B" {
        format!("{bytes} B")
    } else {
        format!("{} {unit}", three_digits(value))
    }
}

/// Three significant digits for values in [1, 1000).
fn three_digits(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude >= 100.0 {
        format!("{value:.0}")
    } else if magnitude >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped() {
        let table = Table::new(["a<b"]).row(["x & y"]);
        let html = table.to_html();
        assert!(html.contains("<th>a&lt;b</th>"));
        assert!(html.contains("<td>x &amp; y</td>"));
    }

    #[test]
    fn text_columns_are_aligned() {
        let text = Table::new(["n", "value"]).row(["1000", "x"]).to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "   n  value");
        assert_eq!(lines[2], "1000      x");
    }

    #[test]
    fn short_rows_are_padded() {
        let table = Table::new(["a", "b", "c"]).row(["1"]);
        assert_eq!(table.rows()[0], vec!["1", "", ""]);
    }

    #[test]
    #[should_panic(expected = "does not fit a table of 1 columns")]
    fn long_rows_are_refused() {
        let _ = Table::new(["a"]).row(["1", "2"]);
    }

    #[test]
    fn units_are_chosen_by_magnitude() {
        assert_eq!(format_duration(Duration::from_nanos(12)), "12.0 ns");
        assert_eq!(format_duration(Duration::from_nanos(123_456)), "123 µs");
        assert_eq!(format_si(-2.0e6, "B"), "-2.00 MB");
        assert_eq!(format_si(1.5e-13, "s"), "0.15 ps");
    }
}
