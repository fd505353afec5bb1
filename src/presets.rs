//! Conversation presets: built-ins in `assets/presets/`, extended (or overridden by
//! name) by `*.toml` files in `<config dir>/presets/`.

use crate::config::Paths;
use crate::error::Context as _;

crate::module_error! {
    /// What reading the presets fails with.
    PresetError {}
}

pub type Result<T, E = PresetError> = std::result::Result<T, E>;
use serde::Deserialize;

const BUILTIN: &[(&str, &str)] = &[
    (
        "clarifying.toml",
        include_str!("../assets/presets/clarifying.toml"),
    ),
    ("sql.toml", include_str!("../assets/presets/sql.toml")),
    (
        "tool-caller.toml",
        include_str!("../assets/presets/tool-caller.toml"),
    ),
];

#[derive(Debug, Clone)]
pub struct Preset {
    pub name: String,
    pub description: String,
    pub system: String,
    pub tools: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PresetFile {
    name: String,
    #[serde(default)]
    description: String,
    system: String,
    /// OpenAI tools array, as JSON text.
    tools: Option<String>,
}

fn parse(origin: &str, text: &str) -> Result<Preset> {
    let f: PresetFile = toml::from_str(text).with_context(|| format!("preset {origin}"))?;
    let tools = match f.tools {
        Some(t) => {
            let v: serde_json::Value = serde_json::from_str(&t)
                .with_context(|| format!("preset {origin}: field `tools` is not valid JSON"))?;
            if let Err(e) = crate::tools::check_tools(&v) {
                crate::fail!("preset {origin}: field `tools`: {e}");
            }
            Some(v)
        }
        None => None,
    };
    Ok(Preset {
        name: f.name,
        description: f.description,
        system: f.system,
        tools,
    })
}

/// Built-in presets, then the user's (a user preset with a built-in's name replaces it).
pub fn all(paths: &Paths) -> Result<Vec<Preset>> {
    let mut out: Vec<Preset> = BUILTIN
        .iter()
        .map(|(n, t)| parse(n, t))
        .collect::<Result<_>>()?;
    let dir = paths.config_dir.join("presets");
    if let Ok(rd) = std::fs::read_dir(&dir) {
        let mut files: Vec<_> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        for p in files {
            let text = std::fs::read_to_string(&p).with_context(|| p.display().to_string())?;
            let preset = parse(&p.display().to_string(), &text)?;
            out.retain(|x| x.name != preset.name);
            out.push(preset);
        }
    }
    Ok(out)
}

pub fn find(paths: &Paths, name: &str) -> Result<Preset> {
    let all = all(paths)?;
    let names: Vec<_> = all.iter().map(|p| p.name.clone()).collect();
    all.into_iter()
        .find(|p| p.name == name)
        .with_context(|| format!("no preset named '{name}' (available: {})", names.join(", ")))
        .map_err(Into::into)
}

#[cfg(test)]
mod tests {
    #[test]
    fn builtins_parse() {
        for (n, t) in super::BUILTIN {
            let p = super::parse(n, t).unwrap();
            assert!(!p.system.is_empty(), "{n}");
        }
    }
}
