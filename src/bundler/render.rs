//! minijinja rendering: component manifests from the recipe data, and the
//! bundle's own templates (scripts, READMEs) embedded from `templates/`.
//!
//! Both are strict about undefined variables, so a misspelt name is an error
//! rather than an empty string. Our own templates use `trim_blocks` and
//! `lstrip_blocks` and keep their final newline; manifests use the Jinja2
//! defaults the recipe data is written for (recipes/README.md).

use std::sync::OnceLock;

use minijinja::syntax::SyntaxConfig;
use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use super::Error;
use crate::serializer::yaml;

#[derive(rust_embed::Embed)]
#[folder = "templates/"]
struct Templates;

fn base_env() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env.add_filter("toyaml", toyaml);
    env.add_filter("sh", shell_quote);
    env
}

/// `toyaml`: block YAML in aicr's one style, without the final newline.
fn toyaml(v: minijinja::Value) -> Result<String, minijinja::Error> {
    let json = serde_json::to_value(&v).map_err(|e| {
        minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            format!("toyaml: {e}"),
        )
    })?;
    let mut s = yaml::to_string(&json);
    if s.ends_with('\n') {
        s.pop();
    }
    Ok(s)
}

/// `sh`: one shell word, single-quoted.
pub fn shell_quote(s: String) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A shell word for documentation: bare when it is plainly safe, quoted
/// otherwise.
pub fn shell_quote_if_needed(s: String) -> String {
    let plain = !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'-' | b'_' | b'.' | b'/' | b':' | b'@' | b'%' | b'+' | b'='
                )
        });
    if plain {
        s
    } else {
        shell_quote(s)
    }
}

fn describe(e: &minijinja::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(c) = src {
        s.push_str(&format!(": {c}"));
        src = c.source();
    }
    s
}

/// Renders a component manifest with its context (`values`, `release`,
/// `chart`).
pub fn manifest(source: &str, ctx: &serde_json::Value) -> Result<String, String> {
    let env = base_env();
    env.render_str(source, minijinja::Value::from(minijinja::value::Serde(ctx)))
        .map_err(|e| {
            let mut msg = format!("template error: {}", describe(&e));
            if source.contains("{{ .") || source.contains("{{- .") || source.contains("{{ index .") {
                msg.push_str(
                    "; this looks like a Helm (Go) template, but aicr renders manifests as Jinja templates (minijinja): see recipes/README.md, \"Manifest templates\"",
                );
            }
            msg
        })
}

/// The environment of the embedded templates, each compiled once per run
/// (a component README is rendered once per component).
fn templates_env() -> Result<&'static Environment<'static>, Error> {
    // A failure is kept as (template, reason): `Error` is not `Clone`.
    static ENV: OnceLock<Result<Environment<'static>, (String, String)>> = OnceLock::new();
    let built = ENV.get_or_init(|| {
        let mut env = base_env();
        let syntax = SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build()
            .map_err(|e| ("(syntax)".to_string(), describe(&e)))?;
        env.set_syntax(syntax);
        for name in Templates::iter() {
            let source = Templates::get(&name).expect("listed by iter");
            let text = String::from_utf8(source.data.into_owned())
                .map_err(|_| (name.to_string(), "is not UTF-8".to_string()))?;
            env.add_template_owned(name.to_string(), text)
                .map_err(|e| (name.to_string(), describe(&e)))?;
        }
        Ok(env)
    });
    built.as_ref().map_err(|(name, reason)| Error::Template {
        name: name.clone(),
        reason: reason.clone(),
    })
}

/// Renders one of the embedded templates (`templates/<name>`).
pub fn template<S: Serialize>(name: &str, ctx: &S) -> Result<String, Error> {
    let err = |reason: String| Error::Template {
        name: name.to_string(),
        reason,
    };
    let env = templates_env()?;
    let t = env
        .get_template(name)
        .map_err(|_| err("is not embedded".into()))?;
    t.render(minijinja::Value::from(minijinja::value::Serde(ctx)))
        .map_err(|e| err(describe(&e)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("a b".into()), "'a b'");
        assert_eq!(shell_quote("it's".into()), r"'it'\''s'");
    }

    #[test]
    fn manifests_are_strict_and_have_toyaml() {
        let ctx = json!({"values": {"a": {"b": [1, "x"]}}});
        let out = manifest(
            "k:{{ \"\\n\" ~ (values.a | toyaml | indent(2, true)) }}",
            &ctx,
        )
        .unwrap();
        assert_eq!(out, "k:\n  b:\n    - 1\n    - x");
        assert!(manifest("{{ values.missing.x }}", &ctx).is_err());
    }
}
