//! kv-dash: the terminal tools of kvlab. Today the experiments browser
//! (issue 7): `app` holds state, `input` maps keys, `ui` draws, `tui` owns
//! the terminal, `browse`/`flame` hold the logic shared with the plain-text
//! commands in `cli`. `live` is the dashboard of a running cluster
//! (issue 6): its own state, pollers and event loop, drawn by `ui::live`.

pub mod app;
pub mod bench;
pub mod browse;
pub mod by_commit;
pub mod cli;
pub mod cost;
pub mod flame;
pub mod functions;
pub mod input;
pub mod live;
pub mod tui;
pub mod ui;
pub mod verdict;
