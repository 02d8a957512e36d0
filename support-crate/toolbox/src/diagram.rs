//! Pictures of graphs: task graphs, workflows and query plans, drawn as SVG.
//!
//! Modules 4 and 5 show graphs of work (a chord of tasks, a blocked computation, a query
//! plan). [`Diagram::layered`] draws any such graph left to right: each node in the column of
//! its longest path from a start, an arrow from each input to the node that takes it.
//! [`Diagram::gantt`] draws how such a graph ran: one lane per thread, worker or slot.

use std::fmt::Write;

use crate::display::{emit, escape_html, format_duration};

/// An SVG picture, shown as an image in a notebook.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagram(String);

/// One node of a graph to draw: its label (lines split at `\n`) and the nodes it comes after.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// What the box says.
    pub label: String,
    /// Indices of the nodes whose outputs this one takes; each must come before it.
    pub after: Vec<usize>,
}

impl Node {
    /// A node after the given ones.
    pub fn new(label: impl Into<String>, after: impl Into<Vec<usize>>) -> Self {
        Node { label: label.into(), after: after.into() }
    }
}

/// One bar of a Gantt chart: what ran (`label`), where (`lane`), when (seconds from the
/// chart's origin) and its colour (an SVG colour, e.g. `"#6c9bd2"`).
#[derive(Clone, Debug, PartialEq)]
pub struct Bar {
    /// The row it goes in: a thread, a worker, a slot.
    pub lane: String,
    /// What ran, written on the bar when it fits and shown on hover.
    pub label: String,
    /// When it started, in seconds.
    pub start: f64,
    /// When it ended, in seconds.
    pub end: f64,
    /// Its fill colour.
    pub color: &'static str,
}

impl Bar {
    /// The colour of ordinary work.
    pub const BLUE: &'static str = "#6c9bd2";
    /// The colour of joins (a step that takes several inputs).
    pub const ORANGE: &'static str = "#f0a35e";
    /// The colour of failed or retried work.
    pub const RED: &'static str = "#d9534f";

    /// A blue bar.
    pub fn new(lane: impl Into<String>, label: impl Into<String>, start: f64, end: f64) -> Self {
        Bar { lane: lane.into(), label: label.into(), start, end, color: Bar::BLUE }
    }

    /// The same bar in another colour.
    pub fn color(mut self, color: &'static str) -> Self {
        self.color = color;
        self
    }
}

impl Diagram {
    /// Wraps SVG source made elsewhere (it must be a whole `<svg>` element).
    pub fn from_svg(svg: String) -> Self {
        Diagram(svg)
    }

    /// Draws a directed acyclic graph, inputs on the left. Starts are blue, joins (nodes
    /// after two or more) orange, the rest green.
    ///
    /// ```
    /// use parcours::diagram::{Diagram, Node};
    /// let nodes = [Node::new("load 0", []), Node::new("load 1", []), Node::new("sum", [0, 1])];
    /// let picture = Diagram::layered("a tree reduction", &nodes);
    /// assert!(picture.as_svg().contains("load 1"));
    /// ```
    ///
    /// # Panics
    /// When a node comes after itself or a later node.
    pub fn layered(title: &str, nodes: &[Node]) -> Diagram {
        let mut depth = vec![0usize; nodes.len()];
        for (k, node) in nodes.iter().enumerate() {
            assert!(node.after.iter().all(|&p| p < k), "node {k} ({}) comes after itself or a later node", node.label);
            depth[k] = node.after.iter().map(|&p| depth[p] + 1).max().unwrap_or(0);
        }
        let layers = depth.iter().max().map_or(0, |d| d + 1);
        let mut rows = vec![0usize; nodes.len()];
        let mut per_layer = vec![0usize; layers];
        for (k, &d) in depth.iter().enumerate() {
            rows[k] = per_layer[d];
            per_layer[d] += 1;
        }
        let lines = nodes.iter().map(|n| n.label.lines().count().max(1)).max().unwrap_or(1);
        let widest = nodes.iter().flat_map(|n| n.label.lines()).map(|l| l.chars().count()).max().unwrap_or(0);
        let tallest = per_layer.iter().copied().max().unwrap_or(1);
        let box_w = (widest as f64 * 7.0 + 16.0).max(150.0);
        let box_h = lines as f64 * 15.0 + 19.0;
        let (gap_x, gap_y) = (60.0, 14.0);
        let height = tallest as f64 * (box_h + gap_y) + gap_y + 24.0;
        let width = layers as f64 * (box_w + gap_x) + gap_x - 40.0;
        let place = |k: usize| {
            let offset = (tallest - per_layer[depth[k]]) as f64 * (box_h + gap_y) / 2.0;
            (20.0 + depth[k] as f64 * (box_w + gap_x), 34.0 + offset + rows[k] as f64 * (box_h + gap_y))
        };
        let mut svg = svg_open(width, height, title);
        svg.push_str(r##"<defs><marker id="arrow" markerWidth="8" markerHeight="8" refX="8" refY="4" orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#555"/></marker></defs>"##);
        for (k, node) in nodes.iter().enumerate() {
            let (x, y) = place(k);
            for &p in &node.after {
                let (px, py) = place(p);
                let _ = write!(
                    svg,
                    r##"<line x1="{:.0}" y1="{:.0}" x2="{:.0}" y2="{:.0}" stroke="#555" marker-end="url(#arrow)"/>"##,
                    px + box_w,
                    py + box_h / 2.0,
                    x - 2.0,
                    y + box_h / 2.0
                );
            }
            let fill = match node.after.len() {
                0 => "#d6e6f5",
                1 => "#e3f1dc",
                _ => "#fde2c4",
            };
            let _ = write!(svg, r##"<rect x="{x:.0}" y="{y:.0}" width="{box_w:.0}" height="{box_h:.0}" rx="6" fill="{fill}" stroke="#555"/>"##);
            let count = node.label.lines().count().max(1) as f64;
            let first = y + box_h / 2.0 + 4.0 - (count - 1.0) * 7.5;
            for (i, line) in node.label.lines().enumerate() {
                let _ = write!(
                    svg,
                    r#"<text x="{:.0}" y="{:.0}" text-anchor="middle" font-size="12">{}</text>"#,
                    x + box_w / 2.0,
                    first + i as f64 * 15.0,
                    escape_html(line)
                );
            }
        }
        svg.push_str("</svg>");
        Diagram(svg)
    }

    /// Draws how work ran: one lane per [`Bar::lane`] (in the order they first appear), one
    /// bar per piece of work, time from 0 to the last end left to right.
    ///
    /// ```
    /// use parcours::diagram::{Bar, Diagram};
    /// let bars = [Bar::new("thread 0", "load", 0.0, 0.5), Bar::new("thread 1", "sum", 0.5, 0.8)];
    /// assert!(Diagram::gantt("a run", &bars).as_svg().contains("thread 1"));
    /// ```
    pub fn gantt(title: &str, bars: &[Bar]) -> Diagram {
        let mut lanes: Vec<&str> = Vec::new();
        for bar in bars {
            if !lanes.contains(&bar.lane.as_str()) {
                lanes.push(&bar.lane);
            }
        }
        let end = bars.iter().map(|b| b.end).fold(0.0, f64::max).max(1e-9);
        let widest = lanes.iter().map(|l| l.chars().count()).max().unwrap_or(0);
        let (left, bar_h, width) = ((widest as f64 * 6.5 + 16.0).max(70.0), 24.0, 760.0);
        let scale = (width - left - 20.0) / end;
        let height = 60.0 + lanes.len() as f64 * (bar_h + 8.0);
        let mut svg = svg_open(width, height, title);
        for (row, lane) in lanes.iter().enumerate() {
            let y = 30.0 + row as f64 * (bar_h + 8.0);
            let _ = write!(svg, r#"<text x="8" y="{:.0}" font-size="11">{}</text>"#, y + bar_h / 2.0 + 4.0, escape_html(lane));
            for bar in bars.iter().filter(|b| b.lane == *lane) {
                let x = left + bar.start.max(0.0) * scale;
                let w = ((bar.end - bar.start).max(0.0) * scale).max(1.5);
                let label = escape_html(&bar.label);
                let _ = write!(
                    svg,
                    r##"<rect x="{x:.1}" y="{y:.0}" width="{w:.1}" height="{bar_h}" fill="{}" stroke="white"><title>{label}</title></rect>"##,
                    bar.color
                );
                // The label on the bar only where it fits (about 6 px a character).
                if w > bar.label.chars().count() as f64 * 6.0 + 4.0 {
                    let _ = write!(svg, r#"<text x="{:.1}" y="{:.0}" font-size="10">{label}</text>"#, x + 2.0, y + bar_h / 2.0 + 4.0);
                }
            }
        }
        let _ = write!(
            svg,
            r#"<text x="{left:.0}" y="{:.0}" font-size="11">0</text><text x="{:.0}" y="{:.0}" font-size="11" text-anchor="end">{}</text></svg>"#,
            height - 10.0,
            width - 20.0,
            height - 10.0,
            format_duration(std::time::Duration::from_secs_f64(end))
        );
        Diagram(svg)
    }

    /// The SVG source.
    pub fn as_svg(&self) -> &str {
        &self.0
    }

    /// Shows the picture in the notebook.
    pub fn evcxr_display(&self) {
        emit("image/svg+xml", &self.0);
    }
}

/// The start of an SVG picture: its size, a white background and a title line.
pub fn svg_open(width: f64, height: f64, title: &str) -> String {
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/><text x="10" y="18" font-size="14">{}</text>"#,
        escape_html(title)
    )
}
