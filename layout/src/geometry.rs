//! Points and rectangles of a drawing, in its own units, y growing downward.

/// A point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Distance from the left.
    pub x: f64,
    /// Distance from the top.
    pub y: f64,
}

/// An axis-aligned rectangle: its top-left corner and its size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    /// Left edge.
    pub x: f64,
    /// Top edge.
    pub y: f64,
    /// Width.
    pub width: f64,
    /// Height.
    pub height: f64,
}

impl Rect {
    /// Its center.
    pub fn center(&self) -> Point {
        Point {
            x: self.x + self.width / 2.0,
            y: self.y + self.height / 2.0,
        }
    }

    /// Whether it and `other` share any area (touching borders do not).
    pub fn overlaps(&self, other: &Rect) -> bool {
        self.x < other.x + other.width
            && other.x < self.x + self.width
            && self.y < other.y + other.height
            && other.y < self.y + self.height
    }

    /// Whether `p` lies on its border, within `tolerance`.
    pub fn on_border(&self, p: Point, tolerance: f64) -> bool {
        let (left, right) = (self.x, self.x + self.width);
        let (top, bottom) = (self.y, self.y + self.height);
        let within_x = p.x >= left - tolerance && p.x <= right + tolerance;
        let within_y = p.y >= top - tolerance && p.y <= bottom + tolerance;
        let on_vertical = within_y && ((p.x - left).abs() <= tolerance || (p.x - right).abs() <= tolerance);
        let on_horizontal = within_x && ((p.y - top).abs() <= tolerance || (p.y - bottom).abs() <= tolerance);
        on_vertical || on_horizontal
    }
}
