//! The pieces every page is made of: escaping, the layout, times, numbers and sparklines.

use std::fmt::Write;

/// Text for HTML, attribute values included.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A query-string or path component: everything but RFC 3986's unreserved characters
/// percent-encoded.
pub fn url_part(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A whole page: the navigation, `body` in `<main>` (what the refresh replaces), the
/// stylesheet and the script served by the node itself.
pub fn page(title: &str, current: &str, body: &str) -> String {
    let nav = [("/", "Fleet"), ("/pipeline", "Pipeline")]
        .iter()
        .map(|(href, name)| {
            let here = if *name == current {
                " aria-current=\"page\""
            } else {
                ""
            };
            format!("<a href=\"{href}\"{here}>{name}</a>")
        })
        .collect::<Vec<_>>()
        .join(" ");
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · panoptes</title>\
         <link rel=\"stylesheet\" href=\"/static/panoptes.css\">\
         <script src=\"/static/panoptes.js\" defer></script></head>\
         <body><header><strong>panoptes</strong> <nav>{nav}</nav>\
         <span class=\"refresh\" id=\"refresh\"></span></header>\
         <main data-refresh=\"10\">{body}</main></body></html>\n",
        esc(title)
    )
}

/// A time as `<time>`: UTC in the page, the viewer's zone once the script runs.
pub fn time(ms: u64) -> String {
    let iso = iso_utc(ms);
    format!(
        "<time datetime=\"{iso}\">{}</time>",
        iso.replace('T', " ").replace('Z', " UTC")
    )
}

/// `YYYY-MM-DDTHH:MM:SSZ` of Unix milliseconds.
pub fn iso_utc(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// The Gregorian date of a day count from 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// A rate with an SI prefix: `12.3 M`.
pub fn si(value: f64) -> String {
    let (v, prefix) = match value.abs() {
        a if a >= 1e9 => (value / 1e9, " G"),
        a if a >= 1e6 => (value / 1e6, " M"),
        a if a >= 1e3 => (value / 1e3, " k"),
        _ => (value, " "),
    };
    format!("{v:.1}{prefix}")
}

/// An inline SVG sparkline of `points` (time, value), `width` x `height` pixels; empty
/// when there are fewer than two points.
pub fn sparkline(points: &[(u64, f64)], label: &str) -> String {
    const W: f64 = 120.0;
    const H: f64 = 24.0;
    if points.len() < 2 {
        return String::from("<span class=\"spark-empty\">–</span>");
    }
    let (t0, t1) = (points[0].0 as f64, points[points.len() - 1].0 as f64);
    let max = points.iter().map(|p| p.1).fold(0.0f64, f64::max);
    let span = (t1 - t0).max(1.0);
    let path = points
        .iter()
        .map(|(t, v)| {
            let x = (*t as f64 - t0) / span * W;
            let y = if max > 0.0 {
                H - v / max * (H - 2.0) - 1.0
            } else {
                H - 1.0
            };
            format!("{x:.1},{y:.1}")
        })
        .collect::<Vec<_>>()
        .join(" ");
    format!(
        "<svg class=\"spark\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\" \
         aria-label=\"{}\"><polyline fill=\"none\" points=\"{path}\"/></svg>",
        esc(label)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_url_parts() {
        assert_eq!(
            esc("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(url_part("sw 1/é?"), "sw%201%2F%C3%A9%3F");
        assert_eq!(url_part("a-b_c.d~"), "a-b_c.d~");
    }

    #[test]
    fn times_are_utc_iso() {
        assert_eq!(iso_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_utc(951_782_400_000), "2000-02-29T00:00:00Z");
        // Checked with Python: datetime.utcfromtimestamp(1796547723).
        assert_eq!(iso_utc(1_796_547_723_000), "2026-12-06T09:02:03Z");
        assert_eq!(
            time(1_796_547_723_000),
            "<time datetime=\"2026-12-06T09:02:03Z\">2026-12-06 09:02:03 UTC</time>"
        );
    }

    #[test]
    fn numbers_and_sparklines() {
        assert_eq!(si(1_234_567.0), "1.2 M");
        assert_eq!(si(12.0), "12.0 ");
        assert_eq!(
            sparkline(&[(0, 1.0)], "x"),
            "<span class=\"spark-empty\">–</span>"
        );
        let s = sparkline(&[(0, 0.0), (1000, 10.0)], "bits in");
        assert!(s.contains("points=\"0.0,23.0 120.0,1.0\""), "{s}");
        assert!(s.contains("aria-label=\"bits in\""), "{s}");
    }
}
