//! Seat plans drawn as SVG: one dot a seat at its plan position, coloured by class (a
//! category for a plan, a state for a schedule), a legend under the drawing. Each class is one
//! `<path>` of zero-length round-capped strokes (`M x y h0`), about 12 bytes a seat, so a
//! 50,000-seat plan is a few hundred kilobytes and draws fast in a browser.

use std::fmt::Write as _;

/// One seat to draw: where, which class, and whether to ring it (an accessible place).
#[derive(Debug, Clone, Copy)]
pub struct Dot {
    pub x: f64,
    pub y: f64,
    pub class: usize,
    pub ring: bool,
}

/// A class of dots: its colour and its legend line.
#[derive(Debug, Clone)]
pub struct Class {
    pub colour: &'static str,
    pub label: String,
}

/// Colours for categories, in order; repeated past the last.
pub const CATEGORY_COLOURS: [&str; 10] = [
    "#1565c0", "#6a1b9a", "#00838f", "#ef6c00", "#2e7d32", "#ad1457", "#4e342e", "#283593", "#9e9d24", "#00695c",
];
pub const NOT_FOR_SALE: &str = "#bdbdbd";

/// The drawing: `title` on top, the dots, and a legend of `classes` (with `notes`, more lines
/// of text) below. Classes with no dots are still listed.
pub fn draw(title: &str, dots: &[Dot], classes: &[Class], ring_label: Option<&str>, notes: &[String]) -> String {
    let (mut min_x, mut min_y, mut max_x, mut max_y) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for d in dots {
        min_x = min_x.min(d.x);
        min_y = min_y.min(d.y);
        max_x = max_x.max(d.x);
        max_y = max_y.max(d.y);
    }
    if dots.is_empty() {
        (min_x, min_y, max_x, max_y) = (0.0, 0.0, 100.0, 100.0);
    }
    let pitch = pitch(dots);
    let margin = pitch * 2.0;
    let width = (max_x - min_x) + 2.0 * margin;
    let plan_height = (max_y - min_y) + 2.0 * margin;
    // The legend's text scales with the drawing so it stays readable when the picture is fit
    // to a window.
    let font = (width.max(plan_height) / 60.0).max(pitch * 1.2);
    let title_height = font * 2.0;
    let legend_lines = classes.len() + notes.len() + usize::from(ring_label.is_some());
    let legend_height = font * 1.6 * legend_lines as f64 + font;
    let height = title_height + plan_height + legend_height;
    let mut out = String::with_capacity(dots.len() * 13 + 2048);
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{pw}" height="{ph}" font-family="sans-serif">"#,
        w = num(width),
        h = num(height),
        pw = num(1200.0_f64.min(width.max(600.0))),
        ph = num(1200.0_f64.min(width.max(600.0)) * height / width),
    );
    let _ = write!(
        out,
        r##"<title>{t}</title><rect width="100%" height="100%" fill="#fff"/><text x="{x}" y="{y}" font-size="{f}" font-weight="bold">{t}</text>"##,
        t = escape(title),
        x = num(margin),
        y = num(font * 1.4),
        f = num(font),
    );
    let (dx, dy) = (margin - min_x, title_height + margin - min_y);
    let stroke = num(pitch * 0.8);
    for (i, class) in classes.iter().enumerate() {
        let mut d = String::new();
        for dot in dots.iter().filter(|d| d.class == i) {
            let _ = write!(d, "M{} {}h0", num(dot.x + dx), num(dot.y + dy));
        }
        if !d.is_empty() {
            let _ = write!(
                out,
                r#"<path stroke="{c}" stroke-width="{stroke}" stroke-linecap="round" d="{d}"/>"#,
                c = class.colour
            );
        }
    }
    let ringed: String = dots.iter().filter(|d| d.ring).fold(String::new(), |mut acc, dot| {
        let _ = write!(acc, "M{} {}h0", num(dot.x + dx), num(dot.y + dy));
        acc
    });
    if !ringed.is_empty() {
        let _ = write!(
            out,
            r##"<path stroke="#fff" stroke-width="{w}" stroke-linecap="round" d="{ringed}"/>"##,
            w = num(pitch * 0.35)
        );
    }
    let mut y = title_height + plan_height + font;
    let dot_x = margin + font * 0.5;
    let text_x = margin + font * 1.5;
    for class in classes {
        let _ = write!(
            out,
            r#"<circle cx="{cx}" cy="{cy}" r="{r}" fill="{c}"/><text x="{tx}" y="{ty}" font-size="{f}">{l}</text>"#,
            cx = num(dot_x),
            cy = num(y - font * 0.35),
            r = num(font * 0.45),
            c = class.colour,
            tx = num(text_x),
            ty = num(y),
            f = num(font),
            l = escape(&class.label),
        );
        y += font * 1.6;
    }
    if let Some(label) = ring_label {
        let _ = write!(
            out,
            r##"<circle cx="{cx}" cy="{cy}" r="{r}" fill="#777"/><circle cx="{cx}" cy="{cy}" r="{r2}" fill="#fff"/><text x="{tx}" y="{ty}" font-size="{f}">{l}</text>"##,
            cx = num(dot_x),
            cy = num(y - font * 0.35),
            r = num(font * 0.45),
            r2 = num(font * 0.2),
            tx = num(text_x),
            ty = num(y),
            f = num(font),
            l = escape(label),
        );
        y += font * 1.6;
    }
    for note in notes {
        let _ = write!(
            out,
            r##"<text x="{x}" y="{y}" font-size="{f}" fill="#444">{n}</text>"##,
            x = num(margin),
            y = num(y),
            f = num(font),
            n = escape(note),
        );
        y += font * 1.6;
    }
    out.push_str("</svg>");
    out
}

/// The usual distance between neighbouring seats: the median of the distances from each seat
/// to the next one in plan order (seats come row by row), so dots fill most of their place.
fn pitch(dots: &[Dot]) -> f64 {
    let mut gaps: Vec<f64> = dots
        .windows(2)
        .map(|w| ((w[1].x - w[0].x).powi(2) + (w[1].y - w[0].y).powi(2)).sqrt())
        .filter(|g| *g > 0.0)
        .take(10_000)
        .collect();
    if gaps.is_empty() {
        return 10.0;
    }
    let middle = gaps.len() / 2;
    let (_, median, _) = gaps.select_nth_unstable_by(middle, f64::total_cmp);
    *median
}

/// A coordinate with at most one decimal, no trailing `.0`.
fn num(v: f64) -> String {
    let tenth = (v * 10.0).round() / 10.0;
    if tenth.fract() == 0.0 {
        format!("{}", tenth as i64)
    } else {
        format!("{tenth:.1}")
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_seat_is_one_stroke_in_its_class_and_text_is_escaped() {
        let dots: Vec<Dot> = (0..10)
            .map(|i| Dot {
                x: f64::from(i) * 10.0,
                y: 5.0,
                class: usize::from(i >= 7),
                ring: i == 0,
            })
            .collect();
        let classes = [
            Class {
                colour: "#111111",
                label: "A <front>".into(),
            },
            Class {
                colour: "#222222",
                label: "B".into(),
            },
        ];
        let svg = draw("Hall & co", &dots, &classes, Some("accessible"), &["note".into()]);
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.ends_with("</svg>"));
        assert_eq!(svg.matches("h0").count(), 11, "10 seats and 1 ring");
        let first = svg.split(r##"stroke="#111111""##).nth(1).unwrap();
        assert_eq!(first.split("/>").next().unwrap().matches("h0").count(), 7);
        assert!(svg.contains("A &lt;front&gt;") && svg.contains("Hall &amp; co"));
        assert!(!svg.contains("<front>"));
    }

    #[test]
    fn numbers_are_short() {
        assert_eq!(num(12.0), "12");
        assert_eq!(num(12.34), "12.3");
        assert_eq!(num(-0.04), "0");
    }
}
