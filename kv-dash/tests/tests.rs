//! kv-dash's one test binary: render tests over fixture runs, the CLI on
//! the real binary, and a tmux end-to-end run of the browser; the live
//! dashboard's renders from fixed snapshots and its end-to-end run against
//! a real server and client.

mod cli;
mod flame_real;
mod live_e2e;
mod live_render;
mod render;
mod tables;
mod tmux;
mod util;
