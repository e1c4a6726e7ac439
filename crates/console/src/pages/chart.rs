//! Charts as inline SVG, drawn here: no script, no style attribute
//! (colours come from the stylesheet's classes), every label escaped,
//! each bar's exact figure in its `<title>` (shown on hover).

use crate::html::{thousands, Html};

const W: i64 = 960;
const H: i64 = 160;
const LEFT: i64 = 56;
const BOTTOM: i64 = 18;

/// Stacked columns: one per bucket, one segment per series (`class`,
/// `name`, values), labelled with the first and last bucket.
pub fn stacked(
    h: &mut Html,
    labels: &[String],
    series: &[(&'static str, &str, &[i64])],
    aria: &str,
) {
    let n = labels.len().max(1) as i64;
    let totals: Vec<i64> = (0..labels.len())
        .map(|i| {
            series
                .iter()
                .map(|(_, _, v)| v.get(i).copied().unwrap_or(0))
                .sum()
        })
        .collect();
    let max = totals.iter().copied().max().unwrap_or(0).max(1);
    let plot_w = W - LEFT;
    let plot_h = H - BOTTOM;
    let col = plot_w / n;
    h.raw("<svg class=\"chart\" viewBox=\"0 0 ")
        .num(W)
        .raw(" ")
        .num(H)
        .raw("\" role=\"img\" aria-label=\"")
        .text(aria)
        .raw("\">");
    // The scale: 0 and the largest column.
    h.raw("<line class=\"axis\" x1=\"")
        .num(LEFT)
        .raw("\" y1=\"")
        .num(plot_h)
        .raw("\" x2=\"")
        .num(W)
        .raw("\" y2=\"")
        .num(plot_h)
        .raw("\"/>");
    h.raw("<text x=\"0\" y=\"10\">")
        .text(&thousands(max))
        .raw("</text>");
    h.raw("<text x=\"0\" y=\"").num(plot_h).raw("\">0</text>");
    for (i, label) in labels.iter().enumerate() {
        let x = LEFT + i as i64 * col;
        let mut y = plot_h;
        for (class, name, values) in series {
            let v = values.get(i).copied().unwrap_or(0);
            if v == 0 {
                continue;
            }
            let bar = (v * plot_h / max).max(1);
            y -= bar;
            h.raw("<rect class=\"s-")
                .raw(class)
                .raw("\" x=\"")
                .num(x + 1)
                .raw("\" y=\"")
                .num(y)
                .raw("\" width=\"")
                .num((col - 2).max(1))
                .raw("\" height=\"")
                .num(bar)
                .raw("\"><title>")
                .text(label)
                .raw(" · ")
                .text(name)
                .raw(": ")
                .text(&thousands(v))
                .raw("</title></rect>");
        }
    }
    if let (Some(first), Some(last)) = (labels.first(), labels.last()) {
        h.raw("<text x=\"")
            .num(LEFT)
            .raw("\" y=\"")
            .num(H - 4)
            .raw("\">")
            .text(first)
            .raw("</text>");
        h.raw("<text x=\"")
            .num(W)
            .raw("\" y=\"")
            .num(H - 4)
            .raw("\" text-anchor=\"end\">")
            .text(last)
            .raw("</text>");
    }
    h.raw("</svg><div class=\"legend\">");
    for (class, name, _) in series {
        h.raw("<span><i class=\"k-")
            .raw(class)
            .raw("\"></i>")
            .text(name)
            .raw("</span>");
    }
    h.raw("</div>");
}

/// Horizontal bars, one per `(label, value)`, the exact value as text
/// beside each.
pub fn bars(h: &mut Html, items: &[(String, i64)], unit: &str, aria: &str) {
    let max = items.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1);
    let row = 20;
    let height = (items.len() as i64 * row).max(row);
    let label_w = 260;
    let plot_w = W - label_w - 150;
    h.raw("<svg class=\"chart\" viewBox=\"0 0 ")
        .num(W)
        .raw(" ")
        .num(height)
        .raw("\" role=\"img\" aria-label=\"")
        .text(aria)
        .raw("\">");
    for (i, (label, v)) in items.iter().enumerate() {
        let y = i as i64 * row;
        let short: String = label.chars().take(40).collect();
        h.raw("<text x=\"0\" y=\"")
            .num(y + 14)
            .raw("\">")
            .text(&short)
            .raw("</text>");
        let w = ((*v).max(0) * plot_w / max).max(1);
        h.raw("<rect class=\"s-bar\" x=\"")
            .num(label_w)
            .raw("\" y=\"")
            .num(y + 3)
            .raw("\" width=\"")
            .num(w)
            .raw("\" height=\"")
            .num(row - 6)
            .raw("\"><title>")
            .text(label)
            .raw(": ")
            .text(&thousands(*v))
            .raw(" ")
            .text(unit)
            .raw("</title></rect>");
        h.raw("<text x=\"")
            .num(label_w + w + 6)
            .raw("\" y=\"")
            .num(y + 14)
            .raw("\">")
            .text(&thousands(*v))
            .raw(" ")
            .text(unit)
            .raw("</text>");
    }
    h.raw("</svg>");
}
