//! Constrained tool calls: the GBNF grammar of a call to one of the tools, and the
//! sampler that applies it beside the sampling chain.

use crate::engine::GenRequest;
use crate::tools;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;

/// One sequence's sampling: the chain, and the tool-call grammar when there is one.
///
/// The grammar is applied before the chain but accepted apart from it, through the
/// binding's exception-safe `try_accept`: llama.cpp throws when text that follows a lazy
/// grammar's trigger inside the same token does not fit the grammar, and a C++ exception
/// must not cross into Rust. When that happens the grammar is dropped and the rest is
/// free text (a call that then does not parse stays text, with the reason).
pub(super) struct Picker {
    pub(super) chain: LlamaSampler,
    pub(super) grammar: Option<LlamaSampler>,
}

impl Picker {
    pub(super) fn pick(&mut self, ctx: &LlamaContext<'static>, idx: i32) -> LlamaToken {
        let Some(g) = &mut self.grammar else {
            return self.chain.sample(ctx, idx);
        };
        let mut cur = ctx.token_data_array_ith(idx);
        cur.apply_sampler(g);
        cur.apply_sampler(&mut self.chain);
        let token = cur
            .selected_token()
            .unwrap_or_else(|| cur.sample_token_greedy());
        self.chain.accept(token);
        if g.try_accept(token).is_err() {
            self.grammar = None;
        }
        token
    }
}

/// A grammar for tool calls and how it applies.
pub(super) struct ToolGrammar {
    pub(super) text: String,
    pub(super) trigger: &'static str,
    pub(super) lazy: bool,
}

/// The request's tools when it has any.
pub(super) fn tools_of(req: &GenRequest) -> Option<&serde_json::Value> {
    req.tools
        .as_ref()
        .filter(|t| t.as_array().is_some_and(|a| !a.is_empty()))
}

/// GBNF for one or more tool calls in `syntax`, each one of `tools` with arguments that
/// follow its schema (llama.cpp's own JSON-schema converter writes the JSON part).
/// Plain strings are capped at `max_string` characters (see `tools::grammar_max_string`).
pub fn tool_call_grammar(
    tools: &serde_json::Value,
    syntax: tools::ToolSyntax,
    max_string: u64,
) -> Result<String, String> {
    let mut schema = tools::call_schema(tools, syntax)?;
    tools::cap_strings(&mut schema, max_string);
    let json = llama_cpp_2::json_schema_to_grammar(&schema.to_string())
        .map_err(|e| format!("could not turn the tool schemas into a grammar: {e}"))?;
    let mut out = String::new();
    let mut renamed = false;
    for line in json.lines() {
        match line.strip_prefix("root ::=") {
            Some(rest) if !renamed => {
                out.push_str("tool-call ::=");
                out.push_str(rest);
                renamed = true;
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    if !renamed {
        return Err("llama.cpp's JSON-schema grammar has no root rule".into());
    }
    out.push_str(match syntax {
        tools::ToolSyntax::Hermes => {
            "root ::= tool-block (\"\\n\" tool-block)*\n\
             tool-block ::= \"<tool_call>\" tool-ws tool-call tool-ws \"</tool_call>\"\n\
             tool-ws ::= [ \\t\\n]{0,4}\n"
        }
        tools::ToolSyntax::Llama3 => "root ::= tool-call\n",
    });
    Ok(out)
}
