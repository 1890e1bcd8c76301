//! Pan and zoom of a graph, as its SVG `viewBox`: the part of the drawing
//! on screen.

use crate::html::Num;

/// The visible part of the drawing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ViewBox {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

/// Least and most a drawing can be magnified, relative to fitting it.
const MIN_SCALE: f64 = 0.25;
const MAX_SCALE: f64 = 8.0;

impl ViewBox {
    /// The whole drawing.
    pub fn fit(width: f64, height: f64) -> ViewBox {
        ViewBox {
            x: 0.0,
            y: 0.0,
            width,
            height,
        }
    }

    /// Zoomed by `factor` (above 1 magnifies) around the point at fractions
    /// `(fx, fy)` of the view, which stays where it is on screen. `full` is
    /// the drawing's width, to bound the zoom.
    pub fn zoom(self, factor: f64, fx: f64, fy: f64, full: f64) -> ViewBox {
        let min_width = full / MAX_SCALE;
        let max_width = full / MIN_SCALE;
        let width = (self.width / factor).clamp(min_width, max_width);
        let applied = self.width / width;
        let height = self.height / applied;
        ViewBox {
            x: self.x + (self.width - width) * fx.clamp(0.0, 1.0),
            y: self.y + (self.height - height) * fy.clamp(0.0, 1.0),
            width,
            height,
        }
    }

    /// Moved by a drag of `(dx, dy)` screen pixels on an element
    /// `screen_width` pixels wide.
    pub fn pan(self, dx: f64, dy: f64, screen_width: f64) -> ViewBox {
        let per_pixel = if screen_width > 0.0 {
            self.width / screen_width
        } else {
            1.0
        };
        ViewBox {
            x: self.x - dx * per_pixel,
            y: self.y - dy * per_pixel,
            ..self
        }
    }

    /// As the `viewBox` attribute writes it.
    pub fn attribute(&self) -> String {
        format!(
            "{} {} {} {}",
            Num(self.x),
            Num(self.y),
            Num(self.width),
            Num(self.height)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zooming_keeps_the_point_under_the_pointer() {
        let view = ViewBox::fit(400.0, 200.0).zoom(2.0, 0.25, 0.5, 400.0);
        assert_eq!(
            view,
            ViewBox {
                x: 50.0,
                y: 50.0,
                width: 200.0,
                height: 100.0
            }
        );
        // The point a quarter across was x = 100 and still is.
        assert_eq!(view.x + view.width * 0.25, 100.0);
    }

    #[test]
    fn zoom_is_bounded() {
        let mut view = ViewBox::fit(400.0, 200.0);
        for _ in 0..50 {
            view = view.zoom(2.0, 0.5, 0.5, 400.0);
        }
        assert_eq!(view.width, 50.0);
    }

    #[test]
    fn panning_follows_the_pointer() {
        let view = ViewBox::fit(400.0, 200.0).pan(100.0, 0.0, 800.0);
        assert_eq!(view.x, -50.0);
    }
}
