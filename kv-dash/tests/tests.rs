//! kv-dash's one test binary: render tests over fixture runs, the CLI on
//! the real binary, and a tmux end-to-end run of the browser.

mod cli;
mod render;
mod tmux;
mod util;
