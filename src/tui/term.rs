//! Taking over the terminal for a full-screen view (the studio, `arbor eval review`).

/// The terminal for a full-screen view; without one (a pipe, a script, no tty) a clear
/// error (exit 2) instead of a panic.
pub fn init_terminal() -> anyhow::Result<ratatui::DefaultTerminal> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return Err(crate::app::Exit(
            2,
            "this is a full-screen view: run it in a terminal (standard input and output are not one)"
                .into(),
        )
        .into());
    }
    ratatui::try_init()
        .map_err(|e| crate::app::Exit(2, format!("could not take over the terminal: {e}")).into())
}
