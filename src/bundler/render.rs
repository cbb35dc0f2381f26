//! minijinja rendering: component manifests from the recipe data, and the
//! bundle's own templates (scripts, READMEs) embedded from `templates/`.
//!
//! Both are strict about undefined variables, so a misspelt name is an error
//! rather than an empty string. Our own templates use `trim_blocks` and
//! `lstrip_blocks` and keep their final newline; manifests use the Jinja2
//! defaults the recipe data is written for (recipes/README.md).
//!
//! Manifests are YAML, and the values they interpolate come from the recipe
//! and from `--set`: every `{{ ... }}` in a manifest is written as one YAML
//! scalar (plain when that reads back as the same string, otherwise
//! double-quoted), so no value can add keys, documents or kinds. Only YAML the
//! bundler serialised itself (`toyaml`, `tojson`) is written as is. Every
//! render has a budget ([`FUEL`]) and a nesting limit ([`RECURSION_LIMIT`]),
//! so a template from `--data` cannot run forever or overflow the stack.

use std::sync::OnceLock;

use minijinja::syntax::SyntaxConfig;
use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use super::Error;
use crate::serializer::yaml;

#[derive(rust_embed::Embed)]
#[folder = "templates/"]
struct Templates;

/// The work one render may do: about one unit per instruction or per 64
/// bytes produced. The largest embedded manifest (the Gateway API CRDs,
/// 600 KB) takes about 10,000; nested loops over `range(100000)` run out.
pub const FUEL: u64 = 2_000_000;

/// How deeply a render may nest (loops, conditions, macro calls).
pub const RECURSION_LIMIT: usize = 100;

/// The name of the auto-escape mode of manifests.
const YAML_ESCAPE: &str = "yaml";

fn base_env() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(RECURSION_LIMIT);
    env.add_filter("toyaml", toyaml);
    env.add_filter("sh", shell_quote);
    env
}

/// The environment of manifests: every interpolated value becomes a YAML
/// scalar (see [`write_yaml_scalar`]).
fn manifest_env() -> Environment<'static> {
    let mut env = base_env();
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Custom(YAML_ESCAPE.into()));
    env.set_formatter(yaml_formatter);
    env
}

/// Writes one interpolated value of a manifest. YAML the bundler made
/// (`toyaml`, `tojson`: safe strings) goes out as is; so does text made
/// only of (at least one) spaces and newlines (the `"\n" ~ (x | toyaml | indent(N, true))`
/// idiom concatenates one), which cannot add a key or a document. Anything
/// else is one YAML scalar.
fn yaml_formatter(
    out: &mut minijinja::Output,
    _state: &mut minijinja::State,
    value: &minijinja::Value,
) -> Result<(), minijinja::Error> {
    use minijinja::value::ValueKind;
    let text = match value.kind() {
        ValueKind::Undefined => String::new(),
        ValueKind::None => "null".to_string(),
        // minijinja writes booleans as Python does (`True`); YAML's are lowercase.
        ValueKind::Bool => (if value.is_true() { "true" } else { "false" }).to_string(),
        ValueKind::Number => value.to_string(),
        ValueKind::String => match value.as_str() {
            Some(s)
                if value.is_safe()
                    || (!s.is_empty() && s.chars().all(|c| c == ' ' || c == '\n')) =>
            {
                s.to_string()
            }
            Some(s) => yaml_scalar(s),
            None => yaml_scalar(&value.to_string()),
        },
        // A collection is written as JSON, which YAML reads as a flow node.
        _ => serde_json::to_string(value).map_err(|e| {
            minijinja::Error::new(minijinja::ErrorKind::BadSerialization, e.to_string())
        })?,
    };
    out.write_str(&text).map_err(minijinja::Error::from)
}

/// One YAML scalar that reads back as exactly `s`, on one line: plain when
/// `s` is made of letters, digits and `- . _ / + @ : =` (and inner spaces)
/// and a YAML reader would not take it for a number, boolean, null or
/// date; double-quoted otherwise. Plain output stays plain inside a larger
/// scalar (`name: {{ a }}-{{ b }}`).
pub fn yaml_scalar(s: &str) -> String {
    let plain = s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && !s.ends_with([' ', ':'])
        && !s.contains(": ")
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '-' | '.' | '_' | '/' | '+' | '@' | ':' | '=' | ' ')
        })
        && !yaml::resolves_to_non_string(s);
    if plain {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control()
                || matches!(
                    c,
                    '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}'
                ) =>
            {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `toyaml`: block YAML in aicr's one style, without the final newline,
/// marked safe so a manifest writes it as is. A scalar is one YAML scalar
/// on one line (never a literal block, whose lines would start at column 0).
fn toyaml(v: minijinja::Value) -> Result<minijinja::Value, minijinja::Error> {
    let json = serde_json::to_value(&v).map_err(|e| {
        minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            format!("toyaml: {e}"),
        )
    })?;
    let s = match &json {
        serde_json::Value::String(s) => yaml_scalar(s),
        _ => {
            let mut s = yaml::to_string(&json);
            if s.ends_with('\n') {
                s.pop();
            }
            s
        }
    };
    Ok(minijinja::Value::from_safe_string(s))
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
    let env = manifest_env();
    env.render_str(source, minijinja::Value::from(minijinja::value::Serde(ctx)))
        .map_err(|e| {
            if e.kind() == minijinja::ErrorKind::OutOfFuel {
                return format!(
                    "template error: the render used up its budget of {FUEL} steps (about one per instruction or 64 bytes of output); a manifest template must not loop over large ranges"
                );
            }
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

    #[test]
    fn manifests_write_values_as_yaml_scalars() {
        let ctx = json!({"values": {
            "plain": "gpu-operator", "version": "24.04", "yes": "true", "empty": "",
            "inject": "x\n---\nkind: ClusterRoleBinding", "colon": "a: b", "n": 3, "f": 1.5,
            "b": false, "null": null, "list": [1, "a"], "map": {"a": {"b": "c"}},
        }});
        let render = |t: &str| manifest(t, &ctx).unwrap();
        assert_eq!(render("{{ values.plain }}"), "gpu-operator");
        assert_eq!(render("{{ values.version }}"), "\"24.04\"");
        assert_eq!(render("{{ values.yes }}"), "\"true\"");
        assert_eq!(render("{{ values.empty }}"), "\"\"");
        assert_eq!(
            render("{{ values.inject }}"),
            "\"x\\n---\\nkind: ClusterRoleBinding\""
        );
        assert_eq!(render("{{ values.colon }}"), "\"a: b\"");
        assert_eq!(render("{{ values.n }} {{ values.f }}"), "3 1.5");
        assert_eq!(render("{{ values.b }} {{ true }}"), "false true");
        assert_eq!(render("{{ values.null }}"), "null");
        assert_eq!(render("{{ values.list }}"), "[1,\"a\"]");
        assert_eq!(
            render("{{ values.plain ~ \"-\" ~ values.version }}"),
            "gpu-operator-24.04"
        );
        // toyaml is written as is, also after indent and a newline.
        assert_eq!(
            render("m:{{ \"\\n\" ~ (values.map | toyaml | indent(2, true)) }}"),
            "m:\n  a:\n    b: c"
        );
        assert_eq!(
            render("k: {{ values.inject | toyaml }}"),
            "k: \"x\\n---\\nkind: ClusterRoleBinding\""
        );
        assert_eq!(yaml_scalar("a\u{7f}b\u{2028}"), "\"a\\u007fb\\u2028\"");
    }
}
