//! Plots as SVG: training curves, and generic line charts for sweeps.

use std::path::Path;

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

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let (x0, x1) = range(series, |p| p.0);
    let (y0, y1) = range(series, |p| p.1);
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(x0..x1, y0..y1)?;
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

/// A line chart of `series` into an SVG file.
pub fn plot_lines(title: &str, x_label: &str, y_label: &str, series: &[Series], out: &Path) -> Result<()> {
    let root = SVGBackend::new(out, (900, 560)).into_drawing_area();
    let drawn = root
        .fill(&WHITE)
        .map_err(|e| e.to_string())
        .and_then(|_| draw_panel(&root, title, x_label, y_label, series).map_err(|e| e.to_string()))
        .and_then(|_| root.present().map_err(|e| e.to_string()));
    drawn.map_err(|e| Error::format(out, format!("could not draw the plot: {e}")))
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
    let root = SVGBackend::new(out, (1200, 480)).into_drawing_area();
    let drawn = root.fill(&WHITE).map_err(|e| e.to_string()).and_then(|_| {
        let (left, right) = root.split_horizontally(600);
        draw_panel(&left, "loss", "epoch", "cross-entropy", &loss).map_err(|e| e.to_string())?;
        draw_panel(&right, "accuracy", "epoch", "top-1 %", &acc).map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())
    });
    drawn.map_err(|e| Error::format(out, format!("could not draw the training curves: {e}")))
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
