//! A run's `loss.png` and `report.html`, drawn from `metrics.csv` and the sample grids for any
//! model's metrics and charts.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::engine::Chart;
use crate::viz::{self, report, Curve};

/// Colours of the curves of one chart, in order.
const COLOURS: [([u8; 3], &str); 6] = [
    ([31, 119, 180], "#1f77b4"),
    ([255, 127, 14], "#ff7f0e"),
    ([44, 160, 44], "#2ca02c"),
    ([214, 39, 40], "#d62728"),
    ([148, 103, 189], "#9467bd"),
    ([140, 86, 75], "#8c564b"),
];

/// metrics.csv: the column names (after `step`) and each row's values (step first).
pub fn read_metrics(path: &Path) -> Result<(Vec<String>, Vec<Vec<f64>>)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = text.lines();
    let names: Vec<String> = lines.next().unwrap_or("").split(',').skip(1).map(str::to_string).collect();
    let mut rows = Vec::new();
    for (i, line) in lines.enumerate() {
        let v: Vec<f64> = line
            .split(',')
            .map(|s| s.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .with_context(|| format!("{} line {}: not numbers", path.display(), i + 2))?;
        if v.len() != names.len() + 1 {
            bail!("{} line {}: expected {} columns", path.display(), i + 2, names.len() + 1);
        }
        rows.push(v);
    }
    Ok((names, rows))
}

/// An exponential moving average, so noisy per-step losses read as trends.
fn smoothed(points: &[(f64, f64)], alpha: f64) -> Vec<(f64, f64)> {
    let mut acc = None;
    points
        .iter()
        .map(|&(x, y)| {
            let a = acc.map_or(y, |a: f64| a + alpha * (y - a));
            acc = Some(a);
            (x, a)
        })
        .collect()
}

/// A chart's curves: each named metric's (step, value) points from a CSV's columns.
type Drawn<'a> = (&'a Chart, Vec<(&'static str, Vec<(f64, f64)>)>);

/// The curves of `charts` from the CSV at `path`, smoothed for per-step noise when `smooth`.
fn curves<'a>(path: &Path, charts: &'a [Chart], smooth: bool) -> Result<Vec<Drawn<'a>>> {
    let (names, rows) = read_metrics(path)?;
    let alpha = if smooth { 2.0 / (1.0 + (rows.len() as f64 / 50.0).max(1.0)) } else { 1.0 };
    let column = |name: &str| -> Option<Vec<(f64, f64)>> {
        let i = names.iter().position(|n| n == name)? + 1;
        Some(smoothed(&rows.iter().map(|r| (r[0], r[i])).collect::<Vec<_>>(), alpha))
    };
    Ok(charts.iter().map(|c| (c, c.metrics.iter().filter_map(|m| column(m).map(|pts| (*m, pts))).collect())).collect())
}

/// loss.png (the charts stacked) and report.html (charts, grids, config) from metrics.csv, and
/// from eval.csv the `eval_charts` when the run evaluated itself.
pub fn write_plots_and_report(
    dir: &Path,
    charts: &[Chart],
    eval_charts: &[Chart],
    config: &str,
    adapter: &str,
    summary: String,
) -> Result<()> {
    let mut drawn = curves(&dir.join("metrics.csv"), charts, true)?;
    let eval = dir.join("eval.csv");
    if eval.exists() && !eval_charts.is_empty() {
        drawn.extend(curves(&eval, eval_charts, false)?);
    }

    let (width, height) = (800u32, 250u32);
    let mut png = image::RgbImage::from_pixel(width, height * drawn.len().max(1) as u32, image::Rgb([255; 3]));
    for (k, (chart, curves)) in drawn.iter().enumerate() {
        let lines: Vec<Curve> = curves
            .iter()
            .zip(COLOURS.iter().cycle())
            .map(|((_, pts), (rgb, _))| Curve { values: pts, color: *rgb })
            .collect();
        let img = viz::plot_curves(&lines, width, height, chart.range);
        image::imageops::replace(&mut png, &img, 0, (k as u32 * height) as i64);
    }
    viz::save_png(&dir.join("loss.png"), &image::DynamicImage::ImageRgb8(png), 1)?;

    let report_charts = drawn
        .iter()
        .map(|(chart, curves)| report::ReportChart {
            title: chart.title,
            curves: curves
                .iter()
                .zip(COLOURS.iter().cycle())
                .map(|((n, pts), (_, hex))| (*n, *hex, pts.clone()))
                .collect(),
            range: chart.range,
        })
        .collect();
    report::write(
        &dir.join("report.html"),
        &report::Report {
            title: &format!("shadergan run: {}", dir.display()),
            adapter,
            config_toml: config,
            charts: report_charts,
            images: sample_grids(dir, 12)?,
            summary,
        },
    )?;
    Ok(())
}

/// At most `keep` of the run's sample grids (PNG bytes with a caption), evenly spread over the
/// run and always including the last, so the report stays small.
pub fn sample_grids(dir: &Path, keep: usize) -> Result<Vec<(String, Vec<u8>)>> {
    let mut grids = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir.join("samples")) else { return Ok(grids) };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    files.sort();
    let stride = files.len().div_ceil(keep).max(1);
    for (i, f) in files.iter().enumerate() {
        if i % stride == 0 || i + 1 == files.len() {
            let name = f.file_stem().map(|s| s.to_string_lossy().replace("step-", "step ")).unwrap_or_default();
            grids.push((name, std::fs::read(f)?));
        }
    }
    Ok(grids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_chart_is_drawn_with_its_range_and_names() {
        let dir = tempfile::tempdir().unwrap();
        let rows: String = (1..=20).map(|s| format!("{s},-0.2,0.1,0.07,-0.08\n")).collect();
        std::fs::write(dir.path().join("metrics.csv"), format!("step,d_loss,g_loss,d_real,d_fake\n{rows}")).unwrap();
        let charts = [
            Chart { title: "Losses", metrics: vec!["d_loss", "g_loss"], range: None },
            Chart { title: "Critic scores", metrics: vec!["d_real", "d_fake"], range: None },
        ];
        write_plots_and_report(dir.path(), &charts, &[], "[train]\n", "test adapter", String::new()).unwrap();
        let png = image::open(dir.path().join("loss.png")).unwrap();
        assert_eq!(png.height(), 500, "two stacked charts");
        let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
        assert!(html.contains("Critic scores") && html.contains("d_fake") && html.contains("g_loss"));
    }

    #[test]
    fn a_row_with_the_wrong_column_count_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.csv");
        std::fs::write(&path, "step,a,b\n1,0.5,0.5\n2,0.5\n").unwrap();
        let e = read_metrics(&path).unwrap_err().to_string();
        assert!(e.contains("line 3") && e.contains("3 columns"), "{e}");
    }
}
