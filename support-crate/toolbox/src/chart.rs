//! Inline charts: lines, points and bars, linear or log axes, several series, as SVG.
//!
//! Built on [`plotters`] with its SVG backend, so a chart needs no system font or graphics
//! library. A chart shows itself when a cell ends with it; [`Chart::to_svg`] returns the SVG
//! source for files and tests.
//!
//! One trap of the kernel (evcxr 0.22): when a cell's last expression *moves* a variable that
//! the same cell declared (`let points = ...; Chart::new("t").line("s", points)`), evcxr
//! gives up on the chart's display and prints its `Debug` text instead. Bind the chart first
//! and end the cell with its name (`let chart = ...; chart`), or pass `points.clone()`. The
//! course's notebook runner fails a cell that shows a course type's `Debug` text.
//!
//! ```
//! use parcours::prelude::*;
//!
//! let measured = [(1, 1.0), (2, 1.9), (4, 3.4)];
//! let ideal = [(1, 1.0), (2, 2.0), (4, 4.0)];
//! let chart = Chart::new("Speed-up of the sum")
//!     .x_label("threads")
//!     .y_label("speed-up")
//!     .line_points("measured", measured)
//!     .line("ideal", ideal);
//! let svg = chart.to_svg().unwrap();
//! assert!(svg.starts_with("<svg") && svg.contains("measured"));
//! ```

use std::fmt::Write as _;
use std::ops::Range;

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;

use crate::display::emit;

const WIDTH: u32 = 720;
const HEIGHT: u32 = 420;

/// Ten colours told apart by most readers, colour-blind ones included (Tableau 10).
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// A number that can be plotted: every primitive integer and float.
pub trait Plottable: Copy {
    /// The value as an `f64`.
    fn to_f64(self) -> f64;
}

macro_rules! plottable {
    ($($t:ty),*) => {$(
        impl Plottable for $t {
            fn to_f64(self) -> f64 { self as f64 }
        }
    )*};
}
plottable!(
    u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize, f32, f64
);

/// How a series is drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mark {
    Line,
    Points,
    LinePoints,
}

#[derive(Clone, Debug, PartialEq)]
struct Series {
    name: String,
    points: Vec<(f64, f64)>,
    mark: Mark,
}

/// A chart of one or more series over numeric x and y axes.
///
/// Points with a zero or negative coordinate on a log axis cannot be drawn and are left out;
/// [`Chart::to_svg`] says so in an error if nothing is left to draw.
#[derive(Clone, Debug, PartialEq)]
pub struct Chart {
    title: String,
    x_label: String,
    y_label: String,
    log_x: bool,
    log_y: bool,
    legend_lower_right: bool,
    size: (u32, u32),
    series: Vec<Series>,
}

impl Chart {
    /// An empty chart with a title.
    pub fn new(title: impl Into<String>) -> Self {
        Chart {
            title: title.into(),
            x_label: String::new(),
            y_label: String::new(),
            log_x: false,
            log_y: false,
            legend_lower_right: false,
            size: (WIDTH, HEIGHT),
            series: Vec::new(),
        }
    }

    /// Names the x axis; say the unit, as in `"size (bytes)"`.
    pub fn x_label(mut self, label: impl Into<String>) -> Self {
        self.x_label = label.into();
        self
    }

    /// Names the y axis; say the unit, as in `"time (ms)"`.
    pub fn y_label(mut self, label: impl Into<String>) -> Self {
        self.y_label = label.into();
        self
    }

    /// Uses a logarithmic x axis.
    pub fn log_x(mut self) -> Self {
        self.log_x = true;
        self
    }

    /// Uses a logarithmic y axis.
    pub fn log_y(mut self) -> Self {
        self.log_y = true;
        self
    }

    /// Puts the legend in the lower right corner instead of the upper left, where it would hide
    /// a curve.
    pub fn legend_lower_right(mut self) -> Self {
        self.legend_lower_right = true;
        self
    }

    /// Sets the size in pixels (default 720 × 420).
    pub fn size(mut self, width: u32, height: u32) -> Self {
        self.size = (width, height);
        self
    }

    /// Adds a series drawn as a line.
    pub fn line<X: Plottable, Y: Plottable>(
        self,
        name: impl Into<String>,
        points: impl IntoIterator<Item = (X, Y)>,
    ) -> Self {
        self.series(name, points, Mark::Line)
    }

    /// Adds a series drawn as points.
    pub fn points<X: Plottable, Y: Plottable>(
        self,
        name: impl Into<String>,
        points: impl IntoIterator<Item = (X, Y)>,
    ) -> Self {
        self.series(name, points, Mark::Points)
    }

    /// Adds a series drawn as a line with a mark at each point: for measurements.
    pub fn line_points<X: Plottable, Y: Plottable>(
        self,
        name: impl Into<String>,
        points: impl IntoIterator<Item = (X, Y)>,
    ) -> Self {
        self.series(name, points, Mark::LinePoints)
    }

    fn series<X: Plottable, Y: Plottable>(
        mut self,
        name: impl Into<String>,
        points: impl IntoIterator<Item = (X, Y)>,
        mark: Mark,
    ) -> Self {
        let points = points
            .into_iter()
            .map(|(x, y)| (x.to_f64(), y.to_f64()))
            .collect();
        self.series.push(Series {
            name: name.into(),
            points,
            mark,
        });
        self
    }

    /// The number of series.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// Whether the chart has no series.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// The points that can be drawn on the chart's axes.
    fn drawable(&self) -> Vec<Series> {
        let keep = |&(x, y): &(f64, f64)| {
            x.is_finite() && y.is_finite() && (!self.log_x || x > 0.0) && (!self.log_y || y > 0.0)
        };
        self.series
            .iter()
            .map(|s| Series {
                points: s.points.iter().copied().filter(keep).collect(),
                ..s.clone()
            })
            .collect()
    }

    /// Renders the chart as SVG source.
    ///
    /// # Errors
    /// If no series has a point that can be drawn.
    pub fn to_svg(&self) -> Result<String, String> {
        let series = self.drawable();
        let all: Vec<(f64, f64)> = series.iter().flat_map(|s| s.points.clone()).collect();
        if all.is_empty() {
            return Err(format!(
                "chart `{}` has no point to draw{}",
                self.title,
                if self.log_x || self.log_y {
                    " (log axes need values above zero)"
                } else {
                    ""
                }
            ));
        }
        let x = axis_range(all.iter().map(|p| p.0), self.log_x, false);
        let y = axis_range(all.iter().map(|p| p.1), self.log_y, true);
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, self.size).into_drawing_area();
            let drawn = match (self.log_x, self.log_y) {
                (false, false) => self.draw(&root, &series, x, y),
                (true, false) => self.draw(&root, &series, x.log_scale(), y),
                (false, true) => self.draw(&root, &series, x, y.log_scale()),
                (true, true) => self.draw(&root, &series, x.log_scale(), y.log_scale()),
            };
            drawn.map_err(|e| format!("chart `{}` could not be drawn: {e}", self.title))?;
            root.present()
                .map_err(|e| format!("chart `{}` could not be drawn: {e}", self.title))?;
        }
        Ok(svg)
    }

    fn draw<XR, YR>(
        &self,
        root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
        series: &[Series],
        x: XR,
        y: YR,
    ) -> Result<(), Box<dyn std::error::Error + '_>>
    where
        XR: AsRangedCoord<Value = f64>,
        YR: AsRangedCoord<Value = f64>,
        XR::CoordDescType: ValueFormatter<f64>,
        YR::CoordDescType: ValueFormatter<f64>,
    {
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(42)
            .y_label_area_size(64)
            .build_cartesian_2d(x, y)?;
        chart
            .configure_mesh()
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .x_label_formatter(&|v| compact(*v))
            .y_label_formatter(&|v| compact(*v))
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
        for (i, s) in series.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let line = color.stroke_width(2);
            let annotation = match s.mark {
                Mark::Points => chart
                    .draw_series(s.points.iter().map(|&p| Circle::new(p, 4, color.filled())))?,
                Mark::Line => chart.draw_series(LineSeries::new(s.points.clone(), line))?,
                Mark::LinePoints => {
                    chart.draw_series(LineSeries::new(s.points.clone(), line).point_size(3))?
                }
            };
            annotation.label(s.name.clone()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(3))
            });
        }
        if series.len() > 1 || !series[0].name.is_empty() {
            chart
                .configure_series_labels()
                .position(if self.legend_lower_right {
                    SeriesLabelPosition::LowerRight
                } else {
                    SeriesLabelPosition::UpperLeft
                })
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.3))
                .draw()?;
        }
        Ok(())
    }

    /// Shows the chart, or the reason it cannot be drawn.
    pub fn evcxr_display(&self) {
        match self.to_svg() {
            Ok(svg) => emit("image/svg+xml", &svg),
            Err(message) => println!("{message}"),
        }
    }
}

/// A bar chart: one bar per label.
///
/// ```
/// use parcours::prelude::*;
/// let chart = BarChart::new("Time per method")
///     .y_label("time (ms)")
///     .bar("sequential", 12.0)
///     .bar("rayon", 6.5);
/// assert!(chart.to_svg().unwrap().contains("rayon"));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct BarChart {
    title: String,
    y_label: String,
    log_y: bool,
    bars: Vec<(String, f64)>,
}

impl BarChart {
    /// An empty bar chart with a title.
    pub fn new(title: impl Into<String>) -> Self {
        BarChart {
            title: title.into(),
            y_label: String::new(),
            log_y: false,
            bars: Vec::new(),
        }
    }

    /// Names the y axis; say the unit.
    pub fn y_label(mut self, label: impl Into<String>) -> Self {
        self.y_label = label.into();
        self
    }

    /// Uses a logarithmic y axis, for values of different orders of magnitude.
    pub fn log_y(mut self) -> Self {
        self.log_y = true;
        self
    }

    /// Adds a bar.
    pub fn bar(mut self, label: impl Into<String>, value: impl Plottable) -> Self {
        self.bars.push((label.into(), value.to_f64()));
        self
    }

    /// Renders the chart as SVG source.
    ///
    /// # Errors
    /// If there is no bar, or a value cannot be drawn (not finite; not above zero on a log axis).
    pub fn to_svg(&self) -> Result<String, String> {
        if self.bars.is_empty() {
            return Err(format!("bar chart `{}` has no bar", self.title));
        }
        if let Some((label, value)) = self
            .bars
            .iter()
            .find(|(_, v)| !v.is_finite() || (self.log_y && *v <= 0.0))
        {
            return Err(format!(
                "bar `{label}` of chart `{}` cannot be drawn: its value is {value}",
                self.title
            ));
        }
        let y = axis_range(self.bars.iter().map(|b| b.1), self.log_y, true);
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
            let drawn = if self.log_y {
                self.draw(&root, y.log_scale())
            } else {
                self.draw(&root, y)
            };
            drawn.map_err(|e| format!("chart `{}` could not be drawn: {e}", self.title))?;
            root.present()
                .map_err(|e| format!("chart `{}` could not be drawn: {e}", self.title))?;
        }
        Ok(svg)
    }

    fn draw<YR>(
        &self,
        root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
        y: YR,
    ) -> Result<(), Box<dyn std::error::Error + '_>>
    where
        YR: AsRangedCoord<Value = f64>,
        YR::CoordDescType: ValueFormatter<f64>,
    {
        root.fill(&WHITE)?;
        let n = self.bars.len();
        let y_floor = if self.log_y {
            self.bars.iter().map(|b| b.1).fold(f64::INFINITY, f64::min) / 2.0
        } else {
            0.0
        };
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(42)
            .y_label_area_size(64)
            // A segmented range over 0..k has k + 1 segments: one per bar.
            .build_cartesian_2d((0..n - 1).into_segmented(), y)?;
        let labels: Vec<String> = self.bars.iter().map(|b| b.0.clone()).collect();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n)
            .x_label_formatter(&|segment| match segment {
                SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .y_desc(&self.y_label)
            .y_label_formatter(&|v| compact(*v))
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
        chart.draw_series(self.bars.iter().enumerate().map(|(i, (_, value))| {
            let color = PALETTE[i % PALETTE.len()];
            let mut bar = Rectangle::new(
                [
                    (SegmentValue::Exact(i), y_floor),
                    (SegmentValue::Exact(i + 1), *value),
                ],
                color.filled(),
            );
            bar.set_margin(0, 0, 8, 8);
            bar
        }))?;
        Ok(())
    }

    /// Shows the chart, or the reason it cannot be drawn.
    pub fn evcxr_display(&self) {
        match self.to_svg() {
            Ok(svg) => emit("image/svg+xml", &svg),
            Err(message) => println!("{message}"),
        }
    }
}

/// An axis label: up to three significant digits, an SI prefix from ten thousand up
/// (`12.5k`, `250M`, `1E`), trailing zeros dropped. Whole numbers below ten thousand stay as
/// they are, so that years read as years.
fn compact(value: f64) -> String {
    const PREFIXES: [(f64, &str); 6] = [
        (1e18, "E"),
        (1e15, "P"),
        (1e12, "T"),
        (1e9, "G"),
        (1e6, "M"),
        (1e3, "k"),
    ];
    if value.abs() < 1e4 && value.abs() >= 1e3 && value.fract() == 0.0 {
        return format!("{value:.0}");
    }
    let (scaled, prefix) = PREFIXES
        .iter()
        .find(|(scale, _)| value.abs() >= *scale)
        .map_or((value, ""), |(scale, prefix)| (value / scale, *prefix));
    let digits = if scaled.abs() >= 100.0 {
        0
    } else if scaled.abs() >= 10.0 {
        1
    } else if scaled.abs() >= 1.0 || scaled == 0.0 {
        2
    } else {
        // Below one: keep three significant digits.
        (2 - scaled.abs().log10().floor() as i32).clamp(0, 12) as usize
    };
    let text = format!("{scaled:.digits$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    format!("{text}{prefix}")
}

/// The range of an axis over `values`, with a margin; a value axis starts at zero when linear.
fn axis_range(values: impl Iterator<Item = f64>, log: bool, from_zero: bool) -> Range<f64> {
    let (mut lo, mut hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if log {
        return lo / 1.25..hi * 1.25;
    }
    if from_zero {
        lo = lo.min(0.0);
        hi = hi.max(0.0);
    }
    if lo == hi {
        // One value: give the axis some room around it.
        let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.5 };
        return lo - pad..hi + pad;
    }
    let pad = (hi - lo) * 0.05;
    let lo = if from_zero && lo == 0.0 {
        0.0
    } else {
        lo - pad
    };
    lo..hi + pad
}

/// Writes the SVG of a chart to a file, for reports outside the notebook.
///
/// ```
/// use parcours::prelude::*;
/// let path = std::env::temp_dir().join("parcours-doc-chart.svg");
/// let chart = Chart::new("t").line("s", [(0, 0), (1, 1)]);
/// parcours::chart::save_svg(&chart.to_svg().unwrap(), &path).unwrap();
/// assert!(std::fs::read_to_string(&path).unwrap().contains("<svg"));
/// ```
pub fn save_svg(svg: &str, path: impl AsRef<std::path::Path>) -> std::io::Result<()> {
    let mut out = String::with_capacity(svg.len() + 40);
    let _ = writeln!(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    out.push_str(svg);
    std::fs::write(path, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_axis_combination_renders() {
        let base = Chart::new("all scales")
            .x_label("x")
            .y_label("y")
            .line("a", [(1.0, 10.0), (10.0, 1000.0)])
            .points("b", [(2, 20), (5, 50)]);
        for chart in [
            base.clone(),
            base.clone().log_x(),
            base.clone().log_y(),
            base.clone().log_x().log_y(),
        ] {
            let svg = chart.to_svg().unwrap();
            assert!(
                svg.contains("all scales") && svg.contains("<circle"),
                "{chart:?}"
            );
        }
    }

    #[test]
    fn non_positive_points_are_left_out_of_log_axes() {
        let chart = Chart::new("log").log_y().line("s", [(0, 0.0), (1, 0.0)]);
        let error = chart.to_svg().unwrap_err();
        assert!(error.contains("log axes need values above zero"), "{error}");
        let partial = Chart::new("log")
            .log_y()
            .line("s", [(0, 0.0), (1, 5.0), (2, 50.0)]);
        assert!(partial.to_svg().is_ok());
    }

    #[test]
    fn bars_are_checked_before_drawing() {
        assert!(BarChart::new("empty").to_svg().is_err());
        let error = BarChart::new("b")
            .log_y()
            .bar("zero", 0.0)
            .to_svg()
            .unwrap_err();
        assert!(error.contains("bar `zero`"), "{error}");
        let svg = BarChart::new("b")
            .log_y()
            .bar("x", 1.0)
            .bar("y", 1e4)
            .to_svg()
            .unwrap();
        // the background, then one rectangle per bar
        assert!(svg.matches("<rect").count() >= 3, "{svg}");
    }

    #[test]
    fn axis_labels_are_compact() {
        let labels: Vec<String> = [
            0.0, 0.5, 1.0, 13.3, 1995.0, 12_500.0, 2e6, 0.00125, -30_000.0, 1.1e18,
        ]
        .into_iter()
        .map(compact)
        .collect();
        assert_eq!(
            labels,
            [
                "0", "0.5", "1", "13.3", "1995", "12.5k", "2M", "0.00125", "-30k", "1.1E"
            ]
        );
    }

    #[test]
    fn one_point_gets_a_visible_range() {
        assert_eq!(axis_range([3.0].into_iter(), false, false), 1.5..4.5);
        assert_eq!(axis_range([3.0].into_iter(), false, true), 0.0..3.15);
    }
}
