//! The model's tokenizer and template without a context: prompt token counts and the
//! training examples as token ids with loss masks.

use crate::domain::ChatMessage;
use crate::domain::Role;
use crate::engine::template::ChatTemplate;
use crate::engine::EngineError;
use crate::tools;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use std::path::Path;

use super::*;

pub(super) fn tokenize_with(
    model: &LlamaModel,
    template: &ChatTemplate,
    text: &str,
) -> Vec<LlamaToken> {
    let vocab = model.vocab();
    let bos = &template.bos_token;
    let template_wrote_bos = !bos.is_empty() && text.starts_with(bos.as_str());
    let add_bos = vocab.should_add_bos() && !template_wrote_bos;
    vocab.tokenize(text.as_bytes(), add_bos, true)
}

/// A model's tokenizer and chat template without its weights (llama.cpp `vocab_only`):
/// what export and validate use to count tokens and render text exactly as the engine does.
pub struct Tokenizer {
    model: LlamaModel,
    template: ChatTemplate,
    pub context_length: u32,
}

impl Tokenizer {
    pub fn load(path: &Path, template: Option<&str>) -> Result<Self, EngineError> {
        let info = crate::gguf::check(path).map_err(|e| e.to_string())?;
        let params = LlamaModelParams::default().with_vocab_only(true);
        let model = LlamaModel::load_from_file(backend()?, path, &params).map_err(|e| {
            format!(
                "{}: llama.cpp could not read the tokenizer: {e}",
                path.display()
            )
        })?;
        let template = choose_template(&model, &info, template)?;
        Ok(Self {
            context_length: info.context_length().unwrap_or(0) as u32,
            model,
            template,
        })
    }

    pub fn template(&self) -> &ChatTemplate {
        &self.template
    }

    /// The text of tokens (special tokens written out).
    pub fn text_of(&self, tokens: &[LlamaToken]) -> String {
        let vocab = self.model.vocab();
        let bytes: Vec<u8> = tokens
            .iter()
            .flat_map(|t| vocab.token_to_piece(*t, true, None))
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Tokens of a text as the engine would tokenize it.
    pub fn count_text(&self, text: &str) -> usize {
        tokenize_with(&self.model, &self.template, text).len()
    }

    /// Tokens of a whole conversation rendered through the chat template.
    pub fn count(
        &self,
        messages: &[ChatMessage],
        tools: Option<&serde_json::Value>,
    ) -> Result<usize, EngineError> {
        let text = self
            .template
            .render(messages, tools, false)
            .map_err(|e| e.to_string())?;
        Ok(self.count_text(&text))
    }
}

impl Tokenizer {
    /// A conversation as training tokens, rendered and tokenized exactly as the engine
    /// prompts the model: token ids and, for each, whether the loss counts it (the text
    /// each `trained` assistant message adds to the rendering, its end-of-turn included).
    /// Tools go into the prompt as the engine puts them (`tools::with_tools_in_prompt`
    /// for templates that do not take them).
    pub fn training_tokens(
        &self,
        messages: &[ChatMessage],
        tools: Option<&serde_json::Value>,
        trained: &[bool],
    ) -> Result<(Vec<LlamaToken>, Vec<bool>), EngineError> {
        let tools = tools.filter(|t| t.as_array().is_some_and(|a| !a.is_empty()));
        let render = |msgs: &[ChatMessage], gen: bool| -> Result<String, EngineError> {
            match tools {
                Some(t) if !tools::template_handles_tools(&self.template.text) => self
                    .template
                    .render(&tools::with_tools_in_prompt(msgs, t), None, gen),
                t => self.template.render(msgs, t, gen),
            }
            .map_err(EngineError::from)
        };
        let full = render(messages, false)?;
        // Character spans of the trained answers in `full`.
        let mut spans = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            if m.role != Role::Assistant || !trained.get(i).copied().unwrap_or(false) {
                continue;
            }
            let before = render(&messages[..i], true)?;
            let through = render(&messages[..=i], false)?;
            if !through.starts_with(&before) || !full.starts_with(&through) {
                return Err(format!(
                    "the chat template {} renders earlier turns differently once later ones follow, \
                     so the trained answer {} cannot be located in the rendered conversation",
                    self.template.name(),
                    i + 1
                ).into());
            }
            spans.push((before.len(), through.len()));
        }
        let mut ids = Vec::new();
        let mut mask = Vec::new();
        let mut at = 0;
        let mut push = |text: &str, train: bool, ids: &mut Vec<LlamaToken>, first: bool| {
            let toks = if first {
                tokenize_with(&self.model, &self.template, text)
            } else {
                self.model.vocab().tokenize(text.as_bytes(), false, true)
            };
            mask.extend(std::iter::repeat_n(train, toks.len()));
            ids.extend(toks);
        };
        for (a, b) in spans {
            push(&full[at..a], false, &mut ids, at == 0);
            push(&full[a..b], true, &mut ids, a == 0);
            at = b;
        }
        if at < full.len() {
            push(&full[at..], false, &mut ids, at == 0);
        }
        Ok((ids, mask))
    }
}
