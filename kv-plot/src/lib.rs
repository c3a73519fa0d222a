//! SVG line charts with plotters, for every kvlab chart: a run's time
//! series, throughput against cluster size, latency against load, a setup's
//! history by commit. Repeated trials are drawn as their median with a
//! band from the smallest to the largest trial, never as a zigzag. SVG
//! needs no font files, so this works on any machine that builds kvlab.

use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::prelude::*;

const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// One named line of points, with an optional spread band around it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    /// `(x, low, high)` per point: the range of repeated trials.
    pub band: Vec<(f64, f64, f64)>,
}

impl Series {
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Series {
        Series {
            name: name.into(),
            points,
            band: Vec::new(),
        }
    }

    /// Several values per x (repeated trials): the median of each x as the
    /// line, the smallest and largest as the band. Sorted by x.
    pub fn of_trials(name: impl Into<String>, values: &[(f64, f64)]) -> Series {
        let mut xs: Vec<f64> = values.iter().map(|v| v.0).collect();
        xs.sort_by(f64::total_cmp);
        xs.dedup();
        let mut s = Series::new(name, Vec::with_capacity(xs.len()));
        for x in xs {
            let mut ys: Vec<f64> = values.iter().filter(|v| v.0 == x).map(|v| v.1).collect();
            ys.sort_by(f64::total_cmp);
            let n = ys.len();
            let median = if n % 2 == 1 {
                ys[n / 2]
            } else {
                (ys[n / 2 - 1] + ys[n / 2]) / 2.0
            };
            s.points.push((x, median));
            if n > 1 {
                s.band.push((x, ys[0], ys[n - 1]));
            }
        }
        s
    }
}

/// Draws lines (their points, and their bands) on one chart.
pub fn line_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> Result<()> {
    let err = |e: &dyn std::fmt::Display| anyhow!("cannot draw {}: {e}", path.display());
    let (mut x_max, mut y_max) = (1.0f64, 1.0f64);
    let mut x_min = f64::INFINITY;
    for s in series {
        let band = s.band.iter().map(|&(x, _, hi)| (x, hi));
        for (x, y) in s.points.iter().copied().chain(band) {
            x_max = x_max.max(x);
            x_min = x_min.min(x);
            y_max = y_max.max(y);
        }
    }
    if !x_min.is_finite() || x_min >= x_max {
        x_min = 0.0;
    }
    let root = SVGBackend::new(path, (900, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(x_min..x_max * 1.02, 0.0..y_max * 1.1)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .y_label_formatter(&|v| human(*v))
        .draw()
        .map_err(|e| err(&e))?;
    for (i, s) in series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        if s.band.len() > 1 {
            // Upper edge left to right, lower edge back.
            let outline: Vec<(f64, f64)> = s
                .band
                .iter()
                .map(|&(x, _, hi)| (x, hi))
                .chain(s.band.iter().rev().map(|&(x, lo, _)| (x, lo)))
                .collect();
            chart
                .draw_series(std::iter::once(Polygon::new(
                    outline,
                    color.mix(0.2).filled(),
                )))
                .map_err(|e| err(&e))?;
        }
        for &(x, lo, hi) in &s.band {
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(x, lo), (x, hi)],
                    color.mix(0.6).stroke_width(1),
                )))
                .map_err(|e| err(&e))?;
        }
        let name = if s.band.is_empty() {
            s.name.clone()
        } else {
            format!("{} (median, band: min-max)", s.name)
        };
        chart
            .draw_series(LineSeries::new(
                s.points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(|e| err(&e))?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
        chart
            .draw_series(s.points.iter().map(|&p| Circle::new(p, 3, color.filled())))
            .map_err(|e| err(&e))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// `1.2M`, `340K`, `12`: axis labels and tables.
pub fn human(v: f64) -> String {
    if v.abs() >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v.abs() >= 1e3 {
        format!("{:.0}K", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trials_become_median_and_range_per_x() {
        let s = Series::of_trials(
            "t",
            &[(2.0, 5.0), (1.0, 10.0), (2.0, 1.0), (2.0, 3.0), (1.0, 20.0)],
        );
        assert_eq!(s.points, [(1.0, 15.0), (2.0, 3.0)]);
        assert_eq!(s.band, [(1.0, 10.0, 20.0), (2.0, 1.0, 5.0)]);
        let one = Series::of_trials("one", &[(1.0, 7.0)]);
        assert_eq!(one.points, [(1.0, 7.0)]);
        assert!(one.band.is_empty());
    }

    #[test]
    fn a_band_is_drawn_as_a_filled_polygon_in_the_svg() {
        let dir = std::env::temp_dir().join(format!("kv-plot-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("band.svg");
        let s = Series::of_trials(
            "tput",
            &[(1.0, 10.0), (1.0, 12.0), (2.0, 20.0), (2.0, 26.0)],
        );
        line_chart(&path, "title", "x", "y", &[s]).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.contains("<polygon"), "no band in {svg}");
        assert!(svg.contains("tput (median, band: min-max)"));
        let plain = dir.join("plain.svg");
        line_chart(
            &plain,
            "t",
            "x",
            "y",
            &[Series::new("p", vec![(1.0, 1.0), (2.0, 2.0)])],
        )
        .unwrap();
        assert!(!std::fs::read_to_string(&plain)
            .unwrap()
            .contains("<polygon"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
