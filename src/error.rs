//! What the library's error enums share: an error with what was being done when it
//! happened (`Contextual`, made by `Context::context`), and a one-line message error for
//! free-text failures. Each module has its own `thiserror` enum (`DatasetError`,
//! `TrainError`, `EvalError`, `EngineError`, …) with these as variants; `anyhow` is only
//! used at the edges (`cli`, `app`, the studio's runtime).

use std::fmt::Display;

/// The boxed source of a [`Contextual`].
pub type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `what` was being done when `source` happened. Displayed as `what` alone, with
/// `source` as the error's source, so `{:#}` at the edge prints "what: source" (as
/// `anyhow` did).
#[derive(Debug, thiserror::Error)]
#[error("{what}")]
pub struct Contextual {
    pub what: String,
    #[source]
    pub source: Source,
}

/// A free-text failure (what `bail!` used to make).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Message(pub String);

/// `.context("…")` and `.with_context(|| …)` on results (making a [`Contextual`]) and on
/// options (a `None` becomes the [`Message`]).
pub trait Context<T> {
    type Error;
    fn context(self, what: impl Display) -> Result<T, Self::Error>;
    fn with_context<D: Display>(self, what: impl FnOnce() -> D) -> Result<T, Self::Error>;
}

impl<T, E> Context<T> for Result<T, E>
where
    E: Into<Source>,
{
    type Error = Contextual;

    fn context(self, what: impl Display) -> Result<T, Contextual> {
        self.map_err(|e| Contextual {
            what: what.to_string(),
            source: e.into(),
        })
    }

    fn with_context<D: Display>(self, what: impl FnOnce() -> D) -> Result<T, Contextual> {
        self.map_err(|e| Contextual {
            what: what().to_string(),
            source: e.into(),
        })
    }
}

impl<T> Context<T> for Option<T> {
    type Error = Message;

    fn context(self, what: impl Display) -> Result<T, Message> {
        self.ok_or_else(|| Message(what.to_string()))
    }

    fn with_context<D: Display>(self, what: impl FnOnce() -> D) -> Result<T, Message> {
        self.ok_or_else(|| Message(what().to_string()))
    }
}

/// Defines a module's error enum: the shared variants (`Msg`, `Context`, `Store`, `Io`,
/// `Json`) and the module's own, with `From` for each.
#[macro_export]
macro_rules! module_error {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident($ty:ty)),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, thiserror::Error)]
        pub enum $name {
            /// A free-text failure.
            #[error("{0}")]
            Msg(String),
            #[error(transparent)]
            Context(#[from] $crate::error::Contextual),
            #[error(transparent)]
            Store(#[from] $crate::store::StoreError),
            #[error(transparent)]
            Io(#[from] std::io::Error),
            #[error(transparent)]
            Json(#[from] serde_json::Error),
            $($(#[$vm])* #[error(transparent)] $variant(#[from] $ty),)*
        }

        impl From<String> for $name {
            fn from(m: String) -> Self {
                Self::Msg(m)
            }
        }

        impl From<rusqlite::Error> for $name {
            fn from(e: rusqlite::Error) -> Self {
                Self::Store(e.into())
            }
        }

        impl From<$crate::error::Message> for $name {
            fn from(m: $crate::error::Message) -> Self {
                Self::Msg(m.0)
            }
        }
    };
}

/// `return Err(message.into())` with `format!` arguments: the typed errors' `bail!`.
#[macro_export]
macro_rules! fail {
    ($($arg:tt)*) => {
        return Err($crate::error::Message(format!($($arg)*)).into())
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_keeps_the_source_and_reads_like_anyhow() {
        let e = std::fs::read("/no/such/file")
            .context("reading /no/such/file")
            .unwrap_err();
        assert_eq!(e.to_string(), "reading /no/such/file");
        let chained = anyhow::Error::from(e);
        assert!(format!("{chained:#}").starts_with("reading /no/such/file: "));
        let none: Option<u8> = None;
        assert!(none.context("the answer").is_err());
    }
}
