//! Arbor: a terminal studio to chat with a local LLM, rate and edit its answers,
//! branch conversations into trees, and turn the best of them into training data.
//!
//! Layers, dependencies pointing one way: `domain` (types) ← `store` (SQLite) and
//! `engine` (inference worker) ← `tui` (state/update/view + runtime) and `cli`.

pub mod app;
pub mod chat;
pub mod cli;
pub mod config;
pub mod dataset;
pub mod domain;
pub mod engine;
pub mod error;
pub mod eval;
pub mod gguf;
pub mod models;
pub mod os;
pub mod presets;
pub mod store;
pub mod tools;
pub mod train;
pub mod tree;
pub mod tui;
