//! `#[boundary]`: the one wrapper of every function the bindings export to Python.
//!
//! Put it above `#[pyfunction]` on a function, or above `#[pymethods]` on an impl block (it then
//! wraps every method). Each body `{ B }` becomes `crate::boundary::call(move || -> R { B })`,
//! which opens a cancellable call, catches any panic (turned into `specrs.InternalError`) and
//! raises a pending Ctrl-C as `KeyboardInterrupt`. A function that returns a plain value `R`
//! (not a `Result`) is changed to return `PyResult<R>`, so that it can fail that way too.
//!
//! Written on plain `proc_macro` tokens (no syn): an item is a run of tokens where a function is
//! `… fn name <generics>? (args) (-> Ret)? (where …)? { body }`.

use proc_macro::{Delimiter, Group, Ident, Punct, Spacing, Span, TokenStream, TokenTree};

#[proc_macro_attribute]
pub fn boundary(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        return error("#[boundary] takes no arguments");
    }
    let tokens: Vec<TokenTree> = item.into_iter().collect();
    // An impl block if `impl` comes before any `fn` at the top level (a fn may return `impl T`).
    let is_impl = tokens
        .iter()
        .find_map(|t| match t {
            TokenTree::Ident(i) if i.to_string() == "impl" => Some(true),
            TokenTree::Ident(i) if i.to_string() == "fn" => Some(false),
            _ => None,
        })
        .unwrap_or(false);
    if is_impl {
        // Wrap every fn of the impl's body (its last brace group).
        let Some(pos) = tokens.iter().rposition(|t| matches!(t, TokenTree::Group(g) if g.delimiter() == Delimiter::Brace)) else {
            return error("#[boundary]: impl block without a body");
        };
        let mut out = tokens.clone();
        if let TokenTree::Group(g) = &tokens[pos] {
            let inner = wrap_fns(g.stream().into_iter().collect());
            let mut ng = Group::new(Delimiter::Brace, inner.into_iter().collect());
            ng.set_span(g.span());
            out[pos] = TokenTree::Group(ng);
        }
        return out.into_iter().collect();
    }
    let wrapped = wrap_fns(tokens);
    wrapped.into_iter().collect()
}

/// Rewrites every top-level fn item in `tokens`.
fn wrap_fns(tokens: Vec<TokenTree>) -> Vec<TokenTree> {
    let mut out = Vec::with_capacity(tokens.len() + 16);
    let mut i = 0;
    while i < tokens.len() {
        let is_fn = matches!(&tokens[i], TokenTree::Ident(id) if id.to_string() == "fn");
        if !is_fn {
            out.push(tokens[i].clone());
            i += 1;
            continue;
        }
        // `fn` `name` … up to the parameter list.
        let mut j = i + 1;
        while j < tokens.len() && !matches!(&tokens[j], TokenTree::Group(g) if g.delimiter() == Delimiter::Parenthesis) {
            j += 1;
        }
        // After the parameters: `-> Ret`, an optional where clause, then the body.
        let mut k = j + 1;
        while k < tokens.len() && !matches!(&tokens[k], TokenTree::Group(g) if g.delimiter() == Delimiter::Brace) {
            k += 1;
        }
        if k >= tokens.len() {
            // A declaration without a body (not expected here): copy it unchanged.
            out.extend(tokens[i..].iter().cloned());
            break;
        }
        let between = &tokens[j + 1..k];
        let ret_end = between.iter().position(|t| matches!(t, TokenTree::Ident(id) if id.to_string() == "where")).unwrap_or(between.len());
        let ret: Vec<TokenTree> =
            if between.len() >= 2 && is_arrow(&between[0], &between[1]) { between[2..ret_end].to_vec() } else { Vec::new() };
        let TokenTree::Group(body) = &tokens[k] else { return tokens };
        out.extend(tokens[i..=j].iter().cloned());
        let returns_result = is_result(&ret);
        let ret_tokens: Vec<TokenTree> = if ret.is_empty() { parse("()") } else { ret.clone() };
        // New signature tail: `-> PyResult<Ret>` for plain returns, unchanged otherwise.
        let new_ret: Vec<TokenTree> = if returns_result {
            ret.clone()
        } else {
            let mut r = parse("::pyo3::PyResult<");
            r.extend(ret_tokens.iter().cloned());
            r.extend(parse(">"));
            r
        };
        out.extend(parse("->"));
        out.extend(new_ret.iter().cloned());
        out.extend(between[ret_end..].iter().cloned()); // where clause, if any
                                                        // New body.
        let mut closure = parse("move || ->");
        if returns_result {
            closure.extend(ret_tokens.iter().cloned());
            closure.push(TokenTree::Group(body.clone()));
        } else {
            closure.extend(parse("::pyo3::PyResult<"));
            closure.extend(ret_tokens.iter().cloned());
            closure.extend(parse(">"));
            // `Ok((move || -> Ret { body })())`: a `return` in the body still returns a Ret.
            let mut inner = parse("move || ->");
            inner.extend(ret_tokens.iter().cloned());
            inner.push(TokenTree::Group(body.clone()));
            let inner = Group::new(Delimiter::Parenthesis, inner.into_iter().collect());
            let mut ok = parse("::core::result::Result::Ok");
            let mut call = vec![TokenTree::Group(inner)];
            call.push(TokenTree::Group(Group::new(Delimiter::Parenthesis, TokenStream::new())));
            ok.push(TokenTree::Group(Group::new(Delimiter::Parenthesis, call.into_iter().collect())));
            closure.push(TokenTree::Group(Group::new(Delimiter::Brace, ok.into_iter().collect())));
        }
        let mut new_body = parse("crate::boundary::call");
        new_body.push(TokenTree::Group(Group::new(Delimiter::Parenthesis, closure.into_iter().collect())));
        let mut g = Group::new(Delimiter::Brace, new_body.into_iter().collect());
        g.set_span(body.span());
        out.push(TokenTree::Group(g));
        i = k + 1;
    }
    out
}

fn is_arrow(a: &TokenTree, b: &TokenTree) -> bool {
    matches!((a, b), (TokenTree::Punct(x), TokenTree::Punct(y)) if x.as_char() == '-' && x.spacing() == Spacing::Joint && y.as_char() == '>')
}

/// Whether the return type is a `Result` (its last path segment before `<`).
fn is_result(ret: &[TokenTree]) -> bool {
    let head = ret.iter().position(|t| matches!(t, TokenTree::Punct(p) if p.as_char() == '<')).unwrap_or(ret.len());
    ret[..head]
        .iter()
        .rev()
        .find_map(|t| match t {
            TokenTree::Ident(i) => Some(i.to_string()),
            _ => None,
        })
        .is_some_and(|name| matches!(name.as_str(), "PyResult" | "SpecrsResult" | "Result"))
}

/// Tokens of a fixed snippet (always valid Rust; an empty list could only come from a typo here).
fn parse(s: &str) -> Vec<TokenTree> {
    s.parse::<TokenStream>().map(|t| t.into_iter().collect()).unwrap_or_default()
}

fn error(msg: &str) -> TokenStream {
    let mut ts = vec![TokenTree::Ident(Ident::new("compile_error", Span::call_site())), TokenTree::Punct(Punct::new('!', Spacing::Alone))];
    let lit = TokenTree::Literal(proc_macro::Literal::string(msg));
    ts.push(TokenTree::Group(Group::new(Delimiter::Parenthesis, std::iter::once(lit).collect())));
    ts.into_iter().collect()
}
