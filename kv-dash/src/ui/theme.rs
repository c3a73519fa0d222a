//! Styles, with colors only when allowed (NO_COLOR turns them off; then
//! selection and matches are shown with reverse/bold/underline instead).

use ratatui::style::{Color, Modifier, Style};

/// Series colors, none of them the total's cyan or the down red.
const SERIES: [Color; 10] = [
    Color::Green,
    Color::Yellow,
    Color::Magenta,
    Color::Blue,
    Color::LightRed,
    Color::LightGreen,
    Color::LightYellow,
    Color::LightMagenta,
    Color::LightBlue,
    Color::White,
];

/// Distinct series colors: a chart of more nodes than this draws one.
pub const SERIES_COLORS: usize = SERIES.len();

#[derive(Debug, Clone, Copy)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    fn pick(&self, colored: Style, plain: Style) -> Style {
        if self.color {
            colored
        } else {
            plain
        }
    }

    pub fn header(&self) -> Style {
        self.pick(
            Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
            Style::new().add_modifier(Modifier::BOLD),
        )
    }

    pub fn selected_row(&self) -> Style {
        self.pick(
            Style::new()
                .bg(Color::Blue)
                .fg(Color::White)
                .add_modifier(Modifier::BOLD),
            Style::new().add_modifier(Modifier::REVERSED),
        )
    }

    pub fn failed(&self) -> Style {
        self.pick(
            Style::new().fg(Color::Red),
            Style::new().add_modifier(Modifier::BOLD),
        )
    }

    pub fn marked(&self) -> Style {
        self.pick(
            Style::new().fg(Color::Yellow),
            Style::new().add_modifier(Modifier::BOLD),
        )
    }

    pub fn differs(&self) -> Style {
        self.pick(
            Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
            Style::new().add_modifier(Modifier::BOLD),
        )
    }

    pub fn dim(&self) -> Style {
        self.pick(Style::new().fg(Color::DarkGray), Style::new())
    }

    pub fn active_tab(&self) -> Style {
        self.pick(
            Style::new()
                .fg(Color::Black)
                .bg(Color::Cyan)
                .add_modifier(Modifier::BOLD),
            Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD),
        )
    }

    /// Growth is bad for time shares and latency, good for throughput:
    /// callers say which direction is better.
    pub fn change(&self, delta: f64, higher_is_better: bool) -> Style {
        if !self.color || delta == 0.0 {
            return Style::new();
        }
        if (delta > 0.0) == higher_is_better {
            Style::new().fg(Color::Green)
        } else {
            Style::new().fg(Color::Red)
        }
    }

    /// A flamegraph frame: warm colors picked by name so a function keeps
    /// its color across zooms.
    pub fn frame(&self, name: &str) -> Style {
        if !self.color {
            return Style::new();
        }
        let h = name
            .bytes()
            .fold(2166136261u32, |h, b| (h ^ b as u32).wrapping_mul(16777619));
        let r = 200 + (h % 55) as u8;
        let g = 80 + ((h >> 8) % 120) as u8;
        let b = ((h >> 16) % 60) as u8;
        Style::new().bg(Color::Rgb(r, g, b)).fg(Color::Black)
    }

    /// A frame of a differential flamegraph, by the change of its share
    /// (percentage points): red grew, blue shrank, grey about the same;
    /// the shade deepens up to 5 points. Without colors: bold grew,
    /// dim shrank.
    pub fn frame_change(&self, delta: f64) -> Style {
        const SAME: f64 = 0.1;
        if !self.color {
            return if delta >= SAME {
                Style::new().add_modifier(Modifier::BOLD)
            } else if delta <= -SAME {
                Style::new().add_modifier(Modifier::DIM)
            } else {
                Style::new()
            };
        }
        let t = (delta.abs() / 5.0).min(1.0);
        let shade = (220.0 - 170.0 * t) as u8;
        let bg = if delta >= SAME {
            Color::Rgb(255, shade, shade)
        } else if delta <= -SAME {
            Color::Rgb(shade, shade, 255)
        } else {
            Color::Rgb(210, 210, 210)
        };
        Style::new().bg(bg).fg(Color::Black)
    }

    pub fn frame_match(&self) -> Style {
        self.pick(
            Style::new()
                .bg(Color::Magenta)
                .fg(Color::White)
                .add_modifier(Modifier::BOLD),
            Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD),
        )
    }

    pub fn frame_selected(&self) -> Style {
        self.pick(
            Style::new()
                .bg(Color::White)
                .fg(Color::Black)
                .add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
            Style::new().add_modifier(Modifier::UNDERLINED | Modifier::BOLD),
        )
    }

    // Live dashboard.

    pub fn down(&self) -> Style {
        if self.color {
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
        } else {
            Style::new().add_modifier(Modifier::BOLD)
        }
    }

    pub fn up(&self) -> Style {
        if self.color {
            Style::new().fg(Color::Green)
        } else {
            Style::new()
        }
    }

    pub fn gauge(&self) -> Style {
        if self.color {
            Style::new().fg(Color::Cyan).bg(Color::Black)
        } else {
            Style::new()
        }
    }

    /// Line color of series `i` (per-node charts, sparklines); the colors
    /// repeat after [`SERIES_COLORS`].
    pub fn series(&self, i: usize) -> Style {
        if self.color {
            Style::new().fg(SERIES[i % SERIES.len()])
        } else {
            Style::new()
        }
    }
}
