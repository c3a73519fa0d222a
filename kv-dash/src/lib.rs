//! kv-dash: the terminal tools of kvlab. Today the experiments browser
//! (issue 7): `app` holds state, `action` is what keys ask for, `input`
//! maps keys, `ui` draws, `tui` owns the terminal, `browser` runs the loop,
//! `browse`/`flame` hold the logic shared with the plain-text commands in
//! `cli`. `live` is the dashboard of a running cluster
//! (issue 6): its own state, pollers and event loop, drawn by `ui::live`.

pub mod action;
pub mod app;
pub mod bench;
pub mod browse;
pub mod browser;
pub mod by_commit;
pub mod cli;
pub mod cost;
pub mod fit;
pub mod flame;
pub mod functions;
pub mod input;
pub mod live;
pub mod series;
pub mod tui;
pub mod ui;
pub mod verdict;
