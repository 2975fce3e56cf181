//! Plots as SVG: training curves, and generic line charts for sweeps.

use std::path::Path;

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;

use super::metrics::EpochMetrics;
use crate::{Error, Result};

/// One named series of (x, y) points.
pub type Series = (String, Vec<(f64, f64)>);

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

fn range(series: &[Series], axis: impl Fn(&(f64, f64)) -> f64) -> (f64, f64) {
    let values = series.iter().flat_map(|(_, pts)| pts.iter().map(&axis));
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if !lo.is_finite() {
        (0.0, 1.0)
    } else if hi - lo < 1e-12 {
        (lo - 0.5, hi + 0.5)
    } else {
        let pad = 0.05 * (hi - lo);
        (lo - pad, hi + pad)
    }
}

/// The range of one axis with a multiplicative margin, for a log axis (values must be positive).
fn log_range(series: &[Series], axis: impl Fn(&(f64, f64)) -> f64) -> (f64, f64) {
    let values = series
        .iter()
        .flat_map(|(_, pts)| pts.iter().map(&axis))
        .filter(|v| *v > 0.0);
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if !lo.is_finite() {
        (1.0, 10.0)
    } else {
        (lo / 1.25, hi * 1.25)
    }
}

fn draw_panel<DB: DrawingBackend, X, Y>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    x_axis: X,
    y_axis: Y,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>>
where
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(x_axis, y_axis)?;
    chart.configure_mesh().x_desc(x_label).y_desc(y_label).draw()?;
    for (i, (name, pts)) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// Draws one panel into an SVG file of `size`.
fn plot_svg(
    out: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, plotters::coord::Shift>) -> std::result::Result<(), String>,
) -> Result<()> {
    let root = SVGBackend::new(out, size).into_drawing_area();
    let drawn = root
        .fill(&WHITE)
        .map_err(|e| e.to_string())
        .and_then(|_| draw(&root))
        .and_then(|_| root.present().map_err(|e| e.to_string()));
    drawn.map_err(|e| Error::format(out, format!("could not draw the plot: {e}")))
}

/// A line chart of `series` into an SVG file.
pub fn plot_lines(title: &str, x_label: &str, y_label: &str, series: &[Series], out: &Path) -> Result<()> {
    let (x0, x1) = range(series, |p| p.0);
    let (y0, y1) = range(series, |p| p.1);
    plot_svg(out, (900, 560), |root| {
        draw_panel(root, title, x_label, y_label, series, x0..x1, y0..y1).map_err(|e| e.to_string())
    })
}

/// A line chart of `series` with both axes logarithmic (points must be positive).
pub fn plot_lines_log_log(title: &str, x_label: &str, y_label: &str, series: &[Series], out: &Path) -> Result<()> {
    let (x0, x1) = log_range(series, |p| p.0);
    let (y0, y1) = log_range(series, |p| p.1);
    plot_svg(out, (900, 560), |root| {
        draw_panel(
            root,
            title,
            x_label,
            y_label,
            series,
            (x0..x1).log_scale(),
            (y0..y1).log_scale(),
        )
        .map_err(|e| e.to_string())
    })
}

/// Loss (train and validation) and top-1 accuracy (train and validation) against epoch, two panels.
pub fn plot_training_curves(metrics: &[EpochMetrics], out: &Path) -> Result<()> {
    let pts = |f: &dyn Fn(&EpochMetrics) -> f64| metrics.iter().map(|m| (m.epoch as f64, f(m))).collect::<Vec<_>>();
    let loss = [
        ("train loss".to_string(), pts(&|m| m.train_loss)),
        ("validation loss".to_string(), pts(&|m| m.val_loss)),
    ];
    let acc = [
        ("train top-1 %".to_string(), pts(&|m| 100.0 * m.train_top1)),
        ("validation top-1 %".to_string(), pts(&|m| 100.0 * m.val_top1)),
    ];
    let panel = |area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>, title, y_label, series: &[Series]| {
        let (x0, x1) = range(series, |p| p.0);
        let (y0, y1) = range(series, |p| p.1);
        draw_panel(area, title, "epoch", y_label, series, x0..x1, y0..y1).map_err(|e| e.to_string())
    };
    plot_svg(out, (1200, 480), |root| {
        let (left, right) = root.split_horizontally(600);
        panel(&left, "loss", "cross-entropy", &loss)?;
        panel(&right, "accuracy", "top-1 %", &acc)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_svg_with_series_names() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("lines.svg");
        let series = vec![
            ("dense".to_string(), vec![(0.0, 1.0), (1.0, 2.0)]),
            ("ideal".to_string(), vec![(0.0, 0.5), (1.0, 2.5)]),
        ];
        plot_lines("throughput", "kept params", "samples/s", &series, &out).unwrap();
        let svg = std::fs::read_to_string(&out).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains("dense") && svg.contains("ideal"),
            "{}",
            &svg[..200.min(svg.len())]
        );
    }
}
