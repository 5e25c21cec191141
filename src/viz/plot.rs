//! Line charts rendered straight into pixels (no font files needed): a tiny built-in digit font
//! labels the axes; the legend is given by colour (and written out in the report).

use image::{Rgb, RgbImage};

/// One line of a chart.
pub struct Curve<'a> {
    /// Its (x, y) points.
    pub values: &'a [(f64, f64)],
    /// Its RGB colour.
    pub color: [u8; 3],
}

/// 3x5 glyphs for numbers: each row is three bits, left to right.
fn glyph(c: char) -> Option<[u8; 5]> {
    Some(match c {
        '0' => [7, 5, 5, 5, 7],
        '1' => [2, 6, 2, 2, 7],
        '2' => [7, 1, 7, 4, 7],
        '3' => [7, 1, 7, 1, 7],
        '4' => [5, 5, 7, 1, 1],
        '5' => [7, 4, 7, 1, 7],
        '6' => [7, 4, 7, 5, 7],
        '7' => [7, 1, 1, 1, 1],
        '8' => [7, 5, 7, 5, 7],
        '9' => [7, 5, 7, 1, 7],
        '.' => [0, 0, 0, 0, 2],
        '-' => [0, 0, 7, 0, 0],
        'k' => [4, 5, 6, 5, 5],
        _ => return None,
    })
}

fn text(img: &mut RgbImage, x: i64, y: i64, s: &str, scale: i64, color: [u8; 3]) {
    for (i, c) in s.chars().enumerate() {
        let Some(g) = glyph(c) else { continue };
        for (row, bits) in g.iter().enumerate() {
            for col in 0..3 {
                if bits & (4 >> col) != 0 {
                    for dy in 0..scale {
                        for dx in 0..scale {
                            put(img, x + (i as i64 * 4 + col) * scale + dx, y + row as i64 * scale + dy, color);
                        }
                    }
                }
            }
        }
    }
}

fn put(img: &mut RgbImage, x: i64, y: i64, c: [u8; 3]) {
    if x >= 0 && y >= 0 && (x as u32) < img.width() && (y as u32) < img.height() {
        img.put_pixel(x as u32, y as u32, Rgb(c));
    }
}

fn line(img: &mut RgbImage, (x0, y0): (f64, f64), (x1, y1): (f64, f64), c: [u8; 3]) {
    let steps = ((x1 - x0).abs().max((y1 - y0).abs()).ceil() as usize).max(1);
    for i in 0..=steps {
        let t = i as f64 / steps as f64;
        put(img, (x0 + (x1 - x0) * t).round() as i64, (y0 + (y1 - y0) * t).round() as i64, c);
    }
}

fn label(v: f64) -> String {
    if v.abs() >= 10_000.0 {
        format!("{}k", (v / 1000.0).round())
    } else if v.abs() >= 10.0 || v == 0.0 {
        format!("{}", v.round())
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// A 1-2-5 tick spacing giving about `count` ticks over `span`.
fn tick_step(span: f64, count: f64) -> f64 {
    let raw = (span / count).max(1e-12);
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag)
}

/// Curves on shared axes; `y_range` fixes the vertical extent (else it fits the data).
pub fn plot_curves(curves: &[Curve], width: u32, height: u32, y_range: Option<(f64, f64)>) -> RgbImage {
    let mut img = RgbImage::from_pixel(width, height, Rgb([255, 255, 255]));
    let (left, right, top, bottom) = (56.0, 12.0, 12.0, 28.0);
    let pts = curves.iter().flat_map(|c| c.values.iter()).filter(|(x, y)| x.is_finite() && y.is_finite());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        return img;
    }
    if let Some((a, b)) = y_range {
        (y0, y1) = (a, b);
    }
    if x1 - x0 < 1e-9 {
        x1 = x0 + 1.0;
    }
    if y1 - y0 < 1e-9 {
        y1 = y0 + 1.0;
    }
    let (pw, ph) = (width as f64 - left - right, height as f64 - top - bottom);
    let sx = |x: f64| left + (x - x0) / (x1 - x0) * pw;
    let sy = |y: f64| top + (1.0 - (y.clamp(y0, y1) - y0) / (y1 - y0)) * ph;
    let grey = [225, 225, 225];
    let dark = [60, 60, 60];
    let ys = tick_step(y1 - y0, 5.0);
    let mut t = (y0 / ys).ceil() * ys;
    while t <= y1 + 1e-9 {
        line(&mut img, (left, sy(t)), (left + pw, sy(t)), grey);
        text(&mut img, 4, sy(t) as i64 - 5, &label(t), 2, dark);
        t += ys;
    }
    let xs = tick_step(x1 - x0, 6.0);
    let mut t = (x0 / xs).ceil() * xs;
    while t <= x1 + 1e-9 {
        line(&mut img, (sx(t), top), (sx(t), top + ph), grey);
        let s = label(t);
        text(&mut img, sx(t) as i64 - (s.len() as i64 * 4), (top + ph + 8.0) as i64, &s, 2, dark);
        t += xs;
    }
    line(&mut img, (left, top), (left, top + ph), dark);
    line(&mut img, (left, top + ph), (left + pw, top + ph), dark);
    for c in curves {
        for w in c.values.windows(2) {
            if w.iter().all(|(x, y)| x.is_finite() && y.is_finite()) {
                line(&mut img, (sx(w[0].0), sy(w[0].1)), (sx(w[1].0), sy(w[1].1)), c.color);
            }
        }
    }
    img
}
