//! The studio by screen: each file holds a screen's state, its key handling (pure: it
//! changes state and returns effects), its drawing and its tests.
//!
//! The list, the chat and its composer are the screens under everything (`Base`); the
//! rest are overlays stacked over them (`state::Overlay`): the top one takes the keys and
//! they are drawn bottom to top.

pub mod chat;
pub mod compare;
pub mod compose;
pub mod edit;
pub mod evals;
pub mod export;
pub mod help;
pub mod jobs;
pub mod list;
pub mod models;
pub mod options_form;
pub mod presets;
pub mod prompt;
pub mod queue;
pub mod review;
pub mod settings;
pub mod tree;

pub use compare::{Compare, COMPARE_K};
pub use evals::EvalsView;
pub use export::{ExportDialog, ExportPreview, EXPORT_FORMATS};
pub use jobs::{JobRow, JobsView};
pub use models::ModelItem;
pub use prompt::{Confirm, Prompt};
pub use review::ReviewState;
pub use settings::{SettingsDialog, SETTINGS_TABS};
pub use tree::{TreeRow, TreeView};
