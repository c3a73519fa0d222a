//! kv-dash: the terminal tools of kvlab. Today the experiments browser
//! (issue 7): `app` holds state, `input` maps keys, `ui` draws, `tui` owns
//! the terminal, `browse`/`flame` hold the logic shared with the plain-text
//! commands in `cli`. A live view (issue 6) plugs in as another `View` and
//! a `live` subcommand.

pub mod app;
pub mod bench;
pub mod browse;
pub mod cli;
pub mod flame;
pub mod input;
pub mod tui;
pub mod ui;
