//! `report.html`: one self-contained page per run (config, adapter, loss curves, the fixed-noise
//! grids over time) that opens in any browser, like the CycleGAN reference's result pages.

use std::path::Path;

use crate::checkpoint::{write_atomic, CheckpointError};

/// What report.html shows.
pub struct Report<'a> {
    /// The page's title.
    pub title: &'a str,
    /// The adapter the run used.
    pub adapter: &'a str,
    /// The run's config.
    pub config_toml: &'a str,
    /// The charts, top to bottom.
    pub charts: Vec<ReportChart<'a>>,
    /// (caption, PNG bytes)
    pub images: Vec<(String, Vec<u8>)>,
    /// A sentence or two under the title.
    pub summary: String,
}

/// One curve of a chart: (name, colour, points).
pub type Curve<'a> = (&'a str, &'a str, Vec<(f64, f64)>);

/// One chart of the report.
pub struct ReportChart<'a> {
    /// Its heading.
    pub title: &'a str,
    /// (name, colour, points)
    pub curves: Vec<Curve<'a>>,
    /// The vertical range (None: fitted to the data).
    pub range: Option<(f64, f64)>,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Standard base64 (RFC 4648).
pub fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn svg_chart(curves: &[Curve], y_fixed: Option<(f64, f64)>) -> String {
    let (w, h, l, b) = (720.0, 260.0, 50.0, 30.0);
    let all: Vec<(f64, f64)> =
        curves.iter().flat_map(|c| c.2.iter().copied()).filter(|(x, y)| x.is_finite() && y.is_finite()).collect();
    if all.is_empty() {
        return "<p>(no data)</p>".into();
    }
    let x0 = all.iter().map(|p| p.0).fold(f64::MAX, f64::min);
    let x1 = all.iter().map(|p| p.0).fold(f64::MIN, f64::max).max(x0 + 1.0);
    let (y0, y1) = y_fixed.unwrap_or_else(|| {
        let lo = all.iter().map(|p| p.1).fold(f64::MAX, f64::min);
        let hi = all.iter().map(|p| p.1).fold(f64::MIN, f64::max);
        (lo, hi.max(lo + 1e-6))
    });
    let sx = |x: f64| l + (x - x0) / (x1 - x0) * (w - l - 10.0);
    let sy = |y: f64| 10.0 + (1.0 - (y.clamp(y0, y1) - y0) / (y1 - y0)) * (h - b - 10.0);
    let mut s = format!("<svg viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" xmlns=\"http://www.w3.org/2000/svg\" font-family=\"sans-serif\" font-size=\"11\">");
    for i in 0..=4 {
        let y = y0 + (y1 - y0) * i as f64 / 4.0;
        s += &format!("<line x1=\"{l}\" x2=\"{}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#ddd\"/><text x=\"4\" y=\"{:.1}\">{:.3}</text>", w - 10.0, sy(y), sy(y), sy(y) + 4.0, y);
    }
    s += &format!(
        "<text x=\"{l}\" y=\"{}\">step {x0:.0}</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">step {x1:.0}</text>",
        h - 8.0,
        w - 10.0,
        h - 8.0
    );
    for (i, (name, color, pts)) in curves.iter().enumerate() {
        let path: Vec<String> = pts
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
            .collect();
        s +=
            &format!("<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.2\" points=\"{}\"/>", path.join(" "));
        s += &format!(
            "<rect x=\"{}\" y=\"12\" width=\"10\" height=\"10\" fill=\"{color}\"/><text x=\"{}\" y=\"21\">{}</text>",
            l + 10.0 + i as f64 * 110.0,
            l + 24.0 + i as f64 * 110.0,
            escape(name)
        );
    }
    s + "</svg>"
}

/// Writes the report, atomically.
pub fn write(path: &Path, r: &Report) -> Result<(), CheckpointError> {
    let mut html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title><style>body{{font-family:sans-serif;max-width:980px;margin:2em auto;color:#222}}pre{{background:#f4f4f4;padding:1em;overflow:auto}}figure{{display:inline-block;margin:6px}}figcaption{{text-align:center;font-size:12px}}img{{image-rendering:pixelated}}</style></head><body><h1>{t}</h1><p><b>Adapter:</b> {a}</p><p>{summary}</p>",
        t = escape(r.title),
        a = escape(r.adapter),
        summary = escape(&r.summary)
    );
    for chart in &r.charts {
        html += &format!("<h2>{}</h2>", escape(chart.title));
        html += &svg_chart(&chart.curves, chart.range);
    }
    html += "<h2>Samples over training</h2>";
    for (caption, png) in r.images.iter().rev() {
        html += &format!(
            "<figure><img src=\"data:image/png;base64,{}\"><figcaption>{}</figcaption></figure>",
            base64(png),
            escape(caption)
        );
    }
    html += &format!("<h2>Configuration</h2><pre>{}</pre></body></html>", escape(r.config_toml));
    write_atomic(path, html.as_bytes())
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(super::base64(plain.as_bytes()), enc);
        }
    }
}
